"""The Agents tab: the desk (start, stop, kill switch, approval mode), agents, the decision log, LLMs.

Agent types and the configured LLM providers come from the catalogue; ``decisions_table`` and
``decision_detail`` are shared with the Analysis tab's archive.
"""

from __future__ import annotations

import json
from typing import Any

import gradio as gr

from nq_ray_ui.client import ApiError
from nq_ray_ui.render import Html, error_html, esc, frame, kv_table, num, ok_html, usd
from nq_ray_ui.state import Catalog, Ctx, TabView, pick

ANY_PROVIDER = "(any)"


def agents_table(ctx: Ctx) -> Any:
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


def decisions_table(ctx: Ctx, limit: int = 50) -> Any:
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
        agents = agents_table(ctx)
    except ApiError as exc:
        notes.append(error_html(exc, "agents"))
    try:
        decisions = decisions_table(ctx)
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
    if provider and provider != ANY_PROVIDER:
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
        return agents_table(ctx), msg
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


def build(ctx: Ctx) -> TabView:
    """The tab's components and events, inside the caller's ``gr.Tabs``."""
    with gr.Tab("Agents", id="agents", elem_id="tab-agents") as tab:
        with gr.Row():
            with gr.Column(scale=1, min_width=300):
                desk = gr.HTML(elem_id="desk-status")
                with gr.Row():
                    start = gr.Button("Start desk", variant="primary", min_width=90)
                    stop = gr.Button("Stop", min_width=70)
                    once = gr.Button("Run one cycle", min_width=110)
                with gr.Row():
                    kill = gr.Button("KILL SWITCH", variant="stop", elem_classes=["nq-kill"], min_width=120)
                    resume = gr.Button("Resume after kill", min_width=120)
                approval = gr.Checkbox(label="Approval mode (a human approves each proposal)")
                msg = gr.HTML()
                llm = gr.HTML(elem_id="llm-status")
            with gr.Column(scale=2, min_width=320):
                agents = gr.Dataframe(label="Agents", interactive=False, elem_id="agents-table")
                with gr.Accordion("Create / configure an agent", open=False):
                    with gr.Row():
                        name = gr.Textbox(label="Name", value="analyst-2", min_width=120)
                        agent_type = gr.Dropdown([], label="Type", min_width=110)
                        provider = gr.Dropdown(
                            [ANY_PROVIDER],
                            value=ANY_PROVIDER,
                            label="Provider",
                            allow_custom_value=True,
                            min_width=110,
                        )
                    with gr.Row():
                        model = gr.Textbox(label="Model (optional)", min_width=120)
                        temperature = gr.Slider(
                            0, 2, value=0.2, step=0.05, label="Temperature", min_width=140
                        )
                        tokens = gr.Number(label="Tokens / day", precision=0, min_width=100)
                        usd_day = gr.Number(label="USD / day", min_width=100)
                    create = gr.Button("Create agent", variant="primary")
                with gr.Row():
                    agent_id = gr.Textbox(label="Agent id", min_width=120, scale=2)
                    agent_show = gr.Button("Show config and memory", min_width=140, scale=1)
                agent_json = gr.JSON(label="Agent (config, status, memory)", open=True, elem_id="agent-json")
        decisions = gr.Dataframe(
            label="Decision log (agent communication)", interactive=False, elem_id="decisions"
        )
        with gr.Row():
            dec_id = gr.Textbox(label="Decision id", min_width=120, scale=2)
            dec_show = gr.Button("Show", min_width=80, scale=1)
            dec_replay = gr.Button("Replay", min_width=80, scale=1)
        dec_json = gr.JSON(label="Decision (inputs, prompt, output, verdict)", open=False)

    tab.select(lambda: agents_load(ctx), outputs=[desk, agents, decisions, llm, msg])
    for button, action in (
        (start, "start"),
        (stop, "stop"),
        (once, "run-once"),
        (kill, "kill"),
        (resume, "resume"),
    ):
        button.click(lambda action=action: desk_action(ctx, action), outputs=[desk, msg])
    approval.input(lambda on: set_approval_mode(ctx, on), inputs=approval, outputs=msg)
    create.click(
        lambda *a: create_agent(ctx, *a),
        inputs=[name, agent_type, provider, model, temperature, tokens, usd_day],
        outputs=[agents, msg],
    )
    agent_show.click(lambda i: agent_detail(ctx, i), inputs=agent_id, outputs=[agent_json, msg])
    dec_show.click(lambda i: decision_detail(ctx, i), inputs=dec_id, outputs=[dec_json, msg])
    dec_replay.click(lambda i: decision_detail(ctx, i, True), inputs=dec_id, outputs=[dec_json, msg])

    def fill(cat: Catalog) -> list[Any]:
        return [pick(cat.agent_types, None), pick([ANY_PROVIDER, *cat.providers], ANY_PROVIDER)]

    return TabView([agent_type, provider], fill)
