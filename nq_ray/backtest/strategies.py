"""Strategies: signal functions from bars + params to entry/exit arrays, and the registry that names them.

A signal function is ``fn(data: BarData, params: Mapping) -> Signals`` (or a dict / DataFrame with any of
``long_entry, long_exit, short_entry, short_exit, stop_price, target_price``). Signals are events seen
on a bar's close; the engine's fill rules turn them into orders. ``BarData`` memoises indicators, so a
sweep computes each indicator once per distinct parameter. Built-ins call TA-Lib on numpy arrays.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import talib
from numba import njit

from nq_ray.errors import InvalidArgumentError
from nq_ray.market.sessions import rth_mask, session_dates


@dataclass
class BarData:
    """Bars as float64 numpy arrays, with the frame and a per-run indicator cache."""

    frame: pd.DataFrame
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    cache: dict[tuple[Any, ...], Any] = field(default_factory=dict)

    @classmethod
    def from_frame(cls, bars: pd.DataFrame) -> BarData:
        col = {
            c: np.ascontiguousarray(bars[c].to_numpy(dtype=np.float64))
            for c in ("open", "high", "low", "close")
        }
        vol = bars["volume"].to_numpy(dtype=np.float64) if "volume" in bars else np.zeros(len(bars))
        return cls(
            frame=bars,
            open=col["open"],
            high=col["high"],
            low=col["low"],
            close=col["close"],
            volume=np.ascontiguousarray(vol),
        )

    @property
    def index(self) -> pd.DatetimeIndex:
        return self.frame.index  # type: ignore[return-value]

    def __len__(self) -> int:
        return self.close.shape[0]

    def cached(self, key: tuple[Any, ...], compute: Callable[[], Any]) -> Any:
        """``compute()`` once per ``key`` for these bars."""
        if key not in self.cache:
            self.cache[key] = compute()
        return self.cache[key]

    def sma(self, period: int) -> np.ndarray:
        return self.cached(("sma", period), lambda: talib.SMA(self.close, timeperiod=period))

    def ema(self, period: int) -> np.ndarray:
        return self.cached(("ema", period), lambda: talib.EMA(self.close, timeperiod=period))


@dataclass(frozen=True)
class Signals:
    """Entry/exit events on each bar's close, plus optional absolute bracket prices (NaN = none)."""

    long_entry: np.ndarray
    long_exit: np.ndarray
    short_entry: np.ndarray
    short_exit: np.ndarray
    stop_price: np.ndarray | None = None
    target_price: np.ndarray | None = None

    @classmethod
    def coerce(cls, raw: Any, n: int) -> Signals:
        """A user's return value (``Signals``, a dict, a DataFrame or a 4-tuple) as ``Signals`` of
        length n."""
        if isinstance(raw, Signals):
            parts: dict[str, Any] = {f: getattr(raw, f) for f in _SIGNAL_FIELDS}
        elif isinstance(raw, tuple) and len(raw) == 4:
            parts = dict(zip(_SIGNAL_FIELDS[:4], raw, strict=True))
        elif isinstance(raw, Mapping | pd.DataFrame):
            unknown = [k for k in raw if k not in _SIGNAL_FIELDS]
            if unknown:
                raise InvalidArgumentError(
                    f"signal function returned unknown key(s) {unknown}; expected {', '.join(_SIGNAL_FIELDS)}"
                )
            parts = {k: raw[k] for k in _SIGNAL_FIELDS if k in raw}
        else:
            raise InvalidArgumentError(
                f"a signal function must return Signals, a dict, a DataFrame or a 4-tuple, not "
                f"{type(raw).__name__}"
            )
        out: dict[str, np.ndarray | None] = {}
        for name in _SIGNAL_FIELDS:
            v = parts.get(name)
            if v is None:
                out[name] = None if name in ("stop_price", "target_price") else np.zeros(n, dtype=np.bool_)
                continue
            arr = np.asarray(v.to_numpy() if isinstance(v, pd.Series) else v)
            if arr.shape != (n,):
                raise InvalidArgumentError(
                    f"signal {name!r} has shape {arr.shape}; expected ({n},), one per bar"
                )
            if name in ("stop_price", "target_price"):
                out[name] = np.ascontiguousarray(arr, dtype=np.float64)
            else:
                out[name] = np.ascontiguousarray(np.nan_to_num(arr.astype(np.float64)) != 0)
        return cls(**out)  # type: ignore[arg-type]


