"""Engines and migrations on both real databases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, select, text

from nq_ray.errors import ConfigError
from nq_ray.store.db import (
    MIGRATIONS_DIR,
    create_engine,
    current_revision,
    downgrade_async,
    migrate,
    migrate_async,
    session_factory,
)
from nq_ray.store.models import Base, ConfigChangeRow

TABLES = {
    "orders",
    "order_events",
    "fills",
    "positions",
    "account_snapshots",
    "market_marks",
    "agent_decisions",
    "memories",
    "backtest_runs",
    "config_changes",
    "audit_log",
}


def test_migration_history_is_one_line() -> None:
    """One head: every migration builds on the one before (``get_current_head`` raises otherwise)."""
    script = ScriptDirectory(str(MIGRATIONS_DIR))
    assert len(script.get_heads()) == 1
    assert [r.revision for r in script.walk_revisions()][-1] == "0001"


async def test_migrations_from_empty_create_every_table(db_url: str) -> None:
    engine = create_engine(db_url)
    try:
        await migrate_async(engine)
        async with engine.connect() as conn:
            names = set(await conn.run_sync(lambda c: inspect(c).get_table_names()))
            rev = await current_revision(conn)
        assert names >= TABLES | set(Base.metadata.tables)
        assert rev == ScriptDirectory(str(MIGRATIONS_DIR)).get_current_head()
    finally:
        await engine.dispose()


async def test_migrated_schema_equals_the_models(db_url: str) -> None:
    engine = create_engine(db_url)
    try:
        await migrate_async(engine)
        async with engine.connect() as conn:
            diff = await conn.run_sync(
                lambda c: compare_metadata(
                    MigrationContext.configure(c, opts={"compare_type": True}), Base.metadata
                )
            )
        assert diff == []
    finally:
        await engine.dispose()


async def test_migrate_twice_is_a_no_op_and_downgrade_drops_everything(db_url: str) -> None:
    engine = create_engine(db_url)
    try:
        await migrate_async(engine)
        await migrate_async(engine)
        await downgrade_async(engine, "base")
        async with engine.connect() as conn:
            names = set(await conn.run_sync(lambda c: inspect(c).get_table_names()))
        assert not (TABLES & names)
    finally:
        await engine.dispose()


def test_blocking_migrate_works_without_an_event_loop(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'sub' / 'nq.db'}"
    migrate(url)
    assert (tmp_path / "sub" / "nq.db").is_file()


async def test_sqlite_runs_in_wal_mode(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'wal.db'}")
    try:
        async with engine.connect() as conn:
            mode = (await conn.execute(text("PRAGMA journal_mode"))).scalar()
            fk = (await conn.execute(text("PRAGMA foreign_keys"))).scalar()
        assert (mode, fk) == ("wal", 1)
    finally:
        await engine.dispose()


async def test_times_come_back_timezone_aware_in_utc(db_url: str) -> None:
    engine = create_engine(db_url)
    at = datetime(2026, 3, 10, 9, 30, tzinfo=timezone(timedelta(hours=-4)))
    try:
        await migrate_async(engine)
        async with session_factory(engine)() as s, s.begin():
            s.add(ConfigChangeRow(at=at, actor="t", patch={}))
        async with session_factory(engine)() as s:
            stored = (await s.scalars(select(ConfigChangeRow))).one()
        assert stored.at == at and stored.at.tzinfo is not None
        assert stored.at.utcoffset() == UTC.utcoffset(None)
    finally:
        await engine.dispose()


def test_unsupported_url_scheme_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="sqlite\\+aiosqlite"):
        create_engine("mysql+aiomysql://u:p@localhost/db")


def _migrate_in_child(url: str) -> str:
    try:
        migrate(url)
    except Exception as exc:  # returned, not raised: the parent reports every child's outcome
        return f"{type(exc).__name__}: {exc}"[:300]
    return "ok"


def test_processes_starting_together_on_a_fresh_database_all_migrate(db_url: str) -> None:
    """The broker, registry and desk actors each migrate the store as they start: at the same time, on a
    fresh database, none may fail with 'table already exists'."""
    import multiprocessing

    with multiprocessing.get_context("spawn").Pool(4) as pool:
        outcomes = pool.map(_migrate_in_child, [db_url] * 4)
    assert outcomes == ["ok"] * 4
