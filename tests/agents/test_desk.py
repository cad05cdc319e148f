"""``trade_once`` (``nq-ray trade --once``): the desk's full path on the sample data, recorded first."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from nq_ray.agents.agents import AnalysisAgent, ExecutionAgent, LocalTools, RiskAgent
from nq_ray.agents.cli import trade_once
from nq_ray.agents.desk import TradingDesk
from nq_ray.agents.models import RiskAssessment, TradeProposal
from nq_ray.config import Settings
from nq_ray.llm.config import LLMConfig, ProviderConfig
from nq_ray.llm.router import LLMRouter
from nq_ray.store.models import AgentDecisionRow
from nq_ray.store.repository import Repository
from nq_ray.tools.context import ToolContext
from nq_ray.tools.registry import ToolRegistry, build_registry

RULES = ProviderConfig(name="rules", kind="rules", model="nq-rules-v1", priority=1000)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data={"data_dir": str(tmp_path / "data")})


@pytest.fixture
def registry(ray_session: Any, settings: Settings, nq_5m: Any) -> Iterator[ToolRegistry]:
    """Every tool, with a real paper broker under a unique name on the temp store, its clock at the
    last sample bar (Tuesday 2026-04-28 23:35 New York, Globex open)."""
    from nq_ray.runtime.broker import RayBroker, get_or_create_broker

    name = f"paper_broker_desk_{uuid.uuid4().hex[:8]}"
    handles: list[Any] = []

    def factory(s: Settings) -> Any:
        h = get_or_create_broker(s, name=name, clock="bar")
        ray_session.get(
            h.on_price.remote("NQ", float(nq_5m["close"].iloc[-1]), nq_5m.index[-1].to_pydatetime())
        )
        handles.append(h)
        return RayBroker(h)

    yield build_registry(ToolContext(settings=settings, broker_factory=factory))
    for h in handles:
        ray_session.kill(h)


def rules_router() -> LLMRouter:
    return LLMRouter.from_config(LLMConfig(providers=[RULES], health_interval_s=0))


async def decisions(url: str) -> list[AgentDecisionRow]:
    repo = await Repository.connect(url)
    try:
        async with repo.sessions() as s:
            return list(await s.scalars(select(AgentDecisionRow).order_by(AgentDecisionRow.id)))
    finally:
        await repo.close()


def test_trade_once_runs_the_full_path_and_records_a_complete_decision(
    settings: Settings, registry: ToolRegistry
) -> None:
    import asyncio

    out = trade_once(settings, registry=registry, router=rules_router())

    rows = asyncio.run(decisions(settings.store_url))
    decision, orders = rows
    assert (decision.id, orders.id) == (out["decision_id"], out["execution_id"])
    assert decision.agent == "trading_desk" and decision.symbol == "NQ" and decision.at is not None
    window = decision.inputs["window"]
    assert window["bars"] == 600 and len(window["sha256"]) == 64 and window["last"] > window["first"]
    assert decision.inputs["indicators"]["rsi"] is not None and decision.inputs["price"]["price"] > 0
    assert "NQ" in decision.prompt and decision.model == "rules/nq-rules-v1"
    assert decision.raw_output.startswith("[rules analyst")
    d = decision.decision
    assert d["provider"] == "rules" and d["is_llm"] is False and d["fallback"]
    assert d["view"]["bias"] in ("long", "short", "flat") and "approved" in d["risk"]
    assert orders.agent == "execution_agent" and orders.decision["decision_id"] == decision.id
    # the sample's last bar reads bullish (rules 0.68), ATR sizing allows 2 contracts, the gate approves
    assert d["risk"]["approved"] and decision.action == "buy" and orders.decision["placed"]
    order = orders.decision["orders"][0]
    assert order["client_order_id"] == f"desk-{decision.id}" and order["quantity"] == d["risk"]["contracts"]
    proposal = d["risk"]["proposal"]
    assert (order["order_type"], order["limit_price"]) == ("limit", proposal["entry"])
    assert order["bracket"]["stop_loss_price"] == proposal["stop"]


def test_trade_once_on_a_killed_desk_records_the_decision_and_sends_nothing(
    settings: Settings, registry: ToolRegistry
) -> None:
    """``--once`` is the desk's own cycle: the kill switch recorded in the store holds for it too."""
    import asyncio

    from nq_ray.agents.service import DeskService

    async def kill() -> None:
        svc = DeskService(settings, tools=LocalTools(registry), router=rules_router())
        try:
            await svc.kill("test", who="test")
        finally:
            await svc.close()

    asyncio.run(kill())
    out = trade_once(settings, registry=registry, router=rules_router())

    assert out["halted"] and out["execution"]["placed"] is False and not out["execution"]["orders"]
    (decision,) = [r for r in asyncio.run(decisions(settings.store_url)) if r.id == out["decision_id"]]
    assert decision.agent == "trading_desk"
    assert not asyncio.run(registry.call("manage_position", {"action": "status"}, who="test"))["orders"]


class ApprovingRisk(RiskAgent):
    async def assess_trade(self, analysis: Any) -> RiskAssessment:
        p = TradeProposal(
            symbol="NQ", side="sell", contracts=1, entry=20000.0, stop=20020.0, target=19960.0, rationale="t"
        )
        return RiskAssessment(symbol="NQ", approved=True, contracts=1, proposal=p)


class FailingTools:
    async def call(self, name: str, arguments: dict[str, Any], *, who: str) -> dict[str, Any]:
        raise RuntimeError(f"broker down ({name})")


async def test_decision_is_recorded_before_the_order_is_sent(settings: Settings) -> None:
    tools = LocalTools(build_registry(ToolContext(settings=settings)))
    repo = await Repository.connect(settings.store_url)
    desk = TradingDesk(
        AnalysisAgent(tools, rules_router()), ApprovingRisk(tools), ExecutionAgent(FailingTools()), repo
    )

    with pytest.raises(RuntimeError, match="broker down"):
        await desk.run_once("NQ")
    await repo.close()

    (row,) = await decisions(settings.store_url)
    assert row.agent == "trading_desk" and row.action == "sell" and row.decision["risk"]["approved"]