_SIGNAL_FIELDS = ("long_entry", "long_exit", "short_entry", "short_exit", "stop_price", "target_price")

SignalFunction = Callable[[BarData, Mapping[str, Any]], Any]


@dataclass(frozen=True)
class Strategy:
    """A named signal function with its default parameters and a check of their values."""

    name: str
    signal_fn: SignalFunction
    defaults: Mapping[str, Any]
    validate: Callable[[dict[str, Any]], None] | None = None
    min_bars: Callable[[dict[str, Any]], int] | None = None

    def resolve_params(self, params: Mapping[str, Any] | None) -> dict[str, Any]:
        """Defaults overlaid with ``params``; unknown names and bad values raise ``InvalidArgumentError``."""
        params = dict(params or {})
        unknown = sorted(set(params) - set(self.defaults))
        if unknown and self.defaults:
            raise InvalidArgumentError(
                f"unknown parameter(s) {', '.join(unknown)} for strategy {self.name!r}; "
                f"known: {', '.join(self.defaults)}",
                strategy=self.name,
                unknown=unknown,
            )
        full = {**self.defaults, **params}
        for k, default in self.defaults.items():
            v = full[k]
            if isinstance(default, bool):
                continue
            if isinstance(default, int) and not isinstance(v, bool):
                if isinstance(v, float) and v.is_integer():
                    v = int(v)
                if not isinstance(v, int | np.integer):
                    raise InvalidArgumentError(f"{self.name}: {k} must be an integer, got {v!r}", param=k)
                full[k] = int(v)
            elif isinstance(default, float):
                if not isinstance(v, int | float | np.number) or not np.isfinite(v):
                    raise InvalidArgumentError(
                        f"{self.name}: {k} must be a finite number, got {v!r}", param=k
                    )
                full[k] = float(v)
        if self.validate is not None:
            self.validate(full)
        return full

    def warmup(self, params: dict[str, Any]) -> int:
        """Fewest bars this strategy needs to produce a signal."""
        return self.min_bars(params) if self.min_bars is not None else 2

    def signals(self, data: BarData, params: dict[str, Any]) -> Signals:
        return Signals.coerce(self.signal_fn(data, params), len(data))


_REGISTRY: dict[str, Strategy] = {}


def register_strategy(
    name: str,
    signal_fn: SignalFunction,
    defaults: Mapping[str, Any] | None = None,
    validate: Callable[[dict[str, Any]], None] | None = None,
    min_bars: Callable[[dict[str, Any]], int] | None = None,
) -> Strategy:
    """Register a signal function under ``name`` (replacing any earlier one) and return it."""
    s = Strategy(name, signal_fn, dict(defaults or {}), validate, min_bars)
    _REGISTRY[name] = s
    return s


def get_strategy(strategy: str | Strategy | SignalFunction) -> Strategy:
    """A strategy by name, a ``Strategy`` as is, or a bare signal function wrapped (no declared params)."""
    if isinstance(strategy, Strategy):
        return strategy
    if callable(strategy):
        return Strategy(getattr(strategy, "__name__", "custom"), strategy, {})
    if strategy not in _REGISTRY:
        raise InvalidArgumentError(
            f"unknown strategy {strategy!r}; known: {', '.join(sorted(_REGISTRY))} (or pass a signal "
            f"function)",
            strategy=strategy,
            known=sorted(_REGISTRY),
        )
    return _REGISTRY[strategy]


def list_strategies() -> dict[str, dict[str, Any]]:
    """Name → default parameters of every registered strategy."""
    return {k: dict(v.defaults) for k, v in sorted(_REGISTRY.items())}


# --- event helpers --------------------------------------------------------------------------------


