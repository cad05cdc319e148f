"""The FastMCP server built from the registry, through fastmcp's in-memory ``Client``."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastmcp import Client
from fastmcp.exceptions import ToolError

from nq_ray.tools.mcp import build_mcp
from tests.tools.conftest import EXPECTED_TOOLS, VALID_CALLS

# (tool, arguments, code or text the error must carry): the malformed-call table
MALFORMED: list[tuple[str, dict[str, Any], str]] = [
    ("get_contract_info", {"symbol": 42}, "[invalid_argument]"),
    ("get_contract_info", {"symbol": "ZZ"}, "[unknown_symbol]"),
    ("get_contract_info", {"symbol": "NQ", "extra": 1}, "[invalid_argument]"),
    ("get_nq_price", {"symbol": "NQ", "interval": "7m"}, "[invalid_argument]"),
    ("get_nq_price", {"source": "csv:/no/such/file.csv"}, "[path_not_allowed]"),
    ("get_nq_price", {"source": "csv:no-such-file.csv"}, "[data_unavailable]"),
    ("get_historical_data", {"period": "forever"}, "[invalid_argument]"),
    ("get_historical_data", {"limit": 10**18}, "[invalid_argument]"),
    ("generate_mock_data", {"bars": -5}, "[invalid_argument]"),
    ("generate_mock_data", {"bars": 1e308}, "[invalid_argument]"),
    ("generate_mock_data", {"seed": 2**80}, "[invalid_argument]"),
    ("calculate_var", {"confidence": float("nan")}, "[invalid_argument]"),
    ("calculate_var", {"horizon_days": "tomorrow"}, "[invalid_argument]"),
    ("calculate_var", {"method": "astrology"}, "[invalid_argument]"),
    ("calculate_technical_indicators", {"indicators": ["nope"]}, "[invalid_argument]"),
    ("calculate_technical_indicators", {"params": {"rsi": {"period": -3}}}, "[invalid_argument]"),
    ("run_backtest", {"strategy": "get_rich_quick"}, "[invalid_argument]"),
    ("run_backtest", {"costs": {"contracts": 0}}, "[invalid_argument]"),
    ("run_sweep", {"grid": {}}, "[invalid_argument]"),
    ("run_sweep", {"grid": {"fast": [5], "slow": [1]}}, "[invalid_argument]"),
    ("run_walk_forward", {"n_folds": 0}, "[invalid_argument]"),
    ("run_walk_forward", {"mode": "sideways"}, "[invalid_argument]"),
    ("run_walk_forward", {"interval": "1d", "period": "1mo", "n_folds": 20}, "[invalid_argument]"),
    ("compare_strategies", {"strategies": []}, "[invalid_argument]"),
    ("place_order", {"side": "buy", "contracts": 1}, "[invalid_argument]"),
    ("place_order", {"symbol": "NQ", "side": "hold", "contracts": 1}, "[invalid_argument]"),
    ("place_order", {"symbol": "NQ", "side": "buy", "contracts": 10**9}, "[invalid_argument]"),
    ("get_market_hours", {"at": "yesterday-ish"}, "["),
    ("no_such_tool", {}, "Unknown tool"),
]


@pytest.fixture
def mcp(registry):
    return build_mcp(registry, who="test")


async def test_lists_every_tool_with_schemas(mcp) -> None:
    async with Client(mcp) as client:
        tools = await client.list_tools()
    assert {t.name for t in tools} == EXPECTED_TOOLS
    order = next(t for t in tools if t.name == "place_order")
    assert order.input_schema["required"] == ["symbol", "side", "contracts"]
    assert order.output_schema is not None and order.annotations.read_only_hint is False


async def test_structured_result_parses_into_data(mcp) -> None:
    async with Client(mcp) as client:
        res = await client.call_tool("get_contract_info", {"symbol": "ES"})
    assert res.structured_content["point_value_usd"] == 50.0
    assert res.data.tick_value_usd == 12.5


@pytest.mark.parametrize(
    ("tool", "args", "expected"), MALFORMED, ids=[f"{t}-{i}" for i, (t, _, _) in enumerate(MALFORMED)]
)
async def test_malformed_call_is_a_tool_error_and_the_server_keeps_serving(mcp, tool, args, expected) -> None:
    async with Client(mcp) as client:
        with pytest.raises(ToolError) as err:
            await client.call_tool(tool, args)
        assert expected in str(err.value)
        ok = await client.call_tool("get_contract_info", {"symbol": "NQ"})  # still alive
        assert ok.structured_content["symbol"] == "NQ"


async def test_long_tool_sends_progress_notifications(mcp) -> None:
    seen: list[tuple[float, float | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append((progress, total))

    async with Client(mcp) as client:
        res = await client.call_tool("run_sweep", VALID_CALLS["run_sweep"], progress_handler=on_progress)
    assert res.structured_content["combinations"] == 4
    assert seen and seen[-1][0] == seen[-1][1]


# ------------------------------------------------------------------ tools described fully (issue 20)
# every tool's MCP description, written out here (not read back from the catalog): toolset, then the
# hints read-only, destructive, idempotent, open-world. Open-world = the tool takes a data `source`
# (yahoo and tradovate are outside services).
HINTS: dict[str, tuple[str, bool, bool, bool, bool]] = {
    "get_nq_price": ("data", True, False, True, True),
    "get_historical_data": ("data", True, False, True, True),
    "get_contract_info": ("data", True, False, True, False),
    "generate_mock_data": ("data", True, False, True, False),
    "get_market_hours": ("calendar", True, False, True, False),
    "get_session_calendar": ("calendar", True, False, True, False),
    "get_economic_calendar": ("calendar", True, False, True, False),
    "calculate_technical_indicators": ("analysis", True, False, True, True),
    "detect_patterns": ("analysis", True, False, True, True),
    "analyze_momentum": ("analysis", True, False, True, True),
    "find_support_resistance": ("analysis", True, False, True, True),
    "scan_market": ("analysis", True, False, True, True),
    "place_order": ("execution", False, True, True, False),  # idempotent by client_order_id
    "manage_position": ("execution", False, True, False, False),
    "calculate_position_size": ("risk", True, False, True, True),
    "assess_portfolio_risk": ("risk", True, False, True, True),
    "check_risk_limits": ("risk", True, False, True, False),
    "calculate_var": ("risk", True, False, True, True),
    "run_backtest": ("backtest", True, False, True, True),
    "generate_performance_report": ("backtest", True, False, True, True),
    "compare_strategies": ("backtest", True, False, True, True),
    "run_sweep": ("backtest", True, False, True, True),
    "run_walk_forward": ("backtest", True, False, True, True),
    "scan_backtests": ("backtest", True, False, True, True),
    "list_agents": ("agents", True, False, True, False),
    "run_agent_task": ("agents", False, True, False, False),  # a place_trade task orders
}


async def test_every_tool_has_a_title_annotations_and_an_output_schema(mcp) -> None:
    async with Client(mcp) as client:
        tools = {t.name: t for t in await client.list_tools()}
    assert set(tools) == set(HINTS) == EXPECTED_TOOLS
    titles = set()
    for name, (toolset, read_only, destructive, idempotent, open_world) in HINTS.items():
        t, a = tools[name], tools[name].annotations
        assert t.title and a is not None and a.title == t.title, name
        got = (a.read_only_hint, a.destructive_hint, a.idempotent_hint, a.open_world_hint)
        assert got == (read_only, destructive, idempotent, open_world), name
        assert t.output_schema is not None and t.output_schema["type"] == "object", name
        assert t.meta is not None and toolset in t.meta["fastmcp"]["tags"], name
        titles.add(t.title)
    assert len(titles) == len(HINTS)  # no two tools share a title
    assert "client_order_id" in tools["place_order"].description  # what makes it idempotent is said


@pytest.fixture
def broker_mcp(settings):
    """The MCP server over an in-process runtime's registry: a real paper broker on a temp store, no Ray."""
    from nq_ray.runtime import Runtime

    runtime = Runtime(settings, "in_process")
    yield build_mcp(runtime.registry(), who="test")
    runtime.close()


