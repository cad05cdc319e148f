"""The FastMCP server built from the registry, through fastmcp's in-memory ``Client``."""

from __future__ import annotations

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
