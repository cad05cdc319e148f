"""``analyze``: one compact, typed summary whose numbers match the pieces it is built from."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd
import pytest
import talib

from nq_ray.analysis import analyze
from nq_ray.analysis.summary import MarketAnalysis
from nq_ray.domain.contracts import get_contract
from nq_ray.errors import InvalidArgumentError, InvalidBarsError
from tests.analysis.synthetic import frame, random_walk


@pytest.fixture(scope="module")
def nq_analysis(nq_5m: pd.DataFrame) -> MarketAnalysis:
    return analyze(nq_5m, "NQ")


def test_summary_numbers_match_talib(nq_5m: pd.DataFrame, nq_analysis: MarketAnalysis) -> None:
    h, lo, c = (nq_5m[k].to_numpy() for k in ("high", "low", "close"))
    assert nq_analysis.momentum.rsi == pytest.approx(talib.RSI(c, 14)[-1], abs=1e-9)
    assert nq_analysis.volatility.atr == pytest.approx(talib.ATR(h, lo, c, 14)[-1], abs=1e-9)
    assert nq_analysis.last_price == c[-1]
    assert nq_analysis.interval == "5m" and nq_analysis.symbol == "NQ"


def test_summary_fits_in_a_prompt(nq_analysis: MarketAnalysis) -> None:
    text = nq_analysis.to_prompt()
    assert len(text) < 1500
    assert len(nq_analysis.model_dump_json()) < 6000
    assert "RSI" in text and "VWAP" in text


def test_summary_round_trips_through_json(nq_analysis: MarketAnalysis) -> None:
    again = MarketAnalysis.model_validate_json(nq_analysis.model_dump_json())
    assert again == nq_analysis


def test_levels_in_summary_are_on_tick_grid(nq_analysis: MarketAnalysis) -> None:
    nq = get_contract("NQ")
    lv = nq_analysis.levels
    prices = [lv.vwap, *lv.prior_day.values(), *lv.overnight.values(), *lv.pivots.values()]
    prices += [x.price for x in (lv.nearest_support, lv.nearest_resistance) if x is not None]
    assert all(nq.is_on_tick(p) for p in prices if p is not None)


def test_pattern_bars_refer_to_the_callers_frame(nq_5m: pd.DataFrame, nq_analysis: MarketAnalysis) -> None:
    for p in nq_analysis.chart_patterns:
        assert nq_5m.index[p.end_bar].isoformat() == p.end
    for cp in nq_analysis.candlesticks:
        assert nq_5m.index[cp.bar].isoformat() == cp.time


def test_steady_rally_reads_as_uptrend() -> None:
    bars = frame(pd.Series(range(400)).to_numpy(float) * 0.5 + 20_000, start="2026-03-02 09:30")
    out = analyze(bars)
    assert out.trend.direction == "up" and out.trend.supertrend == "up"


def test_daily_bars_are_analysed(nq_daily: pd.DataFrame) -> None:
    out = analyze(nq_daily)
    assert out.interval == "1d" and list(out.trend.timeframes) == ["1d"]


def test_too_few_bars_raises() -> None:
    with pytest.raises(InvalidArgumentError, match="at least 60 bars"):
        analyze(random_walk(30, 0))


def test_missing_close_raises_invalid_bars() -> None:
    with pytest.raises(InvalidBarsError, match="'close' missing"):
        analyze(random_walk(100, 0).drop(columns=["close"]))


def test_core_does_not_import_ray() -> None:
    code = "import sys, nq_ray.analysis; assert 'ray' not in sys.modules, 'ray imported'"
    subprocess.run([sys.executable, "-c", code], check=True)
