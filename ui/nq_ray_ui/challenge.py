"""The Challenge view (a sub-tab of Backtesting): a prop-firm evaluation of a strategy under a rule pack.

It runs the ``run_challenge`` tool as a job (``POST /api/jobs``) with its progress, then shows the outcome
(passed on which day, failed on which rule at what time and balances, or still in progress), the Monte
Carlo pass probability with its 95% interval, every rule's final value, limit and distance coloured by
state, the daily P&L against the rules, and the daily balance against the max-loss floor.

The packs come from the catalogue (``GET /api/catalog``: the bundled packs and ``propfirm.packs_dir``);
strategies, symbols, intervals, sources, costs, ``n_sims`` and ``seed`` defaults from the tools' input
schemas — never from a copy here.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import gradio as gr
import plotly.graph_objects as go

from nq_ray_ui import charts
from nq_ray_ui.backtesting import _costs, strategy_params
from nq_ray_ui.client import ApiError, NotAvailable
from nq_ray_ui.render import (
    RULE_STATES,
    error_html,
    esc,
    num,
    percent,
    progress_html,
    rule_value,
    source_badge,
    usd,
)
from nq_ray_ui.state import Catalog, Ctx, TabView, args_given, json_arg, pick, range_args

TOOL = "run_challenge"
# state → text colour (and the row's background for a breach); the classes nq-rule-<state> are there too
STATE_COLOURS = {
    "ok": "#26a69a",
    "met": "#1e88e5",
    "warning": "#f59e0b",
    "pending": "#8b95a7",
    "breached": "#ef5350",
}
OUTCOMES = {  # outcome → (badge text, colour)
    "passed": ("PASSED", "#26a69a"),
    "failed": ("FAILED", "#ef5350"),
    "in_progress": ("IN PROGRESS", "#f59e0b"),
}
DAILY_COLUMNS = [
    ("session_day", "day"),
    ("pnl_usd", "P&L"),
    ("end_balance_usd", "end balance"),
    ("low_equity_usd", "low equity"),
    ("daily_loss_room_usd", "daily-loss room"),
    ("max_loss_floor_usd", "max-loss floor"),
    ("max_loss_room_usd", "max-loss room"),
]


def job_error(state: dict[str, Any]) -> ApiError:
    """A failed or cancelled job's error as the API stated it (message and field problems)."""
    err = state.get("error")
    if isinstance(err, dict):
        message = err.get("detail") or err.get("message") or err.get("title") or json.dumps(err)
        errors = err.get("errors") if isinstance(err.get("errors"), list) else None
        return ApiError(str(message), errors=errors)
    return ApiError(str(err or f"the job ended {state.get('status')}"))


def challenge_args(
    pack: str,
    strategy: str,
    params_text: str,
    symbol: str,
    interval: str,
    source: str,
    period: str,
    start: str,
    end: str,
    contracts: float | None,
    commission: float | None,
    slippage: float | None,
    stop: float | None,
    target: float | None,
    n_sims: float | None,
    seed: float | None,
) -> dict[str, Any]:
    """The tool's arguments from the form (``ApiError`` for bad JSON or a missing pack); empty fields are
    left out so the server's defaults apply."""
    if not (pack or "").strip():
        raise ApiError("pick a rule pack (e.g. topstep-50k)")
    args = {
        "pack": pack.strip(),
        "strategy": strategy,
        "params": json_arg(params_text, "parameters") or None,
        "symbol": symbol,
        "interval": interval,
        "source": source,
        "costs": _costs(contracts, commission, slippage, stop, target) or None,
        "n_sims": None if n_sims is None else int(n_sims),
        "seed": None if seed is None else int(seed),
    } | range_args(period, start, end)
    return args_given(args)


