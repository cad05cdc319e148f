"""``DeskService`` in process, over the real tool registry and a real paper broker actor on a temp store:
the decision log, approval mode, the kill switch, the loop's cadence and windows, automatic halts,
agents and their tools, memory, and recovery of a cycle cut short."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from nq_ray.agents.agents import ExecutionAgent, MemoryManager, RiskAgent, ToolNotAllowedError
from nq_ray.agents.desk import TradingDesk
from nq_ray.agents.models import RiskAssessment
from nq_ray.agents.service import (
    ApprovalClosedError,
    DeskHaltedError,
    LocalAgentHost,
    in_window,
)
from nq_ray.config import Settings
from nq_ray.errors import InvalidArgumentError, NotFoundError, UnknownSymbolError
from nq_ray.tools.registry import ToolRegistry
from tests.agents.deskkit import Clock, broker_registry, make_service, make_settings, orders_for


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path)


@pytest.fixture
def parts(ray_session: Any, settings: Settings, nq_5m: Any) -> Iterator[tuple[ToolRegistry, Any]]:
    with broker_registry(ray_session, settings, nq_5m) as p:
        yield p


async def test_run_once_records_the_full_decision_and_one_order_with_the_desk_client_id(
    ray_session: Any, settings: Settings, parts: Any
) -> None:
    registry, broker = parts
    svc = await make_service(settings, registry)
    try:
        out = await svc.run_once("NQ")
        rec = await svc.decision(out["decision_id"])
        summary = await svc.decisions(limit=5)
        status = await svc.status()
    finally:
        await svc.close()

    coid = f"desk-{out['decision_id']}"
    assert out["action"] == "buy" and out["execution"]["placed"]
    assert rec["inputs"]["window"]["bars"] == 600 and len(rec["inputs"]["window"]["sha256"]) == 64
    assert rec["parsed"]["bias"] == "long" and rec["risk"]["approved"] and rec["model"] == "rules/nq-rules-v1"
    assert json.loads(rec["prompt"])[0]["role"] == "system" and rec["raw_output"]
    assert [o["client_order_id"] for o in rec["orders"]] == [coid]
    assert [e["decision_id"] for e in rec["executions"]] == [out["decision_id"]]
    assert len(orders_for(broker, ray_session, coid)) == 1
    assert summary[0]["id"] == out["decision_id"] and summary[0]["action"] == "buy"
    assert status["cycles"] == 1 and not status["halted"] and status["llm"][0]["name"] == "rules"
    assert {a["agent_id"] for a in status["agents"]} >= {"analysis_agent", "risk_agent", "execution_agent"}


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


async def test_approval_mode_waits_and_approving_twice_sends_exactly_one_order(
    ray_session: Any, settings: Settings, parts: Any
) -> None:
    registry, broker = parts
    svc = await make_service(settings, registry)
    try:
        await svc.set_approval_mode(True)
        out = await svc.run_once("NQ")
        coid = f"desk-{out['decision_id']}"
        before = orders_for(broker, ray_session, coid)
        (pending,) = await svc.pending_approvals()
        first, second = await asyncio.gather(
            svc.approve(pending["id"], who="alice"), svc.approve(pending["id"], who="bob")
        )
        third = await svc.approve(pending["id"])
        rec = await svc.decision(out["decision_id"])
        left = await svc.pending_approvals()
    finally:
        await svc.close()

    assert out["approval"]["status"] == "pending" and out["execution"] is None and before == []
    assert pending["proposal"]["side"] == "buy" and pending["expires_at"] > pending["created_at"]
    assert sorted([first["already"], second["already"], third["already"]]) == [False, True, True]
    assert len(orders_for(broker, ray_session, coid)) == 1
    assert rec["approval"]["status"] == "approved" and rec["approval"]["decided_by"] == "alice"
    assert len(rec["executions"]) == 1 and [o["client_order_id"] for o in rec["orders"]] == [coid]
    assert left == []


async def test_rejected_and_expired_approvals_cannot_be_approved_and_send_nothing(
    ray_session: Any, settings: Settings, parts: Any
) -> None:
    registry, broker = parts
    clock = Clock()
    svc = await make_service(settings, registry, clock=clock, approval_ttl_s=300)
    try:
        await svc.set_approval_mode(True)
        a = (await svc.run_once("NQ"))["approval"]
        b = (await svc.run_once("NQ"))["approval"]
        rejected = await svc.reject(a["id"], who="carol", reason="not today")
        with pytest.raises(ApprovalClosedError):
            await svc.approve(a["id"])
        clock.advance(301)
        with pytest.raises(ApprovalClosedError):
            await svc.approve(b["id"])
        with pytest.raises(ApprovalClosedError):
            await svc.reject(b["id"])
        statuses = {x["id"]: x["status"] for x in await svc.approvals()}
    finally:
        await svc.close()

    assert rejected["approval"]["status"] == "rejected" and rejected["approval"]["reason"] == "not today"
    assert statuses == {a["id"]: "rejected", b["id"]: "expired"}
    for x in (a, b):
        assert orders_for(broker, ray_session, f"desk-{x['decision_id']}") == []


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
    assert refused["halted"] and refused["action"] == "buy" and not refused["execution"]["placed"]
    assert orders_for(broker, ray_session, f"desk-{refused['decision_id']}") == []
    assert not resumed["halted"] and kill_rec["action"] == "kill" and kill_rec["decision"]["who"] == "ops"


def test_windows_follow_the_cme_sessions() -> None:
    tue_10 = datetime(2026, 4, 28, 14, 0, tzinfo=UTC)  # 10:00 New York
    tue_2335 = datetime(2026, 4, 29, 3, 35, tzinfo=UTC)  # 23:35 New York: Globex, not RTH
    sat = datetime(2026, 4, 25, 16, 0, tzinfo=UTC)
    assert [in_window(w, tue_10) for w in ("rth", "globex", "always")] == [True, True, True]
    assert [in_window(w, tue_2335) for w in ("rth", "globex", "always")] == [False, True, True]
    assert [in_window(w, sat) for w in ("rth", "globex", "always")] == [False, False, True]


async def test_loop_runs_all_symbols_every_cadence_only_inside_the_window(
    settings: Settings, parts: Any
) -> None:
    clock = Clock(datetime(2026, 4, 25, 16, 0, tzinfo=UTC))  # Saturday noon New York: closed

    async def sleep(seconds: float) -> None:
        clock.advance(seconds)
        await asyncio.sleep(0)

    svc = await make_service(settings, parts[0], clock=clock, sleep=sleep, windows="globex")
    try:
        await svc.start(symbols=["NQ", "ES"], cadence_s=3600)
        for _ in range(600):
            if svc.cycles >= 4:
                break
            await asyncio.sleep(0.05)
        stopped = await svc.stop()
        rows = await svc.decisions(limit=50)
    finally:
        await svc.close()

    ats = sorted({r["at"] for r in rows})
    open_ = datetime(2026, 4, 26, 22, 0, tzinfo=UTC)  # Sunday 18:00 New York, the Globex open
    assert datetime.fromisoformat(ats[0]) == open_
    assert datetime.fromisoformat(ats[1]) - datetime.fromisoformat(ats[0]) == timedelta(hours=1)
    by_time: dict[str, set[str]] = {}
    for r in rows:
        by_time.setdefault(r["at"], set()).add(r["symbol"])
    assert by_time[ats[0]] == {"NQ", "ES"} and not stopped["running"]


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

    user = json.loads(rec["prompt"])[1]["content"]
    assert "## Agent memory" in user and f'"decision_id": {first["decision_id"]}' in user
    assert rec["inputs"]["memory_ids"]
    assert [m["value"]["decision_id"] for m in by_type] == [second["decision_id"], first["decision_id"]]
    assert agent["memory"][0]["value"]["decision_id"] == second["decision_id"]
    assert len(week) == 2 and later == []


class FailingTools:
    """A broker that dies before the order is sent."""

    async def call(self, name: str, arguments: dict[str, Any], *, who: str) -> dict[str, Any]:
        raise RuntimeError(f"process died before {name}")


async def test_a_cycle_cut_short_after_its_decision_is_finished_once_on_restart(
    ray_session: Any, settings: Settings, parts: Any
) -> None:
    registry, broker = parts
    svc = await make_service(settings, registry)
    desk = TradingDesk(
        svc._agent("analysis_agent"), svc._agent("risk_agent"), ExecutionAgent(FailingTools()), svc._repo
    )
    desk.clock = svc.clock
    with pytest.raises(RuntimeError, match="process died"):
        await desk.run_once("NQ")
    (cut,) = await svc.decisions()
    await svc.close()

    for _ in range(2):  # two restarts: the second finds nothing left to do
        again = await make_service(settings, registry)
        rec = await again.decision(cut["id"])
        await again.close()

    assert orders_for(broker, ray_session, f"desk-{cut['id']}") and len(rec["executions"]) == 1
    assert len(orders_for(broker, ray_session, f"desk-{cut['id']}")) == 1
