"""Real databases for the store tests: every test gets its own SQLite file or PostgreSQL database."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from nq_ray.store.testing import ensure_postgres, temp_database

SERVICES_SH = Path(__file__).resolve().parents[2].parent / "shared" / "services.sh"


@pytest.fixture(scope="session")
def postgres_server() -> None:
    ensure_postgres(SERVICES_SH)


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "postgresql":
        request.getfixturevalue("postgres_server")
    with temp_database(request.param, tmp_path) as url:
        yield url
