"""The Dashboard tab: quote, candles with indicators and key levels, the paper account, the live feed.

Live updates come from the WebSocket, not from asking the API for prices on a timer. The UI's feed
(``client.LiveFeed``, one background listener) numbers every pushed event; a 1 s ``gr.Timer`` per page
drains what was pushed since that page's last look and makes no API request for it:

- a ``market_update`` of the shown symbol and source moves the quote (price, change, session high, low
  and volume, bar) and marks open positions to market (unrealised and net P&L, equity) from the pushed
  close, the contract's point value asked once per symbol;
- an ``order_update``, or a ``market_update`` whose bar filled orders (``fills``), re-reads the paper
  account (one request, caused by the push);
- new bars re-draw the chart and key levels (indicators are the server's), at most every
  ``CHART_EVERY_S`` seconds while bars keep coming.

Symbols, intervals and sources come from the catalogue.
"""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import gradio as gr

from nq_ray_ui import charts
from nq_ray_ui.client import ApiError
from nq_ray_ui.render import error_html, esc, frame, kv_table, num, source_badge, usd
from nq_ray_ui.state import Catalog, Ctx, TabView, pick


def _quote_html(q: dict[str, Any]) -> str:
    chg = float(q.get("change_pts") or 0)
    cls = "up" if chg >= 0 else "down"
    arrow = "▲" if chg >= 0 else "▼"
    cells = [
        ("change", f'<b class="{cls}">{arrow} {chg:+,.2f} ({float(q.get("change_pct") or 0):+.2f}%)</b>'),
        ("per contract", f"<b>{usd(q.get('change_usd_per_contract'), signed=True)}</b>"),
        ("session high", f"<b>{num(q.get('session_high'))}</b>"),
        ("session low", f"<b>{num(q.get('session_low'))}</b>"),
        ("volume", f"<b>{num(q.get('session_volume'), 0)}</b>"),
        ("bar", f"<b>{esc(str(q.get('bar_time', ''))[:16].replace('T', ' '))}</b>"),
        ("market", f"<b>{esc(q.get('market', '?'))}</b>"),
    ]
    body = "".join(f'<span class="cell">{k}{v}</span>' for k, v in cells)
    return (
        f'<div class="nq-quote" data-testid="quote"><span class="nq-brand">{esc(q.get("symbol"))}</span>'
        f'<span class="px {cls}">{float(q["price"]):,.2f}</span>{body}</div>'
        f'<div style="margin-top:.3rem">{source_badge(q.get("origin"))}</div>'
    )


def _levels(sr: dict[str, Any]) -> list[tuple[str, float]]:
    lv = sr.get("levels", {})
    out: list[tuple[str, float]] = []
    piv = lv.get("pivots", {}).get("classic", {})
    for k in ("P", "R1", "S1"):
        if k in piv:
            out.append((f"pivot {k}", float(piv[k])))
    pd_ = lv.get("prior_day") or {}
    for k, label in (("high", "PDH"), ("low", "PDL")):
        if pd_.get(k) is not None:
            out.append((label, float(pd_[k])))
    on = lv.get("overnight") or {}
    for k, label in (("high", "ONH"), ("low", "ONL")):
        if on.get(k) is not None:
            out.append((label, float(on[k])))
    return out


def _levels_html(sr: dict[str, Any]) -> str:
    lv = sr.get("levels", {})
    rows: list[tuple[str, Any]] = []
    if (s := lv.get("nearest_support")) is not None:
        rows.append((f"nearest support ({s.get('name')})", s.get("price")))
    if (r := lv.get("nearest_resistance")) is not None:
        rows.append((f"nearest resistance ({r.get('name')})", r.get("price")))
    rows += _levels(sr)
    for p in (lv.get("profile") or [])[-1:]:
        rows += [("POC", p.get("poc")), ("value area high", p.get("vah")), ("value area low", p.get("val"))]
    return "<h4>Key levels</h4>" + kv_table(rows)


CHART_EVERY_S = 10.0
TICK_S = 1.0
NY = ZoneInfo("America/New_York")


def session_of(bar_time: Any) -> str | None:
    """The CME trade date a bar belongs to (a session opens at 18:00 New York the evening before)."""
    try:
        t = datetime.fromisoformat(str(bar_time))
    except ValueError:
        return None
    t = (t if t.tzinfo else t.replace(tzinfo=NY)).astimezone(NY)
    return (t + timedelta(hours=6)).date().isoformat()


