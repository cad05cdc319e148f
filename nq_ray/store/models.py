"""The store's tables as SQLAlchemy 2 typed ORM classes: one schema for SQLite and PostgreSQL.

Times are stored as UTC and come back timezone-aware on both databases (``UTCDateTime``). Prices and
money are floats (tick multiples; the domain rounds to the tick where an order is made). JSON columns
hold structured detail (risk reasons, agent inputs, tool arguments with secrets redacted).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator):
    """A timezone-aware datetime stored as UTC; naive values are refused, not guessed."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value} cannot be stored; pass a timezone-aware time")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime, dict[str, Any]: JSON, list[Any]: JSON}  # noqa: RUF012


class OrderRow(Base):
    """One order and its current state; ``order_events`` holds every transition."""

    __tablename__ = "orders"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    client_order_id: Mapped[str] = mapped_column(String(80), unique=True)
    symbol: Mapped[str] = mapped_column(String(16), index=True)
    side: Mapped[str] = mapped_column(String(4))
    order_type: Mapped[str] = mapped_column(String(16))
    quantity: Mapped[int] = mapped_column(Integer)
    requested_quantity: Mapped[int] = mapped_column(Integer)
    limit_price: Mapped[float | None] = mapped_column(Float)
    stop_price: Mapped[float | None] = mapped_column(Float)
    time_in_force: Mapped[str] = mapped_column(String(8))
    status: Mapped[str] = mapped_column(String(20))
    filled_quantity: Mapped[int] = mapped_column(Integer, default=0)
    avg_fill_price: Mapped[float | None] = mapped_column(Float)
    triggered: Mapped[bool] = mapped_column(Boolean, default=False)
    reduce_only: Mapped[bool] = mapped_column(Boolean, default=False)
    role: Mapped[str] = mapped_column(String(16), default="entry")
    parent_client_order_id: Mapped[str | None] = mapped_column(String(80), index=True)
    oco_group: Mapped[str | None] = mapped_column(String(80))
    bracket: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    reasons: Mapped[list[Any] | None] = mapped_column(JSON)
    verdict: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    source: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    expires_at: Mapped[datetime | None]


class OrderEventRow(Base):
    """A state transition of an order (new, accepted, partially_filled, filled, cancelled, ...)."""

    __tablename__ = "order_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    client_order_id: Mapped[str] = mapped_column(
        String(80), ForeignKey("orders.client_order_id", ondelete="CASCADE"), index=True
    )
    event: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(20))
    at: Mapped[datetime]
    details: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class FillRow(Base):
    """One execution; ``fill_id`` is deterministic (order id + sequence) so a replay cannot add it twice."""

    __tablename__ = "fills"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    fill_id: Mapped[str] = mapped_column(String(96), unique=True)
    client_order_id: Mapped[str] = mapped_column(
        String(80), ForeignKey("orders.client_order_id", ondelete="CASCADE"), index=True
    )
    symbol: Mapped[str] = mapped_column(String(16), index=True)
    side: Mapped[str] = mapped_column(String(4))
    quantity: Mapped[int] = mapped_column(Integer)
    price: Mapped[float] = mapped_column(Float)
    commission_usd: Mapped[float] = mapped_column(Float, default=0.0)
    realized_pnl_usd: Mapped[float] = mapped_column(Float, default=0.0)
    time: Mapped[datetime]
    session_date: Mapped[str] = mapped_column(String(10), index=True)


class PositionRow(Base):
    """The net position in one symbol (sum of its fills)."""

    __tablename__ = "positions"

    symbol: Mapped[str] = mapped_column(String(16), primary_key=True)
    quantity: Mapped[int] = mapped_column(Integer, default=0)
    avg_price: Mapped[float] = mapped_column(Float, default=0.0)
    realized_pnl_usd: Mapped[float] = mapped_column(Float, default=0.0)
    commission_usd: Mapped[float] = mapped_column(Float, default=0.0)
    updated_at: Mapped[datetime]


class AccountSnapshotRow(Base):
    """The account after a fill or a bar: balance = start + realised − commission; equity adds open P&L."""

    __tablename__ = "account_snapshots"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(index=True)
    starting_balance_usd: Mapped[float] = mapped_column(Float)
    balance_usd: Mapped[float] = mapped_column(Float)
    realized_pnl_usd: Mapped[float] = mapped_column(Float)
    commission_usd: Mapped[float] = mapped_column(Float)
    unrealized_pnl_usd: Mapped[float] = mapped_column(Float)
    equity_usd: Mapped[float] = mapped_column(Float)
    equity_high_usd: Mapped[float] = mapped_column(Float)
    consecutive_losses: Mapped[int] = mapped_column(Integer, default=0)
    reason: Mapped[str] = mapped_column(String(32), default="fill")


class MarketMarkRow(Base):
    """The last bar the broker processed per symbol: a replayed bar (time ≤ this) is ignored."""

    __tablename__ = "market_marks"

    symbol: Mapped[str] = mapped_column(String(16), primary_key=True)
    bar_time: Mapped[datetime]
    close: Mapped[float] = mapped_column(Float)