async def test_structured_content_matches_the_output_schema_and_the_text_block_is_the_same_json(
    broker_mcp,
) -> None:
    import jsonschema

    async with Client(broker_mcp) as client:
        schemas = {t.name: t.output_schema for t in await client.list_tools()}
        for name in sorted(VALID_CALLS):
            res = await client.call_tool_mcp(name, VALID_CALLS[name])
            assert res.is_error is False, (name, res.content)
            jsonschema.Draft202012Validator(schemas[name]).validate(res.structured_content)
            (text,) = res.content
            assert text.type == "text" and json.loads(text.text) == res.structured_content, name


async def test_json_text_where_an_array_or_object_is_expected_is_accepted(mcp) -> None:
    """Clients that send nested arrays/objects as JSON strings (alpaca's MCP bug) get the same answer."""
    grid = {"fast": [5, 10], "slow": [30, 50]}
    strategies = VALID_CALLS["compare_strategies"]["strategies"]
    async with Client(mcp) as client:
        native = await client.call_tool("run_sweep", {"grid": grid, "period": "1mo"})
        as_text = await client.call_tool("run_sweep", {"grid": json.dumps(grid), "period": "1mo"})
        compared = await client.call_tool(
            "compare_strategies", {"strategies": json.dumps(strategies), "period": "1mo"}
        )
        params = await client.call_tool(
            "run_backtest", {"strategy": "ema_cross", "params": '{"fast": 8, "slow": 21}', "period": "1mo"}
        )
    assert as_text.structured_content == native.structured_content
    assert as_text.structured_content["combinations"] == 4
    assert [r["label"] for r in compared.structured_content["rows"]].count("ema") == 1
    assert params.structured_content["params"] == {"fast": 8, "slow": 21}


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ({"grid": "{fast: [5, 10]}"}, "grid: expected an object (JSON text is accepted only when it parses"),
        ({"grid": "[5, 10]"}, "grid: expected an object"),  # parses, but to an array
        ({"symbol": ["NQ"]}, 'symbol: Input should be a valid string (got ["NQ"])'),
        ({"metric": "sharpe", "topp": 3}, "topp: unknown argument; run_sweep takes symbol, interval"),
    ],
)
async def test_a_bad_argument_is_a_tool_error_saying_which_and_what_was_expected(mcp, args, expected) -> None:
    async with Client(mcp) as client:
        res = await client.call_tool_mcp("run_sweep", args)
    assert res.is_error is True
    (text,) = res.content
    assert text.text.startswith("[invalid_argument] run_sweep: ") and expected in text.text


