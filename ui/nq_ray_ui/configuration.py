"""The Configuration tab: risk limits, LLM providers and their health, any live setting (JSON merge
patch), and the change log; every change goes through ``PATCH /api/config`` and is recorded.

``RISK_FIELDS`` is this form's layout (which limits it shows, with labels); their values come from
``GET /api/config``.
"""

from __future__ import annotations

import json
from typing import Any

import gradio as gr

from nq_ray_ui.client import ApiError
from nq_ray_ui.render import error_html, frame, ok_html
from nq_ray_ui.state import Ctx, TabView, json_arg

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
        body = json_arg(text, "the patch")
    except ApiError as exc:
        return config_changes(ctx)[0], error_html(exc, "patch")
    return _patch(ctx, body, "settings patch")


def build(ctx: Ctx) -> TabView:
    """The tab's components and events, inside the caller's ``gr.Tabs``."""
    with gr.Tab("Configuration", id="configuration", elem_id="tab-configuration") as tab:
        err = gr.HTML(elem_id="config-msg")
        with gr.Row():
            with gr.Column(min_width=300):
                gr.Markdown("#### Risk parameters")
                risk = [gr.Number(label=label, elem_id=f"cfg-{key}") for key, label in RISK_FIELDS]
                risk_save = gr.Button("Apply risk limits", variant="primary", elem_id="save-risk")
            with gr.Column(min_width=300):
                gr.Markdown("#### LLM providers and health")
                providers = gr.Dataframe(interactive=False)
                with gr.Row():
                    provider = gr.Dropdown([], label="Provider", min_width=110)
                    enabled = gr.Checkbox(value=True, label="Enabled", min_width=80)
                    priority = gr.Number(label="Priority (lower first)", precision=0, min_width=100)
                    timeout = gr.Number(label="Timeout s", min_width=90)
                provider_save = gr.Button("Apply provider change")
                gr.Markdown("#### Any setting (JSON merge patch)")
                raw = gr.Code(value='{"data": {"outlier_z": 3.5}}', language="json", lines=4)
                raw_save = gr.Button("Apply patch")
        gr.Markdown("#### Change log (each change recorded)")
        changes = gr.Dataframe(interactive=False, elem_id="config-changes")

    tab.select(lambda: config_load(ctx), outputs=[*risk, providers, provider, changes, err])
    risk_save.click(lambda *v: save_risk(ctx, *v), inputs=risk, outputs=[changes, err])
    provider_save.click(
        lambda *a: save_provider(ctx, *a),
        inputs=[provider, enabled, priority, timeout],
        outputs=[changes, err],
    )
    provider.change(lambda n: provider_values(ctx, n), inputs=provider, outputs=[enabled, priority, timeout])
    raw_save.click(lambda t: save_raw(ctx, t), inputs=raw, outputs=[changes, err])
    return TabView()
