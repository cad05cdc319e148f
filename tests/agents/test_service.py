"""``DeskService`` in process (``nq_ray.agents.service``), over the real tool registry and a real paper broker
actor on a temp store: bad input to any part gets a typed error. Each part has its own tests in
``tests/agents/service/`` (decisions, approvals, halts and the kill switch, the loop, the agent registry,
the shared state)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from nq_ray.config import Settings
from nq_ray.errors import InvalidArgumentError, NotFoundError, UnknownSymbolError
from nq_ray.tools.registry import ToolRegistry
from tests.agents.deskkit import broker_registry, make_service, make_settings


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path)


@pytest.fixture
def parts(ray_session: Any, settings: Settings, nq_5m: Any) -> Iterator[tuple[ToolRegistry, Any]]:
    with broker_registry(ray_session, settings, nq_5m) as p:
        yield p


async def test_bad_input_gets_typed_errors(settings: Settings, parts: Any) -> None:
    svc = await make_service(settings, parts[0])
    try:
        with pytest.raises(UnknownSymbolError):
            await svc.run_once("NOPE")
        with pytest.raises(NotFoundError):
            await svc.decision(999_999)
        with pytest.raises(InvalidArgumentError):
            await svc.decisions(limit=0)
        with pytest.raises(InvalidArgumentError):
            await svc.start(cadence_s=0)
        with pytest.raises(InvalidArgumentError):
            await svc.set_windows("lunch")
        with pytest.raises(NotFoundError):
            await svc.approve(12345)
    finally:
        await svc.close()
