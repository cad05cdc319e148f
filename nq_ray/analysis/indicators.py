"""Technical indicators over pandas Series/DataFrames, on TA-Lib wherever TA-Lib has them.

Every function returns a Series/DataFrame on its input's index with the warm-up as NaN exactly where
TA-Lib puts it. Input rules (the same for every indicator, checked once at the door):

- periods are integers within TA-Lib's range, else ``InvalidArgumentError``;
- leading NaNs are allowed and shift the warm-up (TA-Lib's convention); a NaN or ±inf *after* the
  first value is refused with ``InvalidArgumentError`` (TA-Lib would turn every later value into NaN),
  so drop or fill missing bars first;
- a series with no more valid values than the indicator's look-back (no output at all) is refused;
- constant prices give TA-Lib's conventions (RSI, MFI, Williams %R, CCI, stochastic and ADX are 0 where
  their ratio is 0/0).

What TA-Lib lacks (anchored VWAP, supertrend, Keltner, Donchian middle) is computed by the numba
kernels in ``kernels.py`` or from TA-Lib building blocks, as each docstring says.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from numbers import Integral, Real
from typing import Any

import numpy as np
import pandas as pd
import talib

from nq_ray.analysis import kernels
from nq_ray.errors import InvalidArgumentError, InvalidBarsError

__all__ = [
    "INDICATORS",
    "IndicatorSet",
    "adx",
    "atr",
    "bollinger",
    "cci",
    "compute_indicators",
    "donchian",
    "ema",
    "keltner",
    "macd",
    "mfi",
    "obv",
    "rsi",
    "sma",
    "stochastic",
    "supertrend",
    "vwap",
    "vwap_bands",
    "williams_r",
]

DEFAULT_SPEC: tuple[str, ...] = ("rsi", "macd", "bollinger", "atr")
VWAP_ANCHORS: tuple[str, ...] = ("session", "rth", "week")


# ----------------------------------------------------------------------------- validation helpers
def _check_period(indicator: str, name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise InvalidArgumentError(
            f"{indicator}: {name} must be an integer ≥ {minimum}, got {value!r}",
            indicator=indicator,
            parameter=name,
            value=repr(value),
        )
    v = int(value)
    if v < minimum or v > 100_000:
        raise InvalidArgumentError(
            f"{indicator}: {name} must be between {minimum} and 100000, got {v}",
            indicator=indicator,
            parameter=name,
            value=v,
        )
    return v


def _check_number(indicator: str, name: str, value: Any, *, positive: bool = True) -> float:
    if isinstance(value, bool) or not isinstance(value, Real) or not np.isfinite(float(value)):
        raise InvalidArgumentError(
            f"{indicator}: {name} must be a finite number, got {value!r}", indicator=indicator, parameter=name
        )
    v = float(value)
    if positive and v <= 0:
        raise InvalidArgumentError(
            f"{indicator}: {name} must be > 0, got {v}", indicator=indicator, parameter=name, value=v
        )
    return v


def _values(x: Any, name: str, indicator: str) -> tuple[np.ndarray, pd.Index]:
    """float64 values and index of a Series (or 1-d array-like, which gets a RangeIndex)."""
    if isinstance(x, pd.DataFrame):
        raise InvalidArgumentError(
            f"{indicator}: {name} must be a Series, got a DataFrame", indicator=indicator
        )
    if isinstance(x, pd.Series):
        index = x.index
        raw = x.to_numpy()
    else:
        raw = np.asarray(x)
        index = pd.RangeIndex(raw.shape[0]) if raw.ndim == 1 else pd.RangeIndex(0)
    if raw.ndim != 1:
        raise InvalidArgumentError(f"{indicator}: {name} must be one-dimensional", indicator=indicator)
    try:
        arr = np.ascontiguousarray(raw, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidArgumentError(
            f"{indicator}: {name} must be numeric ({exc})", indicator=indicator, column=name
        ) from exc
    return arr, index


def _first_valid(arr: np.ndarray, name: str, indicator: str) -> int:
    """Index of the first finite value; refuses NaN/inf after it (see module docstring)."""
    if arr.shape[0] == 0:
        return 0
    if np.isfinite(arr.sum()):  # fast path: a finite sum means no NaN and no inf
        return 0
    finite = np.isfinite(arr)
    if np.isinf(arr).any():
        pos = int(np.flatnonzero(np.isinf(arr))[0])
        raise InvalidArgumentError(
            f"{indicator}: {name} holds ±inf at position {pos}; prices must be finite",
            indicator=indicator,
            column=name,
            position=pos,
        )
    first = int(np.argmax(finite)) if finite.any() else arr.shape[0]
    bad = np.flatnonzero(~finite[first:])
    if bad.size:
        pos = first + int(bad[0])
        raise InvalidArgumentError(
            f"{indicator}: {name} has a NaN at position {pos} after its first value; drop or fill "
            "missing bars first (leading NaNs are allowed)",
            indicator=indicator,
            column=name,
            position=pos,
        )
    return first


def _check_length(indicator: str, n_valid: int, lookback: int) -> None:
    if n_valid <= lookback:
        raise InvalidArgumentError(
            f"{indicator}: needs at least {lookback + 1} values for these periods, got {n_valid}",
            indicator=indicator,
            needed=lookback + 1,
            got=n_valid,
        )


@dataclass(frozen=True)
class _Checked:
    """An input already validated by ``compute_indicators`` (values, index, first valid position)."""

    arr: np.ndarray
    index: pd.Index
    first: int


def _inputs(indicator: str, lookback: int, **series: Any) -> tuple[list[np.ndarray], pd.Index]:
    """Validate several aligned series: equal length, finite after a common leading-NaN run."""
    arrays: list[np.ndarray] = []
    index: pd.Index | None = None
    first = 0
    for name, s in series.items():
        if isinstance(s, _Checked):  # validated once by compute_indicators
            index = s.index if index is None else index
            first = max(first, s.first)
            arrays.append(s.arr)
            continue
        arr, idx = _values(s, name, indicator)
        if index is None:
            index = idx
        elif len(idx) != len(index):
            raise InvalidArgumentError(
                f"{indicator}: {name} has {len(idx)} values but the first input has {len(index)}",
                indicator=indicator,
            )
        first = max(first, _first_valid(arr, name, indicator))
        arrays.append(arr)
    assert index is not None
    _check_length(indicator, len(index) - first, lookback)
    return arrays, index


def _series(values: np.ndarray, index: pd.Index, name: str) -> pd.Series:
    return pd.Series(values, index=index, name=name, copy=False)


def _frame(columns: Mapping[str, np.ndarray], index: pd.Index) -> pd.DataFrame:
    return pd.DataFrame(dict(columns), index=index, copy=False)


def _bar_columns(bars: Any, needed: Sequence[str], indicator: str) -> dict[str, np.ndarray]:
    if not isinstance(bars, pd.DataFrame):
        raise InvalidBarsError(f"{indicator}: expected a bar DataFrame, got {type(bars).__name__}")
    missing = [c for c in needed if c not in bars.columns]
    if missing:
        raise InvalidBarsError(
            f"{indicator}: column(s) {', '.join(repr(m) for m in missing)} missing; expected "
            f"{', '.join(needed)}",
            missing=missing,
            found=[str(c) for c in bars.columns],
        )
    out = {}
    for c in needed:
        arr, _ = _values(bars[c], c, indicator)
        out[c] = arr
    return out


# ----------------------------------------------------------------------------- look-backs (TA-Lib's)
def _lb_sma(period: int) -> int:
    return period - 1


def _lb_rsi(period: int) -> int:
    return period


def _lb_macd(fast: int, slow: int, signal: int) -> int:
    return slow - 1 + signal - 1


def _lb_adx(period: int) -> int:
    return 2 * period - 1


def _lb_stoch(fastk: int, slowk: int, slowd: int) -> int:
    return fastk - 1 + slowk - 1 + slowd - 1


# ----------------------------------------------------------------------------- single-series indicators
def sma(close: pd.Series, period: int) -> pd.Series:
    """Simple moving average: mean of the last ``period`` closes (TA-Lib ``SMA``)."""
    period = _check_period("sma", "period", period, 1)
    (c,), index = _inputs("sma", _lb_sma(period), close=close)
    return _series(talib.SMA(c, timeperiod=period), index, "sma")


def ema(close: pd.Series, period: int) -> pd.Series:
    """Exponential moving average, α = 2/(period+1), seeded with the SMA of the first ``period``
    values (TA-Lib ``EMA``)."""
    period = _check_period("ema", "period", period, 1)
    (c,), index = _inputs("ema", _lb_sma(period), close=close)
    return _series(talib.EMA(c, timeperiod=period), index, "ema")


def rsi(close: pd.Series, period: int = 14) -> pd.Series:
    """Wilder's Relative Strength Index: 100 − 100/(1 + RS), RS = Wilder-smoothed gains / losses
    (J. W. Wilder, *New Concepts in Technical Trading Systems*, 1978; TA-Lib ``RSI``)."""
    period = _check_period("rsi", "period", period, 2)
    (c,), index = _inputs("rsi", _lb_rsi(period), close=close)
    return _series(talib.RSI(c, timeperiod=period), index, "rsi")


def _check_macd(fast: int, slow: int, signal: int) -> tuple[int, int, int]:
    fast = _check_period("macd", "fast", fast, 2)
    slow = _check_period("macd", "slow", slow, 2)
    signal = _check_period("macd", "signal", signal, 1)
    if fast >= slow:
        raise InvalidArgumentError(
            f"macd: fast ({fast}) must be shorter than slow ({slow})", fast=fast, slow=slow
        )
    return fast, slow, signal


def macd(close: pd.Series, fast: int = 12, slow: int = 26, signal: int = 9) -> pd.DataFrame:
    """Appel's MACD: EMA(fast) − EMA(slow), its EMA(signal), and the histogram macd − signal
    (TA-Lib ``MACD``). Columns ``macd, signal, hist``."""
    fast, slow, signal = _check_macd(fast, slow, signal)
    (c,), index = _inputs("macd", _lb_macd(fast, slow, signal), close=close)
    m, s, h = talib.MACD(c, fastperiod=fast, slowperiod=slow, signalperiod=signal)
    return _frame({"macd": m, "signal": s, "hist": h}, index)


def bollinger(close: pd.Series, period: int = 20, std: float = 2.0) -> pd.DataFrame:
    """Bollinger Bands: SMA(period) ± std × population standard deviation over the same window
    (J. Bollinger; TA-Lib ``BBANDS`` with matype SMA). Columns ``upper, middle, lower``."""
    period = _check_period("bollinger", "period", period, 2)
    k = _check_number("bollinger", "std", std)
    (c,), index = _inputs("bollinger", _lb_sma(period), close=close)
    u, m, lo = talib.BBANDS(c, timeperiod=period, nbdevup=k, nbdevdn=k, matype=talib.MA_Type.SMA)
    return _frame({"upper": u, "middle": m, "lower": lo}, index)


def obv(close: pd.Series, volume: pd.Series) -> pd.Series:
    """On-balance volume (Granville): running sum of +volume on up closes, −volume on down closes,
    starting at the first bar's volume (TA-Lib ``OBV``)."""
    (c, v), index = _inputs("obv", 0, close=close, volume=volume)
    return _series(talib.OBV(c, v), index, "obv")


