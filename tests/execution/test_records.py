"""``OrderRecord`` embeds the domain ``Order`` (typed bracket, role and verdict) and keeps one flat shape
for the store's row and the JSON users see."""

from __future__ import annotations

from datetime import UTC, datetime

from nq_ray.domain.orders import Bracket, Order, OrderType, Side
from nq_ray.execution.records import FLAT_FIELDS, OrderRecord, OrderRole
from nq_ray.risk.gate import RiskReason, RiskVerdict

T0 = datetime(2026, 3, 9, 15, 0, tzinfo=UTC)


def _record() -> OrderRecord:
    order = Order(
        symbol="NQ",
        side=Side.BUY,
        quantity=3,
        order_type=OrderType.LIMIT,
        limit_price=20000.25,
        bracket=Bracket(stop_loss_ticks=8),
        client_order_id="abc",
        created_at=T0,
    )
    verdict = RiskVerdict(
        approved=True,
        reasons=[RiskReason(code="max_contracts_per_symbol", message="2 fit", action="reduce")],
        adjusted_contracts=2,
        requested_contracts=3,
    )
    return OrderRecord(order=order, quantity=2, verdict=verdict, created_at=T0, updated_at=T0)


def test_the_order_fields_read_through_and_the_request_keeps_its_quantity() -> None:
    rec = _record()

    assert (rec.client_order_id, rec.symbol, rec.side, rec.limit_price) == ("abc", "NQ", Side.BUY, 20000.25)
    assert (rec.requested_quantity, rec.quantity, rec.remaining) == (3, 2, 2)
    assert rec.bracket == Bracket(stop_loss_ticks=8) and rec.role is OrderRole.ENTRY
    assert rec.verdict is not None and rec.verdict.reduced


def test_json_is_the_flat_shape_and_reads_back_to_the_same_record() -> None:
    rec = _record()

    data = rec.model_dump(mode="json")

    assert tuple(data) == FLAT_FIELDS
    assert (data["requested_quantity"], data["quantity"], data["role"]) == (3, 2, "entry")
    assert data["bracket"]["stop_loss_ticks"] == 8
    assert data["verdict"]["reasons"][0]["code"] == "max_contracts_per_symbol"
    assert OrderRecord.model_validate(data) == rec


def test_the_json_schema_lists_the_flat_keys() -> None:
    schema = OrderRecord.model_json_schema(mode="serialization")

    assert tuple(schema["properties"]) == FLAT_FIELDS
    assert "order" not in schema["properties"] and "Order" not in schema.get("$defs", {})


def test_repriced_moves_a_price_of_the_embedded_order() -> None:
    later = datetime(2026, 3, 9, 15, 5, tzinfo=UTC)

    out = _record().repriced(later, limit_price=19999.0)

    assert (out.limit_price, out.updated_at, out.quantity) == (19999.0, later, 2)