def pushed_quote(quote: dict[str, Any], update: dict[str, Any], point_value: float | None) -> dict[str, Any]:
    """The quote after a pushed bar (``market_update`` data): the close is the price; the change is
    from the previous session's last close; a bar of a new session starts its high, low and volume."""
    bar = update.get("bar") or {}
    price = float(update["price"])
    q = dict(quote)
    old_price = float(q.get("price") or price)
    ref = old_price - float(q.get("change_pts") or 0.0)
    if session_of(update.get("bar_time")) != session_of(q.get("bar_time")):
        ref = old_price  # the first bar of a new session: the change is from the last session's close
        q["session_high"], q["session_low"], q["session_volume"] = None, None, 0.0
    high = float(bar.get("high", price))
    low = float(bar.get("low", price))
    q["session_high"] = high if q.get("session_high") is None else max(float(q["session_high"]), high)
    q["session_low"] = low if q.get("session_low") is None else min(float(q["session_low"]), low)
    q["session_volume"] = float(q.get("session_volume") or 0.0) + float(bar.get("volume") or 0.0)
    q["price"] = price
    q["bar_time"] = update.get("bar_time")
    q["change_pts"] = price - ref
    q["change_pct"] = (price - ref) / ref * 100 if ref else 0.0
    if point_value is not None:
        q["change_usd_per_contract"] = (price - ref) * point_value
    return q


def marked_book(book: dict[str, Any], symbol: str, price: float, point_value: float) -> dict[str, Any]:
    """The paper account (``manage_position`` status) with ``symbol``'s position marked at ``price``:
    unrealised P&L = (price − average price) × point value × signed contracts, and the totals with it."""
    portfolio = dict(book.get("portfolio") or {})
    positions = {k: dict(v) for k, v in (portfolio.get("positions") or {}).items()}
    p = positions.get(symbol)
    if p is None or not p.get("quantity"):
        return book
    old = float(p.get("unrealized_pnl_usd") or 0.0)
    new = (price - float(p["avg_price"])) * point_value * float(p["quantity"])
    p["mark"], p["unrealized_pnl_usd"] = price, new
    p["net_pnl_usd"] = float(p.get("realized_pnl_usd") or 0.0) + new - float(p.get("commission_usd") or 0.0)
    total = dict(portfolio.get("total") or {})
    for key in ("unrealized_pnl_usd", "net_pnl_usd"):
        total[key] = float(total.get(key) or 0.0) + new - old
    portfolio["positions"], portfolio["total"] = positions, total
    if portfolio.get("equity_usd") is not None:
        portfolio["equity_usd"] = float(portfolio["equity_usd"]) + new - old
    return {**book, "portfolio": portfolio}


def _book(ctx: Ctx) -> dict[str, Any]:
    book: dict[str, Any] = ctx.client.tool("manage_position", action="status")
    return book


def book_views(status: dict[str, Any]) -> tuple[Any, str]:
    """The positions table and the P&L box of a ``manage_position`` status."""
    portfolio = status.get("portfolio", {})
    rows = []
    for sym, p in (portfolio.get("positions") or {}).items():
        row = {"symbol": sym}
        row.update({k: v for k, v in p.items() if not isinstance(v, dict | list)})
        rows.append(row)
    total = portfolio.get("total", {})
    pnl = kv_table(
        [
            ("equity", usd(portfolio.get("equity_usd"))),
            ("realized P&L", usd(total.get("realized_pnl_usd"), signed=True)),
            ("unrealized P&L", usd(total.get("unrealized_pnl_usd"), signed=True)),
            ("commission", usd(total.get("commission_usd"))),
            ("net P&L", usd(total.get("net_pnl_usd"), signed=True)),
            ("working orders", len(status.get("orders") or [])),
        ]
    )
    table = frame(rows) if rows else frame([{"positions": "flat: no open positions"}])
    return table, '<h4>Paper account</h4><div data-testid="pnl">' + pnl + "</div>"


