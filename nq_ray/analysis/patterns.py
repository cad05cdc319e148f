"""Candlestick patterns through TA-Lib's 61 ``CDL*`` pattern functions.

TA-Lib returns, per bar, 0 (no pattern), ±100 (pattern, bullish/bearish) or ±200 (pattern confirmed by
the following bars, for the few patterns that have a confirmation step). We report each non-zero hit
as a ``CandlePattern`` with ``strength`` = |value| / 100 (1 = pattern, 2 = confirmed). The pattern
definitions are TA-Lib's (after Nison, *Japanese Candlestick Charting Techniques*), with its default
body/shadow settings averaged over the previous bars.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import pandas as pd
import talib
from pydantic import BaseModel, ConfigDict, Field

from nq_ray.analysis.chart_patterns import ChartPattern, detect_chart_patterns
from nq_ray.analysis.indicators import _bar_columns, _check_period, _first_valid
from nq_ray.errors import InvalidArgumentError

#: TA-Lib function name → readable name, e.g. ``CDLENGULFING`` → ``engulfing``.
CANDLE_FUNCTIONS: dict[str, str] = {
    f: f[3:].lower() for f in talib.get_function_groups()["Pattern Recognition"]
}
_BY_NAME = {v: k for k, v in CANDLE_FUNCTIONS.items()}


class CandlePattern(BaseModel):
    """One candlestick pattern on one bar."""

    model_config = ConfigDict(frozen=True)

    name: str = Field(description="TA-Lib pattern name without the CDL prefix, lower case (e.g. engulfing)")
    bar: int = Field(description="position of the pattern's last bar in the frame")
    time: str
    direction: Literal["bullish", "bearish"]
    strength: float = Field(description="|TA-Lib value| / 100: 1 = pattern, 2 = confirmed")


def _resolve(names: Sequence[str] | None) -> list[str]:
    if names is None:
        return list(CANDLE_FUNCTIONS)
    out = []
    for n in names:
        key = n.upper() if n.upper() in CANDLE_FUNCTIONS else _BY_NAME.get(n.lower().removeprefix("cdl"))
        if key is None:
            raise InvalidArgumentError(
                f"unknown candlestick pattern {n!r}; known: {', '.join(sorted(_BY_NAME))}", pattern=n
            )
        out.append(key)
    return out


def candlestick_signals(bars: pd.DataFrame, names: Sequence[str] | None = None) -> pd.DataFrame:
    """TA-Lib's raw output per bar (columns = readable pattern names, int values in {−200 … 200})."""
    cols = _bar_columns(bars, ("open", "high", "low", "close"), "candlestick_patterns")
    for k, arr in cols.items():
        if _first_valid(arr, k, "candlestick_patterns") != 0:
            raise InvalidArgumentError(f"candlestick_patterns: {k} starts with NaN; drop missing bars first")
    o, h, lo, c = cols["open"], cols["high"], cols["low"], cols["close"]
    data = {CANDLE_FUNCTIONS[f]: getattr(talib, f)(o, h, lo, c) for f in _resolve(names)}
    return pd.DataFrame(data, index=bars.index)


def detect_candlestick_patterns(
    bars: pd.DataFrame, names: Sequence[str] | None = None, last_bars: int | None = 20
) -> list[CandlePattern]:
    """Candlestick patterns among the last ``last_bars`` bars (all bars when None), newest last.

    TA-Lib needs some history to average body sizes: give a few dozen bars more than ``last_bars``."""
    if last_bars is not None:
        last_bars = _check_period("detect_candlestick_patterns", "last_bars", last_bars, 1)
    n = len(bars)
    start = 0 if last_bars is None else max(0, n - last_bars)
    # TA-Lib's longest look-back among the patterns is well under 60 bars; slice for speed
    window = bars.iloc[max(0, start - 60) :]
    offset = n - len(window)
    sig = candlestick_signals(window, names)
    values = sig.to_numpy()
    rows, cols = np.nonzero(values[start - offset :])
    out = [
        CandlePattern(
            name=sig.columns[j],
            bar=int(i + start),
            time=bars.index[i + start].isoformat()
            if isinstance(bars.index, pd.DatetimeIndex)
            else str(i + start),
            direction="bullish" if values[i + start - offset, j] > 0 else "bearish",
            strength=abs(float(values[i + start - offset, j])) / 100.0,
        )
        for i, j in zip(rows, cols, strict=True)
    ]
    out.sort(key=lambda p: (p.bar, p.name))
    return out


class PatternReport(BaseModel):
    """Candlestick and chart patterns of the recent bars (what the ``detect_patterns`` tool returns)."""

    as_of: str
    candlesticks: list[CandlePattern]
    chart_patterns: list[ChartPattern]


def detect_patterns(
    bars: pd.DataFrame,
    symbol: str = "NQ",
    candle_bars: int = 5,
    chart_bars: int = 300,
    min_confidence: float = 0.0,
) -> PatternReport:
    """Candlestick patterns of the last ``candle_bars`` bars and chart patterns whose last pivot lies in
    the last ``chart_bars`` bars (with at least ``min_confidence``)."""
    candles = detect_candlestick_patterns(bars, last_bars=candle_bars)
    charts = detect_chart_patterns(bars, symbol, last_bars=chart_bars, min_confidence=min_confidence)
    as_of = bars.index[-1]
    return PatternReport(
        as_of=as_of.isoformat() if hasattr(as_of, "isoformat") else str(as_of),
        candlesticks=candles,
        chart_patterns=charts,
    )