def challenge_run(ctx: Ctx, *form: Any) -> Iterator[tuple[Any, ...]]:
    """Run ``run_challenge`` as a job; the progress bar follows it, then the report fills in. Yields
    (progress, outcome, rules, daily, chart, error); a problem shows in the error box, never raised."""
    blank = charts.empty("run a challenge to see the daily balance against the max-loss floor")
    if not ctx.has_tool(TOOL):
        err = error_html(NotAvailable(f"no {TOOL} tool in GET /api/tools"))
        yield "", "", "", "", blank, err
        return
    try:
        args = challenge_args(*form)
        state: dict[str, Any] = {}
        for state in ctx.run_job(TOOL, args):
            yield progress_html(state, "challenge"), "", "", "", blank, ""
    except ApiError as exc:
        yield "", "", "", "", blank, error_html(exc, "challenge")
        return
    if state.get("status") != "succeeded":
        yield progress_html(state, "challenge"), "", "", "", blank, error_html(job_error(state), "challenge")
        return
    res = state["result"]
    yield (
        progress_html(state, "challenge"),
        outcome_html(res),
        rules_html(res.get("rules") or []),
        daily_html(res.get("daily") or []),
        balance_figure(res),
        "",
    )


def _pass_html(pp: dict[str, Any] | None) -> str:
    if not pp:
        return (
            '<p class="nq-dim" data-testid="pass-probability">pass probability: not estimated (n_sims 0)</p>'
        )
    lo, hi = pp.get("ci95") or [None, None]
    failed_by = ", ".join(f"{k} {v}" for k, v in (pp.get("failed_by") or {}).items())
    median = pp.get("median_days_to_pass")
    return (
        '<p data-testid="pass-probability"><b>pass probability '
        f"{esc(percent(100 * pp['probability']))}</b> "
        f"(95% interval {esc(percent(100 * lo if lo is not None else None))}–"
        f"{esc(percent(100 * hi if hi is not None else None))}) over {esc(num(pp.get('n_sims')))} resampled "
        f"{esc(num(pp.get('horizon_days')))}-day paths, seed {esc(num(pp.get('seed')))}: "
        f"{esc(num(pp.get('passed')))} passed, {esc(num(pp.get('failed')))} failed"
        f"{' (' + esc(failed_by) + ')' if failed_by else ''}, {esc(num(pp.get('in_progress')))} in progress"
        f"{'; median ' + esc(num(median, 0)) + ' days to pass' if median is not None else ''}</p>"
    )


def outcome_html(res: dict[str, Any]) -> str:
    """The outcome badge (colour by outcome) with the day it passed or the rule, time and balances of the
    failure, the run's summary line and the pass probability."""
    outcome = str(res.get("outcome"))
    label, colour = OUTCOMES.get(outcome, (outcome.upper(), "#8b95a7"))
    badge = (
        f'<span class="nq-badge nq-outcome-{esc(outcome)}" data-testid="challenge-outcome" '
        f'style="background:{colour};color:#fff">{esc(label)}</span>'
    )
    if outcome == "passed" and res.get("passed"):
        p = res["passed"]
        detail = (
            f"on session day <b>{esc(p.get('session_day'))}</b> (judged at {esc(p.get('at'))}), "
            f"balance {esc(usd(p.get('balance_usd')))}"
        )
    elif outcome == "failed" and res.get("failed"):
        f = res["failed"]
        detail = (
            f"rule <b>{esc(f.get('rule'))}</b> at {esc(f.get('at'))} (bar {esc(f.get('bar_time'))}, session "
            f"day {esc(f.get('session_day'))}): balance {esc(usd(f.get('balance_usd')))}, equity "
            f"{esc(usd(f.get('equity_usd')))} — {esc(f.get('message') or '')}"
        )
    else:
        detail = (
            f"at the end of the data: balance {esc(usd(res.get('balance_usd')))} "
            f"(start {esc(usd(res.get('start_balance_usd')))})"
        )
    stopped = "".join(
        f"<li>stopped for the day {esc(e.get('session_day'))} at {esc(e.get('at'))} by "
        f"{esc(e.get('rule'))}: equity {esc(usd(e.get('equity_usd')))}</li>"
        for e in res.get("stopped_days") or []
    )
    params = json.dumps(res.get("params") or {}, sort_keys=True)
    summary = (
        f"{esc(res.get('pack'))} ({esc(res.get('firm'))} {esc(res.get('program'))}) · "
        f"{esc(res.get('strategy'))} <code>{esc(params)}</code> · "
        f"{esc(num(res.get('session_days')))} session days, {esc(num(res.get('trading_days')))} traded · "
        f"{esc(num(res.get('n_trades')))} trades at {esc(num(res.get('contracts')))} contract(s) · "
        f"{esc(num(res.get('blocked_entries')))} entries blocked · net "
        f"{esc(usd(res.get('net_pnl_usd'), signed=True))}"
    )
    span = f"{esc(res.get('first_bar_time'))} → {esc(res.get('last_bar_time'))}"
    return (
        f'<div class="nq-challenge" data-testid="challenge-report" data-outcome="{esc(outcome)}">'
        f"<h4>{badge} {detail}</h4>"
        f'<p class="nq-dim">{summary}</p>'
        + (f'<ul class="nq-dim" data-testid="stopped-days">{stopped}</ul>' if stopped else "")
        + _pass_html(res.get("pass_probability"))
        + f'<div class="nq-dim">{span} · {source_badge(res.get("origin"))}</div>'
        + (
            f"<details><summary>report as text</summary><pre>{esc(res['text'])}</pre></details>"
            if res.get("text")
            else ""
        )
        + "</div>"
    )