def dashboard_load(
    ctx: Ctx, symbol: str | None, interval: str | None, bars: float, source: str | None
) -> tuple[Any, ...]:
    if not (symbol and interval and source):  # the catalogue did not load: nothing to ask for yet
        note = '<div class="nq-note">Pick a symbol, interval and source (the lists come from the API).</div>'
        return "", charts.empty("no symbol chosen"), "", frame([]), "", note, {}
    n = int(bars)
    errors: list[str] = []
    quote_html = ""
    state: dict[str, Any] = {}
    fig = charts.empty("loading…")
    levels_html = ""
    try:
        q = ctx.client.get("/api/market/nq-price", symbol=symbol, interval=interval, source=source)
        quote_html = _quote_html(q)
        state["bar_time"] = q.get("bar_time")
        state["quote"] = q
    except ApiError as exc:
        errors.append(error_html(exc, "price"))
    try:
        hist = ctx.client.get(
            "/api/market/historical", symbol=symbol, interval=interval, source=source, limit=n
        )
        recent: dict[str, list[float]] = {}
        used: dict[str, dict[str, Any]] = {}
        levels: list[tuple[str, float]] = []
        try:
            ind = ctx.client.tool(
                "calculate_technical_indicators",
                symbol=symbol,
                interval=interval,
                source=source,
                indicators=["ema", "vwap", "bollinger", "rsi", "macd"],
                tail=min(n, 500),
            )
            recent, used = ind.get("recent", {}), ind.get("params", {})
        except ApiError as exc:
            errors.append(error_html(exc, "indicators"))
        try:
            sr = ctx.client.tool("find_support_resistance", symbol=symbol, interval=interval, source=source)
            levels = _levels(sr)
            levels_html = _levels_html(sr)
        except ApiError as exc:
            errors.append(error_html(exc, "levels"))
        title = f"{symbol} {interval} · {hist.get('count')} bars · last {str(hist.get('last_bar_time'))[:16]}"
        fig = charts.market_figure(hist.get("bars", []), recent, levels, title=title, params=used)
    except ApiError as exc:
        errors.append(error_html(exc, "bars"))
        fig = charts.empty("no chart: " + exc.message)
    try:
        book = _book(ctx)
        state["book"] = book
        positions, pnl = book_views(book)
    except ApiError as exc:
        positions, pnl = frame([]), error_html(exc, "positions")
    state["seen"] = ctx.feed.received  # what was pushed before this load is in what it just read
    state["chart_at"] = time.monotonic()
    return quote_html, fig, levels_html, positions, pnl, "".join(errors), state


def dashboard_tick(
    ctx: Ctx,
    symbol: str | None,
    interval: str | None,
    bars: float,
    source: str | None,
    state: dict[str, Any] | None,
) -> tuple[Any, ...]:
    """Timer tick: drain the events pushed since this page's last look (see the module docstring).
    Outputs: quote, feed, chart, levels, positions, P&L, errors, state."""
    ctx.feed.start()
    state = dict(state or {})
    skip = gr.skip()
    seen, events = ctx.feed.since(int(state.get("seen") or 0))
    state["seen"] = seen
    feed = skip  # the event feed is re-drawn only when something came or the connection changed
    if events or ctx.feed.state != state.get("ws"):
        state["ws"] = ctx.feed.state
        feed = feed_html(ctx)
    if not (symbol and interval and source):
        return skip, feed, skip, skip, skip, skip, skip, state
    mine = [
        e["data"]
        for e in events
        if e.get("type") == "market_update"
        and isinstance(e.get("data"), dict)
        and e["data"].get("symbol") == symbol
        and e["data"].get("price") is not None
        and str(e["data"].get("source") or source) == source
    ]
    filled = any(e.get("type") == "order_update" for e in events) or any(
        e.get("type") == "market_update" and (e.get("data") or {}).get("fills") for e in events
    )
    if mine and time.monotonic() - float(state.get("chart_at") or 0.0) >= CHART_EVERY_S:
        out = _reload(ctx, symbol, interval, bars, source)
        out[-1]["seen"] = seen
        return out
    quote = positions = pnl = err = skip
    if mine and state.get("quote"):
        try:
            pv = ctx.point_value(symbol)
        except ApiError:
            pv = None
        q = state["quote"]
        for update in mine:
            q = pushed_quote(q, update, pv)
        state["quote"] = q
        quote = _quote_html(q)
    book = state.get("book")
    if filled:
        try:
            book = _book(ctx)
        except ApiError as exc:
            pnl = error_html(exc, "positions")
    elif mine and book and symbol in ((book.get("portfolio") or {}).get("positions") or {}):
        try:
            book = marked_book(book, symbol, float(mine[-1]["price"]), ctx.point_value(symbol))
        except ApiError as exc:
            err = error_html(exc, "contract point value")
    if book is not None and book is not state.get("book"):
        state["book"] = book
        positions, pnl = book_views(book)
    return quote, feed, skip, skip, positions, pnl, err, state


