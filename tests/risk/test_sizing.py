"""Position sizing rules, each against a hand-worked example."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import talib
from hypothesis import given
from hypothesis import strategies as st

from nq_ray.domain.contracts import get_contract
from nq_ray.errors import InvalidArgumentError
from nq_ray.risk import (
    atr_points,
    atr_stop,
    fixed_contracts,
    fixed_fractional,
    fractional_kelly,
    kelly_estimate,
    volatility_target,
)

NQ, MNQ, ES = get_contract("NQ"), get_contract("MNQ"), get_contract("ES")


def test_fixed_contracts_is_what_was_asked():
    assert fixed_contracts(3, NQ).contracts == 3


def test_fixed_fractional_nq():
    """1% of $100,000 = $1,000; 20 ticks × $5.00 = $100 per NQ → ⌊10⌋ = 10 contracts."""
    size = fixed_fractional(100_000.0, 0.01, 20, NQ)
    assert size.contracts == 10 and size.risk_budget_usd == 1_000.0 and size.risk_per_contract_usd == 100.0


def test_fixed_fractional_micro_and_es():
    """MNQ: 20 ticks × $0.50 = $10 → ⌊1,000 ÷ 10⌋ = 100; ES: 8 ticks × $12.50 = $100 → 10."""
    assert fixed_fractional(100_000.0, 0.01, 20, MNQ).contracts == 100
    assert fixed_fractional(100_000.0, 0.01, 8, ES).contracts == 10


def test_fixed_fractional_floors():
    """1% of $100,000 ÷ (30 ticks × $5 = $150) = 6.67 → 6 (never rounded up)."""
    assert fixed_fractional(100_000.0, 0.01, 30, NQ).contracts == 6


def test_fixed_fractional_zero_when_one_contract_is_too_much():
    """1% of $10,000 = $100 < 40 ticks × $5 = $200 for one NQ → 0 contracts."""
    assert fixed_fractional(10_000.0, 0.01, 40, NQ).contracts == 0


def test_fixed_fractional_is_not_fooled_by_float_noise():
    """1.1% of $45,000 = $495 exactly ÷ 1 tick × $5 = 99, though 45000 × 0.011 ÷ 5 = 98.99999999999999."""
    assert fixed_fractional(45_000.0, 0.011, 1, NQ).contracts == 99


@pytest.mark.parametrize(
    ("kwargs", "word"),
    [
        ({"risk_fraction": 0.0}, "risk_fraction"),
        ({"risk_fraction": 1.5}, "risk_fraction"),
        ({"stop_ticks": 0}, "stop_ticks"),
        ({"equity_usd": float("nan")}, "equity_usd"),
    ],
)
def test_fixed_fractional_rejects_bad_input(kwargs, word):
    args = {"equity_usd": 100_000.0, "risk_fraction": 0.01, "stop_ticks": 20} | kwargs
    with pytest.raises(InvalidArgumentError, match=word):
        fixed_fractional(contract=NQ, **args)


def test_atr_stop():
    """1% of $100,000 = $1,000; stop 2 × 50 pts ATR = 100 pts: NQ 100 × $20 = $2,000 → 0;
    MNQ 100 × $2 = $200 → 5."""
    assert atr_stop(100_000.0, 0.01, 50.0, NQ, atr_multiple=2.0).contracts == 0
    assert atr_stop(100_000.0, 0.01, 50.0, MNQ, atr_multiple=2.0).contracts == 5


def test_atr_points_of_a_constant_range_is_the_range():
    """Bars 10 pts high−low with closes mid-range and no gaps: every true range is 10, so ATR = 10."""
    n = 40
    mid = 20_000.0 + np.arange(n) * 0.0
    bars = pd.DataFrame({"open": mid, "high": mid + 5, "low": mid - 5, "close": mid, "volume": 1.0})
    assert atr_points(bars, 14) == pytest.approx(10.0)


def test_atr_points_matches_talib_on_sample_bars(sample_bars):
    nq = sample_bars["NQ"].iloc[:500]
    ref = talib.ATR(nq["high"].to_numpy(), nq["low"].to_numpy(), nq["close"].to_numpy(), 14)[-1]
    assert atr_points(nq, 14) == ref


def test_volatility_target():
    """$100,000 × 16% ÷ √256 = $1,000 σ per bar; MNQ 20,000 × 1% × $2 = $400 → ⌊2.5⌋ = 2;
    NQ 20,000 × 1% × $20 = $4,000 → 0."""
    assert volatility_target(100_000.0, 0.16, 20_000.0, 0.01, MNQ, periods_per_year=256).contracts == 2
    assert volatility_target(100_000.0, 0.16, 20_000.0, 0.01, NQ, periods_per_year=256).contracts == 0


def test_kelly_estimate():
    """Wins 300, 300, 300; losses 200, 200: p = 0.6, b = 300 ÷ 200 = 1.5,
    f* = 0.6 − 0.4 ÷ 1.5 = 0.3333."""
    est = kelly_estimate([300, 300, 300, -200, -200], min_trades=1)
    assert est.win_rate == 0.6 and est.payoff_ratio == 1.5
    assert est.full_kelly == pytest.approx(1 / 3)


def test_fractional_kelly_is_capped():
    """Half Kelly 0.1667 capped at 2%: $100,000 × 0.02 = $2,000 ÷ $200 average loss = 10."""
    size = fractional_kelly(100_000.0, [300, 300, 300, -200, -200], NQ, fraction=0.5, cap=0.02, min_trades=1)
    assert size.contracts == 10 and size.risk_budget_usd == pytest.approx(2_000.0)


def test_fractional_kelly_uncapped_uses_the_fraction():
    """cap 1: f = 0.5 × 1/3 = 0.16667; $16,666.67 ÷ $200 = 83.3 → 83."""
    size = fractional_kelly(100_000.0, [300, 300, 300, -200, -200], NQ, fraction=0.5, cap=1.0, min_trades=1)
    assert size.contracts == 83


def test_fractional_kelly_with_a_stop():
    """f = 2% → $2,000 ÷ (16 ticks × $5 = $80) = 25."""
    size = fractional_kelly(100_000.0, [300, 300, 300, -200, -200], NQ, cap=0.02, stop_ticks=16, min_trades=1)
    assert size.contracts == 25


def test_negative_edge_sizes_zero():
    """Win 100, losses 200, 200: p = 1/3, b = 0.5, f* = 1/3 − (2/3) ÷ 0.5 = −1 → no bet, 0 contracts."""
    est = kelly_estimate([100, -200, -200], min_trades=1)
    size = fractional_kelly(100_000.0, [100, -200, -200], NQ, min_trades=1)
    assert est.full_kelly == 0.0 and size.contracts == 0


def test_kelly_rejects_empty_and_short_histories():
    with pytest.raises(InvalidArgumentError, match="empty"):
        kelly_estimate([])
    with pytest.raises(InvalidArgumentError, match="at least 20 trades"):
        kelly_estimate([100.0] * 5)


@given(
    equity=st.floats(0, 1e7),
    fraction=st.floats(1e-4, 1.0),
    ticks=st.integers(1, 2_000),
    symbol=st.sampled_from(["NQ", "MNQ", "ES", "MES", "YM", "RTY", "M2K"]),
)
def test_fixed_fractional_risk_never_exceeds_the_budget(equity, fraction, ticks, symbol):
    """n × risk per contract ≤ budget, and one more contract would exceed it (up to float noise)."""
    c = get_contract(symbol)
    size = fixed_fractional(equity, fraction, ticks, c)
    per = ticks * c.tick_value
    assert size.contracts * per <= equity * fraction * (1 + 1e-9) + 1e-9
    assert (size.contracts + 1) * per > equity * fraction * (1 - 1e-9)
    assert not math.isnan(size.risk_budget_usd)
