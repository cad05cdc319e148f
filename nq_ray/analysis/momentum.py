"""Momentum and volume: rate of change, divergences, time-of-day relative volume, up/down volume,
trend strength and multi-timeframe alignment."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal

import numpy as np
import pandas as pd
import talib
from pydantic import BaseModel, ConfigDict, Field

from nq_ray.analysis import indicators as ind
from nq_ray.analysis.indicators import _bar_columns, _check_number, _check_period, _inputs
from nq_ray.analysis.levels import swing_points
from nq_ray.errors import InvalidArgumentError

Direction = Literal["up", "down", "neutral"]


def roc(close: pd.Series, periods: Sequence[int] = (1, 5, 20, 60)) -> pd.DataFrame:
    """Rate of change in percent over each horizon: 100·(close/close[n bars ago] − 1) (TA-Lib ``ROC``).
    Columns ``roc_<n>``; a horizon longer than the series is refused."""
    if not periods:
        raise InvalidArgumentError("roc: give at least one period")
    ps = [_check_period("roc", "period", p, 1) for p in periods]
    (c,), index = _inputs("roc", max(ps), close=close)
    return pd.DataFrame({f"roc_{p}": talib.ROC(c, timeperiod=p) for p in ps}, index=index)


# ----------------------------------------------------------------------------- divergences
class Divergence(BaseModel):
    """Regular divergence between price and an oscillator at two consecutive swing pivots of one kind.

    bullish: price makes a lower low while the oscillator makes a higher low; bearish: price makes a
    higher high while the oscillator makes a lower high."""

    model_config = ConfigDict(frozen=True)

    indicator: str
    kind: Literal["bullish", "bearish"]
    start: str
    end: str
    start_bar: int
    end_bar: int
    price_start: float
    price_end: float
    indicator_start: float
    indicator_end: float


def divergences(
    bars: pd.DataFrame,
    oscillator: pd.Series,
    name: str = "rsi",
    prominence: float = 1.5,
    max_gap_bars: int = 120,
) -> list[Divergence]:
    """Regular divergences between ``bars`` and ``oscillator`` at consecutive confirmed swing pivots
    (``levels.swing_points``), at most ``max_gap_bars`` apart; pivots where the oscillator is NaN are
    skipped."""
    max_gap_bars = _check_period("divergences", "max_gap_bars", max_gap_bars, 1)
    if len(oscillator) != len(bars):
        raise InvalidArgumentError("divergences: oscillator must be on the bars' index")
    piv = swing_points(bars, prominence)
    osc = oscillator.to_numpy(dtype=float)
    out: list[Divergence] = []
    for kind in (1, -1):
        rows = piv[piv["kind"] == kind]
        pos = rows["pos"].to_numpy()
        price = rows["price"].to_numpy()
        keep = ~np.isnan(osc[pos])
        pos, price = pos[keep], price[keep]
        for i in range(1, len(pos)):
            a, b = int(pos[i - 1]), int(pos[i])
            if b - a > max_gap_bars:
                continue
            oa, ob = osc[a], osc[b]
            if kind == 1 and price[i] > price[i - 1] and ob < oa:
                label: Literal["bullish", "bearish"] = "bearish"
            elif kind == -1 and price[i] < price[i - 1] and ob > oa:
                label = "bullish"
            else:
                continue
            out.append(
                Divergence(
                    indicator=name,
                    kind=label,
                    start=bars.index[a].isoformat(),
                    end=bars.index[b].isoformat(),
                    start_bar=a,
                    end_bar=b,
                    price_start=float(price[i - 1]),
                    price_end=float(price[i]),
                    indicator_start=float(oa),
                    indicator_end=float(ob),
                )
            )
    out.sort(key=lambda d: d.end_bar)
    return out


# ----------------------------------------------------------------------------- volume
def relative_volume(bars: pd.DataFrame, lookback_sessions: int = 20, min_sessions: int = 3) -> pd.Series:
    """Volume divided by the mean volume of the same time of day over the previous
    ``lookback_sessions`` sessions that had a bar at that time (NQ volume is session-shaped: the open
    and the 09:30 cash open dwarf the overnight). NaN until ``min_sessions`` earlier bars exist."""
    lookback_sessions = _check_period("relative_volume", "lookback_sessions", lookback_sessions, 1)
    min_sessions = _check_period("relative_volume", "min_sessions", min_sessions, 1)
    cols = _bar_columns(bars, ("volume",), "relative_volume")
    if not isinstance(bars.index, pd.DatetimeIndex):
        raise InvalidArgumentError("relative_volume: bars need a DatetimeIndex (time of day matters)")
    vol = cols["volume"]
    n = len(vol)
    tod = np.asarray(bars.index.hour * 60 + bars.index.minute, dtype=np.int64)
    order = np.argsort(tod, kind="stable")  # time order kept within each clock time
    key = tod[order]
    v = vol[order]
    starts = np.r_[0, np.flatnonzero(key[1:] != key[:-1]) + 1]
    group_start = np.repeat(starts, np.diff(np.r_[starts, n]))
    j = np.arange(n)
    lo = np.maximum(group_start, j - lookback_sessions)  # the previous ≤ lookback bars of the same time
    cs = np.r_[0.0, np.cumsum(v)]
    count = j - lo
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = (cs[j] - cs[lo]) / count
        rel_sorted = np.where((count >= min_sessions) & (mean > 0), v / mean, np.nan)
    rel = np.empty(n)
    rel[order] = rel_sorted
    return pd.Series(rel, index=bars.index, name="relative_volume")


def up_down_volume(bars: pd.DataFrame, window: int = 20) -> pd.DataFrame:
    """Volume of bars that closed above (up) / below (down) the previous close, summed over the last
    ``window`` bars, and ``ratio`` = up / (up + down) (unchanged closes count for neither)."""
    window = _check_period("up_down_volume", "window", window, 1)
    cols = _bar_columns(bars, ("close", "volume"), "up_down_volume")
    c, v = cols["close"], cols["volume"]
    diff = np.r_[np.nan, np.diff(c)]
    up = pd.Series(np.where(diff > 0, v, 0.0), index=bars.index).rolling(window).sum()
    dn = pd.Series(np.where(diff < 0, v, 0.0), index=bars.index).rolling(window).sum()
    tot = up + dn
    return pd.DataFrame({"up": up, "down": dn, "ratio": up / tot.where(tot > 0)})


# ----------------------------------------------------------------------------- trend
class TrendStrength(BaseModel):
    """Wilder's ADX reading: strength label by the usual thresholds and direction by the DI lines."""

    model_config = ConfigDict(frozen=True)

    adx: float
    plus_di: float
    minus_di: float
    strength: Literal["none", "weak", "trending", "strong"] = Field(
        description="ADX < 15 none, < 25 weak, < 40 trending, else strong"
    )
    direction: Direction = Field(description="+DI > −DI up, −DI > +DI down")