def _reload(ctx: Ctx, symbol: str, interval: str, bars: float, source: str | None) -> tuple[Any, ...]:
    quote, fig, levels, positions, pnl, err, state = dashboard_load(ctx, symbol, interval, bars, source)
    return quote, feed_html(ctx), fig, levels, positions, pnl, err, state


def feed_html(ctx: Ctx) -> str:
    state, events = ctx.feed.snapshot()
    cls = "nq-badge-live" if state == "connected" else "nq-badge-warn"
    lines = []
    for e in events[:25]:
        t = time.strftime("%H:%M:%S", time.localtime(e.get("received_at", time.time())))
        data = json.dumps(e.get("data", {}), default=str)[:160]
        lines.append(f"<div><b>{t}</b> {esc(e.get('type'))} {esc(data)}</div>")
    body = "".join(lines) or '<div class="nq-dim">no events yet</div>'
    return (
        f'<div><span class="nq-badge {cls}" data-testid="ws-state">WS {esc(state.upper())}</span> '
        f'<span class="nq-dim">{ctx.feed.received} events from {esc(ctx.feed.ws_url)}</span></div>'
        f'<div class="nq-feed" data-testid="feed">{body}</div>'
    )


def build(ctx: Ctx) -> TabView:
    """The tab's components and events, inside the caller's ``gr.Tabs``."""
    with gr.Tab("Dashboard", id="dashboard", elem_id="tab-dashboard") as tab:
        with gr.Row():
            symbol = gr.Dropdown([], label="Symbol", min_width=100)
            interval = gr.Dropdown([], label="Interval", min_width=100)
            bars = gr.Slider(60, 500, value=240, step=20, label="Bars", min_width=160)
            source = gr.Dropdown([], label="Source", allow_custom_value=True, min_width=110)
            refresh = gr.Button("Reload chart", variant="primary", min_width=110)
            live = gr.Checkbox(value=True, label="Live updates", min_width=110)
        quote = gr.HTML(elem_id="quote")
        err = gr.HTML()
        with gr.Row():
            with gr.Column(scale=4, min_width=320):
                chart = gr.Plot(label="Chart", elem_id="market-chart", show_label=False)
            with gr.Column(scale=1, min_width=260):
                pnl = gr.HTML(elem_id="pnl")
                levels = gr.HTML(elem_id="levels")
                feed = gr.HTML(elem_id="feed")
        positions = gr.Dataframe(label="Open positions", elem_id="positions", interactive=False)
        timer = gr.Timer(TICK_S)
        state = gr.State({})  # inside the tab: a component directly in gr.Tabs would shift the tab bar
    inputs = [symbol, interval, bars, source]
    outputs = [quote, chart, levels, positions, pnl, err, state]

    def load(*args: Any) -> tuple[Any, ...]:
        return dashboard_load(ctx, *args)

    for trigger in (refresh.click, symbol.input, interval.input, source.input, tab.select):
        trigger(load, inputs=inputs, outputs=outputs)

    def tick(on: bool, *args: Any) -> tuple[Any, ...]:
        if not on:
            return tuple(gr.skip() for _ in range(8))
        return dashboard_tick(ctx, *args)

    timer.tick(
        tick,
        inputs=[live, *inputs, state],
        outputs=[quote, feed, chart, levels, positions, pnl, err, state],
        show_progress="hidden",
    )

    def fill(cat: Catalog) -> list[Any]:
        return [
            pick(cat.symbols, cat.default("get_nq_price", "symbol")),
            pick(cat.intervals, cat.default("get_nq_price", "interval")),
            pick(cat.sources, cat.default("get_nq_price", "source")),
        ]

    def on_ready(page_loaded: Any) -> None:  # the first chart, once the lists are filled
        page_loaded.then(load, inputs=inputs, outputs=outputs)

    return TabView([symbol, interval, source], fill, on_ready)
