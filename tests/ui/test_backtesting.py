"""``nq_ray_ui.backtesting``: the form starts from the core's defaults and sends only what was filled."""

from __future__ import annotations

import json
from typing import Any

import gradio as gr
from nq_ray_ui import backtesting
from nq_ray_ui.client import ApiClient
from nq_ray_ui.state import Ctx


def _build(ctx: Ctx) -> list[Any]:
    with gr.Blocks():
        return backtesting.build(ctx)


def test_every_sub_tab_fills_each_of_its_components(api_server: Any) -> None:
    ctx = Ctx(ApiClient(api_server.url))
    views = _build(ctx)

    filled = [view.fill(ctx.catalog()) for view in views]

    assert [len(f) for f in filled] == [len(v.catalog_outputs) for v in views]
    compare = dict(zip([c.label for c in views[1].catalog_outputs], filled[1], strict=True))
    assert compare["Rank by"]["value"] == "sharpe" and "net_pnl_usd" in compare["Rank by"]["choices"]


def test_picking_ema_cross_shows_the_cores_default_parameters(api_server: Any) -> None:
    from nq_ray.backtest import get_strategy

    ctx = Ctx(ApiClient(api_server.url))

    shown = backtesting.strategy_params(ctx, "ema_cross")

    assert json.loads(shown) == dict(get_strategy("ema_cross").defaults) == {"fast": 12, "slow": 26}


def test_the_form_fills_with_the_run_backtest_tools_defaults(api_server: Any) -> None:
    from nq_ray.backtest import list_strategies

    ctx = Ctx(ApiClient(api_server.url))
    run_view = _build(ctx)[0]
    cat = ctx.catalog()

    values = dict(zip([c.label for c in run_view.catalog_outputs], run_view.fill(cat), strict=False))
    costs = cat.default("run_backtest", "costs")

    assert len(run_view.fill(cat)) == len(run_view.catalog_outputs)
    assert values["Strategy"]["choices"] == list(list_strategies())
    assert values["Strategy"]["value"] == cat.default("run_backtest", "strategy")
    assert json.loads(values["Parameters (JSON)"]) == list_strategies()[values["Strategy"]["value"]]
    assert values["Commission $/side"] == costs["commission_per_contract"]
    assert values["Slippage ticks"] == costs["slippage_ticks"]


def test_empty_cost_fields_are_left_to_the_server() -> None:
    assert backtesting._costs(None, None, None, None, None) == {}
    assert backtesting._costs(2, 1.5, 0, 8, None) == {
        "contracts": 2,
        "commission_per_contract": 1.5,
        "slippage_ticks": 0.0,
        "stop_loss_ticks": 8.0,
    }


def test_unknown_strategy_keeps_its_box_empty_of_copied_defaults(api_server: Any) -> None:
    ctx = Ctx(ApiClient(api_server.url))

    assert backtesting.strategy_params(ctx, "no_such_strategy") == "{}"