class AgentDecisionRow(Base):
    """An agent's decision with its inputs (data window, indicators, prompt, model, raw output)."""

    __tablename__ = "agent_decisions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(index=True)
    agent: Mapped[str] = mapped_column(String(64), index=True)
    symbol: Mapped[str | None] = mapped_column(String(16))
    action: Mapped[str | None] = mapped_column(String(32))
    inputs: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    prompt: Mapped[str | None] = mapped_column(Text)
    model: Mapped[str | None] = mapped_column(String(128))
    raw_output: Mapped[str | None] = mapped_column(Text)
    decision: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class MemoryRow(Base):
    """A long-lived agent memory (a lesson, a note about a level, a user preference)."""

    __tablename__ = "memories"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime]
    agent: Mapped[str] = mapped_column(String(64), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    content: Mapped[str] = mapped_column(Text)
    meta: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class BacktestRunRow(Base):
    """One backtest run: its configuration and its headline metrics."""

    __tablename__ = "backtest_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime]
    strategy: Mapped[str] = mapped_column(String(64))
    symbol: Mapped[str | None] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default="done")
    config: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    metrics: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class ConfigChangeRow(Base):
    """An accepted runtime settings change (patch with secrets redacted)."""

    __tablename__ = "config_changes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(64))
    patch: Mapped[dict[str, Any]] = mapped_column(JSON)


class LiveSettingsRow(Base):
    """The live settings overlay of this store's runtime (one row, key ``live``): every accepted live patch
    merged into one JSON merge patch, the start-up value of each patched key when it was patched (``base``),
    and a version that only ever grows. Written in the transaction that records the ``config_changes`` row
    (``nq_ray.store.live``)."""

    __tablename__ = "live_settings"

    key: Mapped[str] = mapped_column(String(32), primary_key=True)
    version: Mapped[int] = mapped_column(Integer)
    patch: Mapped[dict[str, Any]] = mapped_column(JSON)
    base: Mapped[dict[str, Any]] = mapped_column(JSON)
    change_id: Mapped[int | None] = mapped_column(Integer)
    updated_at: Mapped[datetime]


class AuditLogRow(Base):
    """A tool call: who, what (tool + redacted arguments), when, outcome."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(index=True)
    who: Mapped[str] = mapped_column(String(64))
    tool: Mapped[str] = mapped_column(String(64), index=True)
    arguments: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    outcome: Mapped[str] = mapped_column(String(16))
    error_code: Mapped[str | None] = mapped_column(String(64))
    duration_ms: Mapped[float | None] = mapped_column(Float)


Index("ix_orders_status_symbol", OrderRow.status, OrderRow.symbol)


class LLMUsageRow(Base):
    """One LLM call's accounting: tokens, latency and estimated cost per provider, model and caller."""

    __tablename__ = "llm_usage"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(index=True)
    provider: Mapped[str] = mapped_column(String(64))
    model: Mapped[str] = mapped_column(String(256))
    caller: Mapped[str] = mapped_column(String(128), index=True)
    task: Mapped[str] = mapped_column(String(64))
    prompt_tokens: Mapped[int] = mapped_column(Integer)
    completion_tokens: Mapped[int] = mapped_column(Integer)
    latency_s: Mapped[float] = mapped_column(Float)
    cost_usd: Mapped[float] = mapped_column(Float)
    ok: Mapped[bool] = mapped_column(Boolean)
    cached: Mapped[bool] = mapped_column(Boolean, default=False)


class LLMCacheRow(Base):
    """A cached LLM answer keyed by (provider, model, parameters hash, messages hash), for replays."""

    __tablename__ = "llm_cache"

    key: Mapped[str] = mapped_column(String(512), primary_key=True)
    provider: Mapped[str] = mapped_column(String(64))
    model: Mapped[str] = mapped_column(String(256))
    params_hash: Mapped[str] = mapped_column(String(64))
    messages_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]
    response: Mapped[dict[str, Any]] = mapped_column(JSON)


class JobRow(Base):
    """A background tool call (``POST /api/jobs``): its state, progress, result or typed error."""

    __tablename__ = "jobs"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    tool: Mapped[str] = mapped_column(String(64))
    who: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), index=True)
    arguments: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    progress: Mapped[float | None] = mapped_column(Float)
    total: Mapped[float | None] = mapped_column(Float)
    message: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(index=True)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    error: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class AgentConfigRow(Base):
    """A desk agent's configuration (type, provider, model, temperature, tools allowed, budget)."""

    __tablename__ = "agent_configs"

    agent_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    agent_type: Mapped[str] = mapped_column(String(16))
    config: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime]


class DeskStateRow(Base):
    """The trading desk's durable state by key (halted, approval mode, loop settings)."""

    __tablename__ = "desk_state"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[dict[str, Any]] = mapped_column(JSON)
    updated_at: Mapped[datetime]


class DeskApprovalRow(Base):
    """A risk-approved proposal waiting for a human yes (approval mode), and what became of it."""

    __tablename__ = "desk_approvals"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    decision_id: Mapped[int] = mapped_column(Integer, unique=True)
    symbol: Mapped[str] = mapped_column(String(16))
    proposal: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    assessment: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(16), index=True)
    decided_at: Mapped[datetime | None]
    decided_by: Mapped[str | None] = mapped_column(String(64))
    reason: Mapped[str | None] = mapped_column(Text)
    execution: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class AgentUsageRow(Base):
    """An agent's LLM usage per UTC day (tokens and estimated USD), for its daily budget."""

    __tablename__ = "agent_usage"

    agent_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    day: Mapped[str] = mapped_column(String(10), primary_key=True)
    tokens: Mapped[int] = mapped_column(Integer, default=0)
    usd: Mapped[float] = mapped_column(Float, default=0.0)
