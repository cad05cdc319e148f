"""``nq_ray_ui.state``: the catalogue comes from the API (names and tool defaults), never from a copy."""

from __future__ import annotations

from typing import Any

import pytest
from nq_ray_ui.client import ApiClient, ApiError
from nq_ray_ui.state import Catalog, Ctx, json_arg, range_args, tool_arguments


def test_catalogue_from_the_api_has_the_cores_strategy_defaults(api_server: Any) -> None:
    from nq_ray.backtest import list_strategies
    from nq_ray.domain.contracts import CONTRACTS

    cat = Ctx(ApiClient(api_server.url)).catalog()

    assert cat.strategies == list_strategies()
    assert cat.strategies["ema_cross"] == {"fast": 12, "slow": 26}  # the core's, not the UI's old 10/30
    assert cat.symbols == list(CONTRACTS)
    assert "csv:<path>" not in cat.sources and "sample" in cat.sources


def test_tool_defaults_and_enums_come_from_the_tools_input_schemas(api_server: Any) -> None:
    import inspect

    from nq_ray.risk.var import METHODS
    from nq_ray.tools.args import BarSeries
    from nq_ray.tools.backtesting import run_walk_forward

    cat = Ctx(ApiClient(api_server.url)).catalog()
    bars = BarSeries.model_fields  # get_nq_price's arguments (flattened into its input schema)

    assert cat.default("get_nq_price", "symbol") == bars["symbol"].default
    assert cat.default("get_nq_price", "source") == bars["source"].default
    assert cat.choices("calculate_var", "method") == list(METHODS)
    assert (
        cat.default("run_walk_forward", "n_folds")
        == inspect.signature(run_walk_forward).parameters["n_folds"].default
    )
    costs = cat.default("run_backtest", "costs")
    assert {"contracts", "commission_per_contract", "slippage_ticks"} <= set(costs)


def test_catalogue_is_asked_once_then_kept(api_server: Any) -> None:
    ctx = Ctx(ApiClient(api_server.url))

    first = ctx.catalog()

    assert ctx.catalog() is first
    assert ctx.has_tool("run_backtest")  # the tool listing came with it


def test_unreachable_api_raises_a_readable_error_and_is_retried_later() -> None:
    ctx = Ctx(ApiClient("http://127.0.0.1:1", timeout_s=2))

    with pytest.raises(ApiError, match="cannot reach the nq-ray API"):
        ctx.catalog()
    with pytest.raises(ApiError):  # nothing cached: the next page load asks again
        ctx.catalog()


def test_tool_arguments_resolve_an_object_arguments_field_defaults() -> None:
    schema = {
        "$defs": {"Costs": {"properties": {"contracts": {"default": 1}, "stop": {"default": None}}}},
        "properties": {
            "costs": {"anyOf": [{"$ref": "#/$defs/Costs"}, {"type": "null"}], "default": None},
            "method": {"default": "historical", "enum": ["historical", "normal"]},
            "free": {"type": "string"},
        },
    }

    args = tool_arguments(schema)

    assert args["costs"] == {"default": {"contracts": 1}}
    assert args["method"] == {"default": "historical", "enum": ["historical", "normal"]}
    assert args["free"] == {}


def test_catalog_default_falls_back_only_when_the_schema_has_none() -> None:
    cat = Catalog.from_api(
        {
            "symbols": ["NQ"],
            "intervals": ["5m"],
            "sources": ["sample", "csv:<path>"],
            "strategies": {"x": {"n": 3}},
            "metrics": ["sharpe"],
            "analysis_depths": ["standard"],
            "default_analysis_depth": "standard",
            "agent_types": ["analysis"],
        },
        [{"name": "t", "input_schema": {"properties": {"a": {"default": 0}, "b": {"type": "string"}}}}],
    )

    assert cat.default("t", "a", 5) == 0
    assert cat.default("t", "b", "fb") == "fb"
    assert cat.sources == ["sample"]
    assert cat.strategy_params("x") == '{"n": 3}'


def test_json_arg_refuses_what_is_not_a_json_object() -> None:
    assert json_arg(' {"fast": 5} ', "grid") == {"fast": 5}
    assert json_arg("", "grid") == {}
    with pytest.raises(ApiError, match="grid is not valid JSON"):
        json_arg("{fast: 5}", "grid")
    with pytest.raises(ApiError, match="must be a JSON object"):
        json_arg("[1, 2]", "grid")


def test_range_args_prefer_start_and_end_over_a_period() -> None:
    assert range_args("1mo", "", "") == {"period": "1mo"}
    assert range_args("1mo", "2026-03-02", "2026-03-09") == {"start": "2026-03-02", "end": "2026-03-09"}
    assert range_args("", "", "2026-03-09") == {}
