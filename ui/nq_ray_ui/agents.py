"""The Agents tab: the desk (start, stop, kill switch, approval mode), agents, the decision log, LLMs.

Agent types and the configured LLM providers come from the catalogue; ``decisions_table`` and
``decision_detail`` are shared with the Analysis tab's archive.
"""

from __future__ import annotations

import json
from typing import Any

import gradio as gr

from nq_ray_ui.client import ApiError
from nq_ray_ui.render import Html, decision_html, error_html, esc, frame, kv_table, num, ok_html, pct, usd
from nq_ray_ui.state import Catalog, Ctx, TabView, json_arg, pick

ANY_PROVIDER = "(any)"

# The seed's task types with the seed document's own example parameters (``../shared/seed/``, "Agent
# Types" and "Agent Memory & Context"): what the form is prefilled with when a type is picked. A default
# agent id per type is only the form's first guess; any agent id can be picked.
SEED_TASKS: dict[str, dict[str, Any]] = {
    "market_analysis": {"symbol": "NQ=F", "timeframe": "1h", "analysis_depth": "comprehensive"},
    "pattern_recognition": {"symbol": "NQ"},
    "market_summary": {"symbol": "NQ"},
    "assess_risk": {"portfolio": {"NQ": 1}, "market_conditions": {"volatility": "normal"}},
    "place_trade": {
        "action": "BUY",
        "quantity": 1,
        "price": 23000.0,
        "stop_loss": 22950.0,
        "take_profit": 23100.0,
    },
    "update_context": {"context": {"last_analysis": "bullish above the overnight high"}},
    "get_recent_memory": {"n": 10},
    "get_memory_by_type": {"type": "llm_analysis", "n": 5},
}
TASK_AGENT = {
    "market_analysis": "analysis_agent",
    "pattern_recognition": "analysis_agent",
    "market_summary": "analysis_agent",
    "assess_risk": "risk_agent",
    "place_trade": "execution_agent",
}
# The seed's six prompt templates (``nq_ray/llm/prompts/templates``): the names an override can replace.
PROMPT_TEMPLATES = [
    "analysis_base",
    "pattern_recognition",
    "market_summary",
    "execution_base",
    "risk_assessment",
    "order_management",
]


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


def fill_agent_pickers(ctx: Ctx, task_agent: str | None, prompt_agent: str | None) -> tuple[Any, Any]:
    """The agent pickers of the task form and the prompt editor: the server's agents, each keeping its
    choice (the task form starts on the analysis agent)."""
    try:
        ids = [str(a["agent_id"]) for a in ctx.client.get("/api/agents")]
    except ApiError:
        return gr.skip(), gr.skip()
    first = TASK_AGENT["market_analysis"]
    return pick(ids, task_agent or first), pick(ids, prompt_agent or first)


def task_example(task_type: str) -> tuple[str, Any]:
    """The parameters box for a task type (the seed's example) and the agent it usually goes to."""
    params = json.dumps(SEED_TASKS.get(task_type, {}), indent=1)
    agent = TASK_AGENT.get(task_type)
    return params, (gr.update(value=agent) if agent else gr.skip())


def run_task(ctx: Ctx, agent_id: str, task_type: str, params_text: str) -> tuple[str, Any]:
    """``POST /api/agents/{agent_id}/tasks`` with ``{"type", "parameters"}``: the result readably, the whole
    answer as JSON; a refusal (404 unknown agent, 422 bad task) as the API's problem details."""
    agent_id = (agent_id or "").strip()
    if not agent_id:
        return error_html("pick the agent that runs the task"), None
    if not task_type:
        return error_html("pick a task type"), None
    try:
        params = json_arg(params_text, "Parameters")
        answer = ctx.client.post(f"/api/agents/{agent_id}/tasks", {"type": task_type, "parameters": params})
    except ApiError as exc:
        return error_html(exc, f"{task_type} on {agent_id}"), None
    return task_result_html(answer), answer


def _scalars(d: dict[str, Any]) -> list[tuple[str, Any]]:
    return [(k, v) for k, v in d.items() if not isinstance(v, dict | list) and v is not None]


