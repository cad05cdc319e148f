"""``nq_ray.agents.service.registry``: agents created, listed, restricted to their tools, deleted; and their
memory fed into the next prompt."""

from __future__ import annotations

import json
from typing import Any

import pytest

from nq_ray.agents.agents import MemoryManager, ToolNotAllowedError
from nq_ray.config import Settings
from nq_ray.errors import InvalidArgumentError, NotFoundError
from tests.agents.deskkit import Clock, make_service


async def test_agents_are_created_listed_restricted_to_their_tools_and_deleted(
    settings: Settings, parts: Any
) -> None:
    svc = await make_service(settings, parts[0])
    try:
        narrow = await svc.create_agent("analysis", {"tools": ["get_nq_price"], "temperature": 0.1})
        keeper = await svc.create_agent("execution", {}, agent_id="exec-two")
        with pytest.raises(ToolNotAllowedError) as refused:
            await svc.agent_task(
                narrow["agent_id"], {"type": "market_analysis", "parameters": {"symbol": "NQ"}}
            )
        summary = await svc.agent_task(
            "analysis_agent", {"type": "market_summary", "parameters": {"symbol": "NQ"}}
        )
        patterns = await svc.agent_task("analysis_agent", {"type": "pattern_recognition", "parameters": {}})
        position = await svc.agent_task(
            "exec-two", {"type": "manage_position", "parameters": {"action": "status"}}
        )
        got = await svc.get_agent("analysis_agent")
        for bad_type, bad_cfg in (
            ("trader", {}),
            ("analysis", {"budget": {"tokens_per_day": -1}}),
            ("analysis", {"provider": "nope"}),
            ("analysis", {"tools": ["launch_missiles"]}),
            ("analysis", {"colour": "red"}),
        ):
            with pytest.raises(InvalidArgumentError):
                await svc.create_agent(bad_type, bad_cfg)
        with pytest.raises(InvalidArgumentError):
            await svc.agent_task("analysis_agent", {"type": "fly"})
        with pytest.raises(InvalidArgumentError):
            await svc.delete_agent("analysis_agent")
        deleted = await svc.delete_agent(narrow["agent_id"])
        with pytest.raises(NotFoundError):
            await svc.get_agent(narrow["agent_id"])
    finally:
        await svc.close()
    svc2 = await make_service(settings, parts[0])
    try:
        ids = [a["agent_id"] for a in await svc2.list_agents()]
    finally:
        await svc2.close()

    assert refused.value.code == "tool_not_allowed" and "get_historical_data" in refused.value.message
    assert "NQ" in summary["result"]["summary"] and patterns["result"]["task"] == "pattern_recognition"
    assert position["result"]["data"]["action"] == "status"
    assert [d["action"] for d in got["recent_decisions"]][:2] == ["pattern_recognition", "market_summary"]
    assert deleted["deleted"] and narrow["agent_id"] not in ids
    assert ids[:3] == ["analysis_agent", "risk_agent", "execution_agent"] and keeper["agent_id"] in ids


async def test_each_decision_is_remembered_and_fed_into_the_next_prompt(
    settings: Settings, parts: Any
) -> None:
    clock = Clock()
    svc = await make_service(settings, parts[0], clock=clock)
    try:
        first = await svc.run_once("NQ")
        second = await svc.run_once("NQ")
        rec = await svc.decision(second["decision_id"])
        agent = await svc.get_agent("analysis_agent")
        analysis = svc._agent("analysis_agent")
        by_type = await analysis.get_memory_by_type("decision", 5)
        week = await MemoryManager(svc._repo, clock=clock).get_memory("analysis_agent", "decision", days=7)
        clock.advance(8 * 86400)
        later = await MemoryManager(svc._repo, clock=clock).get_memory("analysis_agent", "decision", days=7)
    finally:
        await svc.close()

    system = json.loads(rec["prompt"])[0]["content"]  # the rendered analysis_base
    assert "## Agent memory" in system and f'"decision_id": {first["decision_id"]}' in system
    assert rec["inputs"]["memory_ids"]
    assert [m["value"]["decision_id"] for m in by_type] == [second["decision_id"], first["decision_id"]]
    assert agent["memory"][0]["value"]["decision_id"] == second["decision_id"]
    assert len(week) == 2 and later == []


async def test_an_agents_prompt_overrides_pass_through_its_config_and_bad_ones_are_refused(
    settings: Settings, parts: Any
) -> None:
    svc = await make_service(settings, parts[0])
    try:
        made = await svc.create_agent(
            "analysis", {"prompts": {"market_summary": "Brief {symbol}: {market}"}}, agent_id="brief"
        )
        out = await svc.agent_task("brief", {"type": "market_summary", "parameters": {"symbol": "NQ"}})
        with pytest.raises(InvalidArgumentError, match="prompts: Value error, unknown prompt templates"):
            await svc.create_agent("analysis", {"prompts": {"custom_analysis": "x"}})
        with pytest.raises(InvalidArgumentError, match="does not parse"):
            await svc.create_agent("analysis", {"prompts": {"analysis_base": "{% for %}"}})
    finally:
        await svc.close()

    assert made["config"]["prompts"] == {"market_summary": "Brief {symbol}: {market}"}
    assert out["result"]["prompt"].startswith("Brief NQ: {") and out["result"]["template"] == "market_summary"
