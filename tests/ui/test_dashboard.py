"""``nq_ray_ui.dashboard``: the first load, and what it does before the catalogue has filled the lists."""

from __future__ import annotations

from typing import Any

from nq_ray_ui import dashboard
from nq_ray_ui.client import ApiClient
from nq_ray_ui.state import Ctx


def test_without_a_symbol_the_dashboard_asks_for_one_instead_of_calling_the_api() -> None:
    ctx = Ctx(ApiClient("http://127.0.0.1:1", timeout_s=2))

    quote, _fig, _levels, _positions, _pnl, note, state = dashboard.dashboard_load(ctx, None, None, 240, None)

    assert quote == "" and state == {}
    assert "Pick a symbol" in note


def test_load_draws_the_chart_with_the_indicator_parameters_the_server_used(api_server: Any) -> None:
    ctx = Ctx(ApiClient(api_server.url))

    _quote, fig, _levels, _positions, _pnl, errors, state = dashboard.dashboard_load(
        ctx, "NQ", "5m", 120, "sample"
    )
    names = {t.name for t in fig.data}
    used = ctx.client.tool(
        "calculate_technical_indicators", symbol="NQ", interval="5m", indicators=["ema", "rsi"], tail=1
    )["params"]

    assert errors == ""
    assert f"EMA {used['ema']['period']}" in names and f"RSI {used['rsi']['period']}" in names
    assert state["bar_time"]
