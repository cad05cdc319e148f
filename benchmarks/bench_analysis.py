"""Technical-analysis speed, measured in one run (``make bench``; no extra needed).

    .venv/bin/python -m benchmarks.bench_analysis [--quick]

1. The default indicator set (RSI 14, MACD 12/26/9, Bollinger 20/2, ATR 14) on 1,000,000 bars:
   ``compute_indicators`` (validation, frame and latest values included) / the four raw TA-Lib calls on
   numpy arrays, keeping their outputs (target ≤ 1.3).
2. Session VWAP (with its σ) and supertrend on 1,000,000 bars: a vectorised pandas version / the numba
   kernel, both from the same prepared arrays and producing the same outputs (target ≥ 10). Pandas VWAP
   is three ``groupby(session).cumsum()``; supertrend is recursive, so its pandas version vectorises the
   bands and loops over numpy arrays for the recursion (the usual pandas implementation). Also reported:
   the full ``vwap(bars)`` wrapper time, and the VWAP ratio when the two are timed alternately (each
   call then pays fresh page faults for its outputs).
3. ``analyze`` on one year of synthetic 1-minute NQ (~350,000 bars): warm wall time (best of 3) and the
   peak RSS reached inside ``analyze`` in a fresh process that has loaded the bars (the kernel's RSS
   high-water mark is reset just before the call), and the increase over its RSS before the call.
4. ``analyze_many`` over 8 symbols (one year of 1-minute bars each; quick: 2 months) on a local Ray with
   2 CPUs: time with 1 task in flight / time with 2 (target ≥ 1.6). Workers are warmed up first.

Every timing is the best of several repeats after a warm-up call (numba compilation, imports); the
printout states the machine's core count and load average, since other work on it skews ratios.
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
import talib

from benchmarks.data import synthetic_minutes
from nq_ray.analysis import indicators, kernels
from nq_ray.analysis.summary import analyze

SIZES = {
    False: {"bars": 1_000_000, "year": ("2025-01-01", "2025-12-31"), "many": ("2025-01-01", "2025-12-31")},
    True: {"bars": 100_000, "year": ("2025-10-01", "2025-12-31"), "many": ("2025-11-01", "2025-12-31")},
}
SYMBOLS = ("NQ", "MNQ", "ES", "MES", "YM", "MYM", "RTY", "M2K")


def _bars(n: int) -> pd.DataFrame:
    """``n`` bars of the seeded synthetic NQ 1-minute generator."""
    return synthetic_minutes(n)


def _pair(a: Callable[[], Any], b: Callable[[], Any], repeat: int) -> tuple[float, float]:
    """Best times of ``a`` and ``b`` measured alternately (fair under a noisy, shared machine)."""
    a()
    b()
    ta = tb = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        a()
        ta = min(ta, time.perf_counter() - t0)
        t0 = time.perf_counter()
        b()
        tb = min(tb, time.perf_counter() - t0)
    return ta, tb


def _best(fn: Callable[[], Any], repeat: int) -> float:
    fn()  # warm-up
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


# ----------------------------------------------------------------------------- references
def _raw_talib(h: np.ndarray, lo: np.ndarray, c: np.ndarray) -> tuple[Any, ...]:
    """The four TA-Lib calls on numpy arrays, keeping their outputs (as any caller must)."""
    return (
        talib.RSI(c, timeperiod=14),
        talib.MACD(c, fastperiod=12, slowperiod=26, signalperiod=9),
        talib.BBANDS(c, timeperiod=20, nbdevup=2.0, nbdevdn=2.0, matype=0),
        talib.ATR(h, lo, c, timeperiod=14),
    )


def pandas_vwap(typical: pd.Series, volume: pd.Series, group: np.ndarray) -> tuple[pd.Series, pd.Series]:
    """Vectorised pandas session VWAP and its volume-weighted σ (the kernel's two outputs): cumulative
    Σv·p, Σv·p² and Σv per session; σ² = Σv·p²/Σv − VWAP² (NaN while Σv = 0)."""
    pv = (typical * volume).groupby(group).cumsum()
    pv2 = (typical * typical * volume).groupby(group).cumsum()
    v = volume.groupby(group).cumsum().where(lambda x: x > 0)
    vw = pv / v
    return vw, np.sqrt((pv2 / v - vw * vw).clip(lower=0))


def pandas_supertrend(
    high: pd.Series, low: pd.Series, close: pd.Series, atr: pd.Series, multiplier: float
) -> pd.DataFrame:
    """The usual pandas supertrend: vectorised basic bands, a Python loop over numpy for the recursion."""
    hl2 = (high + low) / 2
    basic_up = (hl2 - multiplier * atr).to_numpy()
    basic_dn = (hl2 + multiplier * atr).to_numpy()
    c = close.to_numpy()
    n = len(c)
    up = np.full(n, np.nan)
    dn = np.full(n, np.nan)
    st = np.full(n, np.nan)
    trend = 1
    started = False
    for i in range(n):
        if np.isnan(basic_up[i]):
            continue
        u, d = basic_up[i], basic_dn[i]
        if started:
            if c[i - 1] > up[i - 1]:
                u = max(u, up[i - 1])
            if c[i - 1] < dn[i - 1]:
                d = min(d, dn[i - 1])
            if trend == -1 and c[i] > dn[i - 1]:
                trend = 1
            elif trend == 1 and c[i] < up[i - 1]:
                trend = -1
        started = True
        up[i], dn[i] = u, d
        st[i] = u if trend == 1 else d
    return pd.DataFrame({"supertrend": st, "lower": up, "upper": dn}, index=close.index)


# ----------------------------------------------------------------------------- analyze memory (child)
def _analyze_child(start: str, end: str, out: Any) -> None:
    from nq_ray.data import load_bars

    bars = load_bars("NQ", "1m", source="synthetic", start=start, end=end)
    analyze(bars.iloc[:5000])  # imports, numba cache
    before = _status_mb("VmRSS")
    reset = _reset_peak_rss()  # so the peak is the one reached inside analyze, not while loading
    t0 = time.perf_counter()
    analyze(bars)
    wall = time.perf_counter() - t0
    peak = _status_mb("VmHWM") if reset else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out.put({"bars": len(bars), "rss_before_mb": before, "peak_mb": peak, "cold_s": wall})


def _status_mb(field: str) -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _reset_peak_rss() -> bool:
    """Reset the kernel's high-water mark of this process's RSS (Linux ≥ 4.0: clear_refs 5)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


# ----------------------------------------------------------------------------- main
def main(quick: bool = False) -> list[dict[str, Any]]:
    size = SIZES[quick]
    repeat = 3 if quick else 5
    rows: list[dict[str, Any]] = []
    n = size["bars"]
    bars = _bars(n)
    h, lo, c = (bars[k].to_numpy() for k in ("high", "low", "close"))

    # 1. default indicator set vs raw TA-Lib
    t_ours, t_raw = _pair(
        lambda: indicators.compute_indicators(bars), lambda: _raw_talib(h, lo, c), 3 * repeat
    )
    rows.append(
        {
            "benchmark": f"default indicator set, {n:,} bars",
            "nq_ray_s": t_ours,
            "reference_s": t_raw,
            "reference": "raw TA-Lib calls",
            "ratio": t_ours / t_raw,
            "target": "≤ 1.3 (nq-ray / TA-Lib)",
        }
    )

    # 2. kernels vs pandas
    group, active = indicators.anchor_groups(bars.index, "session")
    typical = (bars["high"] + bars["low"] + bars["close"]) / 3.0
    tp, vol = typical.to_numpy(), bars["volume"].to_numpy()
    t_k = _best(lambda: kernels.anchored_vwap(tp, vol, group, active), 3 * repeat)
    t_pd = _best(lambda: pandas_vwap(typical, bars["volume"], group), repeat)
    t_k_cold, t_pd_cold = _pair(
        lambda: kernels.anchored_vwap(tp, vol, group, active),
        lambda: pandas_vwap(typical, bars["volume"], group),
        repeat,
    )
    check = pandas_vwap(typical, bars["volume"], group)[0].to_numpy()
    np.testing.assert_allclose(
        kernels.anchored_vwap(tp, vol, group, active)[0], check, rtol=1e-9, equal_nan=True
    )
    t_wrap = _best(lambda: indicators.vwap(bars, "session"), repeat)
    rows.append(
        {
            "benchmark": f"session VWAP + σ, {n:,} bars (wrapper incl. session dates: {t_wrap * 1e3:.0f} ms; "
            f"alternating the two, cold allocator: {t_pd_cold / t_k_cold:.1f}×)",
            "nq_ray_s": t_k,
            "reference_s": t_pd,
            "reference": "pandas groupby cumsum",
            "ratio": t_pd / t_k,
            "target": "≥ 10 (pandas / numba)",
        }
    )
    a = talib.ATR(h, lo, c, timeperiod=10)
    a_s = pd.Series(a, index=bars.index)
    t_k = _best(lambda: kernels.supertrend(h, lo, c, a, 3.0), repeat)
    t_pd = _best(lambda: pandas_supertrend(bars["high"], bars["low"], bars["close"], a_s, 3.0), 1)
    np.testing.assert_allclose(
        kernels.supertrend(h, lo, c, a, 3.0)[0],
        pandas_supertrend(bars["high"], bars["low"], bars["close"], a_s, 3.0)["supertrend"].to_numpy(),
        rtol=1e-12,
        equal_nan=True,
    )
    rows.append(
        {
            "benchmark": f"supertrend(10, 3), {n:,} bars",
            "nq_ray_s": t_k,
            "reference_s": t_pd,
            "reference": "pandas bands + numpy loop",
            "ratio": t_pd / t_k,
            "target": "≥ 10 (pandas / numba)",
        }
    )

    # 3. analyze on one year of 1-minute bars: warm time here, peak memory in a fresh child process
    from nq_ray.data import load_bars

    start, end = size["year"]
    year = load_bars("NQ", "1m", source="synthetic", start=start, end=end)
    t_an = _best(lambda: analyze(year), 3)
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    proc = ctx.Process(target=_analyze_child, args=(start, end, q))
    proc.start()
    mem = q.get(timeout=600)
    proc.join()
    rows.append(
        {
            "benchmark": f"analyze, {len(year):,} 1-min bars ({start} → {end})",
            "nq_ray_s": t_an,
            "reference_s": None,
            "reference": f"peak RSS {mem['peak_mb']:.0f} MB "
            f"(+{mem['peak_mb'] - mem['rss_before_mb']:.0f} MB over the loaded process)",
            "ratio": None,
            "target": "reported",
        }
    )

    # 4. analyze_many, 8 symbols, 2 Ray workers vs 1
    rows.append(_bench_many(size["many"], quick))

    _print(rows)
    return rows


def _bench_many(span: tuple[str, str], quick: bool) -> dict[str, Any]:
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import ray

    from nq_ray.analysis.distributed import analyze_many
    from nq_ray.data import load_bars

    data = {s: load_bars(s, "1m", source="synthetic", start=span[0], end=span[1]) for s in SYMBOLS}
    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        for _ in range(2):  # warm both workers (imports, numba caches)
            analyze_many(
                list(SYMBOLS[:2]), "1m", data={s: data[s].iloc[-20_000:] for s in SYMBOLS[:2]}, backend="ray"
            )
        times = {}
        for k in (1, 2) * (2 if quick else 3):
            t0 = time.perf_counter()
            out = analyze_many(list(SYMBOLS), "1m", data=data, backend="ray", parallelism=k)
            dt = time.perf_counter() - t0
            assert all(r.error is None for r in out), [r.error for r in out if r.error]
            times[k] = min(times.get(k, float("inf")), dt)
    finally:
        if started:
            ray.shutdown()
    n = sum(len(b) for b in data.values())
    return {
        "benchmark": f"analyze_many, 8 symbols × {n // 8:,} 1-min bars",
        "nq_ray_s": times[2],
        "reference_s": times[1],
        "reference": "same with 1 task in flight",
        "ratio": times[1] / times[2],
        "target": "≥ 1.6 (1 worker / 2 workers)",
    }


def _print(rows: list[dict[str, Any]]) -> None:
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    versions = f"numpy {np.__version__}, TA-Lib {talib.__version__}"
    print(f"cores: {os.cpu_count()}, load average at the end: {load}, {versions}")
    print("| benchmark | nq-ray (s) | reference | reference (s) | ratio | target |")
    print("| --- | ---: | --- | ---: | ---: | --- |")
    for r in rows:
        ref_s = "" if r["reference_s"] is None else f"{r['reference_s']:.4f}"
        ratio = "" if r["ratio"] is None else f"{r['ratio']:.2f}×"
        cells = [r["benchmark"], f"{r['nq_ray_s']:.4f}", r["reference"], ref_s, ratio, r["target"]]
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_analysis")
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke run")
    main(quick=parser.parse_args().quick)