@njit(cache=True)
def cross_above(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """True where ``a > b`` and the last unequal comparison before was ``a < b`` (NaN resets)."""
    n = a.shape[0]
    out = np.zeros(n, dtype=np.bool_)
    last = 0  # sign of the last unequal comparison: -1 below, +1 above, 0 unknown
    for i in range(n):
        if np.isnan(a[i]) or np.isnan(b[i]):
            last = 0
        elif a[i] > b[i]:
            out[i] = last == -1
            last = 1
        elif a[i] < b[i]:
            last = -1
    return out


def cross_below(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """True where ``a`` crosses under ``b`` (mirror of ``cross_above``)."""
    return cross_above(b, a)


def _cross_signals(fast: np.ndarray, slow: np.ndarray) -> Signals:
    up, down = cross_above(fast, slow), cross_below(fast, slow)
    return Signals(long_entry=up, long_exit=down, short_entry=down, short_exit=up)


def _check_fast_slow(p: dict[str, Any]) -> None:
    if p["fast"] < 2:
        raise InvalidArgumentError(f"fast must be ≥ 2, got {p['fast']}", param="fast")
    if p["fast"] >= p["slow"]:
        raise InvalidArgumentError(
            f"fast ({p['fast']}) must be < slow ({p['slow']})", param="fast", fast=p["fast"], slow=p["slow"]
        )


# --- built-ins ------------------------------------------------------------------------------------


def sma_cross(data: BarData, p: Mapping[str, Any]) -> Signals:
    """Long when SMA(fast) crosses above SMA(slow), short when it crosses below (stop and reverse)."""
    return _cross_signals(data.sma(p["fast"]), data.sma(p["slow"]))


def ema_cross(data: BarData, p: Mapping[str, Any]) -> Signals:
    """Long when EMA(fast) crosses above EMA(slow), short when it crosses below."""
    return _cross_signals(data.ema(p["fast"]), data.ema(p["slow"]))


def rsi_reversion(data: BarData, p: Mapping[str, Any]) -> Signals:
    """Wilder RSI: long when it crosses below ``lower``, short above ``upper``; exit when it crosses
    ``exit``."""
    rsi = data.cached(("rsi", p["period"]), lambda: talib.RSI(data.close, timeperiod=p["period"]))
    lo, hi, mid = (np.full_like(rsi, p[k]) for k in ("lower", "upper", "exit"))
    return Signals(
        long_entry=cross_below(rsi, lo),
        long_exit=cross_above(rsi, mid),
        short_entry=cross_above(rsi, hi),
        short_exit=cross_below(rsi, mid),
    )


def _check_rsi(p: dict[str, Any]) -> None:
    if p["period"] < 2:
        raise InvalidArgumentError(f"period must be ≥ 2, got {p['period']}", param="period")
    if not 0 < p["lower"] < p["exit"] < p["upper"] < 100:
        raise InvalidArgumentError(
            f"need 0 < lower < exit < upper < 100, got lower={p['lower']}, exit={p['exit']}, "
            f"upper={p['upper']}"
        )


def bollinger_breakout(data: BarData, p: Mapping[str, Any]) -> Signals:
    """Long when the close crosses above the upper band, short below the lower; exit at the middle."""
    key = ("bbands", p["period"], p["num_std"])
    upper, mid, lower = data.cached(
        key,
        lambda: talib.BBANDS(data.close, timeperiod=p["period"], nbdevup=p["num_std"], nbdevdn=p["num_std"]),
    )
    c = data.close
    return Signals(
        long_entry=cross_above(c, upper),
        long_exit=cross_below(c, mid),
        short_entry=cross_below(c, lower),
        short_exit=cross_above(c, mid),
    )


def _check_bollinger(p: dict[str, Any]) -> None:
    if p["period"] < 2 or p["num_std"] <= 0:
        raise InvalidArgumentError(f"need period ≥ 2 and num_std > 0, got {p['period']}, {p['num_std']}")


def macd_cross(data: BarData, p: Mapping[str, Any]) -> Signals:
    """Long when MACD crosses above its signal line, short when it crosses below."""
    key = ("macd", p["fast"], p["slow"], p["signal"])
    macd, signal, _ = data.cached(
        key,
        lambda: talib.MACD(data.close, fastperiod=p["fast"], slowperiod=p["slow"], signalperiod=p["signal"]),
    )
    return _cross_signals(macd, signal)


def _check_macd(p: dict[str, Any]) -> None:
    _check_fast_slow(p)
    if p["signal"] < 1:
        raise InvalidArgumentError(f"signal must be ≥ 1, got {p['signal']}", param="signal")


def _session_keys(data: BarData) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(session date per bar, RTH mask, last RTH bar of each session)."""

    def compute() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        idx = data.index
        sd = session_dates(idx).astype(np.int64)
        rth = rth_mask(idx)
        last = np.zeros(len(idx), dtype=np.bool_)
        pos = np.flatnonzero(rth)
        if pos.size:
            nxt = np.append(sd[pos][1:] != sd[pos][:-1], True)
            last[pos[nxt]] = True
        return sd, rth, last

    return data.cached(("sessions",), compute)


def opening_range_breakout(data: BarData, p: Mapping[str, Any]) -> Signals:
    """Range = RTH high/low of the first ``minutes`` after 09:30 ET; the first close beyond it after that
    enters (long above, short below); flat on the last RTH bar of the session."""
    sd, rth, last_rth = _session_keys(data)
    idx = data.index
    minutes = (idx.hour * 60 + idx.minute).to_numpy()
    in_range = rth & (minutes < 9 * 60 + 30 + p["minutes"])
    after = rth & ~in_range
    le, se = _orb_kernel(data.high, data.low, data.close, sd, in_range, after)
    return Signals(long_entry=le, long_exit=last_rth.copy(), short_entry=se, short_exit=last_rth.copy())


@njit(cache=True)
def _orb_kernel(high, low, close, sd, in_range, after):
    n = close.shape[0]
    le = np.zeros(n, dtype=np.bool_)
    se = np.zeros(n, dtype=np.bool_)
    day = -1
    hi = -np.inf
    lo = np.inf
    done = False
    for i in range(n):
        if sd[i] != day:
            day = sd[i]
            hi = -np.inf
            lo = np.inf
            done = False
        if in_range[i]:
            hi = max(hi, high[i])
            lo = min(lo, low[i])
        elif after[i] and not done and np.isfinite(hi):
            if close[i] > hi:
                le[i] = True
                done = True
            elif close[i] < lo:
                se[i] = True
                done = True
    return le, se


def _check_orb(p: dict[str, Any]) -> None:
    if not 1 <= p["minutes"] <= 390:
        raise InvalidArgumentError(f"minutes must be in [1, 390], got {p['minutes']}", param="minutes")


def vwap_reversion(data: BarData, p: Mapping[str, Any]) -> Signals:
    """Session-anchored VWAP: long when the close crosses below VWAP × (1 − band_pct/100), short above
    VWAP × (1 + band_pct/100); exit when it crosses back through VWAP, and at the session's last bar."""
    from nq_ray.analysis.indicators import vwap  # the analysis layer owns VWAP

    vw = data.cached(("vwap",), lambda: np.asarray(vwap(data.frame, anchor="session"), dtype=np.float64))
    band = p["band_pct"] / 100.0
    c = data.close
    sd = data.cached(("session_dates",), lambda: session_dates(data.index).astype(np.int64))
    last = np.append(sd[1:] != sd[:-1], True)
    return Signals(
        long_entry=cross_below(c, vw * (1 - band)),
        long_exit=cross_above(c, vw) | last,
        short_entry=cross_above(c, vw * (1 + band)),
        short_exit=cross_below(c, vw) | last,
    )


def _check_vwap(p: dict[str, Any]) -> None:
    if p["band_pct"] <= 0:
        raise InvalidArgumentError(f"band_pct must be > 0, got {p['band_pct']}", param="band_pct")


register_strategy("sma_cross", sma_cross, {"fast": 10, "slow": 30}, _check_fast_slow, lambda p: p["slow"] + 1)
register_strategy("ema_cross", ema_cross, {"fast": 12, "slow": 26}, _check_fast_slow, lambda p: p["slow"] + 1)
register_strategy(
    "rsi_reversion",
    rsi_reversion,
    {"period": 14, "lower": 30.0, "upper": 70.0, "exit": 50.0},
    _check_rsi,
    lambda p: p["period"] + 2,
)
register_strategy(
    "bollinger_breakout",
    bollinger_breakout,
    {"period": 20, "num_std": 2.0},
    _check_bollinger,
    lambda p: p["period"] + 1,
)
register_strategy(
    "macd_cross",
    macd_cross,
    {"fast": 12, "slow": 26, "signal": 9},
    _check_macd,
    lambda p: p["slow"] + p["signal"] + 1,
)
register_strategy("opening_range_breakout", opening_range_breakout, {"minutes": 30}, _check_orb, lambda p: 2)
register_strategy("vwap_reversion", vwap_reversion, {"band_pct": 0.2}, _check_vwap, lambda p: 2)
