"""The multi-symbol scanner on Ray, measured in one run (``make bench``; no extra needed).

    .venv/bin/python -m benchmarks.bench_scanner [--quick]

8 symbols × 2 timeframes (5m, 1h) = 16 cells, on a local Ray with 2 CPUs: the scan with one task in
flight (one worker) / the same scan with every cell submitted at once, in the same run (target ≥ 1.6 on
2 free cores; bounded by the cores: a 2-core machine cannot exceed 2×). Both modes are measured: market
analysis (``scan_market``'s cell: ``analyze`` + the rules analyst) and backtests (``scan_backtests``'s cell:
sma_cross). Workers are warmed up first (imports, numba caches); each timing is the best of the repeats.

The bars: the bundled sample holds real 5-minute bars for NQ and ES only, so the other six symbols are
derived from them, in memory, deterministically: MNQ ← NQ (the micro tracks the same index), MES ← ES,
YM / MYM ← ES × 8.4 and RTY / M2K ← ES × 0.42, each rounded to its contract's tick. They are passed to
the scan as frames (``bars=``), so every cell resamples its own 5-minute frame to 1h as a loaded one
would; quick: the last 3,000 bars of each.
"""

from __future__ import annotations

import argparse
import os
import time
from typing import Any

import numpy as np
import pandas as pd

SYMBOLS = ("NQ", "MNQ", "ES", "MES", "YM", "MYM", "RTY", "M2K")
TIMEFRAMES = ["5m", "1h"]
DERIVED = {"NQ": ("NQ", 1.0), "MNQ": ("NQ", 1.0), "ES": ("ES", 1.0), "MES": ("ES", 1.0)} | {
    "YM": ("ES", 8.4),
    "MYM": ("ES", 8.4),
    "RTY": ("ES", 0.42),
    "M2K": ("ES", 0.42),
}


def symbol_bars(quick: bool = False) -> dict[str, pd.DataFrame]:
    """8 symbols' 5-minute bars from the real NQ and ES sample (see the module docstring)."""
    from nq_ray.data import load_bars
    from nq_ray.domain.contracts import get_contract

    real = {s: load_bars(s, "5m", source="sample") for s in ("NQ", "ES")}
    out = {}
    for sym, (base, scale) in DERIVED.items():
        frame = real[base].copy()
        tick = get_contract(sym).tick_size
        for col in ("open", "high", "low", "close"):
            frame[col] = np.round(frame[col].to_numpy() * scale / tick) * tick
        out[sym] = frame.iloc[-3000:] if quick else frame
    return out


def _time_scan(mode: str, bars: dict[str, pd.DataFrame], workers: int | None) -> tuple[float, Any]:
    from nq_ray.config import Settings
    from nq_ray.tools.scanning import scan

    t0 = time.perf_counter()
    out = scan(
        mode,  # type: ignore[arg-type]
        Settings(),
        list(SYMBOLS),
        TIMEFRAMES,
        bars=bars,
        base_interval="5m",
        min_trades=1,
        workers=workers,
    )
    dt = time.perf_counter() - t0
    assert out.parallel and out.finished == len(SYMBOLS) * len(TIMEFRAMES)
    assert all(r.error is None for r in out.rows), [r.error for r in out.rows if r.error]
    return dt, out


def main(quick: bool = False) -> list[dict[str, Any]]:
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import ray

    bars = symbol_bars(quick)
    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    rows = []
    try:
        cpus = int(ray.cluster_resources().get("CPU", 0))
        for mode in ("analysis", "backtest"):
            for _ in range(2):  # warm both workers
                _time_scan(mode, bars, None)
            times: dict[int | None, float] = {}
            for workers in (1, None) * (1 if quick else 3):
                dt, out = _time_scan(mode, bars, workers)
                times[workers] = min(times.get(workers, float("inf")), dt)
            n = len(next(iter(bars.values())))
            rows.append(
                {
                    "benchmark": f"scanner ({mode}), 8 symbols × 2 timeframes, {n:,} 5-min bars each",
                    "nq_ray_s": times[None],
                    "reference_s": times[1],
                    "reference": "same scan, 1 task in flight",
                    "ratio": times[1] / times[None],
                    "target": f"≥ 1.6 on 2 free cores (1 worker / {cpus} CPUs)",
                    "top": [f"{r.symbol} {r.interval}" for r in out.rows[:3]],
                }
            )
    finally:
        if started:
            ray.shutdown()
    _print(rows)
    return rows


def _print(rows: list[dict[str, Any]]) -> None:
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"cores: {os.cpu_count()}, load average at the end: {load}")
    print("| benchmark | nq-ray (s) | reference | reference (s) | ratio | target | best cells |")
    print("| --- | ---: | --- | ---: | ---: | --- | --- |")
    for r in rows:
        cells = [
            r["benchmark"],
            f"{r['nq_ray_s']:.4f}",
            r["reference"],
            f"{r['reference_s']:.4f}",
            f"{r['ratio']:.2f}×",
            r["target"],
            ", ".join(r["top"]),
        ]
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    main(quick=parser.parse_args().quick)
