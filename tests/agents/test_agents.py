"""The analysis, risk and execution agents over the in-process tool registry, reasoning via the router."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from nq_ray.agents.agents import AnalysisAgent, ExecutionAgent, LocalTools, RiskAgent
from nq_ray.agents.models import AnalysisReport, MarketView, RiskAssessment, TradeProposal
from nq_ray.config import Settings
from nq_ray.errors import InvalidArgumentError
from nq_ray.llm.config import LLMConfig, ProviderConfig
from nq_ray.llm.router import LLMRouter
from nq_ray.testing import ScriptedLLMServer
from nq_ray.tools.context import ToolContext
from nq_ray.tools.registry import build_registry

FIXED_NOW = datetime(2026, 3, 10, 15, 0, tzinfo=UTC)
RULES = ProviderConfig(name="rules", kind="rules", model="nq-rules-v1", priority=1000)


def router(*providers: ProviderConfig) -> LLMRouter:
    cfg = LLMConfig(providers=[*providers, RULES], health_interval_s=0, backoff_s=0.01, deadline_s=10)
    return LLMRouter.from_config(cfg)


def local_llm(base_url: str) -> ProviderConfig:
    return ProviderConfig(
        name="local", kind="serve", base_url=base_url, model="local-model", priority=0, timeout_s=2.0
    )


@pytest.fixture
def tools(tmp_path: Path) -> LocalTools:
    settings = Settings(data={"data_dir": str(tmp_path / "data")})
    return LocalTools(build_registry(ToolContext(settings=settings, clock=lambda: FIXED_NOW)))


class RecordingTools:
    """Tools that record calls and answer nothing (for agents that must not call a tool)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    async def call(self, name: str, arguments: dict[str, Any], *, who: str) -> dict[str, Any]:
        self.calls.append((name, arguments))
        raise AssertionError(f"unexpected tool call {name}")


def test_market_view_accepts_the_rules_analysts_shape() -> None:
    rules_view = {
        "source": "rules",
        "bias": "bearish",
        "confidence": 0.7,
        "support": 100.0,
        "resistance": 110.0,
    }

    view = MarketView.model_validate({**rules_view, "summary": "[rules analyst] down"})

    assert view.bias == "short" and view.invalidation == 110.0 and view.key_levels == [100.0, 110.0]


async def test_rules_only_analysis_is_labelled_rules_with_a_hashed_window(tools: LocalTools) -> None:
    agent = AnalysisAgent(tools, router())

    report = await agent.analyze_market("NQ")

    assert report.provider == "rules" and not report.is_llm and report.fallback is not None
    assert report.raw_output.startswith("[rules analyst")
    window = report.inputs["window"]
    assert window["bars"] == 600 and len(window["sha256"]) == 64
    assert report.inputs["indicators"]["rsi"] is not None


async def test_malformed_llm_answer_falls_back_to_rules_and_says_so(tools: LocalTools) -> None:
    with ScriptedLLMServer(default_text="NQ looks strong, I would buy") as srv:
        agent = AnalysisAgent(tools, router(local_llm(srv.base_url)))

        report = await agent.analyze_market("NQ")

    assert report.provider == "rules" and not report.is_llm
    assert report.fallback is not None and "local" in report.fallback
    assert len(srv.requests) == 2  # the answer and the router's one repair


async def test_valid_llm_answer_is_used_as_the_view(tools: LocalTools) -> None:
    answer = {
        "bias": "long",
        "confidence": 0.8,
        "key_levels": [20000.0],
        "invalidation": 19950.0,
        "horizon": "intraday",
        "reasoning": "higher lows",
    }
    with ScriptedLLMServer(default_text=json.dumps(answer)) as srv:
        agent = AnalysisAgent(tools, router(local_llm(srv.base_url)))

        report = await agent.analyze_market("NQ")

    assert report.is_llm and report.provider == "local" and report.fallback is None
    assert report.view == MarketView(**answer)