# ----------------------------------------------------------------------------- high/low/close indicators
def atr(high: pd.Series, low: pd.Series, close: pd.Series, period: int = 14) -> pd.Series:
    """Wilder's Average True Range: Wilder-smoothed max(high − low, |high − prev close|,
    |low − prev close|) (TA-Lib ``ATR``; first value at bar ``period``)."""
    period = _check_period("atr", "period", period, 1)
    (h, lo, c), index = _inputs("atr", period, high=high, low=low, close=close)
    return _series(talib.ATR(h, lo, c, timeperiod=period), index, "atr")


def adx(high: pd.Series, low: pd.Series, close: pd.Series, period: int = 14) -> pd.DataFrame:
    """Wilder's Average Directional Index with the directional indicators +DI and −DI
    (TA-Lib ``ADX``, ``PLUS_DI``, ``MINUS_DI``). Columns ``adx, plus_di, minus_di``."""
    period = _check_period("adx", "period", period, 2)
    (h, lo, c), index = _inputs("adx", _lb_adx(period), high=high, low=low, close=close)
    return _frame(
        {
            "adx": talib.ADX(h, lo, c, timeperiod=period),
            "plus_di": talib.PLUS_DI(h, lo, c, timeperiod=period),
            "minus_di": talib.MINUS_DI(h, lo, c, timeperiod=period),
        },
        index,
    )