async def test_a_missing_argument_is_named(mcp) -> None:
    async with Client(mcp) as client:
        res = await client.call_tool_mcp("place_order", {"symbol": "NQ", "contracts": 1})
    assert res.is_error is True
    assert res.content[0].text == "[invalid_argument] place_order: side: required argument missing"


# ------------------------------------------------------------------------------------------ toolsets
def _names(tools: Any) -> set[str]:
    return {t.name for t in tools}


@pytest.mark.parametrize(
    ("mcp_settings", "expected"),
    [
        ({"toolsets": ["data", "calendar"]}, {n for n, h in HINTS.items() if h[0] in ("data", "calendar")}),
        ({"read_only": True}, EXPECTED_TOOLS - {"place_order", "manage_position", "run_agent_task"}),
        (
            {"toolsets": ["execution", "risk"], "read_only": True},
            {n for n, h in HINTS.items() if h[0] == "risk"},
        ),
        ({"toolsets": ["execution"]}, {"place_order", "manage_position"}),
        ({"toolsets": ["agents"]}, {"list_agents", "run_agent_task"}),
        ({"toolsets": ["agents"], "read_only": True}, {"list_agents"}),
    ],
)
async def test_toolsets_and_read_only_choose_what_the_server_lists_and_runs(
    registry, mcp_settings, expected
) -> None:
    from nq_ray.config import MCPSettings

    server = build_mcp(registry, settings=MCPSettings.model_validate(mcp_settings))
    hidden = sorted(EXPECTED_TOOLS - expected)
    async with Client(server) as client:
        assert _names(await client.list_tools()) == expected
        for name in hidden:
            with pytest.raises(ToolError, match="Unknown tool"):
                await client.call_tool(name, VALID_CALLS[name])


def test_the_server_takes_its_toolsets_from_the_settings_and_refuses_unknown_ones(settings) -> None:
    from pydantic import ValidationError

    from nq_ray.config import Settings
    from nq_ray.tools.context import ToolContext
    from nq_ray.tools.registry import build_registry, tools_for

    s = Settings(data={"data_dir": str(settings.data.data_dir)}, mcp={"toolsets": ["calendar"]})
    registry = build_registry(ToolContext(settings=s))
    assert [t.name for t in tools_for(registry)] == [
        "get_market_hours",
        "get_session_calendar",
        "get_economic_calendar",
    ]
    with pytest.raises(ValidationError, match="toolsets"):
        Settings(mcp={"toolsets": ["trading"]})
    with pytest.raises(ValidationError, match="toolsets"):
        Settings(mcp={"toolsets": []})


async def test_the_stdio_server_hides_tools_outside_its_toolsets_as_unknown_tools(settings) -> None:
    from mcp.shared.exceptions import MCPError

    from nq_ray.config import Settings
    from nq_ray.mcp_stdio import build_stdio_server

    s = Settings(
        data={"data_dir": str(settings.data.data_dir)},
        mcp={"toolsets": ["data", "execution"], "read_only": True},
    )
    async with Client(build_stdio_server(s)) as client:  # in memory; the in-process replay, no Ray
        listed = _names(await client.list_tools())
        with pytest.raises(MCPError) as err:
            await client.call_tool("place_order", VALID_CALLS["place_order"])
        with pytest.raises(MCPError):
            await client.call_tool("run_backtest", {})
        ok = await client.call_tool("get_contract_info", {"symbol": "NQ"})
    assert listed == {n for n, h in HINTS.items() if h[0] == "data"}
    assert (err.value.code, err.value.message) == (-32602, "Unknown tool: 'place_order'")
    assert ok.structured_content["symbol"] == "NQ"
