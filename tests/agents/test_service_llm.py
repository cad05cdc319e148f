"""The desk with a real OpenAI-compatible server (``nq_ray.testing.llm_server``): an LLM answers the
analysis; malformed, slow and failing answers fall back to the rules analyst (never traded on); the
per-agent daily budget is never exceeded; when every LLM is down the desk halts new entries."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from nq_ray.agents.models import MarketView
from nq_ray.llm.config import LLMConfig, ProviderConfig
from nq_ray.testing.llm_server import ScriptedLLMServer, Step
from tests.agents.deskkit import (
    RULES,
    analysis_requests,
    broker_registry,
    make_service,
    make_settings,
    orders_for,
)

VIEW = {
    "bias": "short",
    "confidence": 0.8,
    "key_levels": [27000.0],
    "invalidation": 27400.0,
    "horizon": "intraday",
    "reasoning": "scripted short view",
}
VALID = json.dumps(VIEW)


def llm_config(
    srv: ScriptedLLMServer, *, threshold: int = 10, timeout_s: float = 1.0, **provider: Any
) -> LLMConfig:
    scripted = ProviderConfig(
        name="scripted",
        kind="external",
        base_url=srv.base_url,
        model="scripted-model",
        api_key="test-key",
        priority=10,
        timeout_s=timeout_s,
        max_retries=0,
        **provider,
    )
    return LLMConfig(
        providers=[scripted, RULES],
        health_interval_s=0,
        breaker={"failure_threshold": threshold, "reset_timeout_s": 600},
    )


@pytest.fixture
def srv() -> Iterator[ScriptedLLMServer]:
    with ScriptedLLMServer(default_text=VALID) as s:
        yield s


def _server_tokens(srv: ScriptedLLMServer, texts: list[str]) -> int:
    """What the server reported as used, recomputed from what it received (its own formula)."""
    prompt = sum(sum(max(1, len(str(m["content"])) // 4) for m in r["messages"]) for r in srv.requests)
    return prompt + sum(max(1, len(t) // 4) for t in texts)


async def test_an_llm_view_drives_the_cycle_and_is_recorded_with_its_parameters(
    ray_session: Any, tmp_path: Path, nq_5m: Any, srv: ScriptedLLMServer
) -> None:
    settings = make_settings(tmp_path, llm_config(srv))
    with broker_registry(ray_session, settings, nq_5m) as (registry, _broker):
        svc = await make_service(settings, registry)
        try:
            await svc.create_agent("analysis", {"temperature": 0.0}, agent_id="cold")
            await svc.run_once("NQ")  # warm the memory, then a decision with temperature from config
            out = await svc.run_once("NQ")
            rec = await svc.decision(out["decision_id"])
            task = await svc.agent_task("cold", {"type": "market_analysis", "parameters": {"symbol": "NQ"}})
            await svc.create_agent(
                "analysis", {"provider": "scripted", "model": "other-model"}, agent_id="alt"
            )
            alt = await svc.agent_task("alt", {"type": "market_analysis", "parameters": {"symbol": "NQ"}})
        finally:
            await svc.close()

    assert rec["provider"] == "scripted" and rec["is_llm"] and rec["fallback"] is None
    assert rec["parsed"] == MarketView.model_validate(VIEW).model_dump(mode="json")
    assert rec["raw_output"] == VALID and rec["model"] == "scripted/scripted-model"
    assert rec["params"] == {"temperature": None, "max_tokens": None, "provider": None, "model": None}
    assert out["action"] == "sell" or not out["risk"]["approved"]
    assert srv.requests[-2]["temperature"] == 0.0 and task["result"]["provider"] == "scripted"
    assert task["result"]["params"]["temperature"] == 0.0
    assert srv.requests[-1]["model"] == "other-model" and alt["result"]["model"] == "other-model"
    # the agent's system message (the rendered analysis_base) follows the router's schema instruction
    assert any(
        "## Agent memory" in m["content"]
        for m in analysis_requests(srv)[1]["messages"]
        if m["role"] == "system"
    )


@pytest.mark.parametrize(
    "steps, why",
    [
        ((Step(text="I think it goes up!"), Step(text='{"bias": "up"}')), "bad_output"),
        ((Step(text=VALID, delay_s=4.0),), "timeout"),
        ((Step(status=500, text="boom"),), "server_error"),
    ],
    ids=["malformed", "slow", "failing"],
)
async def test_bad_llm_answers_fall_back_to_rules_and_are_never_traded(
    ray_session: Any, tmp_path: Path, nq_5m: Any, srv: ScriptedLLMServer, steps: tuple[Step, ...], why: str
) -> None:
    settings = make_settings(tmp_path, llm_config(srv))
    srv.push(*steps)
    with broker_registry(ray_session, settings, nq_5m) as (registry, broker):
        svc = await make_service(settings, registry)
        try:
            out = await svc.run_once("NQ")
            rec = await svc.decision(out["decision_id"])
            status = await svc.status()
        finally:
            await svc.close()
        orders = orders_for(broker, ray_session, f"desk-{out['decision_id']}")

    assert rec["provider"] == "rules" and rec["is_llm"] is False and "scripted" in rec["fallback"]
    assert rec["parsed"]["bias"] == "long" and rec["parsed"]["reasoning"] != VIEW["reasoning"]
    assert "goes up" not in json.dumps(rec["decision"]) and rec["model"].startswith("rules/")
    # the rules view (long) is what was traded, not anything the server said
    assert [o.side.value for o in orders] == (["buy"] if out["execution"]["placed"] else [])
    assert not status["halted"]


async def test_the_daily_token_budget_is_never_exceeded_then_the_agent_falls_back_and_says_so(
    ray_session: Any, tmp_path: Path, nq_5m: Any, srv: ScriptedLLMServer
) -> None:
    settings = make_settings(tmp_path, llm_config(srv))
    budget = 6000
    with broker_registry(ray_session, settings, nq_5m) as (registry, _broker):
        svc = await make_service(settings, registry)
        try:
            agent = await svc.create_agent(
                "analysis", {"budget": {"tokens_per_day": budget}}, agent_id="thrifty"
            )
            task = {"type": "market_analysis", "parameters": {"symbol": "NQ"}}
            answers = [(await svc.agent_task(agent["agent_id"], task))["result"] for _ in range(8)]
            status = await svc.status()
        finally:
            await svc.close()

    used = status["budgets"]["thrifty"]
    by_llm = [a for a in answers if a["is_llm"]]
    assert 1 <= len(by_llm) < len(answers)  # some calls fit, then the budget stopped them
    assert all(
        a["provider"] == "rules" and a["fallback"].startswith("budget:") for a in answers[len(by_llm) :]
    )
    assert _server_tokens(srv, [VALID] * len(srv.requests)) == used["tokens_used"] <= budget
    assert used["tokens_limit"] == budget and len(srv.requests) == len(by_llm)


async def test_the_daily_usd_budget_is_never_exceeded(
    ray_session: Any, tmp_path: Path, nq_5m: Any, srv: ScriptedLLMServer
) -> None:
    settings = make_settings(
        tmp_path, llm_config(srv, cost_per_1k_prompt_usd=0.01, cost_per_1k_completion_usd=0.03)
    )
    with broker_registry(ray_session, settings, nq_5m) as (registry, _broker):
        svc = await make_service(settings, registry)
        try:
            await svc.create_agent("analysis", {"budget": {"usd_per_day": 0.05}}, agent_id="cheap")
            task = {"type": "market_analysis", "parameters": {"symbol": "NQ"}}
            answers = [(await svc.agent_task("cheap", task))["result"] for _ in range(6)]
            used = (await svc.status())["budgets"]["cheap"]
        finally:
            await svc.close()

    assert any(a["is_llm"] for a in answers) and answers[-1]["fallback"].startswith("budget:")
    assert 0 < used["usd_used"] <= 0.05 and used["usd_limit"] == 0.05


async def test_when_every_llm_is_down_the_desk_halts_new_entries(
    ray_session: Any, tmp_path: Path, nq_5m: Any, srv: ScriptedLLMServer
) -> None:
    settings = make_settings(tmp_path, llm_config(srv, threshold=1))
    with broker_registry(ray_session, settings, nq_5m) as (registry, broker):
        svc = await make_service(settings, registry)
        try:
            up = await svc.run_once("NQ")
            srv.stop()  # the only LLM goes away
            down = await svc.run_once("NQ")
            status = await svc.status()
            llm = await svc.llm_status()
        finally:
            await svc.close()
        orders = orders_for(broker, ray_session, f"desk-{down['decision_id']}")

    assert up["analysis"]["is_llm"] and up["halted"] is None and up["degraded"] is None
    assert down["analysis"]["provider"] == "rules" and down["auto_halt"].startswith(
        "every LLM provider is down"
    )
    assert down["auto_halt"].endswith("lost since the desk started: scripted")
    assert down["risk"]["approved"] and not down["execution"]["placed"] and orders == []
    assert status["halted"] and status["halt_reason"] == down["auto_halt"] and llm["all_llms_down"]
    assert status["degraded"]["providers"][0]["reachable_before"]


async def test_with_halt_on_llm_loss_off_a_lost_llm_degrades_the_desk_and_a_restart_starts_afresh(
    ray_session: Any, tmp_path: Path, nq_5m: Any, srv: ScriptedLLMServer
) -> None:
    settings = make_settings(tmp_path, llm_config(srv, threshold=1))
    settings.desk.halt_on_llm_loss = False
    with broker_registry(ray_session, settings, nq_5m) as (registry, broker):
        svc = await make_service(settings, registry)
        try:
            up = await svc.run_once("NQ")
            srv.stop()  # the only LLM goes away
            down = await svc.run_once("NQ")
            status = await svc.status()
        finally:
            await svc.close()
        orders = orders_for(broker, ray_session, f"desk-{down['decision_id']}")
        settings.desk.halt_on_llm_loss = True  # the default again: a restart is a new session
        restarted = await make_service(settings, registry)
        try:
            again = await restarted.run_once("NQ")
            after = await restarted.status()
        finally:
            await restarted.close()

    assert up["analysis"]["is_llm"] and down["analysis"]["provider"] == "rules"
    assert down["auto_halt"] is None and down["halted"] is None and not status["halted"]
    assert down["degraded"]["reason"] == "LLM provider(s) scripted lost; the rules analyst decides"
    (lost,) = status["degraded"]["providers"]
    assert lost["name"] == "scripted" and lost["reachable_before"] and "scripted" in lost["why"]
    assert down["risk"]["approved"] and down["execution"]["placed"] and len(orders) == 1  # rules trade
    assert again["analysis"]["provider"] == "rules" and again["auto_halt"] is None
    assert not after["halted"] and not after["degraded"]["providers"][0]["reachable_before"]


async def test_apply_settings_rebuilds_the_llm_chain_live_and_refuses_bad_patches(
    ray_session: Any, tmp_path: Path, nq_5m: Any, srv: ScriptedLLMServer
) -> None:
    from nq_ray.errors import ConfigError

    settings = make_settings(tmp_path)  # rules only
    scripted = llm_config(srv).providers[0].model_dump(mode="json")
    scripted["api_key"] = "test-key"
    with broker_registry(ray_session, settings, nq_5m) as (registry, _broker):
        svc = await make_service(settings, registry)
        try:
            before = await svc.run_once("NQ")
            applied = await svc.apply_settings(
                {"llm": {"providers": [scripted, RULES.model_dump(mode="json")]}}
            )
            after = await svc.run_once("NQ")
            with pytest.raises(ConfigError):
                await svc.apply_settings({"llm": {"deadline_s": -1}})
            with pytest.raises(ConfigError):
                await svc.apply_settings({})
            status = await svc.status()
        finally:
            await svc.close()

    assert before["analysis"]["provider"] == "rules" and after["analysis"]["provider"] == "scripted"
    assert applied["applied"] == ["llm"] and [p["name"] for p in applied["llm"]] == ["scripted", "rules"]
    assert [p["name"] for p in status["llm"]] == ["scripted", "rules"]


async def test_events_reach_redis_subscribers_and_the_polling_buffer(
    ray_session: Any, tmp_path: Path, nq_5m: Any
) -> None:
    import asyncio

    import redis.asyncio as aioredis

    from nq_ray.runtime.desk import _redis_publisher

    url = "redis://127.0.0.1:6379/0"
    client = aioredis.from_url(url)
    pubsub = client.pubsub()
    await pubsub.subscribe("nq:events")
    settings = make_settings(tmp_path)
    with broker_registry(ray_session, settings, nq_5m) as (registry, _broker):
        svc = await make_service(settings, registry, publish=_redis_publisher(url))
        try:
            await svc.set_approval_mode(True)
            out = await svc.run_once("NQ")
            polled = await svc.events_since(0)
        finally:
            await svc.close()
    got: list[dict[str, Any]] = []
    for _ in range(50):
        msg = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.2)
        if msg is not None:
            got.append(json.loads(msg["data"]))
        if len(got) >= len(polled):
            break
        await asyncio.sleep(0)
    await pubsub.aclose()
    await client.aclose()

    kinds = [e["kind"] for e in polled]
    assert kinds == ["status", "decision", "approval_pending"] and [e["seq"] for e in polled] == [1, 2, 3]
    assert [m["type"] for m in got] == ["agent_update"] * 3 and [m["data"] for m in got] == polled
    assert polled[1]["decision_id"] == out["decision_id"] and polled[2]["approval"]["status"] == "pending"