def stochastic(
    high: pd.Series,
    low: pd.Series,
    close: pd.Series,
    k_period: int = 14,
    k_smooth: int = 3,
    d_period: int = 3,
) -> pd.DataFrame:
    """Lane's slow stochastic: %K = SMA(k_smooth) of 100·(close − lowest low)/(highest high − lowest
    low) over ``k_period``; %D = SMA(d_period) of %K (TA-Lib ``STOCH``, SMA smoothing). Columns ``k, d``."""
    k_period = _check_period("stochastic", "k_period", k_period, 1)
    k_smooth = _check_period("stochastic", "k_smooth", k_smooth, 1)
    d_period = _check_period("stochastic", "d_period", d_period, 1)
    (h, lo, c), index = _inputs(
        "stochastic", _lb_stoch(k_period, k_smooth, d_period), high=high, low=low, close=close
    )
    k, d = talib.STOCH(
        h,
        lo,
        c,
        fastk_period=k_period,
        slowk_period=k_smooth,
        slowk_matype=talib.MA_Type.SMA,
        slowd_period=d_period,
        slowd_matype=talib.MA_Type.SMA,
    )
    return _frame({"k": k, "d": d}, index)


def cci(high: pd.Series, low: pd.Series, close: pd.Series, period: int = 20) -> pd.Series:
    """Lambert's Commodity Channel Index: (TP − SMA(TP)) / (0.015 · mean absolute deviation),
    TP = (high + low + close)/3 (TA-Lib ``CCI``)."""
    period = _check_period("cci", "period", period, 2)
    (h, lo, c), index = _inputs("cci", _lb_sma(period), high=high, low=low, close=close)
    return _series(talib.CCI(h, lo, c, timeperiod=period), index, "cci")


