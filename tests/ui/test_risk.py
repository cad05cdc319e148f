"""``nq_ray_ui.risk``: VaR methods and defaults come from the ``calculate_var`` tool's input schema."""

from __future__ import annotations

from typing import Any

import gradio as gr
from nq_ray_ui import risk
from nq_ray_ui.client import ApiClient
from nq_ray_ui.state import Ctx


def test_var_form_fills_from_the_tools_schema(api_server: Any) -> None:
    from nq_ray.risk.var import METHODS

    ctx = Ctx(ApiClient(api_server.url))
    with gr.Blocks():
        view = risk.build(ctx)

    symbol, contracts, confidence, method = view.fill(ctx.catalog())

    assert method["choices"] == list(METHODS) and method["value"] == "historical"
    assert symbol["value"] == "NQ" and contracts == 1 and confidence["value"] == 0.95


def test_var_panel_shows_the_tools_numbers(api_server: Any) -> None:
    ctx = Ctx(ApiClient(api_server.url))
    expected = ctx.client.tool("calculate_var", symbol="NQ", contracts=2)["var"]

    _limits, _exposure, var_html, *_rest, note = risk.risk_load(ctx, "NQ", 2, 0.95, "historical")

    assert f"${expected['var_usd']:,.2f}" in var_html
    assert "NQ × 2" in var_html
    assert "nq-error" not in note
