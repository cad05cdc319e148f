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

    spec = spec_of(echo, "test")
    args = spec.input_model.model_validate({"symbol": "ES", "period": "5d", "limit": 7})
    out = await spec.fn(**spec.arguments(args))

    assert set(spec.input_schema()["properties"]) == BARS_FIELDS | {"limit"}
    assert out.query == BarsQuery(symbol="ES", period="5d") and out.limit == 7


def test_a_flattened_field_that_repeats_an_argument_is_refused() -> None:
    async def twice(query: BarSeries, symbol: str = "NQ") -> BarSeries:
        return query

    with pytest.raises(InvalidArgumentError, match="symbol"):
        spec_of(twice, "test")