def williams_r(high: pd.Series, low: pd.Series, close: pd.Series, period: int = 14) -> pd.Series:
    """Williams %R: −100·(highest high − close)/(highest high − lowest low) over ``period``
    (TA-Lib ``WILLR``; range −100 … 0)."""
    period = _check_period("williams_r", "period", period, 2)
    (h, lo, c), index = _inputs("williams_r", _lb_sma(period), high=high, low=low, close=close)
    return _series(talib.WILLR(h, lo, c, timeperiod=period), index, "williams_r")


def mfi(high: pd.Series, low: pd.Series, close: pd.Series, volume: pd.Series, period: int = 14) -> pd.Series:
    """Money Flow Index (Quong & Soudack): 100 − 100/(1 + positive/negative money flow), money flow =
    typical price × volume, signed by the typical price's change (TA-Lib ``MFI``)."""
    period = _check_period("mfi", "period", period, 2)
    (h, lo, c, v), index = _inputs("mfi", period, high=high, low=low, close=close, volume=volume)
    return _series(talib.MFI(h, lo, c, v, timeperiod=period), index, "mfi")


def keltner(
    high: pd.Series,
    low: pd.Series,
    close: pd.Series,
    period: int = 20,
    multiplier: float = 2.0,
    atr_period: int = 10,
) -> pd.DataFrame:
    """Keltner Channels (Raschke's modern form): middle = EMA(close, period), bands = middle ±
    multiplier × Wilder ATR(atr_period); both from TA-Lib. Columns ``upper, middle, lower``."""
    period = _check_period("keltner", "period", period, 1)
    atr_period = _check_period("keltner", "atr_period", atr_period, 1)
    m = _check_number("keltner", "multiplier", multiplier)
    (h, lo, c), index = _inputs("keltner", max(period - 1, atr_period), high=high, low=low, close=close)
    mid = talib.EMA(c, timeperiod=period)
    width = m * talib.ATR(h, lo, c, timeperiod=atr_period)
    return _frame({"upper": mid + width, "middle": mid, "lower": mid - width}, index)


