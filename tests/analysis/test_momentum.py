"""Momentum and volume: ROC (TA-Lib), relative volume and up/down volume (plain references),
divergences, trend strength and timeframe alignment (synthetic trends)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import talib

from nq_ray.analysis import momentum
from nq_ray.analysis.indicators import rsi
from nq_ray.errors import InvalidArgumentError
from tests.analysis.synthetic import frame, path_bars


def test_roc_equals_talib_for_each_horizon(nq_5m: pd.DataFrame) -> None:
    out = momentum.roc(nq_5m.close, (1, 12, 78))
    c = nq_5m.close.to_numpy()
    for p in (1, 12, 78):
        np.testing.assert_allclose(out[f"roc_{p}"], talib.ROC(c, p), rtol=1e-9, atol=1e-9, equal_nan=True)


def test_roc_horizon_longer_than_series_raises() -> None:
    with pytest.raises(InvalidArgumentError, match="needs at least 61"):
        momentum.roc(pd.Series(np.linspace(1, 2, 60)), (1, 60))


def test_relative_volume_equals_same_time_of_day_reference(nq_5m: pd.DataFrame) -> None:
    # Arrange: plain reference — mean of up to 5 earlier bars at the same clock time, ≥ 2 of them
    bars = nq_5m.iloc[:4000]
    by_time: dict[tuple[int, int], list[float]] = {}
    expected = []
    for t, v in zip(bars.index, bars.volume, strict=True):
        hist = by_time.setdefault((t.hour, t.minute), [])
        prev = hist[-5:]
        m = sum(prev) / len(prev) if len(prev) >= 2 else np.nan
        expected.append(v / m if m and m > 0 else np.nan)
        hist.append(v)
    # Act
    out = momentum.relative_volume(bars, lookback_sessions=5, min_sessions=2)
    # Assert
    np.testing.assert_allclose(out.to_numpy(), expected, rtol=1e-9, equal_nan=True)


def test_up_down_volume_hand_worked() -> None:
    bars = frame(np.array([10.0, 11, 10, 10, 12]))
    bars["volume"] = [1.0, 2, 3, 4, 5]
    out = momentum.up_down_volume(bars, window=3)
    # last 3 bars: 10 (down, 3), 10 (unchanged, 4), 12 (up, 5)
    assert out["up"].iloc[-1] == 5 and out["down"].iloc[-1] == 3
    assert out["ratio"].iloc[-1] == pytest.approx(5 / 8)


def test_bearish_rsi_divergence_on_a_tiring_rally() -> None:
    # fast rally to 110, pullback, slow grind to a marginal new high, then a drop confirms the pivot
    bars = path_bars([90, 110, 104], bars_per_leg=10)
    grind = frame(np.r_[bars.close.to_numpy(), np.linspace(104, 111, 41)[1:], np.linspace(111, 100, 11)[1:]])
    divs = momentum.divergences(grind, rsi(grind.close, 14), "rsi", prominence=2.0)
    assert [d.kind for d in divs] == ["bearish"]
    d = divs[0]
    assert d.price_end > d.price_start and d.indicator_end < d.indicator_start


def test_bullish_rsi_divergence_on_a_tiring_selloff() -> None:
    bars = path_bars([130, 110, 116], bars_per_leg=10)
    grind = frame(np.r_[bars.close.to_numpy(), np.linspace(116, 109, 41)[1:], np.linspace(109, 120, 11)[1:]])
    divs = momentum.divergences(grind, rsi(grind.close, 14), "rsi", prominence=2.0)
    assert [d.kind for d in divs] == ["bullish"]


def test_trend_strength_of_a_steady_rally_is_up_and_trending() -> None:
    bars = frame(np.linspace(100, 200, 200) + np.tile([0, 0.5], 100))
    ts = momentum.trend_strength(bars)
    assert ts.direction == "up" and ts.strength in ("trending", "strong")


def test_timeframe_alignment_agrees_when_all_rise() -> None:
    up = frame(np.linspace(100, 200, 120))
    out = momentum.timeframe_alignment({"5m": up, "1h": up, "1d": up})
    assert out.aligned and out.score == 1.0


def test_timeframe_alignment_disagrees_on_mixed_trends() -> None:
    up, down = frame(np.linspace(100, 200, 120)), frame(np.linspace(200, 100, 120))
    out = momentum.timeframe_alignment({"5m": up, "1h": down})
    assert not out.aligned and out.directions == {"5m": "up", "1h": "down"} and out.score == 0.0


def test_short_timeframe_counts_as_neutral() -> None:
    out = momentum.timeframe_alignment({"1d": frame(np.linspace(100, 200, 10))})
    assert out.directions == {"1d": "neutral"} and not out.aligned


def test_analyze_momentum_on_real_bars(nq_5m: pd.DataFrame) -> None:
    rep = momentum.analyze_momentum(nq_5m)
    assert set(rep.alignment.directions) == {"5m", "1h", "1d"}
    assert rep.rsi == pytest.approx(talib.RSI(nq_5m.close.to_numpy(), 14)[-1])
    assert set(rep.roc_pct) == {"1", "5", "20", "60"}
    assert 0 <= (rep.up_volume_ratio or 0) <= 1


def test_divergence_bars_refer_to_the_callers_frame(nq_5m: pd.DataFrame) -> None:
    rep = momentum.analyze_momentum(nq_5m)
    assert rep.divergences
    for d in rep.divergences:
        assert nq_5m.index[d.end_bar].isoformat() == d.end
        assert nq_5m.index[d.start_bar].isoformat() == d.start