async def test_execute_task_runs_market_analysis_and_refuses_unknown_types(tools: LocalTools) -> None:
    agent = AnalysisAgent(tools, router())

    out = await agent.execute_task({"type": "market_analysis", "parameters": {"symbol": "NQ"}})

    assert AnalysisReport.model_validate(out).symbol == "NQ"
    with pytest.raises(InvalidArgumentError):
        await agent.execute_task({"type": "place_trade", "parameters": {}})


def _report(bias: str, confidence: float) -> AnalysisReport:
    view = MarketView(bias=bias, confidence=confidence, reasoning="test")  # type: ignore[arg-type]
    return AnalysisReport(
        symbol="NQ",
        view=view,
        last_price=20000.0,
        bar_time="2026-03-10T10:00:00-04:00",
        provider="rules",
        model="nq-rules-v1",
        is_llm=False,
        prompt="[]",
        raw_output="",
        inputs={},
    )


async def test_flat_view_is_not_sized_or_checked() -> None:
    tools = RecordingTools()

    assessment = await RiskAgent(tools).assess_trade(_report("flat", 0.9))

    assert not assessment.approved and assessment.contracts == 0 and tools.calls == []


def test_proposal_puts_stop_and_target_on_the_tick_grid() -> None:
    """Long at 20000 with ATR 10.1, stop 2 × ATR = 20.2 → 19979.75 (tick 0.25), target 2R → 20040.5."""
    agent = RiskAgent(RecordingTools(), atr_multiple=2.0)

    p = agent.propose(_report("long", 0.9), atr_pts=10.1, contracts=2)

    assert (p.side, p.entry, p.stop, p.target) == ("buy", 20000.0, 19979.75, 20040.5)


async def test_unapproved_assessment_places_no_order() -> None:
    tools = RecordingTools()
    proposal = TradeProposal(
        symbol="NQ", side="buy", contracts=1, entry=20000.0, stop=19980.0, target=20040.0, rationale="t"
    )
    denied = RiskAssessment(
        symbol="NQ", approved=False, contracts=0, reasons=["daily loss"], proposal=proposal
    )

    out = await ExecutionAgent(tools).execute_task(
        {"type": "place_trade", "parameters": {"assessment": denied}}
    )

    assert out["placed"] is False and out["orders"] == [] and tools.calls == []


async def test_actor_tools_call_the_registry_actor(ray_session: Any, tmp_path: Path) -> None:
    import uuid

    from nq_ray.runtime.registry import RayTools, get_or_create_registry

    settings = Settings(data={"data_dir": str(tmp_path / "data")})
    handle = get_or_create_registry(settings, name=f"tool_registry_test_{uuid.uuid4().hex[:8]}")
    try:
        quote = await RayTools(handle).call("get_nq_price", {"symbol": "NQ"}, who="analysis_agent")
    finally:
        ray_session.kill(handle)

    assert quote["symbol"] == "NQ" and quote["price"] > 0


async def test_router_without_any_answer_falls_back_to_the_rules_analyst_directly(tools: LocalTools) -> None:
    from nq_ray.llm.providers import make_provider

    with ScriptedLLMServer(default_text="no json here") as srv:
        pc = local_llm(srv.base_url)
        cfg = LLMConfig(providers=[pc], health_interval_s=0, backoff_s=0.01, deadline_s=10)
        agent = AnalysisAgent(tools, LLMRouter([(pc, make_provider(pc))], cfg))  # no rules in the chain

        report = await agent.analyze_market("NQ")

    assert report.provider == "rules" and not report.is_llm
    assert report.fallback is not None and "rules analyst called directly" in report.fallback
    assert report.view.reasoning.startswith("[rules analyst")


