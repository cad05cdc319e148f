"""``ToolRegistry``: names, generated schemas, validation at the door, typed errors, strict JSON."""

from __future__ import annotations

import json

import pytest
from pydantic import BaseModel

from nq_ray.errors import InvalidArgumentError, UnknownSymbolError
from nq_ray.tools.args import BarSeries, BarsQuery
from nq_ray.tools.registry import UnknownToolError, spec_of
from tests.tools.conftest import EXPECTED_TOOLS, VALID_CALLS, ListAuditor


def test_registry_holds_the_seed_tools_with_their_names(registry) -> None:
    assert set(registry.names()) == EXPECTED_TOOLS
    assert set(VALID_CALLS) == EXPECTED_TOOLS


def test_schemas_are_generated_from_the_signatures_and_models(registry) -> None:
    info = {t["name"]: t for t in registry.list_tools()}
    order = info["place_order"]["input_schema"]
    assert order["required"] == ["symbol", "side", "contracts"]
    assert order["additionalProperties"] is False
    assert order["properties"]["order_type"]["default"] == "market"
    var = info["calculate_var"]["input_schema"]["properties"]
    assert set(var) == {"symbol", "contracts", "confidence", "method", "horizon_days", "source"}
    assert info["get_contract_info"]["output_schema"]["properties"]["tick_value_usd"]["type"] == "number"
    assert all(t["description"] for t in info.values())
    json.dumps(registry.list_tools())  # every schema is plain JSON


async def test_unknown_argument_is_refused_naming_it(registry) -> None:
    with pytest.raises(InvalidArgumentError, match="colour"):
        await registry.call("get_contract_info", {"symbol": "NQ", "colour": "red"})


async def test_wrong_type_and_out_of_range_are_invalid_argument(registry) -> None:
    with pytest.raises(InvalidArgumentError, match="confidence"):
        await registry.call("calculate_var", {"confidence": 1.5})
    with pytest.raises(InvalidArgumentError, match="bars"):
        await registry.call("generate_mock_data", {"bars": 10**15})


async def test_unknown_tool_and_symbol_are_typed_errors(registry) -> None:
    with pytest.raises(UnknownToolError) as e:
        await registry.call("get_nq_prize", {})
    assert e.value.code == "unknown_tool" and e.value.http_status == 404
    with pytest.raises(UnknownSymbolError):
        await registry.call("get_contract_info", {"symbol": "ZZ"})


async def test_yahoo_alias_is_accepted(registry) -> None:
    out = await registry.call("get_contract_info", {"symbol": "NQ=F"})
    assert out["symbol"] == "NQ" and out["tick_value_usd"] == 5.0 and out["point_value_usd"] == 20.0


async def test_sample_data_is_never_passed_off_as_live(registry) -> None:
    out = await registry.call("get_nq_price", {})
    assert out["origin"]["source"] == "sample" and out["origin"]["live"] is False
    assert out["origin"]["last_bar_time"].startswith("2026-04-28T23:35")
    assert "not live" in out["origin"]["note"]


async def test_calls_are_audited_with_outcome_and_error_code(settings) -> None:
    from nq_ray.tools.context import ToolContext
    from nq_ray.tools.registry import build_registry

    auditor = ListAuditor()
    reg = build_registry(ToolContext(settings=settings), auditor=auditor)
    await reg.call("get_contract_info", {"symbol": "ES"}, who="t")
    with pytest.raises(UnknownSymbolError):
        await reg.call("get_contract_info", {"symbol": "ZZ"}, who="t")
    ok, bad = auditor.records
    assert (ok.tool, ok.outcome, ok.error_code, ok.who) == ("get_contract_info", "ok", None, "t")
    assert (bad.outcome, bad.error_code) == ("error", "unknown_symbol")
    assert ok.duration_ms is not None and ok.duration_ms >= 0


async def test_output_is_strict_json_without_nan(registry) -> None:
    out = await registry.call("run_backtest", {"period": "5d"})
    json.dumps(out, allow_nan=False)
    assert out["origin"]["source"] == "sample" and out["metrics"]["n_trades"] == out["n_trades"]


BARS_FIELDS = {"symbol", "interval", "start", "end", "period", "source"}


def test_every_tool_that_reads_a_range_of_bars_takes_the_same_flattened_bars_query(registry) -> None:
    """``BarsQuery`` is defined once; each tool lists its fields as top-level arguments, same schema."""
    expected = {k: v for k, v in BarsQuery.model_json_schema()["properties"].items()}
    readers = [
        "get_historical_data",
        "calculate_technical_indicators",
        "run_backtest",
        "generate_performance_report",
        "compare_strategies",
        "run_sweep",
        "run_walk_forward",
    ]
    for name in readers:
        props = registry.get(name).input_schema()["properties"]
        assert {k: props[k] for k in BARS_FIELDS} == expected, name
        assert registry.get(name).groups == (("query", BarsQuery),)


