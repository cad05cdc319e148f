"""Orders, brackets, fills and positions."""

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from nq_ray.domain import Bracket, Fill, Order, Position, Side
from nq_ray.errors import UnknownSymbolError

T0 = datetime(2026, 3, 9, 14, 0, tzinfo=UTC)


def test_limit_price_off_tick_is_refused_with_nearest_valid_price() -> None:
    with pytest.raises(ValidationError, match="nearest valid price is 24000.0"):
        Order(side="buy", quantity=1, order_type="limit", limit_price=24000.1)


def test_symbol_alias_is_normalised() -> None:
    assert Order(symbol="NQ=F", side="sell", quantity=1).symbol == "NQ"


def test_unknown_symbol_is_a_typed_error() -> None:
    with pytest.raises(UnknownSymbolError):
        Order(symbol="XX", side="buy", quantity=1)


def test_zero_quantity_is_refused() -> None:
    with pytest.raises(ValidationError):
        Order(side="buy", quantity=0)


def test_limit_order_needs_a_price() -> None:
    with pytest.raises(ValidationError, match="limit_price"):
        Order(side="buy", quantity=1, order_type="limit")


def test_bracket_stop_on_wrong_side_is_refused() -> None:
    with pytest.raises(ValidationError, match="wrong side"):
        Order(
            side="buy",
            quantity=1,
            order_type="limit",
            limit_price=100.0,
            bracket=Bracket(stop_loss_price=101.0),
        )


def test_bracket_ticks_to_prices_for_a_short() -> None:
    """Short at 20000 with 40-tick stop and 80-tick target on NQ: stop 20010, target 19980."""
    b = Bracket(stop_loss_ticks=40, take_profit_ticks=80)
    assert b.stop_price(20000.0, Side.SELL, 0.25) == 20010.0
    assert b.target_price(20000.0, Side.SELL, 0.25) == 19980.0


def test_client_order_ids_are_unique() -> None:
    assert Order(side="buy", quantity=1).client_order_id != Order(side="buy", quantity=1).client_order_id


def test_fill_price_must_be_on_tick() -> None:
    with pytest.raises(ValidationError):
        Fill(client_order_id="a", symbol="NQ", side="buy", quantity=1, price=100.1, time=T0)


def _fill(side: str, qty: int, price: float) -> Fill:
    return Fill(client_order_id="x", symbol="NQ", side=side, quantity=qty, price=price, time=T0)


def test_position_round_trip_realises_points_times_point_value() -> None:
    """Buy 2 @ 20000, sell 2 @ 20010.25 → 10.25 × 20 × 2 = $410 realised, flat."""
    p = Position(symbol="NQ").apply(_fill("buy", 2, 20000.0)).apply(_fill("sell", 2, 20010.25))
    assert p.is_flat and p.realized_pnl_usd == 410.0


def test_position_flip_keeps_new_side_at_fill_price() -> None:
    """Long 1 @ 100, sell 3 @ 90 → realised (90 − 100) × 20 = −$200, now short 2 @ 90."""
    p = Position(symbol="NQ").apply(_fill("buy", 1, 100.0)).apply(_fill("sell", 3, 90.0))
    assert (p.quantity, p.avg_price, p.realized_pnl_usd) == (-2, 90.0, -200.0)


@given(
    st.lists(
        st.tuples(st.sampled_from(["buy", "sell"]), st.integers(1, 5), st.integers(40000, 120000)),
        min_size=1,
        max_size=20,
    )
)
def test_position_pnl_is_conserved(fills: list[tuple[str, int, int]]) -> None:
    """Realised + unrealised at any mark = Σ cash flows marked to that price (P&L conservation)."""
    p = Position(symbol="NQ")
    cash_pts = 0.0
    for side, qty, ticks in fills:
        price = ticks * 0.25
        p = p.apply(_fill(side, qty, price))
        cash_pts -= (1 if side == "buy" else -1) * qty * price
    mark = 25000.0
    expected = (cash_pts + p.quantity * mark) * 20.0
    assert p.realized_pnl_usd + p.unrealized_pnl_usd(mark) == pytest.approx(expected, abs=1e-6)
