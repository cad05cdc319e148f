"""The ``agents`` toolset (``list_agents``, ``run_agent_task``): a real in-process runtime (its paper broker
and its one desk, ``Runtime.shared_desk``) on a temp SQLite store, through the registry, fastmcp's
in-memory ``Client`` on ``build_mcp``, and the stdio server (``build_stdio_server``)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastmcp import Client
from fastmcp.exceptions import ToolError

from nq_ray.config import Settings
from nq_ray.errors import InvalidArgumentError, NotFoundError
from nq_ray.market.clock import FixedClock
from nq_ray.runtime import Runtime
from nq_ray.store.desk import DeskStore
from nq_ray.store.live import DESK_STATE_KEY
from nq_ray.tools.agents import ConfirmationRequiredError
from nq_ray.tools.context import DeskUnavailableError, ToolContext
from nq_ray.tools.mcp import build_mcp
from nq_ray.tools.registry import ToolRegistry, build_registry
from tests.execution.helpers import OPEN_LIMITS
from tests.tools.conftest import FIXED_NOW

RULES_ONLY = {"providers": [{"name": "rules", "kind": "rules", "model": "nq-rules-v1", "priority": 1000}]}
DEFAULTS = {"analysis_agent": "analysis", "risk_agent": "risk", "execution_agent": "execution"}
ANALYSIS = {"symbol": "NQ", "timeframe": "1h", "analysis_depth": "standard"}
MANUAL_ORDER = {"action": "BUY", "quantity": 1, "price": 20000.0, "order_type": "limit", "symbol": "NQ"}


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        data={"data_dir": str(tmp_path / "data"), "default_source": "sample"},
        risk={"limits": OPEN_LIMITS},
        llm={**RULES_ONLY, "health_interval_s": 0},
    )


@pytest.fixture
async def runtime(settings: Settings) -> AsyncIterator[Runtime]:
    rt = Runtime(settings, "in_process", feed=False, clock=FixedClock(FIXED_NOW))
    try:
        yield rt
    finally:
        desk = rt._desk
        if desk is not None:
            await desk.close()  # type: ignore[union-attr]
        rt.close()


@pytest.fixture
def registry(runtime: Runtime) -> ToolRegistry:
    return runtime.registry()


# ------------------------------------------------------------------------------------ the registry
async def test_list_agents_names_the_desks_agents_their_kinds_and_tasks(registry: ToolRegistry) -> None:
    out = await registry.call("list_agents", {})

    agents = {a["agent_id"]: a for a in out["agents"]}
    assert {k: a["agent_type"] for k, a in agents.items()} == DEFAULTS
    assert all(a["default"] for a in agents.values())
    assert {"market_analysis", "pattern_recognition", "market_summary"} <= set(
        agents["analysis_agent"]["tasks"]
    )
    assert "place_trade" in agents["execution_agent"]["tasks"]
    assert "place_trade" not in agents["analysis_agent"]["tasks"]
    assert "assess_risk" in agents["risk_agent"]["tasks"]


async def test_the_listed_tasks_are_what_each_agent_runs(registry: ToolRegistry, runtime: Runtime) -> None:
    """``AGENT_TASKS`` (what list_agents says) against the built agents' own handlers."""
    await registry.call("list_agents", {})
    desk: Any = runtime.shared_desk()
    listed = {a["agent_id"]: a["tasks"] for a in await desk.list_agents()}
    for agent_id in DEFAULTS:
        assert listed[agent_id] == sorted(desk._agent(agent_id)._all_handlers()), agent_id


async def test_market_analysis_on_nq_answers_the_seeds_report_and_is_recorded(
    registry: ToolRegistry, runtime: Runtime
) -> None:
    out = await registry.call(
        "run_agent_task", {"agent_id": "analysis_agent", "type": "market_analysis", "parameters": ANALYSIS}
    )

    assert out["agent_id"] == "analysis_agent" and out["type"] == "market_analysis"
    result = out["result"]
    assert result["symbol"] == "NQ" and result["view"]["bias"] in ("long", "short", "flat")
    assert {"last_price", "bar_time", "provider", "model", "is_llm", "prompt", "inputs"} <= set(result)
    assert result["inputs"]["timeframe"] == "1h" and result["inputs"]["analysis_depth"] == "standard"
    # the same desk as the agents API: the task is a row of its decision log
    recorded = await runtime.shared_desk().decision(out["record_id"])  # type: ignore[union-attr]
    assert recorded["agent"] == "analysis_agent" and recorded["action"] == "market_analysis"


