"""RiskLimits: defaults, validation and the trailing drawdown floor."""

from __future__ import annotations

from datetime import time

import pytest
from pydantic import ValidationError

from nq_ray.risk import RiskLimits, TimeWindow


def test_defaults_suit_a_100k_paper_account():
    limits = RiskLimits()
    assert limits.max_daily_loss_usd == 2_000.0 and limits.trailing_drawdown_usd == 3_000.0
    assert limits.max_margin_use_pct == 0.75 and limits.trade_only_when_open


def test_trailing_floor_trails_the_high():
    """High $102,000 − $3,000 = $99,000 (below the $100,000 start, so the lock does not bite)."""
    assert RiskLimits().trailing_floor_usd(102_000.0, 100_000.0) == 99_000.0


def test_trailing_floor_locks_at_the_starting_balance():
    """High $105,000 − $3,000 = $102,000 → locked at the $100,000 starting balance; unlocked $102,000."""
    assert RiskLimits(trailing_lock_at_start=True).trailing_floor_usd(105_000.0, 100_000.0) == 100_000.0
    assert RiskLimits(trailing_lock_at_start=False).trailing_floor_usd(105_000.0, 100_000.0) == 102_000.0


def test_trailing_floor_off():
    assert RiskLimits(trailing_drawdown_usd=None).trailing_floor_usd(105_000.0, 100_000.0) is None


@pytest.mark.parametrize(
    "bad",
    [
        {"max_margin_use_pct": 1.5},
        {"max_daily_loss_usd": -100.0},
        {"max_orders_per_minute": 0},
        {"max_contracts_per_symbol": -1},
        {"max_daily_los_usd": 100.0},  # a typo is refused, not ignored
    ],
)
def test_bad_limits_are_refused(bad):
    with pytest.raises(ValidationError):
        RiskLimits(**bad)


def test_limits_round_trip_through_json():
    limits = RiskLimits(allowed_windows=[TimeWindow(start=time(9, 30), end=time(16, 0))])
    assert RiskLimits.model_validate_json(limits.model_dump_json()) == limits


def test_empty_window_is_refused():
    with pytest.raises(ValidationError, match="empty"):
        TimeWindow(start=time(9, 30), end=time(9, 30))
