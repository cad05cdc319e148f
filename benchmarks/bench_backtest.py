"""Backtest and sweep speed against vectorbt, measured in one run (``make bench`` needs the [bench] extra).

    .venv/bin/python -m benchmarks.bench_backtest [--quick]

1. One SMA(10)/SMA(30) cross backtest on 1,000,000 one-minute bars: nq-ray / vectorbt time (target ≤ 1.0).
   vectorbt is timed from its MA indicator to ``Portfolio.from_signals`` plus total return, Sharpe and
   max drawdown; nq-ray from ``run_backtest`` (session calendar, signals, fills, all metrics).
2. Every (fast, slow) pair with 2 ≤ fast < slow ≤ 127 (7,875) on 100,000 bars: nq-ray ``sweep`` in-process
   (24 metrics per pair) vs vectorbt with its column-vectorised metrics (total return, Sharpe, Sortino, max
   drawdown, Calmar, trade count, win rate, profit factor, expectancy), timed on an evenly spaced subset of
   pairs and scaled to 7,875 (the whole grid's 2-D signal arrays do not fit in memory at once); nq-ray's
   peak memory (child process RSS); Ray
   with 2 workers vs 1 (same chunks, ``workers=`` tasks in flight).
Both engines are warmed up (numba compilation) before timing. Quick mode shrinks every size.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import resource
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from benchmarks.data import synthetic_minutes
from nq_ray.backtest import BacktestConfig, run_backtest
from nq_ray.backtest.sweep import sweep

GRID_MAX = 127
SIZES = {
    False: {"single": 1_000_000, "sweep": 100_000, "vbt_pairs": 300},
    True: {"single": 100_000, "sweep": 20_000, "vbt_pairs": 60},
}


def _bars(n: int) -> pd.DataFrame:
    """``n`` bars of the seeded synthetic NQ 1-minute generator."""
    return synthetic_minutes(n)


def _best(fn: Callable[[], Any], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def _pairs() -> list[tuple[int, int]]:
    return [(f, s) for f in range(2, GRID_MAX) for s in range(f + 1, GRID_MAX + 1)]


GRID = {"fast": list(range(2, GRID_MAX)), "slow": list(range(3, GRID_MAX + 1))}
# capital large enough that margin never refuses an entry: both engines then take every trade; no costs,
# as the reference engines are run without any
CFG = BacktestConfig(initial_capital=1e9, commission_per_contract=0, slippage_ticks=0)


def _vbt_portfolio(vbt: Any, bars: pd.DataFrame, fast_w: list[int], slow_w: list[int]) -> Any:
    """vectorbt's SMA-cross with next-open fills, one column per (fast, slow) pair."""
    from vectorbt.generic.nb import crossed_above_nb

    idx = bars.index.tz_localize(None)
    close = pd.Series(bars.close.to_numpy(), index=idx)
    fast = vbt.MA.run(close, window=fast_w).ma.to_numpy().reshape(len(idx), -1)
    slow = vbt.MA.run(close, window=slow_w).ma.to_numpy().reshape(len(idx), -1)
    up = crossed_above_nb(fast, slow)
    down = crossed_above_nb(slow, fast)
    cols = pd.MultiIndex.from_arrays([fast_w, slow_w], names=["fast", "slow"])

    def shift(a: np.ndarray) -> pd.DataFrame:
        out = np.zeros_like(a)
        out[1:] = a[:-1]
        return pd.DataFrame(out, index=idx, columns=cols)

    return vbt.Portfolio.from_signals(
        close=close,
        entries=shift(up),
        exits=shift(down),
        short_entries=shift(down),
        short_exits=shift(up),
        price=pd.Series(bars.open.to_numpy(), index=idx),
        size=1.0,
        init_cash=1e12,
        freq="1min",
    )


def _vbt_metrics(pf: Any) -> pd.DataFrame:
    """vectorbt's column-vectorised metrics for every pair (its per-column ``stats()`` is far slower)."""
    t = pf.trades
    return pd.DataFrame(
        {
            "total_return": pf.total_return(),
            "sharpe": pf.sharpe_ratio(),
            "sortino": pf.sortino_ratio(),
            "max_drawdown": pf.max_drawdown(),
            "calmar": pf.calmar_ratio(),
            "n_trades": t.count(),
            "win_rate": t.win_rate(),
            "profit_factor": t.profit_factor(),
            "expectancy": t.expectancy(),
        }
    )


def _sweep_child(n: int, q: Any) -> None:
    bars = _bars(n)
    t = time.perf_counter()
    sweep(bars, "sma_cross", GRID, CFG, parallel=False)
    q.put((time.perf_counter() - t, _peak_rss_gb()))