def trend_strength(bars: pd.DataFrame, period: int = 14) -> TrendStrength:
    """Latest ADX(period) with +DI/−DI, labelled (Wilder's thresholds as commonly used)."""
    out = ind.adx(bars["high"], bars["low"], bars["close"], period).iloc[-1]
    a = float(out["adx"])
    label: Literal["none", "weak", "trending", "strong"] = (
        "none" if a < 15 else "weak" if a < 25 else "trending" if a < 40 else "strong"
    )
    d: Direction = (
        "up"
        if out["plus_di"] > out["minus_di"]
        else "down"
        if out["minus_di"] > out["plus_di"]
        else "neutral"
    )
    return TrendStrength(
        adx=a, plus_di=float(out["plus_di"]), minus_di=float(out["minus_di"]), strength=label, direction=d
    )


def trend_direction(close: pd.Series, fast: int = 20, slow: int = 50) -> Direction:
    """``up`` when close > EMA(fast) > EMA(slow), ``down`` when close < EMA(fast) < EMA(slow), else
    ``neutral`` (the classic moving-average stack)."""
    f = ind.ema(close, fast).iloc[-1]
    s = ind.ema(close, slow).iloc[-1]
    c = float(close.iloc[-1])
    if c > f > s:
        return "up"
    if c < f < s:
        return "down"
    return "neutral"


class TimeframeAlignment(BaseModel):
    """Trend direction per timeframe and whether they agree."""

    model_config = ConfigDict(frozen=True)

    directions: dict[str, Direction]
    aligned: bool = Field(description="every timeframe points the same way (and none is neutral)")
    score: float = Field(description="mean of +1 up / −1 down / 0 neutral over the timeframes, in [−1, 1]")


