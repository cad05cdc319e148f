"""Repository transactions on both real databases."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from sqlalchemy.exc import IntegrityError

from nq_ray.config import REDACTED, redact
from nq_ray.domain.audit import AuditRecord
from nq_ray.domain.orders import Fill, OrderStatus, OrderType, Position, Side
from nq_ray.store.records import (
    AccountSnapshot,
    FillRecord,
    OrderEvent,
    OrderRecord,
    PositionRecord,
    UnitOfWork,
)
from nq_ray.store.repository import Repository

T0 = datetime(2026, 3, 10, 14, 30, tzinfo=UTC)


@pytest.fixture
async def repo(db_url: str) -> AsyncIterator[Repository]:
    r = await Repository.connect(db_url)
    yield r
    await r.close()


def _order(coid: str = "a1", status: OrderStatus = OrderStatus.NEW, **kw: object) -> OrderRecord:
    base: dict[str, object] = dict(
        client_order_id=coid,
        symbol="NQ",
        side=Side.BUY,
        order_type=OrderType.MARKET,
        quantity=2,
        requested_quantity=2,
        status=status,
        created_at=T0,
        updated_at=T0,
    )
    base.update(kw)
    return OrderRecord.model_validate(base)


def _fill_unit(coid: str, fill_id: str, price: float = 20000.0) -> UnitOfWork:
    fill = Fill(
        client_order_id=coid,
        symbol="NQ",
        side=Side.BUY,
        quantity=2,
        price=price,
        time=T0,
        fill_id=fill_id,
        commission_usd=4.5,
    )
    pos = Position(symbol="NQ").apply(fill)
    return UnitOfWork(
        orders={coid: _order(coid, OrderStatus.FILLED, filled_quantity=2, avg_fill_price=price)},
        events=[OrderEvent(coid, "filled", OrderStatus.FILLED, T0)],
        fills=[FillRecord(fill, 0.0, "2026-03-10")],
        positions={"NQ": PositionRecord(pos, 4.5, T0)},
        account=AccountSnapshot(T0, 1e5, 1e5 - 4.5, 0.0, 4.5, 0.0, 1e5 - 4.5, 1e5),
    )


async def test_insert_order_commits_the_row_and_its_new_event(repo: Repository) -> None:
    stored, created = await repo.insert_order(_order(), OrderEvent("a1", "new", OrderStatus.NEW, T0))
    assert created and stored.client_order_id == "a1"
    assert (await repo.get_order("a1")) == _order()
    assert [e.event for e in await repo.order_events("a1")] == ["new"]


async def test_inserting_the_same_client_order_id_returns_the_first_order(repo: Repository) -> None:
    await repo.insert_order(_order(), OrderEvent("a1", "new", OrderStatus.NEW, T0))
    again, created = await repo.insert_order(
        _order(quantity=5, requested_quantity=5), OrderEvent("a1", "new", OrderStatus.NEW, T0)
    )
    assert not created and again.quantity == 2
    assert await repo.count_orders() == 1


async def test_a_fill_its_position_and_account_commit_together(repo: Repository) -> None:
    await repo.insert_order(_order(), OrderEvent("a1", "new", OrderStatus.NEW, T0))
    await repo.commit(_fill_unit("a1", "a1#2"))
    assert [f.fill.fill_id for f in await repo.fills()] == ["a1#2"]
    assert (await repo.positions())["NQ"].position.quantity == 2
    assert (await repo.latest_account()).balance_usd == 1e5 - 4.5  # type: ignore[union-attr]
    assert (await repo.get_order("a1")).status is OrderStatus.FILLED  # type: ignore[union-attr]


async def test_a_failing_unit_leaves_no_fill_position_or_account_behind(repo: Repository) -> None:
    """The second unit reuses a fill id: its order, position and account changes must all roll back."""
    await repo.insert_order(_order(), OrderEvent("a1", "new", OrderStatus.NEW, T0))
    await repo.insert_order(_order("b2"), OrderEvent("b2", "new", OrderStatus.NEW, T0))
    await repo.commit(_fill_unit("a1", "dup"))
    with pytest.raises(IntegrityError):
        await repo.commit(_fill_unit("b2", "dup", price=21000.0))
    assert len(await repo.fills()) == 1
    assert (await repo.positions())["NQ"].position.avg_price == 20000.0
    assert (await repo.get_order("b2")).status is OrderStatus.NEW  # type: ignore[union-attr]
    assert len(await repo.order_events("b2")) == 1


async def test_load_state_returns_open_orders_in_submission_order(repo: Repository) -> None:
    for coid, status in (("x", OrderStatus.ACCEPTED), ("y", OrderStatus.CANCELLED), ("z", OrderStatus.NEW)):
        await repo.insert_order(_order(coid, status), OrderEvent(coid, "new", status, T0))
    state = await repo.load_state()
    assert [o.client_order_id for o in state.open_orders] == ["x", "z"]


async def test_audit_log_redacts_secrets(repo: Repository) -> None:
    await repo.audit(
        AuditRecord(
            at=T0,
            who="mcp:alice",
            tool="place_order",
            arguments={"symbol": "NQ", "api_key": "sk-123", "nested": {"password": "pw"}},
            outcome="ok",
        )
    )
    (entry,) = await repo.audit_log()
    assert entry["arguments"] == {"symbol": "NQ", "api_key": REDACTED, "nested": {"password": REDACTED}}
    assert entry["who"] == "mcp:alice" and entry["at"] == T0


async def test_decisions_memories_backtests_and_config_changes_are_stored(repo: Repository) -> None:
    d = await repo.record_decision(at=T0, agent="analyst", symbol="NQ", inputs={"rsi": 71.2}, model="rules")
    m = await repo.add_memory(at=T0, agent="analyst", kind="lesson", content="fade the open gap")
    b = await repo.record_backtest_run(
        run_id="r1", created_at=T0, strategy="ema_cross", metrics={"sharpe": 1.1}
    )
    c = await repo.record_config_change(at=T0, actor="api", patch={"llm": {"openai_api_key": "sk"}})
    assert min(d, m, b, c) >= 1
    assert (await repo.memories("analyst"))[0]["content"] == "fade the open gap"
    assert await repo.forget_memory(m) and await repo.memories("analyst") == []


def test_redact_keeps_non_secrets() -> None:
    assert redact({"token": None, "symbol": "NQ", "sec": "x"}) == {
        "token": None,
        "symbol": "NQ",
        "sec": REDACTED,
    }


def _closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # released on exit: nothing listens there


async def test_unreachable_postgres_is_store_unavailable_not_a_driver_error() -> None:
    from nq_ray.errors import StoreUnavailableError

    url = f"postgresql+asyncpg://nq:secret-pw@127.0.0.1:{_closed_port()}/nq"
    repo = Repository(__import__("nq_ray.store.db", fromlist=["create_engine"]).create_engine(url))
    try:
        with pytest.raises(StoreUnavailableError, match="unavailable") as info:
            await repo.count_orders()
        assert "secret-pw" not in info.value.message and info.value.code == "store_unavailable"
    finally:
        await repo.close()


async def test_connect_to_unopenable_sqlite_is_store_unavailable(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from nq_ray.errors import StoreUnavailableError

    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    url = f"sqlite+aiosqlite:///{blocker / 'nq.db'}"
    with pytest.raises(StoreUnavailableError, match="NQ_STORE__URL"):
        await Repository.connect(url)
