"""Fault tests of the desk on Ray: each agent actor (``agent-<id>``) and the ``trading_desk`` actor killed
mid-cycle. They restart, memory is intact, and no decision is lost or executed twice (checked against the
broker's orders by client order id)."""

from __future__ import annotations

import contextlib
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from nq_ray.config import Settings
from nq_ray.runtime.desk import get_or_create_desk
from nq_ray.testing.llm_server import ScriptedLLMServer
from nq_ray.testing.wait import await_until
from tests.agents.deskkit import analysis_requests, make_settings
from tests.agents.test_service_llm import VALID, llm_config
from tests.runtime.test_desk import restarted

AGENTS = ("analysis_agent", "risk_agent", "execution_agent")


@pytest.fixture
def slow_llm() -> Iterator[ScriptedLLMServer]:
    """An LLM that takes 1.5 s per answer: long enough to kill actors while a cycle waits on it."""
    with ScriptedLLMServer(default_text=VALID, latency_s=1.5) as s:
        yield s


@contextlib.contextmanager
def desk_on_ray(ray: Any, settings: Settings, nq_5m: Any) -> Iterator[tuple[Any, Any, str]]:
    """A desk actor over its own registry actor and the ``paper_broker`` actor (bar clock at the sample's
    last bar); everything is killed afterwards."""
    from nq_ray.runtime.broker import get_or_create_broker

    with contextlib.suppress(ValueError):  # a broker another test left behind has another store
        ray.kill(ray.get_actor("paper_broker", namespace="nq"), no_restart=True)
    broker = get_or_create_broker(settings, clock="bar")
    ray.get(broker.on_price.remote("NQ", float(nq_5m["close"].iloc[-1]), nq_5m.index[-1].to_pydatetime()))
    sfx = uuid.uuid4().hex[:8]
    desk = get_or_create_desk(
        settings, name=f"desk_{sfx}", registry_name=f"registry_{sfx}", agent_prefix=f"{sfx}-"
    )
    try:
        yield desk, broker, sfx
    finally:
        names = [f"desk_{sfx}", f"registry_{sfx}", "paper_broker", *(f"agent-{sfx}-{a}" for a in AGENTS)]
        for name in names:
            with contextlib.suppress(ValueError):
                ray.kill(ray.get_actor(name, namespace="nq"), no_restart=True)


async def _llm_asked(llm: ScriptedLLMServer, before: int) -> None:
    """Return once the LLM has a request beyond its first ``before`` (it answers 1.5 s later)."""
    await await_until(
        lambda: len(llm.requests) > before, timeout_s=30, interval_s=0.02, message="the cycle asked the LLM"
    )


def _check_orders(decisions: list[dict[str, Any]], orders: list[Any]) -> None:
    """Every buy/sell decision has exactly one broker order ``desk-<id>``; no other desk order exists."""
    desk_orders = Counter(o.client_order_id for o in orders if o.client_order_id.startswith("desk-"))
    wanted = {f"desk-{d['id']}" for d in decisions if d["action"] in ("buy", "sell")}
    assert wanted and set(desk_orders) == wanted and set(desk_orders.values()) == {1}


async def test_each_agent_actor_killed_mid_cycle_restarts_with_its_memory_and_nothing_lost_or_doubled(
    ray_session: Any, tmp_path: Path, nq_5m: Any, slow_llm: ScriptedLLMServer
) -> None:
    settings = make_settings(tmp_path, llm_config(slow_llm, timeout_s=10))
    with desk_on_ray(ray_session, settings, nq_5m) as (desk, broker, sfx):
        outs = [await desk.run_once.remote("NQ")]
        pids = {}
        for agent_id in AGENTS:
            handle = ray_session.get_actor(f"agent-{sfx}-{agent_id}", namespace="nq")
            before = (await handle.ready.remote())["pid"]
            asked = len(slow_llm.requests)
            cycle = desk.run_once.remote("NQ")
            await _llm_asked(slow_llm, asked)  # the analysis agent is waiting on the slow LLM
            ray_session.kill(handle, no_restart=False)
            outs.append(await cycle)  # the cycle completes on the restarted actor
            pids[agent_id] = (before, (await restarted(handle, before))["pid"])
        decisions = await desk.decisions.remote(limit=50)
        analysis = await desk.get_agent.remote("analysis_agent")
        orders = ray_session.get(broker.orders.remote())

    assert all(a != b for a, b in pids.values())
    # 4 cycles, and the analysis killed while waiting on the LLM asked again after its restart
    assert len(analysis_requests(slow_llm)) == len(outs) + 1
    assert sorted(d["id"] for d in decisions) == sorted(o["decision_id"] for o in outs)  # one per cycle
    assert all(o["analysis"]["provider"] == "scripted" for o in outs)
    memory = [m["value"]["decision_id"] for m in analysis["memory"] if m["kind"] == "decision"]
    assert sorted(memory) == sorted(o["decision_id"] for o in outs)  # written once each, kept over restarts
    _check_orders(decisions, orders)


async def test_the_desk_actor_killed_mid_cycle_restarts_with_its_state_and_loses_nothing(
    ray_session: Any, tmp_path: Path, nq_5m: Any, slow_llm: ScriptedLLMServer
) -> None:
    from ray.exceptions import RayActorError

    settings = make_settings(tmp_path, llm_config(slow_llm, timeout_s=10))
    with desk_on_ray(ray_session, settings, nq_5m) as (desk, broker, _sfx):
        first = await desk.run_once.remote("NQ")
        await desk.create_agent.remote("risk", {"tools": ["check_risk_limits"]}, "careful")
        await desk.set_approval_mode.remote(True)
        before = (await desk.ready.remote())["pid"]
        asked = len(slow_llm.requests)
        cycle = desk.run_once.remote("NQ")
        await _llm_asked(slow_llm, asked)  # the cycle is mid-analysis, waiting on the slow LLM
        ray_session.kill(desk, no_restart=False)
        with pytest.raises(RayActorError):
            await cycle
        await restarted(desk, before)
        kept = await desk.decisions.remote(limit=50)
        agents = [a["agent_id"] for a in await desk.list_agents.remote()]
        restored = await desk.status.remote()
        await desk.set_approval_mode.remote(False)
        again = await desk.run_once.remote("NQ")
        decisions = await desk.decisions.remote(limit=50)
        orders = ray_session.get(broker.orders.remote())

    assert [d["id"] for d in kept] == [first["decision_id"]]  # the cut cycle died before its decision
    assert len(analysis_requests(slow_llm)) == 3  # first, the cut cycle's (it was mid-analysis), again
    assert "careful" in agents and again["decision_id"] > first["decision_id"]
    assert restored["approval_mode"] and not restored["halted"]
    _check_orders(decisions, orders)