def donchian(high: pd.Series, low: pd.Series, period: int = 20) -> pd.DataFrame:
    """Donchian channel: highest high and lowest low of the last ``period`` bars (TA-Lib ``MAX``/``MIN``)
    and their midpoint. Columns ``upper, middle, lower``."""
    period = _check_period("donchian", "period", period, 2)
    (h, lo), index = _inputs("donchian", _lb_sma(period), high=high, low=low)
    up = talib.MAX(h, timeperiod=period)
    dn = talib.MIN(lo, timeperiod=period)
    return _frame({"upper": up, "middle": (up + dn) / 2.0, "lower": dn}, index)


def supertrend(
    high: pd.Series, low: pd.Series, close: pd.Series, period: int = 10, multiplier: float = 3.0
) -> pd.DataFrame:
    """Supertrend on Wilder's ATR(period) (numba kernel ``kernels.supertrend``, TradingView definition).
    Columns ``supertrend`` (the active stop), ``direction`` (+1 up, −1 down), ``lower``, ``upper``."""
    period = _check_period("supertrend", "period", period, 1)
    m = _check_number("supertrend", "multiplier", multiplier)
    (h, lo, c), index = _inputs("supertrend", period, high=high, low=low, close=close)
    st, d, lower, upper = kernels.supertrend(h, lo, c, talib.ATR(h, lo, c, timeperiod=period), m)
    return _frame({"supertrend": st, "direction": d, "lower": lower, "upper": upper}, index)


# ----------------------------------------------------------------------------- VWAP
def anchor_groups(index: pd.DatetimeIndex, anchor: str) -> tuple[np.ndarray, np.ndarray]:
    """(group id per bar, active mask) for a VWAP anchor.

    ``session``: one period per Globex session (18:00 ET opens the next session date).
    ``rth``: one period per regular-trading-hours day, 09:30–16:00 ET; bars outside RTH are not part of
    any period (NaN). ``week``: the Globex week, from Sunday 18:00 ET (session dates Monday–Friday)."""
    from nq_ray.market.sessions import rth_mask, session_dates

    if anchor not in VWAP_ANCHORS:
        raise InvalidArgumentError(
            f"vwap: anchor must be one of {', '.join(VWAP_ANCHORS)}, got {anchor!r}", anchor=anchor
        )
    if not isinstance(index, pd.DatetimeIndex) or index.tz is None:
        raise InvalidBarsError("vwap: bars need a tz-aware DatetimeIndex (the bar frame schema)")
    days = session_dates(index).astype(np.int64)
    if anchor == "session":
        return days, np.ones(len(index), dtype=np.bool_)
    if anchor == "week":
        return (days + 3) // 7, np.ones(len(index), dtype=np.bool_)  # 1970-01-05 was a Monday
    return days, np.asarray(rth_mask(index), dtype=np.bool_)