def task_result_html(answer: Any) -> str:
    """A task's answer as text: its summary (or the view's reasoning), the view, key fields, the record."""
    if not isinstance(answer, dict):
        return f'<div class="nq-ok" data-testid="task-result">{esc(json.dumps(answer)[:2000])}</div>'
    result = answer.get("result")
    kind = answer.get("type") or answer.get("task") or "task"
    head = f"<h4>{esc(kind)} · {esc(answer.get('agent_id', '?'))}</h4>"
    parts = [head]
    if isinstance(result, dict):
        view = result.get("view") if isinstance(result.get("view"), dict) else None
        summary = result.get("summary") or result.get("narrative") or (view or {}).get("reasoning")
        if summary:
            parts.append(f'<p data-testid="task-summary">{esc(summary)}</p>')
        if view:
            conf = view.get("confidence")
            rows = [("bias", view.get("bias"))]
            rows += [("confidence", pct(conf, 0) if isinstance(conf, int | float) else conf)]
            rows += [
                (k, view[k]) for k in ("horizon", "invalidation", "entry", "stop", "target") if k in view
            ]
            parts.append(kv_table([(k, v) for k, v in rows if v is not None]))
        keys = [
            (k, v) for k, v in _scalars(result) if k not in ("summary", "narrative", "prompt", "raw_output")
        ]
        if keys:
            parts.append(kv_table(keys[:16]))
        data = result.get("data")
        if isinstance(data, dict) and _scalars(data):
            parts.append(kv_table(_scalars(data)[:16]))
        if isinstance(result.get("committee"), dict):
            parts.append(decision_html({"committee": result["committee"]}))
    elif isinstance(result, list):
        parts.append(f"<p>{len(result)} items</p>")
        parts.extend(
            f'<div class="nq-dim">{esc(json.dumps(item, default=str)[:300])}</div>' for item in result[:10]
        )
    elif result is not None:
        parts.append(f"<p>{esc(result)}</p>")
    if answer.get("record_id") is not None:
        parts.append(f'<div class="nq-dim">recorded as decision {esc(answer["record_id"])}</div>')
    return f'<div class="nq-task-result" data-testid="task-result">{"".join(parts)}</div>'


def load_prompt(ctx: Ctx, agent_id: str, template: str) -> tuple[str, str]:
    """The agent's override of ``template`` (its config's ``prompts``), or empty with a note saying the
    built-in template applies."""
    agent_id, template = (agent_id or "").strip(), (template or "").strip()
    if not agent_id or not template:
        return "", error_html("pick an agent and a template")
    try:
        agent = ctx.client.get(f"/api/agents/{agent_id}")
    except ApiError as exc:
        return "", error_html(exc, "agent")
    prompts = (agent.get("config") or {}).get("prompts") or {}
    if template in prompts:
        return str(prompts[template]), ok_html(f"{agent_id} overrides {template}")
    note = f"{agent_id} uses the built-in {template} template (no override); type one to replace it"
    return "", f'<div class="nq-note" role="status">{esc(note)}</div>'


def save_prompt(ctx: Ctx, agent_id: str, template: str, text: str) -> str:
    """Save (or, with an empty text, drop) the agent's override of ``template`` through the agent config
    update (``PATCH /api/agents/{agent_id}`` with ``{"config": {"prompts": {...}}}``, the whole map)."""
    agent_id, template = (agent_id or "").strip(), (template or "").strip()
    if not agent_id or not template:
        return error_html("pick an agent and a template")
    try:
        agent = ctx.client.get(f"/api/agents/{agent_id}")
        prompts = dict((agent.get("config") or {}).get("prompts") or {})
        if (text or "").strip():
            prompts[template] = text
        else:
            prompts.pop(template, None)
        ctx.client.patch(f"/api/agents/{agent_id}", {"config": {"prompts": prompts}})
    except ApiError as exc:
        return error_html(exc, "save prompt override")
    done = "saved" if (text or "").strip() else "removed (the built-in template applies)"
    return ok_html(f"{agent_id}: {template} override {done}")