async def test_an_unknown_agent_is_not_found_and_the_error_names_the_known_ones(
    registry: ToolRegistry,
) -> None:
    with pytest.raises(NotFoundError) as err:
        await registry.call("run_agent_task", {"agent_id": "bond_agent", "type": "market_analysis"})

    assert "bond_agent" in err.value.message
    assert all(a in err.value.message for a in DEFAULTS)
    assert err.value.details["known"] == sorted(DEFAULTS)


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        ({"agent_id": "analysis_agent", "type": "fly"}, "this agent runs ["),
        ({"agent_id": "analysis_agent", "type": "place_trade"}, "unknown task type 'place_trade'"),
        (
            {"agent_id": "analysis_agent", "type": "market_analysis", "parameters": {"x": 1}},
            "bad parameters for market_analysis",
        ),
        ({"agent_id": "analysis_agent", "type": "Market Analysis!"}, "type: "),
        ({"agent_id": "no agent", "type": "market_analysis"}, "agent_id: "),
        ({"agent_id": "analysis_agent"}, "type: required argument missing"),
        (
            {"agent_id": "analysis_agent", "type": "market_analysis", "parameters": []},
            "parameters: Input should be a valid dictionary (got [])",
        ),
        (
            {"agent_id": "analysis_agent", "type": "update_context", "parameters": {"x": "y" * 70_000}},
            "the limit is 65536",
        ),
        (
            {
                "agent_id": "execution_agent",
                "type": "place_trade",
                "parameters": {"action": "HOLD", "quantity": 1},
            },
            "place_trade: action",
        ),
    ],
)
async def test_a_bad_task_type_or_parameters_is_an_invalid_argument_that_says_what_is_wrong(
    registry: ToolRegistry, arguments: dict[str, Any], expected: str
) -> None:
    with pytest.raises(InvalidArgumentError) as err:
        await registry.call("run_agent_task", arguments)
    assert expected in err.value.message, err.value.message


async def test_place_trade_goes_through_the_gate_into_the_runtimes_book(
    registry: ToolRegistry, runtime: Runtime
) -> None:
    out = await registry.call(
        "run_agent_task",
        {"agent_id": "execution_agent", "type": "place_trade", "parameters": {**MANUAL_ORDER, "quantity": 1}},
    )

    assert out["result"]["placed"] is True
    coid = out["result"]["client_order_ids"][0]
    order = await runtime.broker().order(coid)
    assert (order.side, order.requested_quantity, order.limit_price) == ("buy", 1, 20000.0)


async def test_in_approval_mode_place_trade_is_refused_and_nothing_is_sent(
    registry: ToolRegistry, runtime: Runtime, store: DeskStore
) -> None:
    await store.set_state(DESK_STATE_KEY, {"approval_mode": True}, at=FIXED_NOW)

    with pytest.raises(ConfirmationRequiredError) as err:
        await registry.call(
            "run_agent_task",
            {"agent_id": "execution_agent", "type": "place_trade", "parameters": MANUAL_ORDER},
        )

    assert "place_order" in err.value.message and err.value.details["use"] == "place_order"
    assert await runtime.broker().orders() == []
    # an analysis is no order: it still runs in approval mode
    ok = await registry.call("run_agent_task", {"agent_id": "analysis_agent", "type": "market_summary"})
    assert ok["result"]["task"] == "market_summary"


async def test_a_registry_without_a_desk_answers_a_structured_error(settings: Settings) -> None:
    bare = build_registry(ToolContext(settings=settings, clock=lambda: FIXED_NOW))

    for name, args in (("list_agents", {}), ("run_agent_task", {"agent_id": "a", "type": "market_analysis"})):
        with pytest.raises(DeskUnavailableError) as err:
            await bare.call(name, args)
        assert err.value.code == "desk_unavailable" and "/api/agents/" in err.value.message

    async with Client(build_mcp(bare)) as client:
        res = await client.call_tool_mcp("list_agents", {})
    assert res.is_error is True and res.content[0].text.startswith("[desk_unavailable] ")


