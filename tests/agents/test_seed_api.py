"""Each snippet of the design document's "Agent Framework", "Agent Memory & Context" and "Memory
Management" sections, run as written (``mcp_trading_agent`` → ``nq_ray``) on the bundled sample bars with
the rules analyst, or a scripted OpenAI-compatible model where the snippet asks a model."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from nq_ray.agents.agents import MAX_CONTEXT_BYTES, AnalysisAgent, ExecutionAgent, LocalTools, RiskAgent
from nq_ray.agents.models import AnalysisReport, ExecutionReport, MarketView, RiskAssessment
from nq_ray.config import Settings
from nq_ray.errors import InvalidArgumentError
from nq_ray.llm.config import LLMConfig, ProviderConfig
from nq_ray.llm.router import LLMRouter
from nq_ray.market.clock import FixedClock
from nq_ray.runtime.builder import Runtime
from nq_ray.testing import ScriptedLLMServer
from nq_ray.tools.context import ToolContext
from nq_ray.tools.registry import ToolRegistry, build_registry

RULES = ProviderConfig(name="rules", kind="rules", model="nq-rules-v1", priority=1000)
LAST_BAR_CLOSE = datetime.fromisoformat("2026-04-28T23:40:00-04:00")  # the sample's last 5m bar closed


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        data={"data_dir": str(tmp_path / "data"), "default_source": "sample"},
        llm={"providers": [RULES.model_dump()], "health_interval_s": 0},
    )


@pytest.fixture
def mcp_server(settings: Settings) -> Iterator[ToolRegistry]:
    """nq-ray's tool registry (what its MCP server serves) over an in-process paper broker, on the clock of
    the sample's last bar (a Tuesday night, Globex open)."""
    runtime = Runtime(settings, "in_process", feed=True, clock=FixedClock(LAST_BAR_CLOSE))
    try:
        yield runtime.registry()
    finally:
        runtime.close()


@pytest.fixture
def provider_manager() -> LLMRouter:
    return LLMRouter.from_config(LLMConfig(providers=[RULES], health_interval_s=0))


async def test_agent_architecture_snippet(settings: Settings, mcp_server: Any, provider_manager: Any) -> None:
    from nq_ray.agents import create_agent

    config = settings
    # Create specialized agents
    analysis_agent = create_agent("analysis", config, mcp_server, provider_manager)
    execution_agent = create_agent("execution", config, mcp_server, provider_manager)
    risk_agent = create_agent("risk", config, mcp_server, provider_manager)

    assert isinstance(analysis_agent, AnalysisAgent) and analysis_agent.base_router is provider_manager
    assert isinstance(execution_agent, ExecutionAgent) and isinstance(risk_agent, RiskAgent)
    assert execution_agent.entry_order == settings.desk.entry_order
    assert risk_agent.risk_pct == settings.desk.risk_pct


def test_create_agent_defaults_and_refusals(settings: Settings) -> None:
    from nq_ray.agents import create_agent

    agent = create_agent("analysis", {"temperature": 0.2})  # no tools, no router given: built for it

    assert isinstance(agent, AnalysisAgent) and agent.config.temperature == 0.2
    with pytest.raises(InvalidArgumentError, match="analysis"):
        create_agent("trader", settings)
    with pytest.raises(InvalidArgumentError, match="config must be"):
        create_agent("risk", {"max_positions": 3})
    with pytest.raises(InvalidArgumentError, match="mcp_server"):
        create_agent("risk", settings, mcp_server=object())


async def test_analysis_agent_usage_snippet(
    settings: Settings, mcp_server: Any, provider_manager: Any
) -> None:
    from nq_ray.agents import create_agent

    analysis_agent = create_agent("analysis", settings, mcp_server, provider_manager)

    # Analysis agent usage
    result = await analysis_agent.execute_task(
        {
            "type": "market_analysis",
            "parameters": {"symbol": "NQ=F", "timeframe": "1h", "analysis_depth": "comprehensive"},
        }
    )

    report = AnalysisReport.model_validate(result)
    assert report.symbol == "NQ" and report.inputs["requested_symbol"] == "NQ=F"
    assert report.inputs["timeframe"] == "1h" and report.inputs["analysis_depth"] == "comprehensive"
    window = report.inputs["window"]
    assert window["interval"] == "1h"
    first, last = datetime.fromisoformat(window["first"]), datetime.fromisoformat(window["last"])
    assert (last - first).total_seconds() / 3600 >= window["bars"] - 1  # hourly bars, not 5-minute ones
    assert report.inputs["higher_timeframe"]["interval"] == "4h"
    assert {"momentum", "patterns", "levels"} <= set(report.inputs)


