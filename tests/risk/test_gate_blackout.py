"""The gate's economic-event blackout: new risk inside an event's window is denied with
``event_blackout`` naming the event; orders that only reduce a position pass."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from nq_ray.domain.orders import AccountState, Order, Side
from nq_ray.market.calendar import BlackoutRule, bundled_calendar
from nq_ray.risk import RiskLimits, check_order
from nq_ray.settings.events import default_blackouts

ET = ZoneInfo("America/New_York")
# the March 2026 FOMC statement: Wednesday 2026-03-18 14:00 EDT (federalreserve.gov FOMC calendar)
FOMC_MARCH_2026 = datetime(2026, 3, 18, 14, 0, tzinfo=ET)
TWO_MIN_BEFORE = FOMC_MARCH_2026 - timedelta(minutes=2)
LIMITS = RiskLimits(trade_only_when_open=False)


def account(at: datetime, position: int = 0) -> AccountState:
    return AccountState(
        equity_usd=100_000.0,
        starting_balance_usd=100_000.0,
        equity_high_usd=100_000.0,
        positions={"NQ": position} if position else {},
        as_of=at,
    )


def verdict_at(at: datetime, order: Order, position: int = 0):
    blackout = bundled_calendar().blackout_at(at, default_blackouts())
    return check_order(order, account(at, position), LIMITS, mark_price=20_000.0, blackout=blackout)


def test_order_two_minutes_before_fomc_is_denied_naming_the_event() -> None:
    v = verdict_at(TWO_MIN_BEFORE, Order(symbol="NQ", side=Side.BUY, quantity=1))

    assert not v.approved
    assert v.adjusted_contracts == 0
    [reason] = [r for r in v.reasons if r.code == "event_blackout"]
    assert "fomc" in reason.message
    assert "FOMC statement (March 2026 meeting)" in reason.message
    assert "2026-03-18 14:00 EDT" in reason.message
    assert "13:55–14:05" in reason.message  # the default window: 5 min before to 5 min after


def test_same_order_an_hour_later_passes() -> None:
    v = verdict_at(TWO_MIN_BEFORE + timedelta(hours=1), Order(symbol="NQ", side=Side.BUY, quantity=1))

    assert v.approved, v.reasons
    assert v.adjusted_contracts == 1


def test_reducing_order_inside_the_window_passes() -> None:
    v = verdict_at(TWO_MIN_BEFORE, Order(symbol="NQ", side=Side.SELL, quantity=1), position=2)

    assert v.approved, v.reasons
    assert v.adjusted_contracts == 1


def test_adding_to_a_position_inside_the_window_is_denied() -> None:
    v = verdict_at(TWO_MIN_BEFORE, Order(symbol="NQ", side=Side.BUY, quantity=1), position=2)

    assert not v.approved
    assert "event_blackout" in [r.code for r in v.reasons]


def test_window_edges_start_inclusive_end_exclusive() -> None:
    order = Order(symbol="NQ", side=Side.BUY, quantity=1)

    assert not verdict_at(FOMC_MARCH_2026 - timedelta(minutes=5), order).approved
    assert verdict_at(FOMC_MARCH_2026 - timedelta(minutes=5, seconds=1), order).approved
    assert not verdict_at(FOMC_MARCH_2026 + timedelta(minutes=4, seconds=59), order).approved
    assert verdict_at(FOMC_MARCH_2026 + timedelta(minutes=5), order).approved


def test_no_blackout_is_the_gate_as_before() -> None:
    order = Order(symbol="NQ", side=Side.BUY, quantity=1)

    v = check_order(order, account(TWO_MIN_BEFORE), LIMITS, mark_price=20_000.0)

    assert v.approved


def test_a_pack_rule_on_the_presser_blocks_where_the_default_does_not() -> None:
    # 14:33 is after the default FOMC window (14:05) but inside a 10/30 rule on the 14:30 press conference
    at = FOMC_MARCH_2026 + timedelta(minutes=33)
    rule = BlackoutRule(kinds=["fomc_presser"], before_min=10, after_min=30, action="flatten")
    order = Order(symbol="NQ", side=Side.BUY, quantity=1)

    assert bundled_calendar().blackout_at(at, default_blackouts()) is None
    blackout = bundled_calendar().blackout_at(at, [rule])
    v = check_order(order, account(at), LIMITS, mark_price=20_000.0, blackout=blackout)

    assert blackout is not None and blackout.rule.action == "flatten"
    assert [r.code for r in v.reasons] == ["event_blackout"]
    assert "fomc_presser" in v.reasons[0].message and "until 15:00 EDT" in v.reasons[0].message
