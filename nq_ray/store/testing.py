"""Throw-away databases for tests and benchmarks: a fresh SQLite file or a fresh PostgreSQL database
(``nq_test_<random>``, created with the ``nq`` role's CREATEDB right and dropped afterwards)."""

from __future__ import annotations

import asyncio
import secrets
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

PG_ADMIN_URL = "postgresql://nq:nq@127.0.0.1:5432/nq"
PG_HOST, PG_PORT = "127.0.0.1", 5432


def port_open(host: str = PG_HOST, port: int = PG_PORT, timeout_s: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False


def ensure_postgres(services_sh: Path | None = None) -> None:
    """Start and provision the local PostgreSQL with ``services.sh postgres`` when its port is closed."""
    if port_open():
        return
    script = services_sh or Path(__file__).resolve().parents[3] / "shared" / "services.sh"
    subprocess.run(["bash", str(script), "postgres"], check=True, timeout=300)


async def _pg_admin(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(PG_ADMIN_URL)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@contextmanager
def temp_database(kind: str, tmp_dir: Path) -> Iterator[str]:
    """Yield the async SQLAlchemy URL of an empty database of ``kind`` (``sqlite`` or ``postgresql``)."""
    if kind == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_dir / f'nq_{secrets.token_hex(4)}.db'}"
        return
    if kind != "postgresql":
        raise ValueError(f"kind must be sqlite or postgresql, not {kind!r}")
    name = f"nq_test_{secrets.token_hex(6)}"
    asyncio.run(_pg_admin(f'CREATE DATABASE "{name}"'))
    try:
        yield f"postgresql+asyncpg://nq:nq@{PG_HOST}:{PG_PORT}/{name}"
    finally:
        asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