async def test_multi_agent_workflow_snippet(
    settings: Settings, mcp_server: Any, provider_manager: Any
) -> None:
    from nq_ray.agents import create_agent

    analysis_agent = create_agent("analysis", settings, mcp_server, provider_manager)
    risk_agent = create_agent("risk", settings, mcp_server, provider_manager)
    execution_agent = create_agent("execution", settings, mcp_server, provider_manager)

    # Multi-agent workflow
    analysis_result = await analysis_agent.analyze_market()
    risk_assessment = await risk_agent.assess_trade(analysis_result)
    execution_result = await execution_agent.execute_trade(risk_assessment)

    assert isinstance(analysis_result, AnalysisReport) and isinstance(risk_assessment, RiskAssessment)
    assert isinstance(execution_result, ExecutionReport)
    assert execution_result.placed == (risk_assessment.approved and risk_assessment.contracts > 0)
    if execution_result.placed:  # the order went to the paper broker with the assessment's bracket
        order, proposal = execution_result.orders[0], risk_assessment.proposal
        assert proposal is not None and order["quantity"] == risk_assessment.contracts
        assert order["side"] == proposal.side and order["bracket"]["stop_loss_price"] == proposal.stop
    else:
        assert execution_result.orders == [] and execution_result.note.startswith("not approved")


def _memory_snippet(agent: Any, analysis_result: Any) -> tuple[Any, Any]:
    # Agent memory access (the seed's lines, no await)
    agent.update_context({"last_analysis": analysis_result})
    recent_memory = agent.get_recent_memory(10)
    analysis_history = agent.get_memory_by_type("llm_analysis", 5)
    return recent_memory, analysis_history


def _analysis(tools: Any, router: LLMRouter, **kwargs: Any) -> AnalysisAgent:
    return AnalysisAgent(tools, router, **kwargs)


@pytest.fixture
def tools(settings: Settings) -> Any:
    return LocalTools(build_registry(ToolContext(settings=settings, clock=lambda: LAST_BAR_CLOSE)))


async def test_agent_memory_snippet_inside_a_running_loop(tools: Any, provider_manager: LLMRouter) -> None:
    agent = _analysis(tools, provider_manager)
    analysis_result = await agent.analyze_market()
    await agent.remember("llm_analysis", {"bias": analysis_result.view.bias})

    recent_memory, analysis_history = _memory_snippet(agent, analysis_result)

    assert isinstance(recent_memory, list) and recent_memory[0]["kind"] == "context"
    stored = recent_memory[0]["value"]["last_analysis"]
    assert AnalysisReport.model_validate(stored) == analysis_result  # kept whole, as JSON data
    assert [m["kind"] for m in analysis_history] == ["llm_analysis"]
    assert await agent.get_recent_memory(10) == recent_memory  # the await spelling: the same answer
    assert await agent.get_memory_by_type("llm_analysis", 5) == analysis_history
    assert await agent.update_context({"note": "x"}) == {"last_analysis": stored, "note": "x"}


def test_agent_memory_snippet_from_sync_code(tools: Any, provider_manager: LLMRouter) -> None:
    agent = _analysis(tools, provider_manager)
    analysis_result = asyncio.run(agent.analyze_market())

    recent_memory, analysis_history = _memory_snippet(agent, analysis_result)

    assert [m["kind"] for m in recent_memory] == ["context"] and analysis_history == []
    assert agent.context_items()[0].startswith(f"last_analysis: NQ {analysis_result.view.bias}")


async def test_agent_memory_snippet_on_the_store(
    db_url: str, tools: Any, provider_manager: LLMRouter
) -> None:
    """Store-backed memory: the blocking calls and the awaited ones see the same rows, and a new agent
    over the same store has the context back."""
    from nq_ray.agents.memory import MemoryManager
    from nq_ray.agents.seed import close_blocking
    from nq_ray.store.repository import Repository

    repo = await Repository.connect(db_url)
    try:
        agent = _analysis(tools, provider_manager, memory=MemoryManager(repo))
        analysis_result = await agent.analyze_market("ES", analysis_depth="quick")
        await agent.remember("llm_analysis", "ES looked flat")

        recent_memory, analysis_history = _memory_snippet(agent, analysis_result)

        assert [m["kind"] for m in recent_memory] == ["context", "llm_analysis"]
        assert [m["value"] for m in analysis_history] == ["ES looked flat"]
        assert await MemoryManager(repo).recent(agent.agent_id, 10) == recent_memory
        again = _analysis(tools, provider_manager, memory=MemoryManager(repo))
        context = await again.load_context()
        assert context["last_analysis"]["symbol"] == "ES"
        report = await again.analyze_market("ES", analysis_depth="quick")
        assert report.inputs["agent_context"] == again.context_items()
        assert "Context (update_context)" in report.prompt
    finally:
        close_blocking()
        await repo.close()