def decision_view(ctx: Ctx, decision_id: str, replay: bool = False) -> tuple[str, Any, str]:
    """A decision readably (template and version, committee votes) and as JSON, or why not."""
    out, msg = decision_detail(ctx, decision_id, replay)
    return decision_html(out if isinstance(out, dict) else None), out, msg


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
                with gr.Accordion("Prompt overrides", open=False, elem_id="prompt-editor"):
                    with gr.Row():
                        p_agent = gr.Dropdown(
                            [], label="Agent", allow_custom_value=True, min_width=120, elem_id="prompt-agent"
                        )
                        p_template = gr.Dropdown(
                            PROMPT_TEMPLATES,
                            value=PROMPT_TEMPLATES[0],
                            label="Template",
                            allow_custom_value=True,
                            min_width=140,
                            elem_id="prompt-template",
                        )
                        p_load = gr.Button("Load", min_width=70, elem_id="prompt-load")
                    p_text = gr.Textbox(
                        label="Override (Jinja or {name} placeholders; empty = the built-in template)",
                        lines=6,
                        elem_id="prompt-text",
                    )
                    p_save = gr.Button("Save override", variant="primary", elem_id="prompt-save")
                    p_msg = gr.HTML(elem_id="prompt-msg")
                with gr.Row():
                    agent_id = gr.Textbox(label="Agent id", min_width=120, scale=2)
                    agent_show = gr.Button("Show config and memory", min_width=140, scale=1)
                agent_json = gr.JSON(label="Agent (config, status, memory)", open=True, elem_id="agent-json")
        with gr.Accordion("Run a task (the seed's agent API)", open=False, elem_id="task-form"):
            with gr.Row():
                t_agent = gr.Dropdown(
                    [], label="Agent", allow_custom_value=True, min_width=140, elem_id="task-agent"
                )
                t_type = gr.Dropdown(
                    list(SEED_TASKS),
                    value="market_analysis",
                    label="Task type",
                    min_width=160,
                    elem_id="task-type",
                )
                t_run = gr.Button("Run", variant="primary", min_width=80, elem_id="task-run")
            t_params = gr.Code(
                value=json.dumps(SEED_TASKS["market_analysis"], indent=1),
                language="json",
                label="Parameters (JSON)",
                elem_id="task-params",
            )
            t_out = gr.HTML(elem_id="task-result")
            t_json = gr.JSON(label="Answer", open=False, elem_id="task-json")
        decisions = gr.Dataframe(
            label="Decision log (agent communication)", interactive=False, elem_id="decisions"
        )
        with gr.Row():
            dec_id = gr.Textbox(label="Decision id", min_width=120, scale=2, elem_id="decision-id")
            dec_show = gr.Button("Show", min_width=80, scale=1, elem_id="decision-show")
            dec_replay = gr.Button("Replay", min_width=80, scale=1)
        dec_html = gr.HTML(elem_id="decision-detail")
        dec_json = gr.JSON(label="Decision (inputs, prompt, output, verdict)", open=False)

    tab.select(lambda: agents_load(ctx), outputs=[desk, agents, decisions, llm, msg]).then(
        lambda a, b: fill_agent_pickers(ctx, a, b), inputs=[t_agent, p_agent], outputs=[t_agent, p_agent]
    )
    t_type.change(lambda t: task_example(t), inputs=t_type, outputs=[t_params, t_agent])
    t_run.click(lambda *a: run_task(ctx, *a), inputs=[t_agent, t_type, t_params], outputs=[t_out, t_json])
    p_load.click(lambda *a: load_prompt(ctx, *a), inputs=[p_agent, p_template], outputs=[p_text, p_msg])
    p_save.click(lambda *a: save_prompt(ctx, *a), inputs=[p_agent, p_template, p_text], outputs=p_msg)
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
    dec_show.click(lambda i: decision_view(ctx, i), inputs=dec_id, outputs=[dec_html, dec_json, msg])
    dec_replay.click(lambda i: decision_view(ctx, i, True), inputs=dec_id, outputs=[dec_html, dec_json, msg])

    def fill(cat: Catalog) -> list[Any]:
        return [pick(cat.agent_types, None), pick([ANY_PROVIDER, *cat.providers], ANY_PROVIDER)]

    return TabView([agent_type, provider], fill)
