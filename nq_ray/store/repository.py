"""Repository functions over the store, each one explicit transaction.

``commit(unit)`` is the broker's one write path: a fill, its order, its position and the account
snapshot commit together or not at all. ``insert_order`` is the write-ahead step: the order row (and
its ``new`` event) is committed before the broker acts on it, and a second insert of the same client
order id returns the first row instead of a duplicate.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from nq_ray.config import redact, redact_url
from nq_ray.domain.audit import AuditRecord
from nq_ray.domain.orders import Fill, OrderStatus, Position, Side
from nq_ray.errors import StoreUnavailableError
from nq_ray.execution.records import (
    FLAT_FIELDS,
    AccountSnapshot,
    FillRecord,
    Mark,
    OrderEvent,
    OrderRecord,
    PositionRecord,
    StoredState,
    UnitOfWork,
)
from nq_ray.store.db import create_engine, migrate_async, session_factory
from nq_ray.store.models import (
    AccountSnapshotRow,
    AgentDecisionRow,
    AuditLogRow,
    BacktestRunRow,
    ConfigChangeRow,
    FillRow,
    MarketMarkRow,
    MemoryRow,
    OrderEventRow,
    OrderRow,
    PositionRow,
)

OPEN_STATUSES = (OrderStatus.NEW.value, OrderStatus.ACCEPTED.value, OrderStatus.PARTIALLY_FILLED.value)
_ORDER_FIELDS = FLAT_FIELDS  # the record's flat shape: one column each (the embedded order flattened)


def _to_row(rec: OrderRecord, row: OrderRow | None = None) -> OrderRow:
    row = row or OrderRow()
    data = rec.model_dump(mode="json")
    for name in _ORDER_FIELDS:
        value = getattr(rec, name) if name.endswith("_at") else data[name]
        setattr(row, name, value)
    return row


def _from_row(row: OrderRow) -> OrderRecord:
    return OrderRecord.model_validate({name: getattr(row, name) for name in _ORDER_FIELDS})


def _fill_from_row(row: FillRow) -> FillRecord:
    fill = Fill(
        client_order_id=row.client_order_id,
        symbol=row.symbol,
        side=Side(row.side),
        quantity=row.quantity,
        price=row.price,
        time=row.time,
        commission_usd=row.commission_usd,
        fill_id=row.fill_id,
    )
    return FillRecord(fill=fill, realized_pnl_usd=row.realized_pnl_usd, session_date=row.session_date)


def _snapshot_from_row(row: AccountSnapshotRow) -> AccountSnapshot:
    return AccountSnapshot(
        at=row.at,
        starting_balance_usd=row.starting_balance_usd,
        balance_usd=row.balance_usd,
        realized_pnl_usd=row.realized_pnl_usd,
        commission_usd=row.commission_usd,
        unrealized_pnl_usd=row.unrealized_pnl_usd,
        equity_usd=row.equity_usd,
        equity_high_usd=row.equity_high_usd,
        consecutive_losses=row.consecutive_losses,
        reason=row.reason,
    )


class Repository:
    """Async access to the store; every public method is one transaction."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._factory = session_factory(engine)

    @asynccontextmanager
    async def sessions(self) -> AsyncIterator[AsyncSession]:
        """A session; a database that cannot be reached (or refuses the write) surfaces as
        ``store_unavailable`` with nothing committed, never as a driver exception."""
        try:
            async with self._factory() as session:
                yield session
        except (OperationalError, InterfaceError, OSError) as exc:
            raise _unavailable(self.engine, exc) from exc

    @classmethod
    async def connect(cls, url: str, *, migrate: bool = True) -> Repository:
        """Open ``url`` and (by default) bring its schema up to date."""
        try:
            engine = create_engine(url)
        except OSError as exc:  # the SQLite file's directory cannot be created
            shown = redact_url(url)
            raise StoreUnavailableError(
                f"cannot open the store file for {shown}: {exc}; check NQ_STORE__URL", url=shown
            ) from exc
        if migrate:
            try:
                await migrate_async(engine)
            except (OperationalError, InterfaceError, OSError) as exc:
                await engine.dispose()
                raise _unavailable(engine, exc) from exc
        return cls(engine)

    async def close(self) -> None:
        await self.engine.dispose()

    # ---- orders: the write-ahead journal ---------------------------------------------------------

    async def insert_order(self, rec: OrderRecord, event: OrderEvent) -> tuple[OrderRecord, bool]:
        """Commit a new order and its first event; (stored order, True). When the client order id is
        already stored, nothing is written and the stored order comes back with False."""
        async with self.sessions() as s:
            existing = await s.scalar(select(OrderRow).where(OrderRow.client_order_id == rec.client_order_id))
            if existing is not None:
                return _from_row(existing), False
            s.add(_to_row(rec))
            await s.flush()
            s.add(_event_row(event))
            try:
                await s.commit()
            except IntegrityError:  # a concurrent insert of the same id won
                await s.rollback()
                stored = await self.get_order(rec.client_order_id)
                if stored is None:
                    raise
                return stored, False
        return rec, True

    async def commit(self, unit: UnitOfWork) -> None:
        """Write a unit of work in one transaction (all of it or, on any error, none of it)."""
        if not unit:
            return
        async with self.sessions() as s, s.begin():
            if unit.orders:
                rows = {
                    r.client_order_id: r
                    for r in await s.scalars(
                        select(OrderRow).where(OrderRow.client_order_id.in_(list(unit.orders)))
                    )
                }
                for coid, rec in unit.orders.items():
                    row = rows.get(coid)
                    if row is None:
                        s.add(_to_row(rec))
                    else:
                        _to_row(rec, row)
                await s.flush()
            for ev in unit.events:
                s.add(_event_row(ev))
            for fr in unit.fills:
                f = fr.fill
                s.add(
                    FillRow(
                        fill_id=f.fill_id,
                        client_order_id=f.client_order_id,
                        symbol=f.symbol,
                        side=f.side.value,
                        quantity=f.quantity,
                        price=f.price,
                        commission_usd=f.commission_usd,
                        realized_pnl_usd=fr.realized_pnl_usd,
                        time=f.time,
                        session_date=fr.session_date,
                    )
                )
            for sym, pr in unit.positions.items():
                p = pr.position
                pos = await s.get(PositionRow, sym)
                if pos is None:
                    pos = PositionRow(symbol=sym)
                    s.add(pos)
                pos.quantity = p.quantity
                pos.avg_price = p.avg_price
                pos.realized_pnl_usd = p.realized_pnl_usd
                pos.commission_usd = pr.commission_usd
                pos.updated_at = pr.updated_at or datetime.now(UTC)
            if unit.account is not None:
                a = unit.account
                s.add(AccountSnapshotRow(**a.__dict__))
            for sym, m in unit.marks.items():
                mark = await s.get(MarketMarkRow, sym)
                if mark is None:
                    s.add(MarketMarkRow(symbol=sym, bar_time=m.bar_time, close=m.close))
                else:
                    mark.bar_time, mark.close = m.bar_time, m.close

    async def get_order(self, client_order_id: str) -> OrderRecord | None:
        async with self.sessions() as s:
            row = await s.scalar(select(OrderRow).where(OrderRow.client_order_id == client_order_id))
            return None if row is None else _from_row(row)

    async def list_orders(
        self, *, statuses: Iterable[str] | None = None, symbol: str | None = None
    ) -> list[OrderRecord]:
        """Orders in submission order, optionally only those in ``statuses`` / of ``symbol``."""
        q = select(OrderRow).order_by(OrderRow.id)
        if statuses is not None:
            q = q.where(OrderRow.status.in_([str(x) for x in statuses]))
        if symbol is not None:
            q = q.where(OrderRow.symbol == symbol)
        async with self.sessions() as s:
            return [_from_row(r) for r in await s.scalars(q)]

    async def order_events(self, client_order_id: str) -> list[OrderEvent]:
        q = select(OrderEventRow).where(OrderEventRow.client_order_id == client_order_id)
        async with self.sessions() as s:
            return [
                OrderEvent(r.client_order_id, r.event, OrderStatus(r.status), r.at, r.details)
                for r in await s.scalars(q.order_by(OrderEventRow.id))
            ]

    async def count_orders(self) -> int:
        async with self.sessions() as s:
            return int(await s.scalar(select(func.count()).select_from(OrderRow)) or 0)

    async def fills(self, *, symbol: str | None = None, session_date: str | None = None) -> list[FillRecord]:
        q = select(FillRow).order_by(FillRow.id)
        if symbol is not None:
            q = q.where(FillRow.symbol == symbol)
        if session_date is not None:
            q = q.where(FillRow.session_date == session_date)
        async with self.sessions() as s:
            return [_fill_from_row(r) for r in await s.scalars(q)]

    async def positions(self) -> dict[str, PositionRecord]:
        async with self.sessions() as s:
            return {
                r.symbol: PositionRecord(
                    Position(
                        symbol=r.symbol,
                        quantity=r.quantity,
                        avg_price=r.avg_price,
                        realized_pnl_usd=r.realized_pnl_usd,
                    ),
                    commission_usd=r.commission_usd,
                    updated_at=r.updated_at,
                )
                for r in await s.scalars(select(PositionRow))
            }

    async def latest_account(self) -> AccountSnapshot | None:
        async with self.sessions() as s:
            row = await s.scalar(select(AccountSnapshotRow).order_by(AccountSnapshotRow.id.desc()).limit(1))
            return None if row is None else _snapshot_from_row(row)

    async def marks(self) -> dict[str, Mark]:
        async with self.sessions() as s:
            return {
                r.symbol: Mark(r.symbol, r.bar_time, r.close) for r in await s.scalars(select(MarketMarkRow))
            }

    async def recent_order_times(self, since: datetime) -> list[datetime]:
        """Creation times of the accepted entry and closing orders since ``since`` (the order-rate limit)."""
        q = select(OrderRow.created_at).where(
            OrderRow.created_at >= since,
            OrderRow.role.in_(("entry", "close")),
            OrderRow.status != OrderStatus.REJECTED.value,
        )
        async with self.sessions() as s:
            return list(await s.scalars(q))

    async def load_state(
        self, *, session_date: str | None = None, since: datetime | None = None
    ) -> StoredState:
        """Everything a restarting broker needs (see ``StoredState``)."""
        recent = await self.recent_order_times(since) if since is not None else []
        return StoredState(
            open_orders=await self.list_orders(statuses=OPEN_STATUSES),
            positions=await self.positions(),
            account=await self.latest_account(),
            marks=await self.marks(),
            session_fills=await self.fills(session_date=session_date) if session_date else [],
            recent_order_times=recent,
        )

    # ---- records for later issues -------------------------------------------------------------------

    async def record_decision(
        self,
        *,
        at: datetime,
        agent: str,
        symbol: str | None = None,
        action: str | None = None,
        inputs: dict[str, Any] | None = None,
        prompt: str | None = None,
        model: str | None = None,
        raw_output: str | None = None,
        decision: dict[str, Any] | None = None,
    ) -> int:
        """Store an agent decision with its inputs; returns its id."""
        row = AgentDecisionRow(
            at=at,
            agent=agent,
            symbol=symbol,
            action=action,
            inputs=inputs,
            prompt=prompt,
            model=model,
            raw_output=raw_output,
            decision=decision,
        )
        return await self._add(row)

    async def add_memory(
        self, *, at: datetime, agent: str, kind: str, content: str, meta: dict[str, Any] | None = None
    ) -> int:
        return await self._add(MemoryRow(at=at, agent=agent, kind=kind, content=content, meta=meta))

    async def memories(self, agent: str, *, kind: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        q = select(MemoryRow).where(MemoryRow.agent == agent)
        if kind is not None:
            q = q.where(MemoryRow.kind == kind)
        async with self.sessions() as s:
            rows = await s.scalars(q.order_by(MemoryRow.id.desc()).limit(limit))
            return [
                {
                    "id": r.id,
                    "at": r.at,
                    "agent": r.agent,
                    "kind": r.kind,
                    "content": r.content,
                    "meta": r.meta,
                }
                for r in rows
            ]

    async def forget_memory(self, memory_id: int) -> bool:
        async with self.sessions() as s, s.begin():
            res = await s.execute(delete(MemoryRow).where(MemoryRow.id == memory_id))
            return bool(res.rowcount)  # type: ignore[attr-defined]  # a DELETE gives a CursorResult

    async def record_backtest_run(
        self,
        *,
        run_id: str,
        created_at: datetime,
        strategy: str,
        symbol: str | None = None,
        status: str = "done",
        config: dict[str, Any] | None = None,
        metrics: dict[str, Any] | None = None,
    ) -> int:
        row = BacktestRunRow(
            run_id=run_id,
            created_at=created_at,
            strategy=strategy,
            symbol=symbol,
            status=status,
            config=config,
            metrics=metrics,
        )
        return await self._add(row)

    async def record_config_change(self, *, at: datetime, actor: str, patch: dict[str, Any]) -> int:
        """Store a settings patch with its secrets redacted."""
        return await self._add(ConfigChangeRow(at=at, actor=actor, patch=redact(patch)))

    async def audit(self, record: AuditRecord) -> int:
        """Append a tool call to the audit log, ``bounded()``: secret-looking arguments redacted."""
        return await self._add(_audit_row(record))

    async def audit_many(self, records: list[AuditRecord]) -> int:
        """Append a batch of tool calls in one transaction; the number written."""
        rows = [_audit_row(r) for r in records]
        async with self.sessions() as s, s.begin():
            s.add_all(rows)
        return len(rows)

    async def audit_log(self, *, limit: int = 100) -> list[dict[str, Any]]:
        async with self.sessions() as s:
            rows = await s.scalars(select(AuditLogRow).order_by(AuditLogRow.id.desc()).limit(limit))
            return [
                {
                    "at": r.at,
                    "who": r.who,
                    "tool": r.tool,
                    "arguments": r.arguments,
                    "outcome": r.outcome,
                    "error_code": r.error_code,
                }
                for r in rows
            ]

    async def _add(self, row: Any) -> int:
        async with self.sessions() as s, s.begin():
            s.add(row)
            await s.flush()
            return int(row.id)


def _audit_row(record: AuditRecord) -> AuditLogRow:
    return AuditLogRow(**record.bounded().model_dump())


def _unavailable(engine: AsyncEngine, exc: BaseException) -> StoreUnavailableError:
    url = engine.url.render_as_string(hide_password=True)
    return StoreUnavailableError(
        f"the store at {url} is unavailable ({type(exc).__name__}: {str(exc).splitlines()[0][:200]}); "
        "nothing was committed — check NQ_STORE__URL and that the database is running",
        url=url,
    )


def _event_row(ev: OrderEvent) -> OrderEventRow:
    return OrderEventRow(
        client_order_id=ev.client_order_id,
        event=ev.event,
        status=ev.status.value,
        at=ev.at,
        details=ev.details,
    )


_SHARED: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, tuple[asyncio.Lock, dict[str, Repository]]] = (
    weakref.WeakKeyDictionary()
)


async def shared_repository(url: str) -> Repository:
    """One ``Repository`` for ``url`` per event loop, connected (and migrated) on first use and kept for
    the loop's life (readers that answer many short calls: MCP resources, the elicitation guard). A
    store that cannot be reached raises and is tried again on the next call."""
    lock, repos = _SHARED.setdefault(asyncio.get_running_loop(), (asyncio.Lock(), {}))
    async with lock:
        if url not in repos:
            repos[url] = await Repository.connect(url)
        return repos[url]
