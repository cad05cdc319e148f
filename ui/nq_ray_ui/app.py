"""The Gradio app: six tabs over nq-ray's HTTP API and WebSocket.

Every handler calls the API through ``ApiClient`` and renders the answer; failures become readable
messages (``render.error_html``), never stack traces, and an endpoint the server lacks becomes a
"not available from this server" note. Nothing here imports ``nq_ray``.
"""

from __future__ import annotations

import csv
import json
import tempfile
import time
from collections.abc import Iterator
from typing import Any

import gradio as gr

from nq_ray_ui import charts
from nq_ray_ui.client import ApiClient, ApiError, LiveFeed, NotAvailable
from nq_ray_ui.render import (
    Html,
    error_html,
    esc,
    frame,
    kv_table,
    num,
    ok_html,
    pct,
    progress_html,
    source_badge,
    usd,
)

SYMBOLS = ["NQ", "MNQ", "ES", "MES", "YM", "RTY"]
INTERVALS = ["1m", "5m", "15m", "30m", "1h", "1d"]
SOURCES = ["sample", "synthetic", "yahoo"]
STRATEGIES = [
    "sma_cross",
    "ema_cross",
    "macd_cross",
    "rsi_reversion",
    "bollinger_breakout",
    "opening_range_breakout",
    "vwap_reversion",
]
DEFAULT_PARAMS = {
    "sma_cross": {"fast": 10, "slow": 30},
    "ema_cross": {"fast": 10, "slow": 30},
    "macd_cross": {},
    "rsi_reversion": {},
    "bollinger_breakout": {},
    "opening_range_breakout": {},
    "vwap_reversion": {},
}
DEPTH_TOOLS = {
    "quick": ["indicators", "levels"],
    "standard": ["indicators", "levels", "momentum"],
    "deep": ["indicators", "levels", "momentum", "patterns"],
}
JOB_POLL_S = 0.25
JOB_TIMEOUT_S = 600.0


