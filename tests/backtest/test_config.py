"""BacktestConfig: defaults, contract terms and overrides, typed errors for bad values."""

from __future__ import annotations

import pytest

from nq_ray.backtest import BacktestConfig
from nq_ray.backtest.config import O_POINT_VALUE, O_SL_TICKS, O_TICK
from nq_ray.errors import InvalidArgumentError


def test_defaults_price_nq_from_its_contract():
    """Default NQ: $20 a point, 0.25 tick, margins from the contract spec."""
    t = BacktestConfig().terms()
    assert (t.point_value, t.tick_size, t.initial_margin_usd, t.maintenance_margin_usd) == (
        20.0,
        0.25,
        36_300.0,
        33_000.0,
    )


def test_point_value_and_tick_override_for_a_plain_series():
    """An unknown symbol runs with point_value 1 and tick 0.01 when both are given."""
    o = BacktestConfig(symbol="SPY", point_value=1, tick_size=0.01).options()
    assert (o[O_POINT_VALUE], o[O_TICK]) == (1.0, 0.01)


def test_unknown_symbol_without_terms_is_a_typed_error():
    with pytest.raises(InvalidArgumentError, match="point_value and tick_size"):
        BacktestConfig(symbol="FOO").terms()


@pytest.mark.parametrize(
    "field", ["commission_per_contract", "slippage_ticks", "initial_capital", "contracts"]
)
def test_negative_costs_and_sizes_raise_invalid_argument(field):
    with pytest.raises(InvalidArgumentError, match=field):
        BacktestConfig(**{field: -1})


def test_unknown_config_field_is_rejected():
    with pytest.raises(InvalidArgumentError, match="slipage"):
        BacktestConfig(slipage_ticks=1)


def test_stop_in_points_converts_to_ticks():
    """MNQ-style check on NQ: 2.5 points / 0.25 = 10 ticks."""
    assert BacktestConfig(stop_loss_points=2.5).options()[O_SL_TICKS] == 10


def test_ticks_and_points_for_the_same_leg_conflict():
    with pytest.raises(InvalidArgumentError, match="not both"):
        BacktestConfig(stop_loss_ticks=4, stop_loss_points=1.0)
