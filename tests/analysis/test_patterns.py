"""Candlestick patterns: TA-Lib's CDL functions, reported per bar."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import talib

from nq_ray.analysis import patterns
from nq_ray.errors import InvalidArgumentError, InvalidBarsError
from tests.analysis.synthetic import random_walk


def test_all_61_talib_patterns_are_available() -> None:
    assert len(patterns.CANDLE_FUNCTIONS) == 61
    assert patterns.CANDLE_FUNCTIONS["CDLENGULFING"] == "engulfing"


def test_detections_equal_talib_on_real_bars(nq_5m: pd.DataFrame) -> None:
    # Arrange
    o, h, lo, c = (nq_5m[k].to_numpy() for k in ("open", "high", "low", "close"))
    n = len(nq_5m)
    expected = set()
    for f, name in patterns.CANDLE_FUNCTIONS.items():
        out = getattr(talib, f)(o, h, lo, c)
        for i in np.flatnonzero(out[n - 50 :]):
            expected.add(
                (name, n - 50 + int(i), int(np.sign(out[n - 50 + i])), abs(int(out[n - 50 + i])) / 100)
            )
    # Act
    found = patterns.detect_candlestick_patterns(nq_5m, last_bars=50)
    # Assert
    got = {(p.name, p.bar, 1 if p.direction == "bullish" else -1, p.strength) for p in found}
    assert got == expected


def test_bullish_engulfing_is_found_on_the_engulfing_bar() -> None:
    # Arrange: a falling run, a small red bar, then a big green bar that engulfs it
    bars = random_walk(40, seed=0)
    base = 20_000.0
    for i in range(30, 38):
        bars.iloc[i, :4] = [
            base + 10 - (i - 30),
            base + 10.5 - (i - 30),
            base + 8.5 - (i - 30),
            base + 9 - (i - 30),
        ]
    bars.iloc[38, :4] = [base + 2.0, base + 2.5, base + 0.5, base + 1.0]  # small red
    bars.iloc[39, :4] = [base + 0.5, base + 6.0, base + 0.25, base + 5.5]  # big green engulfing
    # Act
    found = patterns.detect_candlestick_patterns(bars, names=["engulfing"], last_bars=3)
    # Assert
    assert [(p.name, p.bar, p.direction) for p in found] == [("engulfing", 39, "bullish")]


def test_pattern_names_accept_talib_spelling() -> None:
    sig = patterns.candlestick_signals(random_walk(100, 1), names=["CDLDOJI", "hammer"])
    assert list(sig.columns) == ["doji", "hammer"]


def test_unknown_pattern_raises() -> None:
    with pytest.raises(InvalidArgumentError, match="unknown candlestick pattern"):
        patterns.detect_candlestick_patterns(random_walk(100, 1), names=["moonwalk"])


def test_missing_open_raises_invalid_bars() -> None:
    with pytest.raises(InvalidBarsError, match="'open' missing"):
        patterns.detect_candlestick_patterns(random_walk(100, 1).drop(columns=["open"]))


def test_detect_patterns_combines_candles_and_chart_patterns(nq_5m: pd.DataFrame) -> None:
    report = patterns.detect_patterns(nq_5m, candle_bars=5, chart_bars=300)
    n = len(nq_5m)
    assert all(c.bar >= n - 5 for c in report.candlesticks)
    assert all(p.end_bar >= n - 300 for p in report.chart_patterns)
    assert report.as_of == nq_5m.index[-1].isoformat()
