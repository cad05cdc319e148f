"""Engines and sessions for the one schema on two databases: SQLite (aiosqlite, WAL) and PostgreSQL
(asyncpg). ``migrate(url)`` brings a database to the newest schema with the Alembic scripts shipped in
``nq_ray/store/migrations`` (no alembic.ini needed at run time).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import threading
from collections.abc import AsyncIterator, Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

from alembic import command
from alembic.config import Config
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, async_sessionmaker, create_async_engine

from nq_ray.errors import ConfigError

T = TypeVar("T")

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
_SCHEMES = ("sqlite+aiosqlite", "postgresql+asyncpg")


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    """WAL (readers never block the writer), FULL sync (a committed fill survives a power cut),
    foreign keys on, and a busy timeout instead of an immediate 'database is locked'."""
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=FULL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.close()


def create_engine(url: str, **kwargs: Any) -> AsyncEngine:
    """An async engine for ``url`` (``sqlite+aiosqlite:///path`` or ``postgresql+asyncpg://...``).

    SQLite: the file's directory is created and every connection gets the WAL pragmas."""
    u = make_url(url)
    if u.drivername not in _SCHEMES:
        raise ConfigError(
            f"store URL scheme {u.drivername!r} is not supported; use sqlite+aiosqlite:///<file> or "
            "postgresql+asyncpg://user:password@host:port/db",
            url=u.render_as_string(hide_password=True),
        )
    if u.drivername.startswith("sqlite"):
        if u.database and u.database != ":memory:":
            Path(u.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, **kwargs)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    return create_async_engine(url, **kwargs)


def session_factory(engine: AsyncEngine) -> async_sessionmaker:
    """Sessions that keep loaded rows usable after commit (``expire_on_commit=False``)."""
    return async_sessionmaker(engine, expire_on_commit=False)


def _alembic_config(connection: Any | None = None, url: str | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if url is not None:
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def _upgrade(sync_conn: Any, revision: str) -> None:
    command.upgrade(_alembic_config(sync_conn), revision)


def _downgrade(sync_conn: Any, revision: str) -> None:
    command.downgrade(_alembic_config(sync_conn), revision)


async def migrate_async(engine: AsyncEngine, revision: str = "head") -> None:
    """Upgrade the database behind ``engine`` to ``revision`` (idempotent: a current schema is left alone).

    Safe when several processes start on one fresh database at once (the broker, registry and desk
    actors do): PostgreSQL serialises them with a transaction-level advisory lock, SQLite with an
    exclusive lock on ``<file>.migrate.lock``; the later ones find the schema current and do nothing."""
    db = engine.url.database
    if engine.url.drivername.startswith("sqlite") and db and db != ":memory:":
        lock = Path(db).expanduser().with_name(Path(db).name + ".migrate.lock")
        async with _file_lock(lock), engine.begin() as conn:
            await conn.run_sync(_upgrade, revision)
        return
    async with engine.begin() as conn:
        if engine.url.drivername.startswith("postgresql"):
            await conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_MIGRATION_LOCK_ID})")
        await conn.run_sync(_upgrade, revision)


_MIGRATION_LOCK_ID = 0x6E71_7261_7900  # "nqray": any constant shared by every nq-ray process


@contextlib.asynccontextmanager
async def _file_lock(path: Path) -> AsyncIterator[None]:
    """An exclusive ``flock`` on ``path`` across processes (waited for on a worker thread)."""
    with path.open("a") as f:
        await asyncio.to_thread(fcntl.flock, f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


async def downgrade_async(engine: AsyncEngine, revision: str = "base") -> None:
    """Downgrade to ``revision`` (``base`` drops every table)."""
    async with engine.begin() as conn:
        await conn.run_sync(_downgrade, revision)


async def current_revision(conn: AsyncConnection) -> str | None:
    """The Alembic revision the database is at (None when never migrated)."""
    from alembic.runtime.migration import MigrationContext

    def rev(sync_conn: Any) -> str | None:
        return MigrationContext.configure(sync_conn).get_current_revision()

    return await conn.run_sync(rev)


def run_sync(coro_fn: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run an async function to completion from sync code (an actor's ``__init__``, a CLI), also when
    this thread already has a loop (then on a private thread); its result, or its exception raised."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro_fn())
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = asyncio.run(coro_fn())
        except BaseException as exc:
            box["error"] = exc

    t = threading.Thread(target=target)
    t.start()
    t.join()
    if "error" in box:
        raise box["error"]
    out: T = box["value"]
    return out


def migrate(url: str, revision: str = "head") -> None:
    """Create or upgrade the schema at ``url`` (blocking)."""

    async def go() -> None:
        engine = create_engine(url)
        try:
            await migrate_async(engine, revision)
        finally:
            await engine.dispose()

    run_sync(go)