def rules_html(rules: list[dict[str, Any]]) -> str:
    """Every rule's final value, limit and distance (room left, ≤ 0: at or past it), its state coloured
    (``nq-rule-<state>``) and its consequence; the rule's message on hover."""
    if not rules:
        return '<p class="nq-dim">the pack reported no rules</p>'
    rows = []
    for r in rules:
        state = str(r.get("state")) if r.get("state") in RULE_STATES else "pending"
        colour = STATE_COLOURS[state]
        unit = r.get("unit")
        bg = ' style="background:rgba(239,83,80,.10)"' if state == "breached" else ""
        rows.append(
            f'<tr class="nq-rule-{state}" data-state="{state}" title="{esc(r.get("message") or "")}"{bg}>'
            f"<th>{esc(r.get('rule'))}</th><td>{esc(rule_value(r.get('value'), unit))}</td>"
            f"<td>{esc(rule_value(r.get('limit'), unit))}</td>"
            f"<td>{esc(rule_value(r.get('distance'), unit))}</td>"
            f'<td class="state" style="color:{colour};font-weight:700">{esc(state.upper())}</td>'
            f'<td>{esc(r.get("consequence") or "")}</td><td class="nq-dim">{esc(r.get("message") or "")}</td>'
            "</tr>"
        )
    head = (
        "<tr><th>rule</th><th>value</th><th>limit</th><th>distance</th><th>state</th><th>consequence</th>"
        "<th>detail</th></tr>"
    )
    return (
        '<div data-testid="challenge-rules"><h4>Rules at the end</h4>'
        f'<table class="nq-kv nq-rules">{head}{"".join(rows)}</table></div>'
    )


def _money_cell(value: Any, signed: bool = False, room: bool = False) -> str:
    style = ""
    if isinstance(value, int | float):
        if room and value <= 0:
            style = f' style="color:{STATE_COLOURS["breached"]};font-weight:700"'
        elif signed:
            style = f' style="color:{charts.UP if value > 0 else charts.DOWN if value < 0 else charts.INK}"'
    return f"<td{style}>{esc(usd(value, signed=signed))}</td>"


