"""The Analysis tab: the analysis streams in (each tool's answer as it arrives, then the analyst's view).

With the router (an LLM) as analyst, a commentary on the shown data streams in token by token as the model
produces it (``POST /api/llm/stream``, server-sent events); then the analysis agent answers the seed's
``market_analysis`` task with the tab's timeframe and depth, and its structured view (a recorded decision)
is shown beside the text. The rules analyst is not a model: its reasoning is shown whole.

Which tools run at each depth is this tab's choice (``DEPTH_TOOLS``); the depths themselves, symbols and
intervals come from the catalogue. The archive lists past decisions (the Agents tab's decision log).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import gradio as gr

from nq_ray_ui.agents import decision_detail, decisions_table
from nq_ray_ui.client import ApiError, NotAvailable
from nq_ray_ui.render import committee_html, error_html, esc, find_key, frame, kv_table, num, pct
from nq_ray_ui.state import Catalog, Ctx, TabView, pick

DEPTH_TOOLS = {
    "quick": ["indicators", "levels"],
    "standard": ["indicators", "levels", "momentum"],
    "deep": ["indicators", "levels", "momentum", "patterns"],
    "comprehensive": ["indicators", "levels", "momentum", "patterns"],
}
ANALYSTS = ["rules analyst (deterministic)", "router (best available LLM)"]


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
        for step in DEPTH_TOOLS.get(depth, DEPTH_TOOLS["comprehensive"]):
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
    is_rules = analyst.startswith("rules")
    if not is_rules:
        text += "### Commentary (streamed from the LLM)\n"
        yield text + "_waiting for the first token…_", view, ""
        try:
            for event in ctx.client.stream("/api/llm/stream", _commentary_request(text)):
                if event.get("delta"):
                    text += str(event["delta"])
                    yield text, view, ""
                elif event.get("done"):
                    who = event.get("model") or event.get("provider")
                    text += f"\n\n_— {who}_\n\n" if who else "\n\n"
        except NotAvailable:  # an older server: no streamed commentary, the analyst's view still comes
            text += "_this server cannot stream an LLM's answer (no POST /api/llm/stream)_\n\n"
        except ApiError as exc:
            yield text, view, error_html(exc, "streamed commentary")
            text += "\n\n"
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
    if is_rules and found.get("reasoning"):  # the rules analyst is not a model: its text comes whole
        text += "### Analyst\n" + str(found["reasoning"]) + "\n"
    note = ""
    if isinstance(answer, dict) and answer.get("timeframe_ignored"):
        note = (
            '<div class="nq-note" role="status">This server\'s analyst takes no timeframe: it answered on '
            f"its default bars, not {esc(answer['timeframe_ignored'])}.</div>"
        )
    committee = find_key(answer, "committee")  # an analysis asked of a model committee: every member
    votes = committee_html(committee) if isinstance(committee, dict) else ""
    yield text, _view_html(found, meta) + votes, note


COMMENTARY_PROMPT = (
    "You are the market analyst of an NQ futures desk. From the data below, write a short commentary for "
    "a trader (under 150 words, plain text): the trend, the levels that matter, what would change the view."
)


def _commentary_request(data_md: str) -> dict[str, Any]:
    """The streamed commentary's chat (``POST /api/llm/stream``) over what this tab has just shown."""
    return {
        "task": "market_summary",
        "messages": [
            {"role": "system", "content": COMMENTARY_PROMPT},
            {"role": "user", "content": data_md[-8000:]},
        ],
    }


def _ask_analyst(ctx: Ctx, symbol: str, interval: str, depth: str, analyst: str) -> Any:
    """Ask an analysis agent through the agents API (``POST /api/agents/{id}/tasks``): the seed's
    ``market_analysis`` with the tab's timeframe and depth."""
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
    path = f"/api/agents/{pick['agent_id']}/tasks"
    try:
        return ctx.client.post(path, analysis_task(symbol, interval, depth))
    except ApiError as exc:
        if exc.status != 422 or "timeframe" not in exc.message:
            raise
    # an older server's market_analysis takes no timeframe: ask at its own and say so on the page
    answer = ctx.client.post(path, analysis_task(symbol, "", depth))
    return {**answer, "timeframe_ignored": interval} if isinstance(answer, dict) else answer


def analysis_task(symbol: str, timeframe: str, depth: str) -> dict[str, Any]:
    """The seed's ``market_analysis`` task as the tab sends it."""
    params = {"symbol": symbol, "timeframe": timeframe, "analysis_depth": depth}
    return {"type": "market_analysis", "parameters": {k: v for k, v in params.items() if v}}


def analysis_archive(ctx: Ctx) -> tuple[Any, str]:
    try:
        return decisions_table(ctx), ""
    except ApiError as exc:
        return frame([]), error_html(exc, "archive")


def build(ctx: Ctx) -> TabView:
    """The tab's components and events, inside the caller's ``gr.Tabs``."""
    with gr.Tab("Analysis", id="analysis", elem_id="tab-analysis"):
        with gr.Row():
            symbol = gr.Dropdown([], label="Symbol", min_width=100)
            interval = gr.Dropdown([], label="Timeframe", min_width=100, elem_id="analysis-timeframe")
            depth = gr.Radio([], label="Depth", min_width=200, elem_id="analysis-depth")
            analyst = gr.Dropdown(
                ANALYSTS, value=ANALYSTS[0], label="Analyst", min_width=180, elem_id="analysis-analyst"
            )
            go = gr.Button("Analyse", variant="primary", min_width=100, elem_id="analyse")
        err = gr.HTML()
        with gr.Row():
            with gr.Column(scale=3, min_width=320):
                text = gr.Markdown(elem_id="analysis-text", value="_Pick a symbol and press Analyse._")
            with gr.Column(scale=2, min_width=280):
                view = gr.HTML(elem_id="analysis-view")
        with gr.Accordion("Archive of past analyses", open=False):
            archive_btn = gr.Button("Load archive", size="sm")
            archive = gr.Dataframe(interactive=False, label="Past analyses (decisions)")
            with gr.Row():
                dec_id = gr.Textbox(label="Decision id", scale=2, min_width=120)
                replay = gr.Button("Replay", scale=1, min_width=80)
            replay_json = gr.JSON(label="Replay", open=False)
            archive_msg = gr.HTML()

    go.click(
        lambda *a: (yield from analysis_stream(ctx, *a)),
        inputs=[symbol, interval, depth, analyst],
        outputs=[text, view, err],
    )
    archive_btn.click(lambda: analysis_archive(ctx), outputs=[archive, archive_msg])
    replay.click(lambda i: decision_detail(ctx, i, True), inputs=dec_id, outputs=[replay_json, archive_msg])

    def fill(cat: Catalog) -> list[Any]:
        return [
            pick(cat.symbols, cat.default("get_nq_price", "symbol")),
            pick(cat.intervals, cat.default("get_nq_price", "interval")),
            pick(cat.analysis_depths, cat.default_analysis_depth),
        ]

    return TabView([symbol, interval, depth], fill)