def _vwap_arrays(bars: pd.DataFrame, anchor: str) -> tuple[np.ndarray, np.ndarray]:
    cols = _bar_columns(bars, ("high", "low", "close", "volume"), "vwap")
    for name, arr in cols.items():
        if not np.isfinite(arr).all():
            raise InvalidArgumentError(f"vwap: {name} holds NaN/inf; drop or fill missing bars first")
    if (cols["volume"] < 0).any():
        raise InvalidArgumentError("vwap: volume must be ≥ 0")
    group, active = anchor_groups(bars.index, anchor)
    typical = (cols["high"] + cols["low"] + cols["close"]) / 3.0
    return kernels.anchored_vwap(typical, cols["volume"], group, active)


def vwap(bars: pd.DataFrame, anchor: str = "session") -> pd.Series:
    """Anchored VWAP of the typical price (high + low + close)/3, cumulative within the anchor period
    (``session``: resets at the 18:00 ET Globex open, ``rth``: 09:30–16:00 ET only, ``week``).
    NaN until the period's first bar with volume; zero-volume bars do not move it."""
    v, _ = _vwap_arrays(bars, anchor)
    return _series(v, bars.index, "vwap")


def vwap_bands(
    bars: pd.DataFrame, anchor: str = "session", num_std: Sequence[float] = (1.0, 2.0)
) -> pd.DataFrame:
    """VWAP with volume-weighted standard-deviation bands: σ = sqrt(Σ v·(TP − VWAP)² / Σ v) within the
    anchor period. Columns ``vwap, std`` and ``upper_k, lower_k`` for each k in ``num_std``
    (named by ``f"{k:g}"``, e.g. ``upper_1``, ``lower_2``)."""
    ks = [_check_number("vwap_bands", "num_std", k) for k in num_std]
    v, s = _vwap_arrays(bars, anchor)
    cols: dict[str, np.ndarray] = {"vwap": v, "std": s}
    for k in ks:
        cols[f"upper_{k:g}"] = v + k * s
        cols[f"lower_{k:g}"] = v - k * s
    return _frame(cols, bars.index)


# ----------------------------------------------------------------------------- compute_indicators
@dataclass(frozen=True)
class _Kind:
    fn: Callable[..., Any]
    columns: tuple[str, ...]  # bar columns the indicator reads, in call order
    defaults: Mapping[str, Any]


INDICATORS: dict[str, _Kind] = {
    "sma": _Kind(sma, ("close",), {"period": 20}),
    "ema": _Kind(ema, ("close",), {"period": 20}),
    "rsi": _Kind(rsi, ("close",), {"period": 14}),
    "macd": _Kind(macd, ("close",), {"fast": 12, "slow": 26, "signal": 9}),
    "bollinger": _Kind(bollinger, ("close",), {"period": 20, "std": 2.0}),
    "obv": _Kind(obv, ("close", "volume"), {}),
    "atr": _Kind(atr, ("high", "low", "close"), {"period": 14}),
    "adx": _Kind(adx, ("high", "low", "close"), {"period": 14}),
    "stochastic": _Kind(stochastic, ("high", "low", "close"), {"k_period": 14, "k_smooth": 3, "d_period": 3}),
    "cci": _Kind(cci, ("high", "low", "close"), {"period": 20}),
    "williams_r": _Kind(williams_r, ("high", "low", "close"), {"period": 14}),
    "mfi": _Kind(mfi, ("high", "low", "close", "volume"), {"period": 14}),
    "keltner": _Kind(keltner, ("high", "low", "close"), {"period": 20, "multiplier": 2.0, "atr_period": 10}),
    "donchian": _Kind(donchian, ("high", "low"), {"period": 20}),
    "supertrend": _Kind(supertrend, ("high", "low", "close"), {"period": 10, "multiplier": 3.0}),
    "vwap": _Kind(vwap, (), {"anchor": "session"}),
    "vwap_bands": _Kind(vwap_bands, (), {"anchor": "session", "num_std": (1.0, 2.0)}),
}