def daily_html(daily: list[dict[str, Any]]) -> str:
    """The session days against the rules: P&L, end balance, the day's low equity, the room left to the
    daily loss and to the max-loss floor at the day's worst mark (≤ 0 in red: hit); a stopped day amber,
    the failing day red."""
    if not daily:
        return '<p class="nq-dim">no session day in the range</p>'
    head = "".join(f"<th>{esc(label)}</th>" for _, label in DAILY_COLUMNS) + "<th>flags</th>"
    rows = []
    for d in daily:
        flags = [k for k in ("traded", "stopped", "failed") if d.get(k)]
        kind = "failed" if d.get("failed") else "stopped" if d.get("stopped") else "day"
        bg = {"failed": "rgba(239,83,80,.14)", "stopped": "rgba(245,158,11,.14)"}.get(kind)
        cells = [f"<td>{esc(d.get('session_day'))}</td>", _money_cell(d.get("pnl_usd"), signed=True)]
        cells += [_money_cell(d.get(k)) for k in ("end_balance_usd", "low_equity_usd")]
        cells.append(_money_cell(d.get("daily_loss_room_usd"), room=True))
        cells.append(_money_cell(d.get("max_loss_floor_usd")))
        cells.append(_money_cell(d.get("max_loss_room_usd"), room=True))
        cells.append(f"<td>{esc(', '.join(flags))}</td>")
        style = f' style="background:{bg}"' if bg else ""
        rows.append(
            f'<tr class="nq-day-{kind}" data-day="{esc(d.get("session_day"))}"{style}>{"".join(cells)}</tr>'
        )
    return (
        '<div data-testid="challenge-daily"><h4>Daily P&amp;L against the rules</h4>'
        '<div style="max-height:28rem;overflow-y:auto">'
        f'<table class="nq-kv nq-daily"><tr>{head}</tr>{"".join(rows)}</table></div></div>'
    )


def balance_figure(res: dict[str, Any], height: int = 380) -> go.Figure:
    """The end-of-day balance and the day's low equity against the max-loss floor, the starting balance
    and the profit target; the day it passed or failed marked."""
    daily = res.get("daily") or []
    if not daily:
        return charts.empty("no session day in the range")
    days = [d["session_day"] for d in daily]
    fig = go.Figure()
    start = res.get("start_balance_usd")
    floors = [d.get("max_loss_floor_usd") for d in daily]
    if any(f is not None for f in floors):
        fig.add_trace(
            go.Scatter(
                x=days,
                y=floors,
                name="max-loss floor",
                mode="lines",
                line={"color": charts.DOWN, "width": 2, "shape": "hv", "dash": "dash"},
            )
        )
    fig.add_trace(
        go.Scatter(
            x=days,
            y=[d.get("low_equity_usd") for d in daily],
            name="day's low equity",
            mode="markers",
            marker={"color": charts.ORANGE, "size": 6, "symbol": "triangle-down"},
        )
    )
    fig.add_trace(
        go.Scatter(
            x=days,
            y=[d.get("end_balance_usd") for d in daily],
            name="end-of-day balance",
            mode="lines+markers",
            line={"color": charts.BLUE, "width": 2},
        )
    )
    target = next((r.get("limit") for r in res.get("rules") or [] if r.get("kind") == "profit_target"), None)
    if isinstance(start, int | float):
        fig.add_hline(y=start, line={"color": charts.INK, "width": 1, "dash": "dot"}, annotation_text="start")
        if isinstance(target, int | float):
            fig.add_hline(
                y=start + target,
                line={"color": charts.UP, "width": 1, "dash": "dot"},
                annotation_text="profit target",
            )
    end = res.get("passed") or res.get("failed")
    if end and end.get("session_day") in days:
        colour = charts.UP if res.get("passed") else charts.DOWN
        word = "passed" if res.get("passed") else f"failed: {end.get('rule')}"
        fig.add_vline(x=end["session_day"], line={"color": colour, "width": 2})
        fig.add_annotation(
            x=end["session_day"], y=1, yref="paper", text=word, showarrow=False, yanchor="bottom"
        )
    fig.update_xaxes(type="category")
    title = f"Daily balance vs the max-loss floor · {res.get('pack')} · {res.get('strategy')}"
    return charts._style(fig, height, title)