def timeframe_alignment(
    frames: Mapping[str, pd.DataFrame], fast: int = 20, slow: int = 50
) -> TimeframeAlignment:
    """Compare the moving-average trend (``trend_direction``) of several timeframes, e.g.
    ``{"5m": bars, "1h": resample_bars(bars, "1h"), "1d": daily}``. A timeframe too short for
    EMA(slow) counts as neutral."""
    if not frames:
        raise InvalidArgumentError("timeframe_alignment: give at least one timeframe")
    dirs: dict[str, Direction] = {}
    for tf, b in frames.items():
        try:
            dirs[tf] = trend_direction(b["close"], fast, slow)
        except InvalidArgumentError:
            dirs[tf] = "neutral"
    vals = [1 if d == "up" else -1 if d == "down" else 0 for d in dirs.values()]
    aligned = all(v == vals[0] for v in vals) and vals[0] != 0
    return TimeframeAlignment(directions=dirs, aligned=aligned, score=float(np.mean(vals)))


def default_timeframes(bars: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """The bars plus their session-aware 1h and daily resamples (only the coarser ones that apply)."""
    from nq_ray.data.resample import resample_bars

    if len(bars) < 2:
        return {"base": bars}
    step = (bars.index[1:] - bars.index[:-1]).min()
    out = {_label(step): bars}
    if step < pd.Timedelta(hours=1):
        out["1h"] = resample_bars(bars, "1h")
    if step < pd.Timedelta(days=1):
        out["1d"] = resample_bars(bars, "1d")
    return out


def _label(step: pd.Timedelta) -> str:
    minutes = int(step.total_seconds() // 60)
    if minutes >= 1440:
        return "1d"
    if minutes >= 60 and minutes % 60 == 0:
        return f"{minutes // 60}h"
    return f"{minutes}m"


# ----------------------------------------------------------------------------- report
class MomentumReport(BaseModel):
    """What ``analyze_momentum`` returns: the latest readings, compact enough for an LLM prompt."""

    as_of: str
    roc_pct: dict[str, float | None]
    rsi: float | None
    macd_hist: float | None
    relative_volume: float | None
    up_volume_ratio: float | None
    trend: TrendStrength
    alignment: TimeframeAlignment
    divergences: list[Divergence]


def _last(x: pd.Series) -> float | None:
    v = float(x.iloc[-1]) if len(x) else float("nan")
    return None if np.isnan(v) else v


def analyze_momentum(
    bars: pd.DataFrame,
    periods: Sequence[int] = (1, 5, 20, 60),
    frames: Mapping[str, pd.DataFrame] | None = None,
    divergence_bars: int = 300,
    prominence: float = 1.5,
) -> MomentumReport:
    """ROC over ``periods``, RSI(14), MACD histogram, relative volume, up/down volume ratio, ADX trend
    strength, multi-timeframe alignment and RSI/MACD divergences over the last ``divergence_bars``."""
    _check_number("analyze_momentum", "prominence", prominence)
    close = bars["close"] if "close" in bars.columns else None
    _bar_columns(bars, ("open", "high", "low", "close", "volume"), "analyze_momentum")
    assert close is not None
    usable = [p for p in periods if p < len(bars)]
    r = roc(close, usable) if usable else pd.DataFrame(index=bars.index)
    rs = ind.rsi(close, 14)
    mh = ind.macd(close)["hist"]
    tail = slice(max(0, len(bars) - divergence_bars), len(bars))
    sub = bars.iloc[tail]
    divs: list[Divergence] = []
    if len(sub) > 30:
        found = divergences(sub, rs.iloc[tail], "rsi", prominence) + divergences(
            sub, mh.iloc[tail], "macd", prominence
        )
        off = tail.start  # bar positions in the caller's frame
        divs = sorted(
            (
                d.model_copy(update={"start_bar": d.start_bar + off, "end_bar": d.end_bar + off})
                for d in found
            ),
            key=lambda d: d.end_bar,
        )
    return MomentumReport(
        as_of=bars.index[-1].isoformat(),
        roc_pct={f"{p}": _last(r[f"roc_{p}"]) for p in usable},
        rsi=_last(rs),
        macd_hist=_last(mh),
        relative_volume=_last(relative_volume(bars)),
        up_volume_ratio=_last(up_down_volume(bars)["ratio"]),
        trend=trend_strength(bars),
        alignment=timeframe_alignment(frames if frames is not None else default_timeframes(bars)),
        divergences=divs[-6:],
    )