class Echo(BaseModel):
    query: BarsQuery
    limit: int


async def test_a_flattened_group_reaches_the_tool_as_one_model() -> None:
    async def echo(query: BarsQuery, limit: int = 3) -> Echo:
        return Echo(query=query, limit=limit)

    spec = spec_of(echo, "data")
    args = spec.input_model.model_validate({"symbol": "ES", "period": "5d", "limit": 7})
    out = await spec.fn(**spec.arguments(args))

    assert set(spec.input_schema()["properties"]) == BARS_FIELDS | {"limit"}
    assert out.query == BarsQuery(symbol="ES", period="5d") and out.limit == 7


def test_a_flattened_field_that_repeats_an_argument_is_refused() -> None:
    async def twice(query: BarSeries, symbol: str = "NQ") -> BarSeries:
        return query

    with pytest.raises(InvalidArgumentError, match="symbol"):
        spec_of(twice, "data")


# ------------------------------------------------------------- JSON text for arrays and objects (issue 20)
def test_json_text_is_decoded_where_an_object_or_array_is_expected(registry) -> None:
    """Done once in ``validate``, so MCP and REST (``POST /api/tools/{name}``) both accept it."""
    backtest = registry.validate("run_backtest", {"costs": '{"contracts": 2}', "params": '{"fast": 8}'})
    assert backtest.costs.contracts == 2 and backtest.params == {"fast": 8}
    scan = registry.validate("scan_market", {"symbols": '["NQ", "ES"]', "timeframes": '["1h"]'})
    assert (scan.symbols, scan.timeframes) == (["NQ", "ES"], ["1h"])
    nested = registry.validate("run_sweep", {"grid": {"fast": "[5, 10]", "slow": [30]}})  # inside an object
    assert nested.grid == {"fast": [5, 10], "slow": [30]}
    both = registry.validate("run_sweep", {"grid": '{"fast": "[5, 10]", "slow": [30]}'})  # text in text
    assert both.grid == nested.grid


def test_json_text_is_left_alone_where_a_string_may_stand_or_it_does_not_parse_to_the_type(registry) -> None:
    from nq_ray.tools.registry import json_strings_decoded

    schema = registry.get("compare_strategies").input_schema()
    item = '{"strategy": "ema_cross"}'  # an item may be a name (a string): kept as text
    assert json_strings_decoded({"strategies": [item]}, schema) == {"strategies": [item]}
    schema = registry.get("get_contract_info").input_schema()
    assert json_strings_decoded({"symbol": '["NQ"]'}, schema) == {"symbol": '["NQ"]'}
    for bad in ('{"fast": [5, 10]', "[1, 2]", "null", "5"):
        with pytest.raises(InvalidArgumentError, match="grid: expected an object"):
            registry.validate("run_sweep", {"grid": bad})
    with pytest.raises(InvalidArgumentError, match="symbols: expected an array"):
        registry.validate("scan_market", {"symbols": "NQ, ES"})


# ------------------------------------------------------------------------------- titles and toolsets
def test_every_tool_has_a_title_and_a_toolset_and_only_the_order_tools_change_anything(registry) -> None:
    from nq_ray.tools.registry import TOOLSETS

    info = {t["name"]: t for t in registry.list_tools()}
    assert all(t["title"] and t["toolset"] in TOOLSETS for t in info.values())
    changing = {n for n, t in info.items() if not t["read_only"]}
    orders = {"place_order", "manage_position", "run_agent_task"}  # an agent's place_trade task orders
    assert changing == {n for n, t in info.items() if t["destructive"]} == orders
    assert {t["toolset"] for t in info.values()} == set(TOOLSETS)


def test_spec_of_defaults_and_refusals() -> None:
    async def peek(query: BarSeries) -> BarSeries:
        return query

    async def plain(n: int = 1) -> Echo:
        raise AssertionError

    spec = spec_of(peek, "data")
    assert (spec.toolset, spec.title, spec.idempotent, spec.open_world) == ("data", "Peek", True, True)
    assert spec_of(plain, "risk").open_world is False  # no data source, nothing outside reached
    assert spec_of(plain, "execution", read_only=False).idempotent is False
    with pytest.raises(InvalidArgumentError, match="toolset 'trading'"):
        spec_of(plain, "trading")
    with pytest.raises(InvalidArgumentError, match="cannot be destructive"):
        spec_of(plain, "risk", destructive=True)


def test_select_keeps_order_and_refuses_an_unknown_toolset(registry) -> None:
    from nq_ray.tools.registry import select

    specs = list(registry.specs.values())
    chosen = select(specs, ["execution", "data"], read_only=True)
    assert [s.name for s in chosen] == [s.name for s in specs if s.toolset == "data"]
    with pytest.raises(InvalidArgumentError, match="unknown toolset"):
        select(specs, ["data", "crypto"])