class Ctx:
    """What every tab shares: the API client and the WebSocket feed."""

    def __init__(self, client: ApiClient) -> None:
        self.client = client
        self.feed = LiveFeed(client.ws_url, client.token)
        self._tools: set[str] | None = None

    def has_tool(self, name: str) -> bool:
        if self._tools is None:
            try:
                self._tools = self.client.tool_names()
            except ApiError:
                return False
        return name in self._tools

    def run_job(self, tool: str, arguments: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """Submit ``tool`` as a job and yield its state (plus ``elapsed_s``) until it finishes."""
        t0 = time.monotonic()
        state = self.client.post("/api/jobs", {"tool": tool, "arguments": arguments})
        state["elapsed_s"] = 0.0
        yield state
        while state.get("status") not in ("succeeded", "failed", "cancelled"):
            if time.monotonic() - t0 > JOB_TIMEOUT_S:
                raise ApiError(f"job {state['id']} still running after {JOB_TIMEOUT_S:.0f} s")
            time.sleep(JOB_POLL_S)
            state = self.client.get(f"/api/jobs/{state['id']}")
            state["elapsed_s"] = time.monotonic() - t0
            yield state


def _json_arg(text: str, what: str) -> dict[str, Any]:
    text = (text or "").strip()
    if not text:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ApiError(
            f"{what} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    if not isinstance(value, dict):
        raise ApiError(f'{what} must be a JSON object, e.g. {{"fast": 10}}')
    return value


def _range_args(period: str, start: str, end: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if (start or "").strip():
        out["start"] = start.strip()
        if (end or "").strip():
            out["end"] = end.strip()
    elif (period or "").strip():
        out["period"] = period.strip()
    return out


# ------------------------------------------------------------------------------------------ header
def _header_html(ctx: Ctx) -> str:
    parts = ['<div class="nq-header"><span class="nq-brand">nq-ray<small>trading desk</small></span>']
    try:
        hours = ctx.client.tool("get_market_hours")
        st = hours.get("status", {})
        state = str(st.get("state", "?")).upper()
        session = "RTH" if st.get("is_rth") else ("GLOBEX" if st.get("is_open") else "HALT/CLOSED")
        cls = "nq-badge-live" if st.get("is_open") else "nq-badge-down"
        parts.append(f'<span class="nq-badge {cls}">{esc(state)} · {esc(session)}</span>')
        parts.append(f'<span class="nq-dim">{esc(hours.get("description", ""))}</span>')
    except ApiError as exc:
        parts.append(f'<span class="nq-badge nq-badge-down">API: {esc(exc.message)}</span>')
    try:
        health = ctx.client.get("/health")
        hs = str(health.get("status", "?"))
        cls = {"ok": "nq-badge-live", "degraded": "nq-badge-warn"}.get(hs, "nq-badge-down")
        parts.append(f'<span class="nq-badge {cls}" title="GET /health">SYSTEM {esc(hs.upper())}</span>')
    except ApiError:
        pass
    parts.append(f'<span class="nq-dim">API {esc(ctx.client.api_url)}</span></div>')
    return "".join(parts)


# --------------------------------------------------------------------------------------- dashboard
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


def _positions(ctx: Ctx) -> tuple[Any, str]:
    status = ctx.client.tool("manage_position", action="status")
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
    return table, "<h4>Paper account</h4>" + pnl


def dashboard_load(ctx: Ctx, symbol: str, interval: str, bars: float, source: str) -> tuple[Any, ...]:
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
    except ApiError as exc:
        errors.append(error_html(exc, "price"))
    try:
        hist = ctx.client.get(
            "/api/market/historical", symbol=symbol, interval=interval, source=source, limit=n
        )
        recent: dict[str, list[float]] = {}
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
            recent = ind.get("recent", {})
        except ApiError as exc:
            errors.append(error_html(exc, "indicators"))
        try:
            sr = ctx.client.tool("find_support_resistance", symbol=symbol, interval=interval, source=source)
            levels = _levels(sr)
            levels_html = _levels_html(sr)
        except ApiError as exc:
            errors.append(error_html(exc, "levels"))
        title = f"{symbol} {interval} · {hist.get('count')} bars · last {str(hist.get('last_bar_time'))[:16]}"
        fig = charts.market_figure(hist.get("bars", []), recent, levels, title=title)
    except ApiError as exc:
        errors.append(error_html(exc, "bars"))
        fig = charts.empty("no chart: " + exc.message)
    try:
        positions, pnl = _positions(ctx)
    except ApiError as exc:
        positions, pnl = frame([]), error_html(exc, "positions")
    latest_order = ctx.feed.latest.get("order_update") or {}
    state["order_seen"] = latest_order.get("received_at")
    return quote_html, fig, levels_html, positions, pnl, "".join(errors), state


def dashboard_tick(
    ctx: Ctx, symbol: str, interval: str, bars: float, source: str, state: dict[str, Any] | None
) -> tuple[Any, ...]:
    """Timer tick: the quote and the WebSocket feed; the whole chart when a new bar has arrived, and the
    positions and P&L when an ``order_update`` came over the WebSocket since the last look."""
    ctx.feed.start()
    state = dict(state or {})
    skip = gr.skip()
    try:
        q = ctx.client.get("/api/market/nq-price", symbol=symbol, interval=interval, source=source)
        quote = _quote_html(q)
    except ApiError as exc:
        return error_html(exc, "price"), feed_html(ctx), skip, skip, skip, skip, skip, state
    if state.get("bar_time") and q.get("bar_time") != state["bar_time"]:
        return _reload(ctx, symbol, interval, bars, source)
    order_seen = (ctx.feed.latest.get("order_update") or {}).get("received_at")
    positions = pnl = skip
    if order_seen is not None and order_seen != state.get("order_seen"):
        state["order_seen"] = order_seen
        try:
            positions, pnl = _positions(ctx)
        except ApiError as exc:
            pnl = error_html(exc, "positions")
    return quote, feed_html(ctx), skip, skip, positions, pnl, skip, state


def _reload(ctx: Ctx, symbol: str, interval: str, bars: float, source: str) -> tuple[Any, ...]:
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


# ------------------------------------------------------------------------------------------ agents
def _agents_table(ctx: Ctx) -> Any:
    rows = ctx.client.get("/api/agents")
    flat = []
    for a in rows:
        row = {k: v for k, v in a.items() if not isinstance(v, dict | list)}
        cfg = a.get("config") or {}
        for k in ("provider", "model", "temperature", "max_tokens"):
            if k in cfg:
                row[k] = cfg[k] if cfg[k] is not None or k != "provider" else "(router)"
        if isinstance(cfg.get("budget"), dict):
            row["budget"] = ", ".join(f"{k}={v}" for k, v in cfg["budget"].items() if v is not None)
        flat.append(row)
    return frame(flat)


def _desk_html(ctx: Ctx) -> str:
    st = ctx.client.get("/api/desk/status")
    rows = [(k, v) for k, v in st.items() if not isinstance(v, dict | list)]
    for k, v in st.items():
        if isinstance(v, dict):
            rows += [(f"{k}.{kk}", vv) for kk, vv in v.items() if not isinstance(vv, dict | list)]
    if st.get("halted"):
        badge = '<span class="nq-badge nq-badge-down" data-testid="desk-state">HALTED · KILL SWITCH</span>'
    elif st.get("running"):
        badge = '<span class="nq-badge nq-badge-live" data-testid="desk-state">RUNNING</span>'
    else:
        badge = '<span class="nq-badge nq-badge-sample" data-testid="desk-state">STOPPED</span>'
    brows = []
    for agent, b in (st.get("budgets") or {}).items():
        tok_limit = num(b.get("tokens_limit"), 0) if b.get("tokens_limit") else "∞"
        usd_limit = usd(b.get("usd_limit")) if b.get("usd_limit") else "∞"
        text = f"{num(b.get('tokens_used'), 0)} / {tok_limit} tok · {usd(b.get('usd_used'))} / {usd_limit}"
        brows.append((agent, text))
    budget_html = "<h4>Budgets used today</h4>" + kv_table(brows) if brows else ""
    return f"<h4>Desk {badge}</h4>" + kv_table(rows) + budget_html


def _decisions_table(ctx: Ctx, limit: int = 50) -> Any:
    rows = ctx.client.get("/api/decisions", limit=limit)
    flat = []
    for d in rows:
        row = {
            k: v for k, v in d.items() if not isinstance(v, dict | list) and k not in ("prompt", "raw_output")
        }
        flat.append(row)
    return frame(flat)


def agents_load(ctx: Ctx) -> tuple[Any, ...]:
    notes: list[str] = []
    desk, agents, decisions, llm = "", frame([]), frame([]), ""
    try:
        desk = _desk_html(ctx)
    except ApiError as exc:
        desk = error_html(exc, "desk status")
    try:
        agents = _agents_table(ctx)
    except ApiError as exc:
        notes.append(error_html(exc, "agents"))
    try:
        decisions = _decisions_table(ctx)
    except ApiError as exc:
        notes.append(error_html(exc, "decision log"))
    try:
        llm = _llm_html(ctx.client.get("/api/llm/status"))
    except ApiError as exc:
        llm = error_html(exc, "LLM status")
    return desk, agents, decisions, llm, "".join(notes)


def _llm_html(st: Any) -> str:
    if isinstance(st, dict):
        providers = st.get("providers", st)
        if isinstance(providers, list):
            rows = [
                (
                    p.get("name", "?"),
                    Html(
                        " · ".join(
                            f"{k}={esc(num(v))}"
                            for k, v in p.items()
                            if k != "name" and not isinstance(v, dict | list)
                        )
                    ),
                )
                for p in providers
            ]
        else:
            rows = [(k, v if not isinstance(v, dict | list) else json.dumps(v)[:120]) for k, v in st.items()]
        return "<h4>LLM providers and budgets</h4>" + kv_table(rows)
    return "<h4>LLM providers</h4>" + esc(json.dumps(st)[:500])


def desk_action(ctx: Ctx, action: str) -> tuple[str, str]:
    body: dict[str, Any] | None = None
    if action == "kill":
        body = {"who": "ui", "reason": "kill switch pressed in the web UI"}
    elif action == "resume":
        body = {"who": "ui"}
    try:
        ctx.client.post(f"/api/desk/{action}", body)
        msg = ok_html(f"desk {action}: done")
    except ApiError as exc:
        msg = error_html(exc, f"desk {action}")
    try:
        desk = _desk_html(ctx)
    except ApiError as exc:
        desk = error_html(exc, "desk status")
    return desk, msg


def set_approval_mode(ctx: Ctx, on: bool) -> str:
    try:
        ctx.client.put("/api/desk/approval-mode", {"on": bool(on)})
        return ok_html(f"approval mode {'on: proposals wait for a human' if on else 'off'}")
    except ApiError as exc:
        return error_html(exc, "approval mode")


def create_agent(
    ctx: Ctx,
    name: str,
    agent_type: str,
    provider: str,
    model: str,
    temperature: float,
    tokens_per_day: float | None,
    usd_per_day: float | None,
) -> tuple[Any, str]:
    config: dict[str, Any] = {"temperature": float(temperature)}
    if provider and provider != "(any)":
        config["provider"] = provider
    if (model or "").strip():
        config["model"] = model.strip()
    budget = {
        k: v
        for k, v in (
            ("tokens_per_day", int(tokens_per_day) if tokens_per_day else None),
            ("usd_per_day", float(usd_per_day) if usd_per_day else None),
        )
        if v is not None
    }
    if budget:
        config["budget"] = budget
    try:
        body: dict[str, Any] = {"agent_type": agent_type, "config": config}
        if (name or "").strip():
            body["agent_id"] = name.strip()
        made = ctx.client.post("/api/agents", body)
        msg = ok_html(f"agent {made.get('agent_id', name)} created")
    except ApiError as exc:
        msg = error_html(exc, "create agent")
    try:
        return _agents_table(ctx), msg
    except ApiError as exc:
        return frame([]), msg + error_html(exc, "agents")


def agent_detail(ctx: Ctx, agent_id: str) -> tuple[Any, str]:
    """An agent's configuration, state and memory."""
    agent_id = (agent_id or "").strip()
    if not agent_id:
        return None, '<div class="nq-note">Type an agent id (or name) from the table.</div>'
    try:
        return ctx.client.get(f"/api/agents/{agent_id}"), ""
    except ApiError as exc:
        return None, error_html(exc, "agent")


def decision_detail(ctx: Ctx, decision_id: str, replay: bool = False) -> tuple[Any, str]:
    decision_id = (decision_id or "").strip()
    if not decision_id:
        return None, '<div class="nq-note">Type a decision id from the log.</div>'
    try:
        if replay:
            out = ctx.client.post(f"/api/decisions/{decision_id}/replay", {})
            return out, ok_html(f"decision {decision_id} replayed on its recorded inputs")
        return ctx.client.get(f"/api/decisions/{decision_id}"), ""
    except ApiError as exc:
        return None, error_html(exc, "replay" if replay else "decision")


# ---------------------------------------------------------------------------------------- analysis
def _section(title: str, body: str) -> str:
    return f"### {title}\n{body}\n\n"


def _md_table(rows: list[tuple[str, Any]]) -> str:
    return "| indicator | value |\n|---|---:|\n" + "".join(f"| {k} | {num(v)} |\n" for k, v in rows)


def _view_html(view: dict[str, Any], meta: dict[str, Any]) -> str:
    bias = str(view.get("bias", "?"))
    rows: list[tuple[str, Any]] = [
        ("confidence", pct(view.get("confidence"), 0) if view.get("confidence") is not None else "—"),
        ("horizon", view.get("horizon")),
        ("invalidation", view.get("invalidation")),
    ]
    for k in ("entry", "stop", "target"):
        if view.get(k) is not None:
            rows.append((k, view.get(k)))
    levels = view.get("key_levels") or view.get("levels") or []
    if isinstance(levels, dict):
        levels = [f"{k} {v}" for k, v in levels.items()]
    who = meta.get("label") or meta.get("provider") or "?"
    if meta.get("is_llm") is False:
        who = f"{who} · rules analyst (deterministic, not an LLM)"
    elif meta.get("model"):
        who = f"{who} · {meta['model']}"
    return (
        f'<div class="nq-view" data-testid="view"><div>bias <span class="bias {esc(bias.lower())}">'
        f"{esc(bias)}</span></div>{kv_table(rows)}"
        f"<h4>Key levels</h4><div>{esc(', '.join(str(x) for x in levels) or '—')}</div>"
        f"<h4>Reasoning</h4><div>{esc(view.get('reasoning', ''))}</div>"
        f'<div class="nq-dim">answered by {esc(who)}'
        f"{' · decision ' + esc(meta['decision_id']) if meta.get('decision_id') else ''}</div></div>"
    )


def _find_view(obj: Any) -> dict[str, Any] | None:
    """The ``MarketView`` inside an agents-API answer, wherever it sits."""
    if isinstance(obj, dict):
        if "bias" in obj and ("confidence" in obj or "invalidation" in obj):
            return obj
        for key in ("view", "market_view", "analysis", "report", "result", "decision", "parsed"):
            if key in obj and (found := _find_view(obj[key])) is not None:
                return found
    return None


def _find_meta(obj: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {}
    stack = [obj]
    while stack:
        cur = stack.pop()
        if isinstance(cur, dict):
            for k in ("provider", "model", "label", "is_llm", "fallback"):
                if k in cur and k not in meta and not isinstance(cur[k], dict | list):
                    meta[k] = cur[k]
            for k in ("record_id", "decision_id"):
                if k in cur and "decision_id" not in meta and not isinstance(cur[k], dict | list):
                    meta["decision_id"] = str(cur[k])
            stack.extend(v for v in cur.values() if isinstance(v, dict))
    return meta


def analysis_stream(
    ctx: Ctx, symbol: str, interval: str, depth: str, analyst: str
) -> Iterator[tuple[str, str, str]]:
    """Stream the analysis in: each tool's answer as it arrives, then the analyst's structured view."""
    text = f"## {symbol} {interval} · {depth} analysis\n\n"
    view = '<div class="nq-note">waiting for the analyst…</div>'
    yield text + "_fetching the price…_", view, ""
    try:
        q = ctx.client.get("/api/market/nq-price", symbol=symbol, interval=interval)
        origin = q.get("origin") or {}
        text += _section(
            "Price",
            f"**{q['price']:,.2f}** ({q.get('change_pts', 0):+,.2f} pts, {q.get('change_pct', 0):+.2f}%), "
            f"session {num(q.get('session_low'))} – {num(q.get('session_high'))}, market {q.get('market')}. "
            f"Data: {origin.get('source')} ({'live' if origin.get('live') else 'not live'}).",
        )
        yield text, view, ""
        for step in DEPTH_TOOLS.get(depth, DEPTH_TOOLS["standard"]):
            yield text + f"_running {step}…_", view, ""
            if step == "indicators":
                ind = ctx.client.tool(
                    "calculate_technical_indicators", symbol=symbol, interval=interval, tail=1
                )
                latest = ind.get("latest", {})
                keys = ["rsi", "macd_hist", "bollinger_upper", "bollinger_lower", "atr", "adx"]
                text += _section("Indicators", _md_table([(k, latest.get(k)) for k in keys if k in latest]))
            elif step == "levels":
                lv = ctx.client.tool("find_support_resistance", symbol=symbol, interval=interval)["levels"]
                s, r = lv.get("nearest_support") or {}, lv.get("nearest_resistance") or {}
                text += _section(
                    "Levels",
                    f"Nearest support **{num(s.get('price'))}** ({s.get('name')}), nearest resistance "
                    f"**{num(r.get('price'))}** ({r.get('name')}).",
                )
            elif step == "momentum":
                rep = ctx.client.tool("analyze_momentum", symbol=symbol, interval=interval)["report"]
                tr = rep.get("trend", {})
                al = rep.get("alignment", {})
                text += _section(
                    "Momentum",
                    f"Trend {tr.get('direction')} ({tr.get('strength')}, ADX {num(tr.get('adx'), 1)}); "
                    f"RSI {num(rep.get('rsi'), 1)}; timeframes "
                    + ", ".join(f"{k} {v}" for k, v in (al.get("directions") or {}).items())
                    + f"; {len(rep.get('divergences') or [])} divergences.",
                )
            elif step == "patterns":
                rep = ctx.client.tool("detect_patterns", symbol=symbol, interval=interval)["report"]
                cs = ", ".join(f"{c['name']} ({c['direction']})" for c in (rep.get("candlesticks") or [])[:5])
                ch = ", ".join(
                    f"{c['kind']} ({c['direction']}, {c.get('status')})"
                    for c in (rep.get("chart_patterns") or [])[:4]
                )
                text += _section("Patterns", f"Candles: {cs or 'none'}.  Chart: {ch or 'none'}.")
            yield text, view, ""
    except ApiError as exc:
        yield text, view, error_html(exc, "analysis")
        return
    yield text + "_asking the analyst…_", view, ""
    try:
        answer = _ask_analyst(ctx, symbol, interval, depth, analyst)
    except ApiError as exc:
        yield text, error_html(exc, "analyst"), ""
        return
    found = _find_view(answer)
    meta = _find_meta(answer)
    if found is None:
        yield text, '<div class="nq-note">The analyst answered without a structured view.</div>', ""
        return
    if found.get("reasoning"):
        text += "### Analyst\n"
        for chunk in _chunks(str(found["reasoning"])):
            text += chunk
            yield text, view, ""
    yield text, _view_html(found, meta), ""


def _chunks(text: str, words: int = 6) -> Iterator[str]:
    parts = text.split(" ")
    for i in range(0, len(parts), words):
        yield " ".join(parts[i : i + words]) + " "


def _ask_analyst(ctx: Ctx, symbol: str, interval: str, depth: str, analyst: str) -> Any:
    """Ask an analysis agent through the agents API (``POST /api/agents/{id}/tasks``)."""
    rows = ctx.client.get("/api/agents")
    wanted = "rules" if analyst.startswith("rules") else None
    pick = None
    for a in rows:
        if a.get("agent_type") != "analysis":
            continue
        provider = (a.get("config") or {}).get("provider")
        if provider == wanted:
            pick = a
            break
    if pick is None:
        name = "ui-rules-analyst" if wanted else "ui-analyst"
        config = {"provider": wanted} if wanted else {}
        pick = ctx.client.post("/api/agents", {"agent_id": name, "agent_type": "analysis", "config": config})
    task = {"type": "market_analysis", "parameters": {"symbol": symbol, "analysis_depth": depth}}
    return ctx.client.post(f"/api/agents/{pick['agent_id']}/tasks", task)


def analysis_archive(ctx: Ctx) -> tuple[Any, str]:
    try:
        return _decisions_table(ctx), ""
    except ApiError as exc:
        return frame([]), error_html(exc, "archive")


# ------------------------------------------------------------------------------------- backtesting
def _costs(
    contracts: float, commission: float, slippage: float, stop: float | None, target: float | None
) -> dict:
    out: dict[str, Any] = {
        "contracts": int(contracts),
        "commission_per_contract": float(commission),
        "slippage_ticks": float(slippage),
    }
    if stop:
        out["stop_loss_ticks"] = float(stop)
    if target:
        out["take_profit_ticks"] = float(target)
    return out


def _metrics_html(m: dict[str, Any]) -> str:
    rows = [
        ("net P&L", usd(m.get("net_pnl_usd"), signed=True)),
        ("total return", pct(m.get("total_return"), 2)),
        ("Sharpe", num(m.get("sharpe"))),
        ("Sortino", num(m.get("sortino"))),
        ("max drawdown", f"{usd(m.get('max_drawdown_usd'))} ({pct(m.get('max_drawdown_pct'))})"),
        ("trades", num(m.get("n_trades"), 0)),
        ("win rate", pct(m.get("win_rate"))),
        ("profit factor", num(m.get("profit_factor"))),
        ("expectancy", usd(m.get("expectancy_usd"), signed=True)),
        ("avg win / loss", f"{usd(m.get('avg_win_usd'))} / {usd(m.get('avg_loss_usd'))}"),
        ("commission", usd(m.get("commission_usd"))),
        ("final equity", usd(m.get("final_equity_usd"))),
    ]
    return '<div data-testid="metrics"><h4>Metrics</h4>' + kv_table(rows) + "</div>"


def _write_csv(result: dict[str, Any]) -> str:
    """Trades, equity curve and metrics of one backtest as a CSV file for download."""
    suffix = f"_{result.get('strategy', 'backtest')}.csv"
    with tempfile.NamedTemporaryFile("w", suffix=suffix, delete=False, newline="") as fd:
        w = csv.writer(fd)
        w.writerow(["section", "key", "value"])
        for k, v in (result.get("metrics") or {}).items():
            w.writerow(["metric", k, v])
        for k, v in (result.get("params") or {}).items():
            w.writerow(["param", k, v])
        w.writerow([])
        trades = result.get("last_trades") or []
        if trades:
            cols = list(trades[0].keys())
            w.writerow(["trade", *cols])
            for t in trades:
                w.writerow(["trade", *[t.get(c) for c in cols]])
        w.writerow([])
        w.writerow(["equity", "time", "equity_usd"])
        for t, e in result.get("equity_curve") or []:
            w.writerow(["equity", t, e])
    return fd.name


def backtest_run(
    ctx: Ctx,
    strategy: str,
    params_text: str,
    symbol: str,
    interval: str,
    source: str,
    period: str,
    start: str,
    end: str,
    contracts: float,
    commission: float,
    slippage: float,
    stop: float | None,
    target: float | None,
) -> Iterator[tuple[Any, ...]]:
    """Run ``run_backtest`` as a job; the progress bar follows it, then the results fill in."""
    blank = charts.empty("run a backtest to see its equity curve")
    try:
        args = {
            "strategy": strategy,
            "params": _json_arg(params_text, "parameters") or None,
            "symbol": symbol,
            "interval": interval,
            "source": source,
            "costs": _costs(contracts, commission, slippage, stop, target),
        } | _range_args(period, start, end)
        state: dict[str, Any] = {}
        for state in ctx.run_job("run_backtest", args):
            yield progress_html(state, "backtest"), blank, frame([]), "", None, ""
    except ApiError as exc:
        yield "", blank, frame([]), "", None, error_html(exc, "backtest")
        return
    if state.get("status") != "succeeded":
        err = state.get("error") or {}
        msg = err.get("detail") or err.get("message") if isinstance(err, dict) else str(err)
        yield (
            progress_html(state, "backtest"),
            blank,
            frame([]),
            "",
            None,
            error_html(ApiError(str(msg or state.get("status"))), "backtest"),
        )
        return
    res = state["result"]
    label = f"{res['strategy']} {json.dumps(res.get('params'))} on {res['symbol']} {res['interval']}"
    fig = charts.equity_figure(res.get("equity_curve") or [], title=f"Equity and drawdown · {label}")
    trades = frame(
        list(reversed(res.get("last_trades") or [])),
        [
            "entry_time",
            "exit_time",
            "side",
            "contracts",
            "entry_price",
            "exit_price",
            "pnl_usd",
            "exit_reason",
        ],
    )
    summary = _metrics_html(res.get("metrics", {})) + (
        f'<div class="nq-dim">{esc(res.get("first_bar_time"))} → {esc(res.get("last_bar_time"))} · '
        f"{source_badge(res.get('origin'))}</div>"
    )
    yield progress_html(state, "backtest"), fig, trades, summary, _write_csv(res), ""


def compare_run(
    ctx: Ctx, strategies: list[str], symbol: str, interval: str, period: str, rank_by: str
) -> tuple[Any, Any, str]:
    if len(strategies or []) < 2:
        return (
            frame([]),
            charts.empty("pick two or more strategies"),
            error_html("pick two or more strategies"),
        )
    try:
        out = ctx.client.tool(
            "compare_strategies",
            strategies=strategies,
            symbol=symbol,
            interval=interval,
            rank_by=rank_by,
            **_range_args(period, "", ""),
        )
    except ApiError as exc:
        return frame([]), charts.empty("comparison failed"), error_html(exc, "compare")
    rows = [{"strategy": r["label"]} | r["metrics"] for r in out.get("rows", [])]
    cols = ["strategy", "net_pnl_usd", "sharpe", "sortino", "max_drawdown_usd", "n_trades", "win_rate"]
    fig = charts.bars_chart(
        [r["strategy"] for r in rows], [float(r.get(rank_by) or 0) for r in rows], f"{rank_by} by strategy"
    )
    return frame(rows, cols), fig, ""


def sweep_run(
    ctx: Ctx, strategy: str, grid_text: str, symbol: str, interval: str, period: str, metric: str
) -> Iterator[tuple[Any, ...]]:
    blank = charts.empty("run a sweep to see the heatmap")
    try:
        grid = _json_arg(grid_text, "grid")
        if not grid:
            raise ApiError(
                'the grid is empty: give each parameter a list, e.g. {"fast": [5, 10], "slow": [30, 50]}'
            )
        args = {"strategy": strategy, "grid": grid, "symbol": symbol, "interval": interval, "metric": metric}
        args |= {"top": 100} | _range_args(period, "", "")
        state: dict[str, Any] = {}
        for state in ctx.run_job("run_sweep", args):
            yield progress_html(state, "sweep"), blank, frame([]), ""
    except ApiError as exc:
        yield "", blank, frame([]), error_html(exc, "sweep")
        return
    if state.get("status") != "succeeded":
        err = state.get("error")
        yield progress_html(state, "sweep"), blank, frame([]), error_html(ApiError(str(err)), "sweep")
        return
    res = state["result"]
    keys = list(grid.keys())
    fig = (
        charts.heatmap(res.get("top", []), keys[0], keys[1], metric)
        if len(keys) >= 2
        else charts.bars_chart(
            [str(r.get(keys[0])) for r in res.get("top", [])],
            [r.get(metric, 0) for r in res.get("top", [])],
            metric,
        )
    )
    table = frame(res.get("top", []), [*keys, metric, "net_pnl_usd", "max_drawdown_usd", "n_trades"])
    note = ok_html(
        f"{res.get('combinations')} combinations, best {json.dumps(res.get('best_params'))} "
        f"({res.get('skipped_combinations', 0)} skipped as invalid)"
    )
    yield progress_html(state, "sweep"), fig, table, note


def walkforward_run(
    ctx: Ctx, strategy: str, grid_text: str, symbol: str, interval: str, period: str, folds: float
) -> Iterator[tuple[Any, ...]]:
    blank = charts.empty("run a walk-forward to see the out-of-sample equity")
    if not ctx.has_tool("run_walk_forward"):
        err = error_html(NotAvailable("no run_walk_forward tool in GET /api/tools"))
        yield "", charts.empty("walk-forward is not available from this server"), frame([]), err
        return
    try:
        args = {"strategy": strategy, "grid": _json_arg(grid_text, "grid"), "symbol": symbol}
        args |= {"interval": interval, "n_folds": int(folds or 4)} | _range_args(period, "", "")
        state: dict[str, Any] = {}
        for state in ctx.run_job("run_walk_forward", args):
            yield progress_html(state, "walk-forward"), blank, frame([]), ""
    except ApiError as exc:
        yield "", blank, frame([]), error_html(exc, "walk-forward")
        return
    if state.get("status") != "succeeded":
        err = error_html(ApiError(str(state.get("error"))), "walk-forward")
        yield progress_html(state, "walk-forward"), blank, frame([]), err
        return
    out = state["result"]
    eff = out.get("efficiency_ratio")
    pnl = (out.get("oos_metrics") or {}).get("net_pnl_usd")
    summary = f"{len(out.get('folds', []))} folds · out-of-sample net P&L " + (
        f"${pnl:,.2f}" if isinstance(pnl, int | float) else "n/a"
    )
    summary += " · walk-forward efficiency " + (
        f"{eff:.2f}" if isinstance(eff, int | float) else "n/a (in-sample P&L ≤ 0)"
    )
    fig = charts.equity_figure(out.get("oos_equity_curve") or [], "Out-of-sample equity")
    yield progress_html(state, "walk-forward"), fig, frame(out.get("folds", [])), ok_html(summary)


# -------------------------------------------------------------------------------------------- risk
def risk_load(ctx: Ctx, symbol: str, contracts: float, confidence: float, method: str) -> tuple[Any, ...]:
    errors = []
    limits_html = exposure_html = var_html = ""
    g_loss = g_dd = charts.empty("no data", 200)
    try:
        risk = ctx.client.tool("assess_portfolio_risk")
        limits = risk.get("limits", {})
        limits_html = "<h4>Limits in force</h4>" + kv_table(
            [(k, usd(v) if k.endswith("_usd") else v) for k, v in limits.items() if not isinstance(v, list)]
        )
        pf = risk.get("portfolio", {})
        total = pf.get("total", {})
        exposure_html = "<h4>Exposure</h4>" + kv_table(
            [
                ("gross exposure", usd(risk.get("gross_exposure_usd"))),
                ("initial margin", usd(risk.get("initial_margin_usd"))),
                ("margin use", pct(risk.get("margin_use_pct"))),
                ("equity", usd(risk.get("equity_usd"))),
            ]
            + [(f"{s} exposure", usd(v)) for s, v in (risk.get("exposure_usd") or {}).items()]
        )
        net = float(total.get("net_pnl_usd") or 0)
        g_loss = charts.gauge(max(0.0, -net), float(limits.get("max_daily_loss_usd") or 1), "Daily loss used")
        balance = float(pf.get("balance_usd") or 0)
        peak = max(balance - float(total.get("realized_pnl_usd") or 0), float(pf.get("equity_usd") or 0))
        dd = max(0.0, peak - float(pf.get("equity_usd") or 0))
        g_dd = charts.gauge(dd, float(limits.get("trailing_drawdown_usd") or 1), "Trailing drawdown used")
    except ApiError as exc:
        errors.append(error_html(exc, "portfolio risk"))
    try:
        v = ctx.client.tool(
            "calculate_var",
            symbol=symbol,
            contracts=int(contracts),
            confidence=float(confidence),
            method=method,
        )["var"]
        var_html = f"<h4>VaR / ES · {esc(symbol)} × {int(contracts)}</h4>" + kv_table(
            [
                (f"VaR {pct(v['confidence'], 0)} 1-day", usd(v["var_usd"])),
                (f"ES {pct(v['confidence'], 0)} 1-day", usd(v["es_usd"])),
                ("method", v["method"]),
                ("observations", v["observations"]),
                ("sample", f"{str(v.get('sample_start'))[:10]} → {str(v.get('sample_end'))[:10]}"),
                ("std of daily P&L", usd(v.get("std_pnl_usd"))),
            ]
        )
    except ApiError as exc:
        errors.append(error_html(exc, "VaR"))
    approvals, note = approvals_table(ctx)
    return limits_html, exposure_html, var_html, g_loss, g_dd, approvals, note + "".join(errors)


def approvals_table(ctx: Ctx) -> tuple[Any, str]:
    try:
        out = ctx.client.get("/api/approvals")
    except ApiError as exc:
        return frame([]), error_html(exc, "approval queue")
    flat = []
    for a in out:
        row = {k: v for k, v in a.items() if not isinstance(v, dict | list)}
        prop = a.get("proposal") or {}
        for k in ("symbol", "side", "contracts", "entry", "stop", "target"):
            if k in prop and k not in row:
                row[k] = prop[k]
        flat.append(row)
    if not flat:
        return frame([{"approvals": "queue empty"}]), ""
    return frame(flat), ""


def decide_approval(ctx: Ctx, approval_id: str, approve: bool, reason: str) -> tuple[Any, str]:
    approval_id = (approval_id or "").strip()
    if not approval_id:
        table, _ = approvals_table(ctx)
        return table, error_html("type the id of a proposal from the queue")
    verb = "approve" if approve else "reject"
    try:
        body = {"who": "ui"} | ({"reason": reason.strip()} if not approve and (reason or "").strip() else {})
        out = ctx.client.post(f"/api/approvals/{approval_id}/{verb}", body)
        status = out.get("status", verb + "d") if isinstance(out, dict) else verb + "d"
        msg = ok_html(f"proposal {approval_id}: {status}")
    except ApiError as exc:
        msg = error_html(exc, verb)
    table, note = approvals_table(ctx)
    return table, msg + note


# ----------------------------------------------------------------------------------- configuration
RISK_FIELDS = [
    ("max_contracts_per_symbol", "Max contracts per symbol"),
    ("max_total_contracts", "Max total contracts"),
    ("max_daily_loss_usd", "Max daily loss (USD)"),
    ("trailing_drawdown_usd", "Trailing drawdown (USD)"),
    ("max_notional_usd", "Max notional (USD)"),
    ("max_orders_per_minute", "Max orders per minute"),
]


def config_load(ctx: Ctx) -> tuple[Any, ...]:
    values: list[Any] = [None] * len(RISK_FIELDS)
    providers = frame([])
    notes = []
    choices: list[str] = []
    try:
        cfg = ctx.client.get("/api/config")
        cfg = cfg.get("settings", cfg)
        limits = ((cfg.get("risk") or {}).get("limits")) or {}
        values = [limits.get(k) for k, _ in RISK_FIELDS]
        provs = (cfg.get("llm") or {}).get("providers") or []
        choices = [p.get("name") for p in provs if p.get("name")]
    except ApiError as exc:
        notes.append(error_html(exc, "configuration"))
        provs = []
    try:
        health = ctx.client.get("/health")
        parts = (((health.get("checks") or {}).get("llm") or {}).get("parts")) or {}
    except ApiError:
        parts = {}
    rows = []
    for p in provs or [{"name": n} for n in parts]:
        h = parts.get(p.get("name"), {})
        rows.append(
            {
                "provider": p.get("name"),
                "kind": p.get("kind"),
                "model": p.get("model"),
                "priority": p.get("priority"),
                "enabled": p.get("enabled"),
                "health": h.get("status"),
                "detail": h.get("detail"),
            }
        )
    providers = frame(rows)
    changes, note = config_changes(ctx)
    dropdown = gr.update(choices=choices, value=choices[0] if choices else None)
    return (*values, providers, dropdown, changes, "".join(notes) + note)


def config_changes(ctx: Ctx) -> tuple[Any, str]:
    try:
        out = ctx.client.get("/api/config/changes")
    except ApiError as exc:
        return frame([]), error_html(exc, "change log")
    flat = [{k: (json.dumps(v) if isinstance(v, dict | list) else v) for k, v in r.items()} for r in out]
    return frame(flat), ""


def _patch(ctx: Ctx, body: dict[str, Any], what: str) -> tuple[Any, str]:
    try:
        ctx.client.patch("/api/config", body)
        msg = ok_html(f"{what} applied and recorded")
    except ApiError as exc:
        msg = error_html(exc, what)
    changes, note = config_changes(ctx)
    return changes, msg + note


def save_risk(ctx: Ctx, *values: Any) -> tuple[Any, str]:
    limits = {k: v for (k, _), v in zip(RISK_FIELDS, values, strict=True) if v is not None}
    return _patch(ctx, {"risk": {"limits": limits}}, "risk limits")


def provider_values(ctx: Ctx, provider: str) -> tuple[Any, Any, Any]:
    """The chosen provider's current enabled / priority / timeout, so an edit starts from them."""
    try:
        cfg = ctx.client.get("/api/config").get("settings", {})
    except ApiError:
        return gr.skip(), gr.skip(), gr.skip()
    for p in (cfg.get("llm") or {}).get("providers") or []:
        if p.get("name") == provider:
            return bool(p.get("enabled", True)), p.get("priority"), p.get("timeout_s")
    return gr.skip(), gr.skip(), gr.skip()


def save_provider(
    ctx: Ctx, provider: str, enabled: bool, priority: float | None, timeout_s: float | None
) -> tuple[Any, str]:
    """Switch a provider on/off or re-order the chain (``llm.providers`` is patched by name)."""
    if not provider:
        return config_changes(ctx)[0], error_html("pick a provider")
    entry: dict[str, Any] = {"enabled": bool(enabled)}
    if priority is not None:
        entry["priority"] = int(priority)
    if timeout_s:
        entry["timeout_s"] = float(timeout_s)
    return _patch(ctx, {"llm": {"providers": {provider: entry}}}, f"provider {provider}")


def save_raw(ctx: Ctx, text: str) -> tuple[Any, str]:
    try:
        body = _json_arg(text, "the patch")
    except ApiError as exc:
        return config_changes(ctx)[0], error_html(exc, "patch")
    return _patch(ctx, body, "settings patch")


# ------------------------------------------------------------------------------------------- build
def build_ui(api_url: str, token: str | None = None) -> gr.Blocks:
    """The whole UI as a ``gr.Blocks`` talking to the nq-ray API at ``api_url``."""
    ctx = Ctx(ApiClient(api_url, token))

    with gr.Blocks(title="nq-ray · trading desk", fill_width=True) as demo:
        with gr.Row(elem_id="nq-top"):
            header = gr.HTML(elem_id="nq-header")
            theme_btn = gr.Button("◐ Theme", size="sm", scale=0, min_width=80, elem_id="theme-toggle")
        theme_btn.click(None, js=_toggle_js())

        with gr.Tabs(elem_id="tabs"):
            # ----------------------------------------------------------------- Dashboard
            with gr.Tab("Dashboard", id="dashboard", elem_id="tab-dashboard") as t_dash:
                with gr.Row():
                    d_symbol = gr.Dropdown(SYMBOLS, value="NQ", label="Symbol", min_width=100)
                    d_interval = gr.Dropdown(INTERVALS, value="5m", label="Interval", min_width=100)
                    d_bars = gr.Slider(60, 500, value=240, step=20, label="Bars", min_width=160)
                    d_source = gr.Dropdown(SOURCES, value="sample", label="Source", min_width=110)
                    d_refresh = gr.Button("Reload chart", variant="primary", min_width=110)
                    d_live = gr.Checkbox(value=True, label="Live updates", min_width=110)
                d_quote = gr.HTML(elem_id="quote")
                d_err = gr.HTML()
                with gr.Row():
                    with gr.Column(scale=4, min_width=320):
                        d_chart = gr.Plot(label="Chart", elem_id="market-chart", show_label=False)
                    with gr.Column(scale=1, min_width=260):
                        d_pnl = gr.HTML(elem_id="pnl")
                        d_levels = gr.HTML(elem_id="levels")
                        d_feed = gr.HTML(elem_id="feed")
                d_positions = gr.Dataframe(label="Open positions", elem_id="positions", interactive=False)
                timer = gr.Timer(5.0)

            # -------------------------------------------------------------------- Agents
            with gr.Tab("Agents", id="agents", elem_id="tab-agents") as t_agents:
                with gr.Row():
                    with gr.Column(scale=1, min_width=300):
                        a_desk = gr.HTML(elem_id="desk-status")
                        with gr.Row():
                            a_start = gr.Button("Start desk", variant="primary", min_width=90)
                            a_stop = gr.Button("Stop", min_width=70)
                            a_once = gr.Button("Run one cycle", min_width=110)
                        with gr.Row():
                            a_kill = gr.Button(
                                "KILL SWITCH", variant="stop", elem_classes=["nq-kill"], min_width=120
                            )
                            a_resume = gr.Button("Resume after kill", min_width=120)
                        a_approval = gr.Checkbox(label="Approval mode (a human approves each proposal)")
                        a_msg = gr.HTML()
                        a_llm = gr.HTML(elem_id="llm-status")
                    with gr.Column(scale=2, min_width=320):
                        a_agents = gr.Dataframe(label="Agents", interactive=False, elem_id="agents-table")
                        with gr.Accordion("Create / configure an agent", open=False):
                            with gr.Row():
                                c_name = gr.Textbox(label="Name", value="analyst-2", min_width=120)
                                c_type = gr.Dropdown(
                                    ["analysis", "risk", "execution"],
                                    value="analysis",
                                    label="Type",
                                    min_width=110,
                                )
                                c_provider = gr.Dropdown(
                                    ["(any)", "rules", "serve", "ollama", "openai", "groq"],
                                    value="(any)",
                                    label="Provider",
                                    allow_custom_value=True,
                                    min_width=110,
                                )
                            with gr.Row():
                                c_model = gr.Textbox(label="Model (optional)", min_width=120)
                                c_temp = gr.Slider(
                                    0, 2, value=0.2, step=0.05, label="Temperature", min_width=140
                                )
                                c_tokens = gr.Number(label="Tokens / day", precision=0, min_width=100)
                                c_usd = gr.Number(label="USD / day", min_width=100)
                            c_create = gr.Button("Create agent", variant="primary")
                        with gr.Row():
                            a_agent_id = gr.Textbox(label="Agent id", min_width=120, scale=2)
                            a_agent_show = gr.Button("Show config and memory", min_width=140, scale=1)
                        a_agent_json = gr.JSON(
                            label="Agent (config, status, memory)", open=True, elem_id="agent-json"
                        )
                a_decisions = gr.Dataframe(
                    label="Decision log (agent communication)", interactive=False, elem_id="decisions"
                )
                with gr.Row():
                    a_dec_id = gr.Textbox(label="Decision id", min_width=120, scale=2)
                    a_dec_show = gr.Button("Show", min_width=80, scale=1)
                    a_dec_replay = gr.Button("Replay", min_width=80, scale=1)
                a_dec_json = gr.JSON(label="Decision (inputs, prompt, output, verdict)", open=False)

            # ------------------------------------------------------------------ Analysis
            with gr.Tab("Analysis", id="analysis", elem_id="tab-analysis"):
                with gr.Row():
                    n_symbol = gr.Dropdown(SYMBOLS, value="NQ", label="Symbol", min_width=100)
                    n_interval = gr.Dropdown(INTERVALS, value="5m", label="Timeframe", min_width=100)
                    n_depth = gr.Radio(
                        ["quick", "standard", "deep"], value="standard", label="Depth", min_width=200
                    )
                    n_analyst = gr.Dropdown(
                        ["rules analyst (deterministic)", "router (best available LLM)"],
                        value="rules analyst (deterministic)",
                        label="Analyst",
                        min_width=180,
                    )
                    n_go = gr.Button("Analyse", variant="primary", min_width=100, elem_id="analyse")
                n_err = gr.HTML()
                with gr.Row():
                    with gr.Column(scale=3, min_width=320):
                        n_text = gr.Markdown(
                            elem_id="analysis-text", value="_Pick a symbol and press Analyse._"
                        )
                    with gr.Column(scale=2, min_width=280):
                        n_view = gr.HTML(elem_id="analysis-view")
                with gr.Accordion("Archive of past analyses", open=False):
                    n_archive_btn = gr.Button("Load archive", size="sm")
                    n_archive = gr.Dataframe(interactive=False, label="Past analyses (decisions)")
                    with gr.Row():
                        n_dec_id = gr.Textbox(label="Decision id", scale=2, min_width=120)
                        n_replay = gr.Button("Replay", scale=1, min_width=80)
                    n_replay_json = gr.JSON(label="Replay", open=False)
                    n_archive_msg = gr.HTML()

            # --------------------------------------------------------------- Backtesting
            with gr.Tab("Backtesting", id="backtesting", elem_id="tab-backtesting"), gr.Tabs():
                with gr.Tab("Run", id="bt-run"):
                    with gr.Row():
                        b_strategy = gr.Dropdown(
                            STRATEGIES, value="sma_cross", label="Strategy", min_width=150
                        )
                        b_params = gr.Textbox(
                            value='{"fast": 10, "slow": 30}', label="Parameters (JSON)", min_width=160
                        )
                        b_symbol = gr.Dropdown(SYMBOLS, value="NQ", label="Symbol", min_width=90)
                        b_interval = gr.Dropdown(INTERVALS, value="5m", label="Interval", min_width=90)
                        b_source = gr.Dropdown(SOURCES, value="sample", label="Source", min_width=100)
                    with gr.Row():
                        b_period = gr.Textbox(value="1mo", label="Period (or start/end)", min_width=90)
                        b_start = gr.Textbox(label="Start (ISO, optional)", min_width=110)
                        b_end = gr.Textbox(label="End (ISO, optional)", min_width=110)
                        b_contracts = gr.Number(value=1, precision=0, label="Contracts", min_width=80)
                        b_comm = gr.Number(value=2.25, label="Commission $/side", min_width=90)
                        b_slip = gr.Number(value=1, label="Slippage ticks", min_width=80)
                        b_stop = gr.Number(label="Stop ticks", min_width=80)
                        b_target = gr.Number(label="Target ticks", min_width=80)
                    b_go = gr.Button("Run backtest", variant="primary", elem_id="run-backtest")
                    b_progress = gr.HTML(elem_id="bt-progress")
                    b_err = gr.HTML()
                    with gr.Row():
                        with gr.Column(scale=3, min_width=320):
                            b_equity = gr.Plot(elem_id="equity-chart", show_label=False)
                        with gr.Column(scale=1, min_width=240):
                            b_metrics = gr.HTML(elem_id="bt-metrics")
                            b_csv = gr.DownloadButton("Download CSV", value=None)
                    b_trades = gr.Dataframe(label="Trades (latest first)", interactive=False)
                with gr.Tab("Compare", id="bt-compare"):
                    with gr.Row():
                        k_strats = gr.Dropdown(
                            STRATEGIES,
                            value=STRATEGIES[:3],
                            multiselect=True,
                            label="Strategies",
                            min_width=240,
                        )
                        k_symbol = gr.Dropdown(SYMBOLS, value="NQ", label="Symbol", min_width=90)
                        k_interval = gr.Dropdown(INTERVALS, value="5m", label="Interval", min_width=90)
                        k_period = gr.Textbox(value="1mo", label="Period", min_width=80)
                        k_rank = gr.Dropdown(
                            ["sharpe", "net_pnl_usd", "sortino", "profit_factor"],
                            value="sharpe",
                            label="Rank by",
                            min_width=120,
                        )
                    k_go = gr.Button("Compare", variant="primary")
                    k_err = gr.HTML()
                    k_chart = gr.Plot(show_label=False)
                    k_table = gr.Dataframe(interactive=False, label="Ranked")
                with gr.Tab("Sweep", id="bt-sweep"):
                    with gr.Row():
                        s_strategy = gr.Dropdown(
                            ["sma_cross", "ema_cross"],
                            value="sma_cross",
                            label="Strategy",
                            allow_custom_value=True,
                            min_width=130,
                        )
                        s_grid = gr.Textbox(
                            value='{"fast": [5, 10, 15, 20], "slow": [30, 50, 80, 100]}',
                            label="Grid (JSON)",
                            min_width=220,
                        )
                        s_symbol = gr.Dropdown(SYMBOLS, value="NQ", label="Symbol", min_width=90)
                        s_interval = gr.Dropdown(INTERVALS, value="5m", label="Interval", min_width=90)
                        s_period = gr.Textbox(value="1mo", label="Period", min_width=80)
                        s_metric = gr.Dropdown(
                            ["sharpe", "net_pnl_usd", "sortino", "calmar"],
                            value="sharpe",
                            label="Metric",
                            min_width=110,
                        )
                    s_go = gr.Button("Run sweep", variant="primary")
                    s_progress = gr.HTML()
                    s_err = gr.HTML()
                    s_heat = gr.Plot(show_label=False)
                    s_table = gr.Dataframe(interactive=False, label="Top parameter sets")
                with gr.Tab("Walk-forward", id="bt-wf"):
                    with gr.Row():
                        w_strategy = gr.Dropdown(
                            ["sma_cross", "ema_cross"], value="sma_cross", label="Strategy", min_width=130
                        )
                        w_grid = gr.Textbox(
                            value='{"fast": [5, 10, 20], "slow": [30, 50, 100]}',
                            label="Grid (JSON)",
                            min_width=220,
                        )
                        w_symbol = gr.Dropdown(SYMBOLS, value="NQ", label="Symbol", min_width=90)
                        w_interval = gr.Dropdown(INTERVALS, value="5m", label="Interval", min_width=90)
                        w_period = gr.Textbox(value="3mo", label="Period", min_width=80)
                        w_folds = gr.Number(value=4, precision=0, label="Folds", min_width=70)
                    w_go = gr.Button("Run walk-forward", variant="primary")
                    w_progress = gr.HTML()
                    w_err = gr.HTML()
                    w_chart = gr.Plot(show_label=False, elem_id="wf-equity")
                    w_table = gr.Dataframe(interactive=False, label="Folds")

            # ---------------------------------------------------------------------- Risk
            with gr.Tab("Risk", id="risk", elem_id="tab-risk") as t_risk:
                with gr.Row():
                    r_symbol = gr.Dropdown(SYMBOLS, value="NQ", label="VaR symbol", min_width=90)
                    r_contracts = gr.Number(value=1, precision=0, label="Contracts", min_width=80)
                    r_conf = gr.Dropdown([0.95, 0.99], value=0.95, label="Confidence", min_width=90)
                    r_method = gr.Dropdown(
                        ["historical", "normal", "cornish_fisher", "monte_carlo"],
                        value="historical",
                        label="Method",
                        min_width=130,
                    )
                    r_go = gr.Button("Refresh", variant="primary", min_width=90)
                r_err = gr.HTML()
                with gr.Row():
                    r_gauge_loss = gr.Plot(show_label=False, min_width=260)
                    r_gauge_dd = gr.Plot(show_label=False, min_width=260)
                with gr.Row():
                    r_limits = gr.HTML(elem_id="risk-limits", min_width=260)
                    r_exposure = gr.HTML(elem_id="risk-exposure", min_width=260)
                    r_var = gr.HTML(elem_id="risk-var", min_width=260)
                gr.Markdown("#### Approval queue")
                r_approvals = gr.Dataframe(interactive=False, elem_id="approvals")
                with gr.Row():
                    r_app_id = gr.Textbox(label="Proposal id", min_width=100, scale=2, elem_id="approval-id")
                    r_reason = gr.Textbox(label="Reason (optional)", min_width=120, scale=3)
                    r_approve = gr.Button(
                        "Approve", variant="primary", min_width=90, scale=1, elem_id="approve"
                    )
                    r_reject = gr.Button("Reject", variant="stop", min_width=90, scale=1)
                r_app_msg = gr.HTML(elem_id="approval-msg")

            # ------------------------------------------------------------- Configuration
            with gr.Tab("Configuration", id="configuration", elem_id="tab-configuration") as t_cfg:
                g_err = gr.HTML(elem_id="config-msg")
                with gr.Row():
                    with gr.Column(min_width=300):
                        gr.Markdown("#### Risk parameters")
                        g_risk = [gr.Number(label=label, elem_id=f"cfg-{key}") for key, label in RISK_FIELDS]
                        g_risk_save = gr.Button("Apply risk limits", variant="primary", elem_id="save-risk")
                    with gr.Column(min_width=300):
                        gr.Markdown("#### LLM providers and health")
                        g_providers = gr.Dataframe(interactive=False)
                        with gr.Row():
                            g_prov = gr.Dropdown([], label="Provider", min_width=110)
                            g_enabled = gr.Checkbox(value=True, label="Enabled", min_width=80)
                            g_prio = gr.Number(label="Priority (lower first)", precision=0, min_width=100)
                            g_model = gr.Number(label="Timeout s", min_width=90)
                        g_prov_save = gr.Button("Apply provider change")
                        gr.Markdown("#### Any setting (JSON merge patch)")
                        g_raw = gr.Code(value='{"data": {"outlier_z": 3.5}}', language="json", lines=4)
                        g_raw_save = gr.Button("Apply patch")
                gr.Markdown("#### Change log (each change recorded)")
                g_changes = gr.Dataframe(interactive=False, elem_id="config-changes")

        # ---------------------------------------------------------------------- events
        demo.load(lambda: _header_html(ctx), outputs=header)
        dash_in = [d_symbol, d_interval, d_bars, d_source]
        d_state = gr.State({})
        dash_out = [d_quote, d_chart, d_levels, d_positions, d_pnl, d_err, d_state]
        demo.load(lambda *a: dashboard_load(ctx, *a), inputs=dash_in, outputs=dash_out)
        for trig in (d_refresh.click, d_symbol.change, d_interval.change, d_source.change):
            trig(lambda *a: dashboard_load(ctx, *a), inputs=dash_in, outputs=dash_out)

        def tick(live: bool, *args: Any) -> tuple[Any, ...]:
            if not live:
                return tuple(gr.skip() for _ in range(8))
            return dashboard_tick(ctx, *args)

        timer.tick(
            tick,
            inputs=[d_live, *dash_in, d_state],
            outputs=[d_quote, d_feed, d_chart, d_levels, d_positions, d_pnl, d_err, d_state],
            show_progress="hidden",
        )

        agents_out = [a_desk, a_agents, a_decisions, a_llm, a_msg]
        t_agents.select(lambda: agents_load(ctx), outputs=agents_out)
        for btn, action in (
            (a_start, "start"),
            (a_stop, "stop"),
            (a_once, "run-once"),
            (a_kill, "kill"),
            (a_resume, "resume"),
        ):
            btn.click(lambda action=action: desk_action(ctx, action), outputs=[a_desk, a_msg])
        a_approval.input(lambda on: set_approval_mode(ctx, on), inputs=a_approval, outputs=a_msg)
        c_create.click(
            lambda *a: create_agent(ctx, *a),
            inputs=[c_name, c_type, c_provider, c_model, c_temp, c_tokens, c_usd],
            outputs=[a_agents, a_msg],
        )
        a_agent_show.click(lambda i: agent_detail(ctx, i), inputs=a_agent_id, outputs=[a_agent_json, a_msg])
        a_dec_show.click(lambda i: decision_detail(ctx, i), inputs=a_dec_id, outputs=[a_dec_json, a_msg])
        a_dec_replay.click(
            lambda i: decision_detail(ctx, i, True), inputs=a_dec_id, outputs=[a_dec_json, a_msg]
        )

        n_go.click(
            lambda *a: (yield from analysis_stream(ctx, *a)),
            inputs=[n_symbol, n_interval, n_depth, n_analyst],
            outputs=[n_text, n_view, n_err],
        )
        n_archive_btn.click(lambda: analysis_archive(ctx), outputs=[n_archive, n_archive_msg])
        n_replay.click(
            lambda i: decision_detail(ctx, i, True), inputs=n_dec_id, outputs=[n_replay_json, n_archive_msg]
        )

        b_go.click(
            lambda *a: (yield from backtest_run(ctx, *a)),
            inputs=[
                b_strategy,
                b_params,
                b_symbol,
                b_interval,
                b_source,
                b_period,
                b_start,
                b_end,
                b_contracts,
                b_comm,
                b_slip,
                b_stop,
                b_target,
            ],
            outputs=[b_progress, b_equity, b_trades, b_metrics, b_csv, b_err],
            show_progress="minimal",
        )
        b_strategy.change(
            lambda s: json.dumps(DEFAULT_PARAMS.get(s, {})), inputs=b_strategy, outputs=b_params
        )
        k_go.click(
            lambda *a: compare_run(ctx, *a),
            inputs=[k_strats, k_symbol, k_interval, k_period, k_rank],
            outputs=[k_table, k_chart, k_err],
        )
        s_go.click(
            lambda *a: (yield from sweep_run(ctx, *a)),
            inputs=[s_strategy, s_grid, s_symbol, s_interval, s_period, s_metric],
            outputs=[s_progress, s_heat, s_table, s_err],
            show_progress="minimal",
        )
        w_go.click(
            lambda *a: (yield from walkforward_run(ctx, *a)),
            inputs=[w_strategy, w_grid, w_symbol, w_interval, w_period, w_folds],
            outputs=[w_progress, w_chart, w_table, w_err],
            show_progress="minimal",
        )

        risk_in = [r_symbol, r_contracts, r_conf, r_method]
        risk_out = [r_limits, r_exposure, r_var, r_gauge_loss, r_gauge_dd, r_approvals, r_err]
        t_risk.select(lambda *a: risk_load(ctx, *a), inputs=risk_in, outputs=risk_out)
        r_go.click(lambda *a: risk_load(ctx, *a), inputs=risk_in, outputs=risk_out)
        r_approve.click(
            lambda i, r: decide_approval(ctx, i, True, r),
            inputs=[r_app_id, r_reason],
            outputs=[r_approvals, r_app_msg],
        )
        r_reject.click(
            lambda i, r: decide_approval(ctx, i, False, r),
            inputs=[r_app_id, r_reason],
            outputs=[r_approvals, r_app_msg],
        )

        cfg_out = [*g_risk, g_providers, g_prov, g_changes, g_err]
        t_cfg.select(lambda: config_load(ctx), outputs=cfg_out)
        g_risk_save.click(lambda *v: save_risk(ctx, *v), inputs=g_risk, outputs=[g_changes, g_err])
        g_prov_save.click(
            lambda *a: save_provider(ctx, *a),
            inputs=[g_prov, g_enabled, g_prio, g_model],
            outputs=[g_changes, g_err],
        )
        g_prov.change(lambda n: provider_values(ctx, n), inputs=g_prov, outputs=[g_enabled, g_prio, g_model])
        g_raw_save.click(lambda t: save_raw(ctx, t), inputs=g_raw, outputs=[g_changes, g_err])
        t_dash.select(lambda *a: dashboard_load(ctx, *a), inputs=dash_in, outputs=dash_out)
    demo.nq_ctx = ctx  # type: ignore[attr-defined]
    return demo


def _toggle_js() -> str:
    from nq_ray_ui.theme import TOGGLE_JS

    return TOGGLE_JS


def launch_kwargs() -> dict[str, Any]:
    """Theme, CSS and head for ``launch()`` / ``gr.mount_gradio_app`` (Gradio 6 takes them there)."""
    from nq_ray_ui.theme import CSS, HEAD, theme

    return {"theme": theme(), "css": CSS, "head": HEAD}
