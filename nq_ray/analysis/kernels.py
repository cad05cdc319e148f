"""Numba kernels for what TA-Lib lacks: anchored VWAP, supertrend, volume profile, swing pivots.

Every kernel is ``@njit(cache=True)``, takes float64/int64 numpy arrays and scalars and returns numpy
arrays; the pandas wrappers in ``indicators.py`` and ``levels.py`` validate input and add the index back.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def anchored_vwap(
    typical: np.ndarray, volume: np.ndarray, group: np.ndarray, active: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Volume-weighted average of ``typical`` and its volume-weighted standard deviation, cumulative
    within each run of equal ``group`` ids; bars where ``active`` is False are NaN and do not count.

    VWAP_t = Σ v·p / Σ v over the period so far; σ_t = sqrt(Σ v·(p − VWAP_t)² / Σ v), accumulated on
    prices shifted by the period's first traded price (so the variance does not cancel catastrophically
    at index levels of 20,000+). NaN until the period's first bar with volume > 0; zero-volume bars
    carry the previous values unchanged.
    """
    n = typical.shape[0]
    vwap = np.empty(n)
    var = np.empty(n)
    cum_pv = 0.0
    cum_v = 0.0
    s1 = 0.0
    s2 = 0.0
    shift = 0.0
    prev = -(2**62)
    for i in range(n):
        if group[i] != prev:
            prev = group[i]
            cum_pv = 0.0
            cum_v = 0.0
            s1 = 0.0
            s2 = 0.0
        v = volume[i]
        if active[i] and v > 0.0:
            p = typical[i]
            if cum_v == 0.0:
                shift = p
            d = p - shift
            cum_pv += v * p
            cum_v += v
            s1 += v * d
            s2 += v * d * d
        if active[i] and cum_v > 0.0:
            inv = 1.0 / cum_v
            vwap[i] = cum_pv * inv
            m = s1 * inv
            var[i] = s2 * inv - m * m
        else:
            vwap[i] = np.nan
            var[i] = np.nan
    for i in range(n):  # a separate pass so the square roots vectorise
        x = var[i]
        var[i] = np.sqrt(x) if x > 0.0 else (0.0 if x == x else np.nan)
    return vwap, var


