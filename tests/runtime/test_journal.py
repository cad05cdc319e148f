"""The journal's blocking facade works from plain code and from code already inside an event loop."""

from __future__ import annotations

from datetime import UTC, datetime

from nq_ray.domain.orders import OrderStatus, OrderType, Side
from nq_ray.execution.records import OrderEvent, OrderRecord
from nq_ray.runtime.journal import Journal

T0 = datetime(2026, 3, 10, 14, 0, tzinfo=UTC)


def _rec(coid: str) -> OrderRecord:
    return OrderRecord(
        client_order_id=coid,
        symbol="NQ",
        side=Side.BUY,
        order_type=OrderType.MARKET,
        quantity=1,
        requested_quantity=1,
        created_at=T0,
        updated_at=T0,
    )


def test_record_new_commits_before_returning(db_url: str) -> None:
    j = Journal(db_url)
    try:
        stored, created = j.record_new(_rec("j1"), OrderEvent("j1", "new", OrderStatus.NEW, T0))
        assert created and j.get_order("j1") == stored
    finally:
        j.close()
    reopened = Journal(db_url)
    try:
        assert reopened.get_order("j1") is not None
    finally:
        reopened.close()


async def test_journal_is_usable_inside_a_running_event_loop(db_url: str) -> None:
    j = Journal(db_url)
    try:
        _, created = j.record_new(_rec("j2"), OrderEvent("j2", "new", OrderStatus.NEW, T0))
        assert created and j.load().open_orders[0].client_order_id == "j2"
    finally:
        j.close()