async def test_the_analysis_shape_of_assess_risk_still_works_through_execute_task() -> None:
    tools = RecordingTools()

    out = await RiskAgent(tools).execute_task(
        {"type": "assess_risk", "parameters": {"analysis": _report("flat", 0.9).model_dump(mode="json")}}
    )

    assert out["approved"] is False and out["reasons"] == ["view is flat: no trade"] and tools.calls == []


@pytest.mark.parametrize(
    "params",
    [
        {"analysis": {}, "portfolio": {"NQ": 1}},  # a trade or a book, not both
        {"portfolio": "NQ"},
    ],
)
async def test_assess_risk_refuses_mixed_or_unreadable_parameters(params: dict[str, Any]) -> None:
    tools = RecordingTools()

    with pytest.raises(InvalidArgumentError):
        await RiskAgent(tools).execute_task({"type": "assess_risk", "parameters": params})

    assert tools.calls == []


async def test_place_trade_takes_an_assessment_or_a_manual_order_not_both() -> None:
    tools = RecordingTools()
    denied = RiskAssessment(symbol="NQ", approved=False, contracts=0, reasons=["x"])

    with pytest.raises(InvalidArgumentError, match="not both"):
        await ExecutionAgent(tools).execute_task(
            {"type": "place_trade", "parameters": {"assessment": denied, "action": "BUY", "quantity": 1}}
        )
    with pytest.raises(InvalidArgumentError, match="action and quantity"):
        await ExecutionAgent(tools).execute_task({"type": "place_trade", "parameters": {}})

    assert tools.calls == []


async def test_the_prompt_is_rendered_from_analysis_base_and_its_version_recorded(tools: LocalTools) -> None:
    """Also when the rules analyst answers: the record holds what a model would have been asked."""
    from nq_ray.agents.agents import PROMPTS

    report = await AnalysisAgent(tools, router()).analyze_market("NQ")

    system, user = json.loads(report.prompt)
    assert report.provider == "rules" and report.template == "analysis_base"
    assert report.template_version == PROMPTS.version("analysis_base")
    assert system["role"] == "system" and system["content"].startswith("You are the analysis agent")
    assert "## Risk parameters" in system["content"] and "## Open positions" in system["content"]
    assert '"title":"MarketView"' in system["content"] and user["role"] == "user"
    assert report.inputs["context"]["sources"][0] == "current_market_data"


async def test_a_seed_style_override_renders_values_for_that_agent_only(tools: LocalTools) -> None:
    mine = {"analysis_base": "Analyse {symbol} on {timeframe}.\n{context}\nSchema: {schema}"}
    custom = AnalysisAgent(tools, router(), agent_id="custom", config={"prompts": mine})
    plain = AnalysisAgent(tools, router())

    ours = await custom.analyze_market("NQ")
    theirs = await plain.analyze_market("NQ")

    text = json.loads(ours.prompt)[0]["content"]
    assert text.startswith("Analyse NQ on 5m.\n## Current market data") and "{symbol}" not in text
    assert ours.template_version != theirs.template_version
    assert json.loads(theirs.prompt)[0]["content"].startswith("You are the analysis agent")


def test_prompt_overrides_are_checked_on_the_config() -> None:
    from pydantic import ValidationError

    from nq_ray.agents.models import AgentConfig

    with pytest.raises(ValidationError, match="unknown prompt templates"):
        AgentConfig(prompts={"custom_analysis": "x"})
    with pytest.raises(ValidationError, match="does not parse"):
        AgentConfig(prompts={"risk_assessment": "{% if %}"})


async def test_tool_backed_tasks_render_their_seed_templates(tools: LocalTools) -> None:
    agent = AnalysisAgent(tools, router())

    patterns = await agent.recognize_patterns("NQ")
    summary = await agent.market_summary("NQ")

    assert patterns.template == "pattern_recognition" and "Detected patterns:" in (patterns.prompt or "")
    assert summary.template == "market_summary" and summary.template_version
    assert '"levels": {' in (summary.prompt or "")  # the data as JSON, not a Python repr
