"""``DeskActor``: the desk as a named, restartable Ray actor whose state is the store's decision log."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from nq_ray.config import Settings
from nq_ray.llm.config import LLMConfig, ProviderConfig
from nq_ray.runtime.desk import get_or_create_desk
from nq_ray.store.repository import Repository

RULES = ProviderConfig(name="rules", kind="rules", model="nq-rules-v1", priority=1000)


async def restarted(handle: Any, old_pid: int, timeout_s: float = 30.0) -> dict[str, Any]:
    """``ready()`` of the actor once a new process answers it."""
    from ray.exceptions import RayActorError

    deadline = time.monotonic() + timeout_s
    while True:
        try:
            info: dict[str, Any] = await handle.ready.remote()
            if info["pid"] != old_pid:
                return info
        except RayActorError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"the actor did not restart within {timeout_s} s")
        await asyncio.sleep(0.2)


async def test_desk_actor_analyses_through_the_registry_actor_and_recovers_from_the_store(
    ray_session: Any, tmp_path: Path
) -> None:
    settings = Settings(
        data={"data_dir": str(tmp_path / "data")}, llm=LLMConfig(providers=[RULES], health_interval_s=0)
    )
    suffix = uuid.uuid4().hex[:8]
    desk = get_or_create_desk(
        settings, name=f"desk_{suffix}", registry_name=f"registry_{suffix}", agent_prefix=f"{suffix}-"
    )
    repo = await Repository.connect(settings.store_url)
    try:
        analysis = await desk.execute_task.remote({"type": "market_analysis", "parameters": {"symbol": "NQ"}})
        decision_id = await repo.record_decision(
            at=datetime(2026, 4, 28, 12, tzinfo=UTC), agent="trading_desk", symbol="NQ", action="none"
        )
        before = await desk.ready.remote()
        ray_session.kill(desk, no_restart=False)  # the actor restarts and reads its state from the store
        after = await restarted(desk, before["pid"])
        last = await desk.last_decision.remote()
    finally:
        await repo.close()
        ray_session.kill(desk)
        ray_session.kill(ray_session.get_actor(f"registry_{suffix}", namespace="nq"))
        ray_session.kill(ray_session.get_actor(f"agent-{suffix}-analysis_agent", namespace="nq"))

    assert analysis["provider"] == "rules" and analysis["view"]["bias"] in ("long", "short", "flat")
    assert after["pid"] != before["pid"]
    assert last is not None and (last["id"], last["action"]) == (decision_id, "none")


async def test_an_agent_whose_registry_was_killed_for_good_works_over_the_new_one(
    ray_session: Any, tmp_path: Path
) -> None:
    """An operator's ``ray kill`` of the tool registry (no restart): the desk makes a new one under the
    name; the agent actors built over the dead handle build themselves again and answer."""
    from nq_ray.runtime.registry import get_or_create_registry

    settings = Settings(
        data={"data_dir": str(tmp_path / "data")}, llm=LLMConfig(providers=[RULES], health_interval_s=0)
    )
    suffix = uuid.uuid4().hex[:8]
    names = {"registry": f"registry_{suffix}", "agent": f"agent-{suffix}-analysis_agent"}
    desk = get_or_create_desk(settings, name=f"desk_{suffix}", registry_name=names["registry"])
    task = {"type": "market_analysis", "parameters": {"symbol": "NQ"}}
    try:
        first = await desk.execute_task.remote(task)
        ray_session.kill(ray_session.get_actor(names["registry"], namespace="nq"), no_restart=True)
        # the name is free once the old actor is dead; the next caller (the desk's tools) makes a new one
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if names["registry"] not in {a["name"] for a in ray_session.util.list_named_actors(True)}:
                break
            await asyncio.sleep(0.2)
        get_or_create_registry(settings, name=names["registry"])
        second = await desk.execute_task.remote(task)
    finally:
        ray_session.kill(desk)
        for name in names.values():
            with contextlib.suppress(ValueError):
                ray_session.kill(ray_session.get_actor(name, namespace="nq"))

    assert first["provider"] == second["provider"] == "rules"
    assert second["view"]["bias"] in ("long", "short", "flat")
