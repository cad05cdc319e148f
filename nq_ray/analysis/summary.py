"""``analyze(bars) -> MarketAnalysis``: one typed, compact market summary for agents and LLM prompts.

It combines the pure pieces of this package: trend (EMA stack, ADX, supertrend, multi-timeframe
alignment), momentum (RSI, MACD, ROC, divergences, relative volume), volatility regime (ATR percentile),
levels (VWAP, pivots, prior day, overnight, volume profile, swing zones), active chart and candlestick
patterns, and the session context of the latest bar. Expensive parts look only at recent bars.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd
import talib
from pydantic import BaseModel, ConfigDict, Field

from nq_ray.analysis import chart_patterns, indicators, levels, momentum, patterns
from nq_ray.analysis.indicators import _bar_columns, _check_period, _first_valid
from nq_ray.domain.contracts import get_contract
from nq_ray.errors import InvalidArgumentError

Direction = Literal["up", "down", "neutral"]
MIN_BARS = 60


class TrendSummary(BaseModel):
    model_config = ConfigDict(frozen=True)

    direction: Direction = Field(description="close vs EMA(20) vs EMA(50) stack on the input timeframe")
    adx: float
    strength: str = Field(description="ADX < 15 none, < 25 weak, < 40 trending, else strong")
    supertrend: Direction = Field(description="supertrend(10, 3) direction")
    timeframes: dict[str, Direction]
    aligned: bool


class MomentumSummary(BaseModel):
    model_config = ConfigDict(frozen=True)

    rsi: float | None
    macd_hist: float | None
    roc_pct: dict[str, float | None] = Field(description="rate of change in % over n bars")
    relative_volume: float | None = Field(description="volume / mean volume at this time of day")
    up_volume_ratio: float | None = Field(description="up-bar volume / (up + down) over 20 bars")
    divergences: list[str] = Field(description="recent RSI/MACD divergences, e.g. 'bearish rsi @ …'")


class VolatilitySummary(BaseModel):
    model_config = ConfigDict(frozen=True)

    atr: float
    atr_pct: float = Field(description="ATR(14) as % of the close")
    atr_percentile: float = Field(description="rank of the latest ATR among the last 500 bars' ATRs, 0–100")
    regime: Literal["low", "normal", "high"] = Field(description="percentile < 25 low, > 75 high")
    bollinger_width_pct: float | None = Field(description="(upper − lower)/middle × 100, Bollinger(20, 2)")


class LevelsSummary(BaseModel):
    model_config = ConfigDict(frozen=True)

    vwap: float | None = Field(description="session VWAP (resets 18:00 ET), on the tick grid")
    nearest_support: levels.Level | None
    nearest_resistance: levels.Level | None
    prior_day: dict[str, float]
    overnight: dict[str, float]
    pivots: dict[str, float] = Field(description="classic pivots of the previous session")
    poc: float | None = Field(description="previous session's volume point of control")


class SessionContext(BaseModel):
    model_config = ConfigDict(frozen=True)

    session_date: str
    segment: Literal["rth", "globex"] = Field(description="the latest bar is in 09:30–16:00 ET or not")
    bars_in_session: int
    session_change_pct: float | None = Field(description="latest close vs the previous session's close")


class MarketAnalysis(BaseModel):
    """The compact summary the analysis agent reads (``to_prompt()`` renders it as a few lines)."""

    symbol: str
    interval: str
    as_of: str
    last_price: float
    trend: TrendSummary
    momentum: MomentumSummary
    volatility: VolatilitySummary
    levels: LevelsSummary
    chart_patterns: list[chart_patterns.ChartPattern]
    candlesticks: list[patterns.CandlePattern]
    session: SessionContext

    def to_prompt(self) -> str:
        """A short plain-text rendering for an LLM prompt (well under 1,500 characters)."""
        t, m, v, lv, s = self.trend, self.momentum, self.volatility, self.levels, self.session

        def f(x: float | None, nd: int = 2) -> str:
            return "n/a" if x is None else f"{x:.{nd}f}"

        lines = [
            f"{self.symbol} {self.interval} as of {self.as_of}: last {self.last_price:.2f} "
            f"({f(s.session_change_pct)}% vs prior close), session {s.session_date} {s.segment}.",
            f"Trend {t.direction} (ADX {t.adx:.1f} {t.strength}, supertrend {t.supertrend}); timeframes "
            + ", ".join(f"{k} {d}" for k, d in t.timeframes.items())
            + (" — aligned." if t.aligned else " — not aligned."),
            f"Momentum: RSI {f(m.rsi, 1)}, MACD hist {f(m.macd_hist)}, ROC "
            + ", ".join(f"{k}b {f(x)}%" for k, x in m.roc_pct.items())
            + f", rel. volume {f(m.relative_volume)}, up-volume {f(m.up_volume_ratio)}.",
            f"Volatility {v.regime}: ATR {v.atr:.2f} ({v.atr_pct:.2f}%, pct rank {v.atr_percentile:.0f}).",
            f"Levels: VWAP {f(lv.vwap)}, support {_lvl(lv.nearest_support)}, resistance "
            f"{_lvl(lv.nearest_resistance)}, PDH {lv.prior_day.get('high')}, PDL {lv.prior_day.get('low')}, "
            f"POC {f(lv.poc)}.",
        ]
        if m.divergences:
            lines.append("Divergences: " + "; ".join(m.divergences) + ".")
        if self.chart_patterns:
            lines.append(
                "Patterns: "
                + "; ".join(
                    f"{p.kind} {p.status} (conf {p.confidence:.2f}, breakout {p.breakout}, target {p.target})"
                    for p in self.chart_patterns
                )
                + "."
            )
        if self.candlesticks:
            lines.append("Candles: " + ", ".join(f"{c.name} {c.direction}" for c in self.candlesticks) + ".")
        return "\n".join(lines)


def _lvl(level: levels.Level | None) -> str:
    return "n/a" if level is None else f"{level.name} {level.price}"


def _interval_label(index: pd.DatetimeIndex) -> str:
    if len(index) < 2:
        return "unknown"
    step = pd.Series(index[1:] - index[:-1]).median()
    minutes = int(step.total_seconds() // 60)
    if minutes >= 1440:
        return "1d"
    if minutes >= 60 and minutes % 60 == 0:
        return f"{minutes // 60}h"
    return f"{minutes}m"


def _f(x: float) -> float | None:
    return None if x is None or not np.isfinite(x) else float(x)


def analyze(
    bars: pd.DataFrame,
    symbol: str = "NQ",
    *,
    recent_bars: int = 2000,
    min_pattern_confidence: float = 0.5,
    pattern_bars: int = 300,
    max_patterns: int = 3,
) -> MarketAnalysis:
    """Summarise ``bars`` (a bar frame, any interval, ≥ 60 bars) into a ``MarketAnalysis``.

    Indicators use all bars; patterns, divergences, swing zones and relative volume use the last
    ``recent_bars`` bars, and only chart patterns ending in the last ``pattern_bars`` bars with
    confidence ≥ ``min_pattern_confidence`` are reported (the ``max_patterns`` most confident)."""
    from nq_ray.market.sessions import rth_mask, session_dates

    recent_bars = _check_period("analyze", "recent_bars", recent_bars, MIN_BARS)
    cols = _bar_columns(bars, ("open", "high", "low", "close", "volume"), "analyze")
    for k, arr in cols.items():
        if _first_valid(arr, k, "analyze") != 0:
            raise InvalidArgumentError(f"analyze: {k} starts with NaN; drop missing bars first")
    if len(bars) < MIN_BARS:
        raise InvalidArgumentError(f"analyze: needs at least {MIN_BARS} bars, got {len(bars)}", got=len(bars))
    contract = get_contract(symbol)
    tick = contract.tick_size
    h, lo, c = cols["high"], cols["low"], cols["close"]
    last = float(c[-1])
    recent = bars.iloc[-recent_bars:]

    # trend
    frames = momentum.default_timeframes(bars)
    align = momentum.timeframe_alignment(frames)
    ts = momentum.trend_strength(bars)
    st_dir = indicators.supertrend(bars["high"], bars["low"], bars["close"])["direction"].iloc[-1]
    base_label = next(iter(frames))
    trend = TrendSummary(
        direction=align.directions[base_label],
        adx=ts.adx,
        strength=ts.strength,
        supertrend="up" if st_dir > 0 else "down" if st_dir < 0 else "neutral",
        timeframes=align.directions,
        aligned=align.aligned,
    )

    # momentum
    close = bars["close"]
    usable = [p for p in (1, 5, 20, 60) if p < len(bars)]
    roc = momentum.roc(close, usable)
    rsi = indicators.rsi(close, 14)
    hist = indicators.macd(close)["hist"]
    divs: list[momentum.Divergence] = []
    tail = slice(len(bars) - min(len(bars), 300), len(bars))
    sub = bars.iloc[tail]
    if len(sub) > 30:
        divs = momentum.divergences(sub, rsi.iloc[tail], "rsi") + momentum.divergences(
            sub, hist.iloc[tail], "macd"
        )
        divs.sort(key=lambda d: d.end_bar)
    mom = MomentumSummary(
        rsi=_f(rsi.iloc[-1]),
        macd_hist=_f(hist.iloc[-1]),
        roc_pct={str(p): _f(roc[f"roc_{p}"].iloc[-1]) for p in usable},
        relative_volume=_f(momentum.relative_volume(recent).iloc[-1]),
        up_volume_ratio=_f(momentum.up_down_volume(recent)["ratio"].iloc[-1]),
        divergences=[f"{d.kind} {d.indicator} {d.start} → {d.end}" for d in divs[-3:]],
    )

    # volatility
    atr = talib.ATR(h, lo, c, timeperiod=14)
    window = atr[-500:]
    window = window[~np.isnan(window)]
    pct = float((window < atr[-1]).mean() * 100) if len(window) else 50.0
    bb = talib.BBANDS(c, timeperiod=20, nbdevup=2.0, nbdevdn=2.0, matype=talib.MA_Type.SMA)
    vol = VolatilitySummary(
        atr=float(atr[-1]),
        atr_pct=float(atr[-1] / last * 100),
        atr_percentile=pct,
        regime="low" if pct < 25 else "high" if pct > 75 else "normal",
        bollinger_width_pct=_f((bb[0][-1] - bb[2][-1]) / bb[1][-1] * 100),
    )

    # levels and session context
    sd = session_dates(bars.index)
    n_sessions = len(np.unique(sd[-recent_bars:]))
    try:
        sr = levels.find_support_resistance(recent, symbol) if n_sessions >= 2 else None
    except InvalidArgumentError:
        sr = None
    vw = _f(indicators.vwap(recent, "session").iloc[-1])
    lv = LevelsSummary(
        vwap=None if vw is None else levels.tick_price(vw, tick),
        nearest_support=sr.nearest_support if sr else None,
        nearest_resistance=sr.nearest_resistance if sr else None,
        prior_day=sr.prior_day if sr else {},
        overnight=sr.overnight if sr else {},
        pivots=sr.pivots.get("classic", {}) if sr else {},
        poc=sr.profile[0].poc if sr and sr.profile else None,
    )
    in_cur = sd == sd[-1]
    prev_close = float(c[~in_cur][-1]) if (~in_cur).any() else None
    session = SessionContext(
        session_date=str(sd[-1]),
        segment="rth" if bool(rth_mask(bars.index[-1:])[0]) else "globex",
        bars_in_session=int(in_cur.sum()),
        session_change_pct=None if prev_close is None else (last / prev_close - 1) * 100,
    )

    # patterns
    try:
        found = chart_patterns.detect_chart_patterns(
            recent, symbol, last_bars=pattern_bars, min_confidence=min_pattern_confidence
        )
    except InvalidArgumentError:
        found = []
    offset = len(bars) - len(recent)  # report bar positions in the caller's frame
    found = [
        p.model_copy(
            update={
                "start_bar": p.start_bar + offset,
                "end_bar": p.end_bar + offset,
                "breakout_bar": None if p.breakout_bar is None else p.breakout_bar + offset,
            }
        )
        for p in sorted(found, key=lambda p: -p.confidence)[:max_patterns]
    ]
    candles = [
        cp.model_copy(update={"bar": cp.bar + offset})
        for cp in patterns.detect_candlestick_patterns(recent, last_bars=3)
    ]

    return MarketAnalysis(
        symbol=contract.symbol,
        interval=_interval_label(bars.index),
        as_of=bars.index[-1].isoformat(),
        last_price=last,
        trend=trend,
        momentum=mom,
        volatility=vol,
        levels=lv,
        chart_patterns=found,
        candlesticks=candles[-5:],
        session=session,
    )
