"""``nq_ray_ui.dashboard``: the first load, and what it does before the catalogue has filled the lists."""

from __future__ import annotations

from typing import Any

import gradio as gr
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


# ------------------------------------------------------------------ live updates from the WebSocket
QUOTE = {  # what GET /api/market/nq-price answered at the page's load
    "symbol": "NQ",
    "price": 27000.0,
    "bar_time": "2026-04-20T09:30:00-04:00",
    "interval": "5m",
    "change_pts": 50.0,  # so the previous session closed at 26,950
    "change_pct": 0.1855,
    "change_usd_per_contract": 1000.0,
    "session_high": 27010.0,
    "session_low": 26900.0,
    "session_volume": 1000.0,
    "market": "open",
    "origin": {"source": "sample"},
}


def _bar(time: str, o: float, h: float, lo: float, c: float, v: float) -> dict[str, Any]:
    return {
        "symbol": "NQ",
        "price": c,
        "bar_time": time,
        "bar": {"time": time, "open": o, "high": h, "low": lo, "close": c, "volume": v},
        "interval": "5m",
        "clock": "replay",
        "source": "sample",
        "fills": 0,
    }


def test_a_pushed_bar_moves_the_quote_from_the_previous_sessions_close() -> None:
    q = dashboard.pushed_quote(QUOTE, _bar("2026-04-20T09:35:00-04:00", 27000, 27020, 26990, 27005, 300), 20)

    assert q["price"] == 27005.0 and q["change_pts"] == 55.0  # 27,005 − 26,950
    assert q["change_usd_per_contract"] == 1100.0  # 55 points × $20
    assert (q["session_high"], q["session_low"], q["session_volume"]) == (27020.0, 26900.0, 1300.0)


def test_the_first_bar_of_a_new_session_starts_its_high_low_and_volume() -> None:
    # 18:05 New York on the 20th belongs to the session (trade date) of the 21st
    q = dashboard.pushed_quote(QUOTE, _bar("2026-04-20T18:05:00-04:00", 27001, 27003, 26998, 26999, 40), 20)

    assert dashboard.session_of("2026-04-20T18:05:00-04:00") == "2026-04-21"
    assert dashboard.session_of("2026-04-20T16:55:00-04:00") == "2026-04-20"
    assert q["change_pts"] == -1.0  # from the last session's close, 27,000
    assert (q["session_high"], q["session_low"], q["session_volume"]) == (27003.0, 26998.0, 40.0)


def test_a_pushed_price_marks_the_open_position_to_market() -> None:
    book: dict[str, Any] = {
        "portfolio": {
            "positions": {
                "NQ": {
                    "quantity": 2,
                    "avg_price": 27000.0,
                    "mark": 27000.0,
                    "realized_pnl_usd": 0.0,
                    "unrealized_pnl_usd": 0.0,
                    "commission_usd": 5.0,
                    "net_pnl_usd": -5.0,
                }
            },
            "total": {
                "realized_pnl_usd": 0.0,
                "unrealized_pnl_usd": 0.0,
                "commission_usd": 5.0,
                "net_pnl_usd": -5.0,
            },
            "equity_usd": 99995.0,
        },
        "orders": [],
    }

    marked = dashboard.marked_book(book, "NQ", 27010.25, 20.0)
    pos = marked["portfolio"]["positions"]["NQ"]

    assert pos["unrealized_pnl_usd"] == 410.0  # 10.25 points × $20 × 2 contracts
    assert pos["net_pnl_usd"] == 405.0 and marked["portfolio"]["total"]["net_pnl_usd"] == 405.0
    assert marked["portfolio"]["equity_usd"] == 100405.0
    assert book["portfolio"]["positions"]["NQ"]["unrealized_pnl_usd"] == 0.0  # the page's copy untouched
    assert dashboard.marked_book(book, "ES", 5000.0, 50.0) is book  # no ES position: nothing to mark


def test_the_tick_moves_the_quote_from_pushed_events_without_asking_the_api() -> None:
    ctx = Ctx(ApiClient("http://127.0.0.1:1", timeout_s=2))  # any request would fail and show an error
    ctx._point_values["NQ"] = 20.0
    ctx.feed.stop()  # no listener: this test feeds the events itself
    state = {"quote": QUOTE, "seen": 0, "chart_at": float("inf")}
    ctx.feed.add(
        {"type": "market_update", "data": _bar("2026-04-20T09:35:00-04:00", 1, 27050, 1, 27040.5, 1)}
    )
    ctx.feed.add(
        {"type": "market_update", "data": _bar("2026-04-20T09:35:00-04:00", 1, 1, 1, 1, 1) | {"symbol": "ES"}}
    )

    quote, _feed, chart, _levels, positions, pnl, err, after = dashboard.dashboard_tick(
        ctx, "NQ", "5m", 240, "sample", state
    )

    assert "27,040.50" in quote and "+90.50" in quote  # 27,040.5 − 26,950
    assert after["seen"] == 2 and after["quote"]["price"] == 27040.5
    assert chart == positions == pnl == err == gr.skip()  # no order, no position: nothing else to draw