@dataclass(frozen=True)
class IndicatorSet:
    """Result of ``compute_indicators``: every output series (columns ``name`` for one-output indicators,
    ``name_column`` otherwise, e.g. ``macd_hist``) and the latest value of each (None while warming up)."""

    series: pd.DataFrame
    latest: dict[str, float | None]
    as_of: Any = None
    params: dict[str, dict[str, Any]] = field(default_factory=dict)


def _normalise_spec(spec: Any) -> dict[str, dict[str, Any]]:
    if spec is None:
        spec = DEFAULT_SPEC
    if isinstance(spec, str):
        spec = (spec,)
    items: list[tuple[str, Mapping[str, Any]]]
    if isinstance(spec, Mapping):
        items = [(str(k), v or {}) for k, v in spec.items()]
    elif isinstance(spec, Sequence):
        items = [(str(k), {}) for k in spec]
    else:
        raise InvalidArgumentError(
            f"indicator spec must be a list of names or a mapping, got {type(spec).__name__}"
        )
    out: dict[str, dict[str, Any]] = {}
    for name, params in items:
        if not isinstance(params, Mapping):
            raise InvalidArgumentError(f"indicator {name!r}: parameters must be a mapping, got {params!r}")
        p = dict(params)
        kind = str(p.pop("kind", name))
        if kind not in INDICATORS:
            raise InvalidArgumentError(
                f"unknown indicator {kind!r}; known: {', '.join(INDICATORS)}",
                indicator=kind,
                known=list(INDICATORS),
            )
        unknown = set(p) - set(INDICATORS[kind].defaults)
        if unknown:
            raise InvalidArgumentError(
                f"indicator {name!r}: unknown parameter(s) {', '.join(sorted(unknown))}; "
                f"allowed: {', '.join(INDICATORS[kind].defaults) or 'none'}",
                indicator=name,
            )
        out[name] = {"kind": kind, **INDICATORS[kind].defaults, **p}
    return out


def compute_indicators(bars: pd.DataFrame, spec: Any = None) -> IndicatorSet:
    """Compute a named set of indicators on a bar frame in one call.

    ``spec``: None (the default set: RSI 14, MACD 12/26/9, Bollinger 20/2, ATR 14), a list of names
    (``["rsi", "adx"]``) or a mapping name → parameters (``{"ema_50": {"kind": "ema", "period": 50}}``;
    ``kind`` defaults to the name). Bars are checked once; the indicators then run on the arrays.
    """
    resolved = _normalise_spec(spec)
    needed = ["close"]
    for p in resolved.values():
        kind = INDICATORS[p["kind"]]
        needed += [c for c in (kind.columns or ("high", "low", "close", "volume")) if c not in needed]
    arrays = _bar_columns(bars, needed, "compute_indicators")
    checked = {
        c: _Checked(arr, bars.index, _first_valid(arr, c, "compute_indicators")) for c, arr in arrays.items()
    }
    columns: dict[str, np.ndarray] = {}
    for name, p in resolved.items():
        kind = INDICATORS[p["kind"]]
        kwargs = {k: v for k, v in p.items() if k != "kind"}
        if kind.columns:
            result = kind.fn(*(checked[c] for c in kind.columns), **kwargs)
        else:
            result = kind.fn(bars, **kwargs)
        if isinstance(result, pd.Series):
            columns[name] = result.to_numpy()
        else:
            for col in result.columns:
                columns[f"{name}_{col}"] = result[col].to_numpy()
    frame = _frame(columns, bars.index)
    latest = {k: (None if np.isnan(v[-1]) else float(v[-1])) if len(v) else None for k, v in columns.items()}
    as_of = bars.index[-1] if len(bars.index) else None
    return IndicatorSet(series=frame, latest=latest, as_of=as_of, params=resolved)