def _peak_rss_gb() -> float:
    """This process's peak resident memory (VmHWM; unlike ru_maxrss it is not inherited from the parent)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024**2
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def main(quick: bool = False) -> list[dict[str, Any]]:
    """Measure, print a markdown table of ratios, and return its rows."""
    import vectorbt as vbt

    size = SIZES[quick]
    rows: list[dict[str, Any]] = []
    load = os.getloadavg()[0]

    # 1. one backtest on 1M bars
    bars = _bars(size["single"])
    small = bars.iloc[:5000]
    run_backtest(small, "sma_cross", {"fast": 10, "slow": 30}, CFG)
    _vbt_portfolio(vbt, small, [10], [30]).total_return()

    def ours() -> None:
        run_backtest(bars, "sma_cross", {"fast": 10, "slow": 30}, CFG)

    def theirs() -> None:
        pf = _vbt_portfolio(vbt, bars, [10], [30])
        pf.total_return(), pf.sharpe_ratio(), pf.max_drawdown()

    t_ours, t_vbt = _best(ours, 3), _best(theirs, 3)
    n_ours = run_backtest(bars, "sma_cross", {"fast": 10, "slow": 30}, CFG).metrics.n_trades
    n_vbt = int(_vbt_portfolio(vbt, bars, [10], [30]).trades.count().iloc[0])
    rows.append(
        {
            "benchmark": f"SMA-cross backtest, {len(bars):,} 1-min bars",
            "nq_ray_s": t_ours,
            "reference_s": t_vbt,
            "ratio": t_ours / t_vbt,
            "target": "nq-ray/vectorbt ≤ 1.0",
            "note": f"best of 3; vectorbt without stats(); trades {n_ours:,} vs {n_vbt:,}",
        }
    )

    # 2. sweep of 7,875 pairs on 100k bars
    sbars = _bars(size["sweep"])
    pairs = _pairs()
    sweep(sbars.iloc[:3000], "sma_cross", {"fast": [5], "slow": [20]}, CFG, parallel=False)
    t_sweep = _best(lambda: sweep(sbars, "sma_cross", GRID, CFG, parallel=False), 1)
    k = size["vbt_pairs"]
    step = max(1, len(pairs) // k)
    subset = pairs[::step][:k]
    _vbt_metrics(_vbt_portfolio(vbt, sbars.iloc[:3000], [5, 6], [20, 20]))

    def vbt_subset() -> None:
        _vbt_metrics(_vbt_portfolio(vbt, sbars, [f for f, _ in subset], [s for _, s in subset]))

    t_sub = _best(vbt_subset, 1)
    t_vbt_full = t_sub * len(pairs) / len(subset)
    rows.append(
        {
            "benchmark": f"sweep {len(pairs):,} pairs, {len(sbars):,} bars (1 process)",
            "nq_ray_s": t_sweep,
            "reference_s": t_vbt_full,
            "ratio": t_vbt_full / t_sweep,
            "target": "vectorbt/nq-ray ≥ 10",
            "note": f"vectorbt with 9 vectorised metrics timed on {len(subset)} pairs ({t_sub:.1f} "
            f"s), scaled ×{len(pairs) / len(subset):.1f}",
        }
    )

    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=_sweep_child, args=(size["sweep"], q))
    p.start()
    t_child, peak_gb = q.get()
    p.join()
    rows.append(
        {
            "benchmark": "sweep peak memory (child process RSS)",
            "nq_ray_s": t_child,
            "reference_s": None,
            "ratio": peak_gb,
            "target": "< 2 GB",
            "note": f"{peak_gb:.2f} GB peak RSS (VmHWM) of a fresh process: imports, bars, sweep",
        }
    )

    # 3. Ray: 2 workers vs 1
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        sweep(
            sbars.iloc[:3000], "sma_cross", {"fast": [5, 6], "slow": [20]}, CFG, chunks=2
        )  # warm the workers
        t1 = _best(lambda: sweep(sbars, "sma_cross", GRID, CFG, chunks=16, workers=1), 1)
        t2 = _best(lambda: sweep(sbars, "sma_cross", GRID, CFG, chunks=16, workers=2), 1)
    finally:
        ray.shutdown()
    rows.append(
        {
            "benchmark": "sweep on Ray, 2 workers vs 1 (16 chunks)",
            "nq_ray_s": t2,
            "reference_s": t1,
            "ratio": t1 / t2,
            "target": "≥ 1.7",
            "note": "reference = the same sweep with 1 task in flight",
        }
    )

    print(
        f"\nmeasured {time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} CPUs, load average "
        f"{load:.2f} at start"
        f"{' (quick sizes)' if quick else ''}\n"
    )
    print("| benchmark | nq-ray (s) | reference (s) | ratio | target | note |")
    print("| --- | ---: | ---: | ---: | --- | --- |")
    for r in rows:
        ref = "" if r["reference_s"] is None else f"{r['reference_s']:.2f}"
        print(
            f"| {r['benchmark']} | {r['nq_ray_s']:.2f} | {ref} | {r['ratio']:.2f} | {r['target']} | "
            f"{r['note']} |"
        )
    return rows


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_backtest")
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke run")
    main(quick=parser.parse_args().quick)
