"""Fixtures of the runtime tests: settings on a temp data directory (its SQLite store included)."""

from __future__ import annotations

from pathlib import Path

import pytest

from nq_ray.config import Settings


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data={"data_dir": str(tmp_path / "data")})
