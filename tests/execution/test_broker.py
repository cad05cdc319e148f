"""The paper broker: order types, state transitions, OCO brackets, expiry, risk, bad input, P&L.

Every test runs the real book and journal against SQLite and PostgreSQL. NQ: tick 0.25 = $5, $20 a
point; 1 tick of slippage on market and stop fills, $2.25 commission per contract per side.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pandas as pd
import pytest

from nq_ray.domain.orders import Bracket, Order, OrderStatus
from nq_ray.errors import InvalidOrderError, NotFoundError, UnknownSymbolError
from nq_ray.execution.broker import ManagePosition
from nq_ray.execution.paper import PaperBroker
from nq_ray.execution.records import OrderRecord
from nq_ray.risk.gate import RiskVerdict
from nq_ray.risk.limits import RiskLimits
from nq_ray.runtime.journal import open_paper_broker
from tests.execution.helpers import bar, et

LIMITS = RiskLimits(max_orders_per_minute=None, max_margin_use_pct=None)


@pytest.fixture
def pb(db_url: str) -> Iterator[PaperBroker]:
    broker = open_paper_broker(db_url, limits=LIMITS, slippage_ticks=1, commission_per_contract=2.25)
    broker.on_bar("NQ", bar(et(10, 0), 20000, 20002, 19998, 20000))
    yield broker
    broker.close()


def place(pb: PaperBroker, **kw: Any) -> OrderRecord:
    order = Order(**kw)
    return pb.submit(order, pb.check(order))


def events(pb: PaperBroker, coid: str) -> list[str]:
    return [e.event for e in pb.journal.run(pb.journal.repo.order_events(coid))]


def stored_orders(pb: PaperBroker) -> int:
    return pb.journal.run(pb.journal.repo.count_orders())


# ---- order types and states -------------------------------------------------------------------------


def test_market_order_goes_new_accepted_filled_at_next_open_plus_slippage(pb: PaperBroker) -> None:
    rec = place(pb, side="buy", quantity=2)
    assert rec.status is OrderStatus.ACCEPTED
    (fill,) = pb.on_bar("NQ", bar(et(10, 5), 20004, 20006, 20001, 20005))
    assert (fill.price, fill.quantity, fill.commission_usd) == (20004.25, 2, 4.5)
    assert pb.order(rec.client_order_id).status is OrderStatus.FILLED
    assert events(pb, rec.client_order_id) == ["new", "accepted", "filled"]


def test_limit_order_waits_then_fills_at_its_price(pb: PaperBroker) -> None:
    rec = place(pb, side="buy", quantity=1, order_type="limit", limit_price=19990.0)
    assert pb.on_bar("NQ", bar(et(10, 5), 20000, 20003, 19991, 19995)) == []
    (fill,) = pb.on_bar("NQ", bar(et(10, 10), 19995, 19996, 19985, 19988))
    assert fill.price == 19990.0
    assert pb.order(rec.client_order_id).status is OrderStatus.FILLED


def test_buy_stop_fills_at_gap_open_not_stop_price(pb: PaperBroker) -> None:
    place(pb, side="buy", quantity=1, order_type="stop", stop_price=20010.0)
    (fill,) = pb.on_bar("NQ", bar(et(10, 5), 20020, 20025, 20018, 20022))
    assert fill.price == 20020.25


def test_stop_limit_triggers_then_fills_as_a_limit(pb: PaperBroker) -> None:
    rec = place(pb, side="buy", quantity=1, order_type="stop_limit", stop_price=20010.0, limit_price=20011.0)
    assert pb.on_bar("NQ", bar(et(10, 5), 20020, 20030, 20015, 20025)) == []
    assert pb.order(rec.client_order_id).triggered
    (fill,) = pb.on_bar("NQ", bar(et(10, 10), 20020, 20022, 20009, 20012))
    assert fill.price == 20011.0
    assert events(pb, rec.client_order_id) == ["new", "accepted", "triggered", "filled"]


def test_partial_fills_when_volume_caps_the_fill(db_url: str) -> None:
    pb = open_paper_broker(db_url, limits=LIMITS, max_volume_participation=0.001)
    try:
        pb.on_bar("NQ", bar(et(10, 0), 20000, 20002, 19998, 20000))
        rec = place(pb, side="buy", quantity=2)
        pb.on_bar("NQ", bar(et(10, 5), 20000, 20002, 19998, 20000, volume=1000))
        mid = pb.order(rec.client_order_id)
        pb.on_bar("NQ", bar(et(10, 10), 20002, 20004, 20000, 20003, volume=1000))
        done = pb.order(rec.client_order_id)
    finally:
        pb.close()
    assert (mid.status, mid.filled_quantity) == (OrderStatus.PARTIALLY_FILLED, 1)
    assert (done.status, done.filled_quantity, done.avg_fill_price) == (OrderStatus.FILLED, 2, 20001.25)


def test_day_order_expires_at_the_session_close_gtc_stays(pb: PaperBroker) -> None:
    day = place(pb, side="buy", quantity=1, order_type="limit", limit_price=19900.0)
    gtc = place(pb, side="buy", quantity=1, order_type="limit", limit_price=19900.0, time_in_force="gtc")
    pb.on_bar("NQ", bar(et(16, 55), 20000, 20001, 19999, 20000))
    assert pb.order(day.client_order_id).status is OrderStatus.ACCEPTED
    pb.on_bar("NQ", bar(et(18, 0), 20000, 20001, 19999, 20000))
    assert pb.order(day.client_order_id).status is OrderStatus.EXPIRED
    assert pb.order(gtc.client_order_id).status is OrderStatus.ACCEPTED


def test_ioc_order_not_filled_on_its_first_bar_expires(pb: PaperBroker) -> None:
    rec = place(pb, side="buy", quantity=1, order_type="limit", limit_price=19900.0, time_in_force="ioc")
    pb.on_bar("NQ", bar(et(10, 5), 20000, 20001, 19999, 20000))
    assert pb.order(rec.client_order_id).status is OrderStatus.EXPIRED


def test_cancel_then_cancel_again_returns_the_cancelled_order(pb: PaperBroker) -> None:
    rec = place(pb, side="buy", quantity=1, order_type="limit", limit_price=19900.0)
    first = pb.cancel(rec.client_order_id)
    second = pb.cancel(rec.client_order_id)
    assert first.status is second.status is OrderStatus.CANCELLED
    assert events(pb, rec.client_order_id) == ["new", "accepted", "cancelled"]
    assert pb.on_bar("NQ", bar(et(10, 5), 19890, 19895, 19880, 19890)) == []


def test_cancelling_a_filled_order_is_refused(pb: PaperBroker) -> None:
    rec = place(pb, side="buy", quantity=1)
    pb.on_bar("NQ", bar(et(10, 5), 20000, 20001, 19999, 20000))
    with pytest.raises(InvalidOrderError, match="already filled"):
        pb.cancel(rec.client_order_id)


# ---- brackets -----------------------------------------------------------------------------------


def test_bracket_target_fills_and_the_stop_is_cancelled(pb: PaperBroker) -> None:
    """Buy at 20000.25 (open + 1 tick); stop 20 ticks = 19995.25, target 40 ticks = 20010.25."""
    rec = place(pb, side="buy", quantity=1, bracket=Bracket(stop_loss_ticks=20, take_profit_ticks=40))
    pb.on_bar("NQ", bar(et(10, 5), 20000, 20003, 19999, 20002))
    (fill,) = pb.on_bar("NQ", bar(et(10, 10), 20002, 20015, 20001, 20012))
    coid = rec.client_order_id
    assert fill.price == 20010.25
    assert pb.order(coid + ".tp").status is OrderStatus.FILLED
    assert pb.order(coid + ".sl").status is OrderStatus.CANCELLED
    assert pb.portfolio()["positions"]["NQ"]["realized_pnl_usd"] == 200.0


def test_bracket_stop_gapped_through_fills_at_the_open_and_cancels_the_target(pb: PaperBroker) -> None:
    rec = place(pb, side="buy", quantity=1, bracket=Bracket(stop_loss_ticks=20, take_profit_ticks=40))
    pb.on_bar("NQ", bar(et(10, 5), 20000, 20003, 19999, 20002))
    (fill,) = pb.on_bar("NQ", bar(et(10, 10), 19980, 19985, 19975, 19982))
    assert fill.price == 19979.75  # the gap open − 1 tick, not the stop at 19995.25
    assert pb.order(rec.client_order_id + ".tp").status is OrderStatus.CANCELLED


def test_bar_touching_both_legs_fills_the_stop_first(pb: PaperBroker) -> None:
    rec = place(pb, side="sell", quantity=1, bracket=Bracket(stop_loss_ticks=20, take_profit_ticks=20))
    pb.on_bar("NQ", bar(et(10, 5), 20000, 20001, 19999, 20000))  # short at 19999.75
    (fill,) = pb.on_bar("NQ", bar(et(10, 10), 20000, 20010, 19990, 20000))
    assert fill.client_order_id == rec.client_order_id + ".sl"
    assert fill.price == 20005.0  # stop 20004.75 + 1 tick


# ---- idempotency and risk ---------------------------------------------------------------------------


def test_same_client_order_id_twice_returns_the_first_and_fills_once(pb: PaperBroker) -> None:
    order = Order(side="buy", quantity=1, client_order_id="dup-1")
    first = pb.submit(order, pb.check(order))
    second = pb.submit(order, pb.check(order))
    pb.on_bar("NQ", bar(et(10, 5), 20000, 20001, 19999, 20000))
    third = pb.submit(order, pb.check(order))
    assert first.client_order_id == second.client_order_id == third.client_order_id
    assert not first.duplicate and second.duplicate and third.duplicate
    assert second.side == "buy" and third.status is OrderStatus.FILLED
    assert len(pb.fills()) == 1 and stored_orders(pb) == 1


def test_risk_denied_order_is_recorded_with_reasons_and_never_fills(db_url: str) -> None:
    pb = open_paper_broker(db_url, limits=RiskLimits(require_stop_loss=True, max_orders_per_minute=None))
    try:
        pb.on_bar("NQ", bar(et(10, 0), 20000, 20002, 19998, 20000))
        rec = place(pb, side="buy", quantity=1)
        fills = pb.on_bar("NQ", bar(et(10, 5), 20000, 20001, 19999, 20000))
        stored = pb.order(rec.client_order_id)
    finally:
        pb.close()
    assert rec.status is OrderStatus.REJECTED and fills == []
    assert [r.code for r in stored.reasons or []] == ["stop_loss_required"]


def test_order_without_a_verdict_is_rejected(pb: PaperBroker) -> None:
    rec = pb.submit(Order(side="buy", quantity=1), None)
    assert rec.status is OrderStatus.REJECTED
    assert rec.reasons and rec.reasons[0].code == "risk_verdict_missing"


def test_verdict_for_another_quantity_is_rejected(pb: PaperBroker) -> None:
    verdict = pb.check(Order(side="buy", quantity=1))
    rec = pb.submit(Order(side="buy", quantity=3), verdict)
    assert rec.reasons and rec.reasons[0].code == "verdict_mismatch"


def test_forged_approval_is_overruled_by_the_brokers_own_check(pb: PaperBroker) -> None:
    forged = RiskVerdict(approved=True, adjusted_contracts=50, requested_contracts=50)
    rec = pb.submit(Order(side="buy", quantity=50, bracket=Bracket(stop_loss_ticks=4000)), forged)
    assert rec.status is OrderStatus.REJECTED
    assert rec.reasons and {r.code for r in rec.reasons} >= {"daily_loss_room"}


def test_size_limit_reduces_the_order(pb: PaperBroker) -> None:
    """Notional ≤ $1,500,000 at 20000 × $20 = $400,000 per NQ → 3 contracts (3.75 rounded down)."""
    rec = place(pb, side="buy", quantity=6)
    assert (rec.status, rec.quantity, rec.requested_quantity) == (OrderStatus.ACCEPTED, 3, 6)
    assert rec.reasons and "max_notional" in {r.code for r in rec.reasons}


# ---- bad input changes nothing ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("order", "error", "match"),
    [
        ({"symbol": "XX", "side": "buy", "quantity": 1}, UnknownSymbolError, "unknown symbol"),
        (
            {"side": "buy", "quantity": 1, "order_type": "limit", "limit_price": 19990.1},
            InvalidOrderError,
            "tick",
        ),
        ({"side": "buy", "quantity": 0}, InvalidOrderError, "quantity"),
        ({"side": "buy", "quantity": -2}, InvalidOrderError, "quantity"),
        (
            {"side": "buy", "quantity": 1, "order_type": "stop", "stop_price": 19990.0},
            InvalidOrderError,
            "above",
        ),
        (
            {"side": "sell", "quantity": 1, "order_type": "stop", "stop_price": 20010.0},
            InvalidOrderError,
            "below",
        ),
    ],
)
def test_bad_order_is_a_typed_error_and_stores_nothing(
    pb: PaperBroker, order: dict[str, Any], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        pb.submit(order, None)
    assert stored_orders(pb) == 0


def test_unknown_order_id_is_a_typed_error(pb: PaperBroker) -> None:
    with pytest.raises(NotFoundError, match="unknown order id 'nope'"):
        pb.cancel("nope")
    assert stored_orders(pb) == 0


# ---- positions and manage_position --------------------------------------------------------------


def test_positions_and_pnl_per_symbol_and_in_total(pb: PaperBroker) -> None:
    """Long 2 NQ @ 20000.25, mark 20010 → +$390; short 1 ES @ 4999.75, mark 4990 → +$487.50."""
    pb.on_bar("ES", bar(et(10, 0), 5000, 5001, 4999, 5000))
    place(pb, side="buy", quantity=2)
    place(pb, symbol="ES", side="sell", quantity=1)
    pb.on_bar("NQ", bar(et(10, 5), 20000, 20012, 19999, 20010))
    pb.on_bar("ES", bar(et(10, 5), 5000, 5001, 4988, 4990))
    p = pb.portfolio()
    assert (p["positions"]["NQ"]["quantity"], p["positions"]["NQ"]["avg_price"]) == (2, 20000.25)
    assert p["positions"]["NQ"]["unrealized_pnl_usd"] == 390.0
    assert p["positions"]["ES"]["unrealized_pnl_usd"] == 487.5
    assert p["total"]["unrealized_pnl_usd"] == 877.5
    assert p["total"]["commission_usd"] == 3 * 2.25
    assert p["equity_usd"] == 100_000 + 877.5 - 6.75


def _long_with_bracket(pb: PaperBroker, qty: int = 2) -> str:
    rec = place(pb, side="buy", quantity=qty, bracket=Bracket(stop_loss_ticks=20, take_profit_ticks=40))
    pb.on_bar("NQ", bar(et(10, 5), 20000, 20003, 19999, 20002))
    return rec.client_order_id


def test_move_stop_and_target(pb: PaperBroker) -> None:
    coid = _long_with_bracket(pb)
    pb.manage_position({"action": "move_stop", "symbol": "NQ", "price": 19998.0})
    pb.manage_position({"action": "move_target", "symbol": "NQ", "price": 20030.0})
    assert pb.order(coid + ".sl").stop_price == 19998.0
    assert pb.order(coid + ".tp").limit_price == 20030.0
    assert events(pb, coid + ".sl")[-1] == "modified"


def test_stop_moved_to_the_wrong_side_is_refused(pb: PaperBroker) -> None:
    _long_with_bracket(pb)
    with pytest.raises(InvalidOrderError, match="wrong side"):
        pb.manage_position({"action": "move_stop", "symbol": "NQ", "price": 20010.0})


def test_partial_close_shrinks_the_legs(pb: PaperBroker) -> None:
    coid = _long_with_bracket(pb, qty=3)
    pb.manage_position({"action": "partial_close", "symbol": "NQ", "quantity": 2})
    pb.on_bar("NQ", bar(et(10, 10), 20002, 20004, 20000, 20003))
    assert pb.portfolio()["positions"]["NQ"]["quantity"] == 1
    assert pb.order(coid + ".sl").quantity == 1 and pb.order(coid + ".tp").quantity == 1


def test_flatten_closes_the_position_and_cancels_the_legs(pb: PaperBroker) -> None:
    coid = _long_with_bracket(pb)
    request = ManagePosition(action="flatten", symbol="NQ")
    pb.manage_position(request)
    pb.manage_position(request)  # a retry does nothing twice
    pb.on_bar("NQ", bar(et(10, 10), 20002, 20004, 20000, 20003))
    assert pb.portfolio()["positions"]["NQ"]["quantity"] == 0
    assert pb.order(coid + ".sl").status is OrderStatus.CANCELLED
    assert len(pb.fills()) == 2


def test_flatten_all_closes_every_symbol(pb: PaperBroker) -> None:
    pb.on_bar("ES", bar(et(10, 0), 5000, 5001, 4999, 5000))
    place(pb, side="buy", quantity=1)
    place(pb, symbol="ES", side="sell", quantity=1)
    pb.on_bar("NQ", bar(et(10, 5), 20000, 20001, 19999, 20000))
    pb.on_bar("ES", bar(et(10, 5), 5000, 5001, 4999, 5000))
    pb.manage_position({"action": "flatten_all"})
    pb.on_bar("NQ", bar(et(10, 10), 20000, 20001, 19999, 20000))
    pb.on_bar("ES", bar(et(10, 10), 5000, 5001, 4999, 5000))
    assert {s: r["quantity"] for s, r in pb.portfolio()["positions"].items()} == {"NQ": 0, "ES": 0}


def test_managing_a_flat_symbol_is_a_typed_error(pb: PaperBroker) -> None:
    with pytest.raises(InvalidOrderError, match="no open NQ position"):
        pb.manage_position({"action": "partial_close", "symbol": "NQ", "quantity": 1})


def test_on_price_fills_a_market_order_at_that_price_plus_slippage(pb: PaperBroker) -> None:
    place(pb, side="sell", quantity=1)
    (fill,) = pb.on_price("NQ", 20003.0, et(10, 1))
    assert fill.price == 20002.75


def test_process_bars_works_a_frame_in_time_order(pb: PaperBroker) -> None:
    place(pb, side="buy", quantity=1, order_type="limit", limit_price=19995.0)
    index = pd.DatetimeIndex([et(10, 5), et(10, 10)])
    frame = pd.DataFrame(
        {
            "open": [20000, 19998],
            "high": [20001, 19999],
            "low": [19997, 19994],
            "close": [19998, 19996],
            "volume": [10, 10],
        },
        index=index,
    )
    (fill,) = pb.process_bars("NQ", frame)
    assert (fill.price, fill.time) == (19995.0, et(10, 10))