async def test_update_context_refuses_what_is_not_json_or_too_big(
    tools: Any, provider_manager: LLMRouter
) -> None:
    agent = _analysis(tools, provider_manager)

    with pytest.raises(InvalidArgumentError, match="JSON"):
        agent.update_context({"when": object()})
    with pytest.raises(InvalidArgumentError, match="JSON"):
        agent.update_context({"x": float("nan")})
    with pytest.raises(InvalidArgumentError, match="byte limit"):
        agent.update_context({"blob": "x" * (MAX_CONTEXT_BYTES + 1)})
    agent.update_context({"a": "x" * (MAX_CONTEXT_BYTES // 2)})
    with pytest.raises(
        InvalidArgumentError, match="the context would be"
    ):  # the merged context is bounded too
        agent.update_context({"b": "y" * (MAX_CONTEXT_BYTES // 2)})
    with pytest.raises(InvalidArgumentError, match="non-empty"):
        agent.update_context({})

    (item,) = agent.context_items()  # one line per key, long values cut to 300 characters
    assert item.startswith('a: "xxx') and item.endswith("…") and len(item) == len("a: ") + 300
    assert len(await agent.get_recent_memory(10)) == 1  # only the update that fitted was stored


async def test_memory_tasks_and_context_reach_the_model(tools: Any) -> None:
    """The tasks of every agent; a context set through them is in the next prompt the model is sent."""
    answer = {"bias": "long", "confidence": 0.7, "reasoning": "higher lows", "key_levels": []}
    with ScriptedLLMServer(default_text=json.dumps(answer)) as srv:
        llm = ProviderConfig(name="local", kind="serve", base_url=srv.base_url, model="m", priority=0)
        router = LLMRouter.from_config(LLMConfig(providers=[llm, RULES], health_interval_s=0))
        agent = _analysis(tools, router)

        updated = await agent.execute_task(
            {"type": "update_context", "parameters": {"focus": "the overnight high 27300"}}
        )
        report = AnalysisReport.model_validate(
            await agent.execute_task({"type": "market_analysis", "parameters": {"symbol": "NQ"}})
        )
        recent = await agent.execute_task({"type": "get_recent_memory", "parameters": {"n": 5}})
        by_type = await agent.execute_task(
            {"type": "get_memory_by_type", "parameters": {"type": "context", "n": 5}}
        )

    assert updated["data"]["context"] == {"focus": "the overnight high 27300"}
    assert report.is_llm and report.view == MarketView(**answer)
    sent = "\n".join(m["content"] for m in srv.requests[0]["messages"])  # the context is in the system prompt
    assert 'focus: "the overnight high 27300"' in sent
    assert [m["kind"] for m in recent["data"]["memories"]] == ["context"]
    assert by_type["data"]["memories"] == recent["data"]["memories"]
    for bad in ({"n": -1}, {"n": "5"}, {"limit": 5}):
        with pytest.raises(InvalidArgumentError):
            await agent.execute_task({"type": "get_recent_memory", "parameters": bad})


def _memory_manager_snippet(agent_id: str, analysis_result: Any) -> Any:
    from nq_ray.context import MemoryManager

    memory_manager = MemoryManager()

    # Store and retrieve agent memories
    memory_manager.store_memory(agent_id, "analysis", analysis_result)
    historical_analyses = memory_manager.get_memory(agent_id, "analysis", days=7)
    return historical_analyses


def test_memory_manager_snippet_from_sync_code(tools: Any, provider_manager: LLMRouter) -> None:
    analysis_result = asyncio.run(_analysis(tools, provider_manager).analyze_market())

    historical_analyses = _memory_manager_snippet("analysis_agent", analysis_result)

    (row,) = historical_analyses
    assert row["kind"] == "analysis" and AnalysisReport.model_validate(row["value"]) == analysis_result


async def test_memory_manager_snippet_inside_a_running_loop_and_awaited(
    tools: Any, provider_manager: LLMRouter
) -> None:
    from nq_ray.context import MemoryManager

    analysis_result = await _analysis(tools, provider_manager).analyze_market()

    historical_analyses = _memory_manager_snippet("analysis_agent", analysis_result)
    memory_manager = MemoryManager()
    first = await memory_manager.store_memory("a", "analysis", {"bias": "long"})
    second = memory_manager.store_memory("a", "analysis", "text")

    assert AnalysisReport.model_validate(historical_analyses[0]["value"]) == analysis_result
    assert (first, second) == (1, 2)
    assert [m["value"] for m in await memory_manager.get_memory("a", "analysis", days=7)] == [
        "text",
        {"bias": "long"},
    ]
    assert memory_manager.get_memory("a", "other") == [] and memory_manager.recent("b") == []
    with pytest.raises(InvalidArgumentError, match="days"):
        memory_manager.get_memory("a", "analysis", days=0)


def test_the_seed_context_module_names() -> None:
    import nq_ray.context as seed_context
    from nq_ray.agents.context import ContextManager
    from nq_ray.llm.prompts.engine import PromptTemplateEngine

    assert seed_context.ContextManager is ContextManager
    assert seed_context.PromptTemplateEngine is PromptTemplateEngine
    assert seed_context.MemoryManager().core.repo is None  # in process unless given a store


async def test_blocking_memory_calls_refuse_an_in_memory_sqlite_store(
    tools: Any, provider_manager: LLMRouter
) -> None:
    from nq_ray.agents.memory import MemoryManager
    from nq_ray.errors import ConfigError
    from nq_ray.store.repository import Repository

    repo = await Repository.connect("sqlite+aiosqlite://")
    try:
        agent = _analysis(tools, provider_manager, memory=MemoryManager(repo))
        with pytest.raises(ConfigError, match="in-memory"):
            agent.get_recent_memory(10)
        assert await agent.aupdate_context({"k": 1}) == {"k": 1}  # the async spelling works there
    finally:
        await repo.close()


async def test_a_decision_with_a_context_replays_with_the_same_prompt(tmp_path: Path, nq_5m: Any) -> None:
    """The context is pinned with the decision's memories: a replay renders the very same prompt."""
    import pandas as pd

    from nq_ray.agents.desk import TradingDesk
    from nq_ray.agents.memory import MemoryManager
    from nq_ray.agents.replay import replay_decision
    from nq_ray.agents.seed import close_blocking
    from nq_ray.store.desk import DeskStore
    from nq_ray.store.models import AgentDecisionRow
    from nq_ray.store.repository import Repository

    settings = Settings(
        data={"data_dir": str(tmp_path / "data")}, llm={"providers": [RULES], "health_interval_s": 0}
    )
    bars = tmp_path / "data" / "nq.parquet"
    bars.parent.mkdir(parents=True, exist_ok=True)
    nq_5m.rename_axis("datetime").reset_index().to_parquet(bars, index=False)
    as_of = pd.Timestamp("2026-04-15T11:05", tz="America/New_York")
    tools = LocalTools(build_registry(ToolContext(settings=settings).point_in_time(as_of)))
    repo = await Repository.connect(settings.store_url)
    try:
        analysis = AnalysisAgent(
            tools, LLMRouter.from_config(settings.llm), memory=MemoryManager(repo), source=f"parquet:{bars}"
        )
        analysis.update_context({"plan": "fade the overnight high"})
        desk = TradingDesk(analysis, RiskAgent(tools), ExecutionAgent(tools), repo, store=DeskStore(repo))
        decision_id = int((await desk.run_once("NQ", approval_mode=True))["decision_id"])
        async with repo.sessions() as session:
            row = await session.get(AgentDecisionRow, decision_id)
        assert row is not None and "fade the overnight high" in row.prompt  # the context was in the prompt
    finally:
        close_blocking()
        await repo.close()

    result = await replay_decision(settings, decision_id)

    assert result.prompt_match and result.same, result.differences


def test_a_blocking_call_that_gets_no_answer_is_a_typed_error() -> None:
    from nq_ray.agents.seed import _BRIDGE
    from nq_ray.errors import StoreUnavailableError

    with pytest.raises(StoreUnavailableError, match="did not answer"):
        _BRIDGE.run(lambda: asyncio.sleep(5), timeout_s=0.2)
    assert _BRIDGE.run(lambda: asyncio.sleep(0, result=7)) == 7  # the worker is still serving


@pytest.mark.parametrize(("symbol", "timeframe"), [("NQ=F", "5m"), ("ES", "15m"), ("NQ", "1h")])
async def test_pattern_counts_are_what_the_tool_found(
    tools: Any, provider_manager: LLMRouter, symbol: str, timeframe: str
) -> None:
    agent = _analysis(tools, provider_manager)

    out = await agent.execute_task(
        {"type": "pattern_recognition", "parameters": {"symbol": symbol, "timeframe": timeframe}}
    )
    found = (await tools.call("detect_patterns", {"symbol": symbol, "interval": timeframe}, who="test"))[
        "report"
    ]

    n_candles, n_charts = len(found["candlesticks"]), len(found["chart_patterns"])
    assert n_candles + n_charts > 0  # the sample's recent bars have patterns on each of these
    assert out["data"]["counts"] == {"candlestick": n_candles, "chart": n_charts}
    assert f"{n_candles} candlestick and {n_charts} chart patterns" in out["summary"]
    assert all(c["name"] in out["summary"] for c in found["candlesticks"])