def build(ctx: Ctx) -> TabView:
    """The Challenge sub-tab, inside the caller's ``gr.Tabs``."""
    with gr.Tab("Challenge", id="bt-challenge", elem_id="tab-challenge"):
        with gr.Row():
            c_pack = gr.Dropdown(
                [], label="Rule pack", allow_custom_value=True, min_width=150, elem_id="ch-pack"
            )
            c_strategy = gr.Dropdown([], label="Strategy", min_width=150, elem_id="ch-strategy")
            c_params = gr.Textbox(label="Parameters (JSON)", min_width=160, elem_id="ch-params")
            c_symbol = gr.Dropdown([], label="Symbol", min_width=90)
            c_interval = gr.Dropdown([], label="Interval", min_width=90)
            c_source = gr.Dropdown([], label="Source", allow_custom_value=True, min_width=100)
        with gr.Row():
            c_period = gr.Textbox(value="1mo", label="Period (or start/end)", min_width=90)
            c_start = gr.Textbox(label="Start (ISO, optional)", min_width=110)
            c_end = gr.Textbox(label="End (ISO, optional)", min_width=110)
            c_contracts = gr.Number(precision=0, label="Contracts", min_width=80)
            c_comm = gr.Number(label="Commission $/side", min_width=90)
            c_slip = gr.Number(label="Slippage ticks", min_width=80)
            c_stop = gr.Number(label="Stop ticks", min_width=80)
            c_target = gr.Number(label="Target ticks", min_width=80)
            c_sims = gr.Number(precision=0, label="Monte Carlo paths", min_width=90)
            c_seed = gr.Number(precision=0, label="Seed", min_width=70)
        c_go = gr.Button("Run challenge", variant="primary", elem_id="run-challenge")
        c_progress = gr.HTML(elem_id="ch-progress")
        c_err = gr.HTML(elem_id="ch-error")
        c_outcome = gr.HTML(elem_id="ch-outcome")
        with gr.Row():
            with gr.Column(scale=3, min_width=320):
                c_chart = gr.Plot(elem_id="challenge-chart", show_label=False)
            with gr.Column(scale=2, min_width=280):
                c_rules = gr.HTML(elem_id="ch-rules")
        c_daily = gr.HTML(elem_id="ch-daily")

    inputs = [
        c_pack,
        c_strategy,
        c_params,
        c_symbol,
        c_interval,
        c_source,
        c_period,
        c_start,
        c_end,
        c_contracts,
        c_comm,
        c_slip,
        c_stop,
        c_target,
        c_sims,
        c_seed,
    ]
    c_go.click(
        lambda *a: (yield from challenge_run(ctx, *a)),
        inputs=inputs,
        outputs=[c_progress, c_outcome, c_rules, c_daily, c_chart, c_err],
        show_progress="minimal",
    )
    c_strategy.input(lambda s: strategy_params(ctx, s), inputs=c_strategy, outputs=c_params)

    def fill(cat: Catalog) -> list[Any]:
        strategy = cat.default(TOOL, "strategy")
        costs = cat.default(TOOL, "costs", {})
        return [
            gr.update(choices=cat.packs, value=cat.default(TOOL, "pack")),
            pick(list(cat.strategies), strategy),
            cat.strategy_params(strategy),
            pick(cat.symbols, cat.default("get_nq_price", "symbol")),
            pick(cat.intervals, cat.default("get_nq_price", "interval")),
            pick(cat.sources, cat.default(TOOL, "source")),
            costs.get("contracts"),
            costs.get("commission_per_contract"),
            costs.get("slippage_ticks"),
            cat.default(TOOL, "n_sims"),
            cat.default(TOOL, "seed"),
        ]

    outputs = [c_pack, c_strategy, c_params, c_symbol, c_interval, c_source, c_contracts, c_comm, c_slip]
    return TabView([*outputs, c_sims, c_seed], fill)