def test_a_point_in_time_context_has_no_desk(registry: ToolRegistry) -> None:
    assert registry.context.desk_factory is not None
    assert registry.context.point_in_time(FIXED_NOW).desk_factory is None


# ------------------------------------------------------------------------------------ over MCP
async def test_over_mcp_the_tools_are_described_and_run(registry: ToolRegistry) -> None:
    async with Client(build_mcp(registry, who="test")) as client:
        tools = {t.name: t for t in await client.list_tools()}
        listed = await client.call_tool("list_agents", {})
        res = await client.call_tool(
            "run_agent_task",
            {"agent_id": "analysis_agent", "type": "market_analysis", "parameters": '{"symbol": "NQ"}'},
        )
        with pytest.raises(ToolError) as err:
            await client.call_tool("run_agent_task", {"agent_id": "ghost", "type": "market_analysis"})

    run, ls = tools["run_agent_task"].annotations, tools["list_agents"].annotations
    assert run is not None and ls is not None
    assert (run.read_only_hint, run.destructive_hint, run.idempotent_hint) == (False, True, False)
    assert (ls.read_only_hint, ls.destructive_hint, ls.idempotent_hint) == (True, False, True)
    assert {"agents"} <= set(tools["run_agent_task"].meta["fastmcp"]["tags"])  # type: ignore[index]
    assert {a["agent_id"] for a in listed.structured_content["agents"]} == set(DEFAULTS)
    assert res.structured_content["result"]["symbol"] == "NQ"  # parameters sent as JSON text
    assert str(err.value).startswith("[not_found] no agent 'ghost'") and "analysis_agent" in str(err.value)


async def test_over_mcp_in_approval_mode_place_trade_points_to_place_order(
    registry: ToolRegistry, runtime: Runtime, store: DeskStore
) -> None:
    await store.set_state(DESK_STATE_KEY, {"approval_mode": True}, at=FIXED_NOW)
    async with Client(build_mcp(registry, who="test")) as client:
        res = await client.call_tool_mcp(
            "run_agent_task",
            {"agent_id": "execution_agent", "type": "place_trade", "parameters": MANUAL_ORDER},
        )
    assert res.is_error is True
    assert res.content[0].text.startswith("[confirmation_required] approval mode is on")
    assert await runtime.broker().orders() == []


async def test_a_read_only_server_has_list_agents_but_not_run_agent_task(registry: ToolRegistry) -> None:
    from nq_ray.config import MCPSettings

    server = build_mcp(registry, settings=MCPSettings(toolsets=["agents"], read_only=True))
    async with Client(server) as client:
        names = {t.name for t in await client.list_tools()}
    assert names == {"list_agents"}


# ------------------------------------------------------------------------------------ over stdio
@pytest.fixture
def stdio_server(settings: Settings) -> Iterator[Any]:
    from nq_ray.mcp_stdio import build_stdio_server

    server = build_stdio_server(settings)  # the sample replays here: an in-process runtime, no Ray
    try:
        yield server
    finally:
        server.nq_runtime.close()


async def test_the_stdio_server_runs_agent_tasks_on_its_runtimes_desk(stdio_server: Any) -> None:
    async with Client(stdio_server) as client:
        listed = await client.call_tool("list_agents", {})
        res = await client.call_tool(
            "run_agent_task",
            {"agent_id": "analysis_agent", "type": "market_analysis", "parameters": ANALYSIS},
        )
    desk = stdio_server.nq_runtime.shared_desk()
    try:
        recorded = await desk.decision(res.structured_content["record_id"])
    finally:
        await desk.close()
    assert {a["agent_id"] for a in listed.structured_content["agents"]} == set(DEFAULTS)
    assert res.structured_content["result"]["symbol"] == "NQ"
    assert recorded["agent"] == "analysis_agent"
