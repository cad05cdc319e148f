"""Fixtures of the desk-service tests: temp settings, and the real tool registry over a paper broker actor."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from nq_ray.config import Settings
from nq_ray.tools.registry import ToolRegistry
from tests.agents.deskkit import broker_registry, make_settings


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path)


@pytest.fixture
def parts(ray_session: Any, settings: Settings, nq_5m: Any) -> Iterator[tuple[ToolRegistry, Any]]:
    with broker_registry(ray_session, settings, nq_5m) as p:
        yield p
