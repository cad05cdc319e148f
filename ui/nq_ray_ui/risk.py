"""The Risk tab: limits in force, exposure, daily-loss and drawdown gauges, VaR / ES, the approval queue,
and the prop-firm rule pack: every rule's value, limit and distance, colour-coded by state.

Symbols and VaR methods (the ``calculate_var`` tool's enum) and its defaults come from the catalogue.
"""

from __future__ import annotations

from typing import Any

import gradio as gr

from nq_ray_ui import charts
from nq_ray_ui.client import ApiError
from nq_ray_ui.render import (
    RULE_STATES,
    error_html,
    esc,
    frame,
    kv_table,
    ok_html,
    pct,
    percent,
    rule_value,
    usd,
)
from nq_ray_ui.state import Catalog, Ctx, TabView, pick

CONFIDENCES = [0.95, 0.99]  # presets; any level in (0.5, 1) can be typed


def risk_load(
    ctx: Ctx, symbol: str | None, contracts: float | None, confidence: float | None, method: str | None
) -> tuple[Any, ...]:
    errors = []
    limits_html = exposure_html = var_html = ""
    g_loss = g_dd = charts.empty("no data", 200)
    try:
        risk = ctx.client.tool("assess_portfolio_risk")
        limits = risk.get("limits", {})
        limits_html = "<h4>Limits in force</h4>" + kv_table(
            [(k, _limit(k, v)) for k, v in limits.items() if not isinstance(v, list)]
        )
        pf = risk.get("portfolio", {})
        total = pf.get("total", {})
        exposure_html = "<h4>Exposure</h4>" + kv_table(
            [
                ("gross exposure", usd(risk.get("gross_exposure_usd"))),
                ("initial margin", usd(risk.get("initial_margin_usd"))),
                ("margin use", percent(risk.get("margin_use_pct"))),  # the tool answers in percent
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
            contracts=None if contracts is None else int(contracts),
            confidence=None if confidence is None else float(confidence),
            method=method,
        )["var"]
        held = ", ".join(f"{k} × {n}" for k, n in (v.get("positions") or {}).items()) or str(symbol)
        var_html = f"<h4>VaR / ES · {esc(held)}</h4>" + kv_table(
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
    rules = rules_load(ctx)
    return limits_html, exposure_html, var_html, g_loss, g_dd, approvals, rules, note + "".join(errors)


def rules_load(ctx: Ctx) -> str:
    """The active rule pack (the effective settings' ``propfirm.pack``) and the distance to every limit
    in the gate's verdict on a one-lot NQ buy now (nothing is sent): the pack's rules and the gate's own."""
    try:
        config = ctx.client.get("/api/config")
        check = ctx.client.tool("check_risk_limits", symbol="NQ", side="buy", contracts=1)
    except ApiError as exc:
        return error_html(exc, "rule pack")
    pack = ((config.get("settings") or {}).get("propfirm") or {}).get("pack")
    return rules_html(pack, check.get("verdict") or {})


def rules_html(pack: str | None, verdict: dict[str, Any]) -> str:
    """The pack's name, a table of every rule (value, limit, distance, state, consequence; the row's
    class ``nq-rule-<state>`` colours it) and what the gate says about a one-lot buy now."""
    title = f"Rule pack · {esc(pack)}" if pack else "Rule pack · none active"
    out = [f"<h4>{title}</h4>"]
    if not pack:
        out.append(
            '<p class="nq-dim">no prop-firm pack is active (settings <code>propfirm.pack</code>); the rows '
            "below are the gate's own limits</p>"
        )
    rows = []
    for r in verdict.get("distances") or []:
        state = r.get("state") if r.get("state") in RULE_STATES else "pending"
        unit = r.get("unit")
        rows.append(
            f'<tr class="nq-rule-{state}" title="{esc(r.get("message") or "")}">'
            f"<th>{esc(r.get('rule'))}</th><td>{esc(rule_value(r.get('value'), unit))}</td>"
            f"<td>{esc(rule_value(r.get('limit'), unit))}</td>"
            f"<td>{esc(rule_value(r.get('distance'), unit))}</td>"
            f'<td class="state">{esc(state)}</td><td>{esc(r.get("consequence") or "")}</td></tr>'
        )
    if rows:
        head = (
            "<tr><th>rule</th><td>value</td><td>limit</td><td>distance</td><td>state</td>"
            "<td>consequence</td></tr>"
        )
        out.append(f'<table class="nq-kv nq-rules">{head}{"".join(rows)}</table>')
    else:
        out.append('<p class="nq-dim">no limits reported by the gate</p>')
    reasons = verdict.get("reasons") or []
    if verdict.get("approved"):
        said = "approved" if not reasons else "approved, " + "; ".join(str(x.get("code")) for x in reasons)
    else:
        said = "denied: " + "; ".join(f"{x.get('code')} ({x.get('message')})" for x in reasons)
    out.append(f'<p class="nq-dim" data-testid="one-lot">a 1-lot NQ buy now would be {esc(said)}</p>')
    return "".join(out)


def _limit(name: str, value: Any) -> Any:
    """A limit as the trader reads it: dollars, or a percent for ``max_margin_use_pct`` (a fraction of
    equity in the settings, 0.75 = 75%) so it compares with the margin use shown beside it."""
    if value is None:
        return value
    if name.endswith("_usd"):
        return usd(value)
    if name == "max_margin_use_pct":
        return pct(value)
    return value


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


def build(ctx: Ctx) -> TabView:
    """The tab's components and events, inside the caller's ``gr.Tabs``."""
    with gr.Tab("Risk", id="risk", elem_id="tab-risk") as tab:
        with gr.Row():
            symbol = gr.Dropdown([], label="VaR symbol", min_width=90)
            contracts = gr.Number(precision=0, label="Contracts", min_width=80)
            confidence = gr.Dropdown(CONFIDENCES, label="Confidence", allow_custom_value=True, min_width=90)
            method = gr.Dropdown([], label="Method", min_width=130)
            go = gr.Button("Refresh", variant="primary", min_width=90)
        err = gr.HTML()
        with gr.Row():
            gauge_loss = gr.Plot(show_label=False, min_width=260)
            gauge_dd = gr.Plot(show_label=False, min_width=260)
        rules = gr.HTML(elem_id="risk-rules")
        with gr.Row():
            limits = gr.HTML(elem_id="risk-limits", min_width=260)
            exposure = gr.HTML(elem_id="risk-exposure", min_width=260)
            var = gr.HTML(elem_id="risk-var", min_width=260)
        gr.Markdown("#### Approval queue")
        approvals = gr.Dataframe(interactive=False, elem_id="approvals")
        with gr.Row():
            app_id = gr.Textbox(label="Proposal id", min_width=100, scale=2, elem_id="approval-id")
            reason = gr.Textbox(label="Reason (optional)", min_width=120, scale=3)
            approve = gr.Button("Approve", variant="primary", min_width=90, scale=1, elem_id="approve")
            reject = gr.Button("Reject", variant="stop", min_width=90, scale=1)
        app_msg = gr.HTML(elem_id="approval-msg")

    inputs = [symbol, contracts, confidence, method]
    outputs = [limits, exposure, var, gauge_loss, gauge_dd, approvals, rules, err]
    tab.select(lambda *a: risk_load(ctx, *a), inputs=inputs, outputs=outputs)
    go.click(lambda *a: risk_load(ctx, *a), inputs=inputs, outputs=outputs)
    approve.click(
        lambda i, r: decide_approval(ctx, i, True, r), inputs=[app_id, reason], outputs=[approvals, app_msg]
    )
    reject.click(
        lambda i, r: decide_approval(ctx, i, False, r), inputs=[app_id, reason], outputs=[approvals, app_msg]
    )

    def fill(cat: Catalog) -> list[Any]:
        return [
            pick(cat.symbols, cat.default("calculate_var", "symbol")),
            cat.default("calculate_var", "contracts"),
            gr.update(value=cat.default("calculate_var", "confidence")),
            pick(cat.choices("calculate_var", "method"), cat.default("calculate_var", "method")),
        ]

    return TabView([symbol, contracts, confidence, method], fill)
