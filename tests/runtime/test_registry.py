"""``RegistryActor``: tools and jobs through the named actor; every call lands in the store's audit log."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from nq_ray.domain.audit import AuditRecord
from nq_ray.errors import UnknownSymbolError
from nq_ray.runtime.registry import get_or_create_registry
from nq_ray.tools.wire import as_nq_error
from tests.tools.conftest import EXPECTED_TOOLS


@pytest.fixture
def actor(ray_session: Any, settings):
    handle = get_or_create_registry(settings, name=f"tool_registry_test_{uuid.uuid4().hex[:8]}")
    yield handle
    ray_session.kill(handle)


async def test_call_through_the_actor_and_typed_errors_come_back(actor) -> None:
    out = await actor.call.remote("get_contract_info", {"symbol": "RTY"}, "agent-1")
    assert out["tick_value_usd"] == 5.0
    with pytest.raises(Exception) as e:
        await actor.call.remote("get_contract_info", {"symbol": "ZZ"}, "agent-1")
    err = as_nq_error(e.value)
    assert isinstance(err, UnknownSymbolError) and err.code == "unknown_symbol"
    assert (await actor.ping.remote())["tools"] == len(EXPECTED_TOOLS)  # a bad call did not kill the actor


async def test_every_call_is_audited_in_the_store(actor) -> None:
    await actor.call.remote("get_market_hours", {}, "agent-2")
    with pytest.raises(Exception, match="unknown_tool"):
        await actor.call.remote("nope", {"x": 1}, "agent-2")
    await actor.audit.remote(
        AuditRecord(
            at=datetime.now(UTC),
            who="replica",
            tool="get_contract_info",
            arguments={"symbol": "NQ", "api_key": "hidden"},
            outcome="ok",
            error_code=None,
            duration_ms=1.0,
        )
    )
    log = await actor.audit_log.remote(10)
    rows = [(r["who"], r["tool"], r["outcome"], r["error_code"]) for r in log]
    assert ("agent-2", "get_market_hours", "ok", None) in rows
    assert ("agent-2", "nope", "error", "unknown_tool") in rows
    forwarded = next(r for r in log if r["who"] == "replica")
    assert forwarded["arguments"]["api_key"] != "hidden"  # secrets redacted by the store


async def test_job_through_the_actor(actor) -> None:
    job = await actor.submit.remote("run_sweep", {"grid": {"fast": [5], "slow": [30, 50]}, "period": "5d"})
    for _ in range(600):
        state = await actor.job.remote(job["id"])
        if state["status"] in ("succeeded", "failed", "cancelled"):
            break
        await asyncio.sleep(0.1)
    assert state["status"] == "succeeded", state
    assert state["result"]["combinations"] == 2