@njit(cache=True)
def supertrend(
    high: np.ndarray, low: np.ndarray, close: np.ndarray, atr: np.ndarray, multiplier: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Supertrend (Olivier Seban; the TradingView "SuperTrend" of KivancOzbilgic, ATR = Wilder's).

    Basic bands: hl2 ± multiplier·ATR. The lower (long-stop) band only rises while the previous close
    stays above it; the upper (short-stop) band only falls while the previous close stays below it.
    The trend starts up, flips up when close > previous upper band and down when close < previous
    lower band. Returns (supertrend, direction ±1, lower band, upper band); NaN where ATR is NaN.
    """
    n = close.shape[0]
    st = np.full(n, np.nan)
    direction = np.full(n, np.nan)
    lower = np.full(n, np.nan)
    upper = np.full(n, np.nan)
    started = False
    trend = 1.0
    for i in range(n):
        if np.isnan(atr[i]):
            continue
        hl2 = (high[i] + low[i]) / 2.0
        up = hl2 - multiplier * atr[i]
        dn = hl2 + multiplier * atr[i]
        if started:
            up1 = lower[i - 1]
            dn1 = upper[i - 1]
            if close[i - 1] > up1:
                up = max(up, up1)
            if close[i - 1] < dn1:
                dn = min(dn, dn1)
            if trend == -1.0 and close[i] > dn1:
                trend = 1.0
            elif trend == 1.0 and close[i] < up1:
                trend = -1.0
        started = True
        lower[i] = up
        upper[i] = dn
        direction[i] = trend
        st[i] = up if trend == 1.0 else dn
    return st, direction, lower, upper


@njit(cache=True)
def volume_profile(
    low: np.ndarray,
    high: np.ndarray,
    volume: np.ndarray,
    starts: np.ndarray,
    bin_size: float,
    value_area: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-group volume profile: point of control, value-area high and value-area low.

    Bins are ``bin_size`` wide on a grid anchored at 0 (so a tick-sized bin is the tick grid). Each bar's
    volume is spread evenly over the bins its [low, high] range touches. POC = the bin with the most
    volume (ties: the one nearest the middle of the range, then the lower one). The value area grows
    from the POC one bin at a time towards the side with more volume (ties: up) until it holds
    ``value_area`` of the total (CBOT Market Profile convention). Volumes are compared within
    1e-9 × the group's total, so rounding in the spread never decides a tie or the value-area edge.
    Prices are bin lower edges. Groups are ``starts[g]`` … ``starts[g+1]-1``; a group without volume
    gives NaN.
    """
    ng = starts.shape[0] - 1
    poc = np.full(ng, np.nan)
    vah = np.full(ng, np.nan)
    val = np.full(ng, np.nan)
    for g in range(ng):
        a = starts[g]
        b = starts[g + 1]
        if b <= a:
            continue
        lo_bin = np.int64(1) << 62
        hi_bin = -(np.int64(1) << 62)
        total = 0.0
        for i in range(a, b):
            if volume[i] > 0.0:
                lb = np.int64(np.floor(low[i] / bin_size + 1e-9))
                hb = np.int64(np.floor(high[i] / bin_size + 1e-9))
                lo_bin = min(lo_bin, lb)
                hi_bin = max(hi_bin, hb)
                total += volume[i]
        if total <= 0.0:
            continue
        nb = hi_bin - lo_bin + 1
        hist = np.zeros(nb)
        for i in range(a, b):
            v = volume[i]
            if v > 0.0:
                lb = np.int64(np.floor(low[i] / bin_size + 1e-9)) - lo_bin
                hb = np.int64(np.floor(high[i] / bin_size + 1e-9)) - lo_bin
                share = v / (hb - lb + 1)
                for k in range(lb, hb + 1):
                    hist[k] += share
        # volumes that are equal in exact arithmetic can differ in their last bits once spread over bins
        # and summed (10/3 + 1/2 vs 1/2 + 10/3): compare within eps so ties and the 70 % mark are exact
        eps = 1e-9 * total
        best = 0
        mid = (nb - 1) / 2.0
        for k in range(1, nb):
            if hist[k] > hist[best] + eps or (
                abs(hist[k] - hist[best]) <= eps and abs(k - mid) < abs(best - mid)
            ):
                best = k
        lo_k = best
        hi_k = best
        acc = hist[best]
        target = value_area * total
        while acc < target - eps and (lo_k > 0 or hi_k < nb - 1):
            above = hist[hi_k + 1] if hi_k < nb - 1 else -1.0
            below = hist[lo_k - 1] if lo_k > 0 else -1.0
            if above >= below - eps:
                hi_k += 1
                acc += above
            else:
                lo_k -= 1
                acc += below
        poc[g] = (lo_bin + best) * bin_size
        vah[g] = (lo_bin + hi_k) * bin_size
        val[g] = (lo_bin + lo_k) * bin_size
    return poc, vah, val


@njit(cache=True)
def swing_pivots(high: np.ndarray, low: np.ndarray, atr: np.ndarray, prominence: float) -> np.ndarray:
    """Alternating swing pivots by a zig-zag with an ATR-scaled reversal threshold.

    A swing high is confirmed once price falls ``prominence``·ATR below the running high since the last
    swing low (and symmetrically for lows), so consecutive pivots alternate high/low and each leg is at
    least ``prominence`` ATRs long. Returns an int8 array: +1 at swing highs, −1 at swing lows, else 0.
    The last, unconfirmed extreme is not marked.
    """
    n = high.shape[0]
    out = np.zeros(n, dtype=np.int8)
    state = 0  # 0 unknown, 1 looking for a high (leg up), -1 looking for a low (leg down)
    hi_i = -1
    lo_i = -1
    for i in range(n):
        a = atr[i]
        if np.isnan(a) or np.isnan(high[i]) or np.isnan(low[i]):
            continue
        thr = prominence * a
        if hi_i < 0 or high[i] > high[hi_i]:
            hi_i = i
        if lo_i < 0 or low[i] < low[lo_i]:
            lo_i = i
        if state == 0:
            if high[hi_i] - low[i] >= thr and hi_i < i:
                out[hi_i] = 1
                state = -1
                lo_i = i
            elif high[i] - low[lo_i] >= thr and lo_i < i:
                out[lo_i] = -1
                state = 1
                hi_i = i
        elif state == 1:
            if high[hi_i] - low[i] >= thr and hi_i < i:
                out[hi_i] = 1
                state = -1
                lo_i = i
        else:
            if high[i] - low[lo_i] >= thr and lo_i < i:
                out[lo_i] = -1
                state = 1
                hi_i = i
    return out
