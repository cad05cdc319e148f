"""``nq_ray.agents.service.halts``: the kill switch (persisted across a restart) and automatic halts."""

from __future__ import annotations

from typing import Any

import pytest

from nq_ray.agents.agents import RiskAgent
from nq_ray.agents.models import RiskAssessment
from nq_ray.agents.service import DeskHaltedError, LocalAgentHost, llms_down
from nq_ray.config import Settings
from tests.agents.deskkit import Clock, make_service, orders_for


async def test_kill_switch_cancels_flattens_halts_and_stays_halted_after_a_restart(
    ray_session: Any, settings: Settings, parts: Any
) -> None:
    registry, broker = parts
    svc = await make_service(settings, registry)
    out = await svc.run_once("NQ")
    working = ray_session.get(broker.orders.remote(open_only=True))
    killed = await svc.kill("test drill", who="ops")
    await svc.close()

    svc2 = await make_service(settings, registry)  # a new instance: state from the store
    try:
        status = await svc2.status()
        with pytest.raises(DeskHaltedError):
            await svc2.start()
        refused = await svc2.run_once("NQ")
        resumed = await svc2.resume(who="ops")
        kill_rec = await svc2.decision(killed["kill_record_id"])
    finally:
        await svc2.close()

    assert working and killed["halted"] and killed["flatten_error"] is None
    assert ray_session.get(broker.orders.remote(open_only=True)) == []
    (order,) = orders_for(broker, ray_session, f"desk-{out['decision_id']}")
    assert order.status.value == "cancelled"
    assert (
        status["halted"]
        and status["halt_reason"] == "kill switch: test drill"
        and status["halted_by"] == "ops"
    )
    # while halted the broker's gate (which reads the halt from the store) refuses the entry itself: the
    # cycle is recorded, the risk verdict names ``halted``, and nothing is sent
    assert refused["halted"] and refused["action"] == "none"
    assert "halted" in {r["code"] for r in refused["risk"]["verdict"]["reasons"]}
    assert not (refused["execution"] or {}).get("placed")
    assert orders_for(broker, ray_session, f"desk-{refused['decision_id']}") == []
    assert not resumed["halted"] and kill_rec["action"] == "kill" and kill_rec["decision"]["who"] == "ops"


class TrippedRisk(RiskAgent):
    """The risk engine's answer once its circuit breaker has tripped (losing streak)."""

    async def assess_trade(self, analysis: Any) -> RiskAssessment:
        verdict = {
            "approved": False,
            "adjusted_contracts": 0,
            "reasons": [{"code": "circuit_breaker", "message": "4 losing trades in a row (limit 4)"}],
        }
        return RiskAssessment(symbol="NQ", approved=False, contracts=0, reasons=["breaker"], verdict=verdict)


class TrippedHost(LocalAgentHost):
    def build(self, agent_type: str, agent_id: str, config: Any) -> Any:
        if agent_type == "risk":
            return TrippedRisk(self.tools, agent_id=agent_id, config=config)
        return super().build(agent_type, agent_id, config)


async def test_circuit_breaker_verdict_halts_the_desk_for_new_entries(settings: Settings, parts: Any) -> None:
    from nq_ray.agents.agents import LocalTools
    from nq_ray.store.repository import Repository

    repo = await Repository.connect(settings.store_url)
    clock = Clock()
    from nq_ray.llm.router import LLMRouter

    router = LLMRouter.from_config(settings.llm)
    host = TrippedHost(LocalTools(parts[0]), router, repo, clock)
    svc = await make_service(settings, parts[0], clock=clock, router=router, host=host)
    try:
        out = await svc.run_once("NQ")
        status = await svc.status()
        events = await svc.events_since(0)
    finally:
        await svc.close()
        await repo.close()

    assert out["auto_halt"].startswith("risk engine: circuit_breaker")
    assert status["halted"] and "4 losing trades" in status["halt_reason"] and status["halted_by"] == "desk"
    assert "halted" in [e["kind"] for e in events]


def test_llms_down_only_when_every_configured_llm_is_down() -> None:
    rules = {"name": "rules", "is_llm": False, "configured": True, "breaker": "closed"}
    up = {"name": "groq", "is_llm": True, "configured": True, "healthy": True, "breaker": "closed"}
    open_ = {"name": "vllm", "is_llm": True, "configured": True, "breaker": "open", "last_error": "503"}
    unconfigured = {"name": "openai", "is_llm": True, "configured": False, "breaker": "open"}

    assert llms_down([rules]) is None and llms_down([rules, unconfigured]) is None
    assert llms_down([rules, up, open_]) is None
    down = llms_down([rules, open_, unconfigured])
    assert down is not None and "vllm: 503" in down and "openai" not in down


def _unreachable(name: str) -> Any:
    """An OpenAI-compatible provider on a loopback port nothing listens on (bound, then closed)."""
    from nq_ray.llm.config import ProviderConfig
    from nq_ray.testing.instance import free_port

    return ProviderConfig(
        name=name,
        kind="external",
        base_url=f"http://127.0.0.1:{free_port()}/v1",
        model="nowhere",
        api_key="test-key",
        priority=10,
        timeout_s=2.0,
        max_retries=0,
    )


async def test_providers_never_reachable_degrade_the_desk_to_the_rules_analyst_and_never_halt_it(
    ray_session: Any, tmp_path: Any, nq_5m: Any
) -> None:
    from nq_ray.llm.config import LLMConfig
    from tests.agents.deskkit import RULES, broker_registry, make_settings

    chain = LLMConfig(providers=[_unreachable("far"), _unreachable("farther"), RULES], health_interval_s=0)
    settings = make_settings(tmp_path, chain)
    with broker_registry(ray_session, settings, nq_5m) as (registry, _broker):
        svc = await make_service(settings, registry)
        try:
            outs = [await svc.run_once("NQ") for _ in range(4)]  # enough failures to open the breakers
            status = await svc.status()
            record = await svc.decision(outs[-1]["decision_id"])
            events = [e for e in await svc.events_since(0) if e["kind"] == "decision"]
        finally:
            await svc.close()
        restarted = await make_service(settings, registry)  # a new session on the same store
        try:
            again = await restarted.run_once("NQ")
            status_after_restart = await restarted.status()
        finally:
            await restarted.close()

    assert [o["analysis"]["provider"] for o in outs] == ["rules"] * 4
    assert all(o["auto_halt"] is None and o["halted"] is None for o in outs)
    assert [p["breaker"] for p in status["llm"][:2]] == ["open", "open"]  # the old policy halted here
    assert not status["halted"] and status["halt_reason"] is None
    degraded = status["degraded"]
    assert degraded["reason"].startswith("no LLM provider has answered since the desk started")
    assert [p["name"] for p in degraded["providers"]] == ["far", "farther"]
    assert all(p["why"] and not p["reachable_before"] for p in degraded["providers"])
    assert record["decision"]["provider"] == "rules" and record["decision"]["auto_halt"] is None
    assert len(events) == 4 and events[-1]["degraded"] == outs[-1]["degraded"] == degraded
    assert again["auto_halt"] is None and not status_after_restart["halted"]
    assert status_after_restart["degraded"]["providers"][0]["name"] == "far"


def test_halt_on_llm_loss_is_a_desk_setting_on_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    from nq_ray.config import load_settings

    default = load_settings().desk.halt_on_llm_loss
    monkeypatch.setenv("NQ_DESK__HALT_ON_LLM_LOSS", "false")

    assert default is True and load_settings().desk.halt_on_llm_loss is False
