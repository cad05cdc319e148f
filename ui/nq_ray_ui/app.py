"""The Gradio app: seven tabs over nq-ray's HTTP API and WebSocket, composed here.

Each tab is a module (``dashboard``, ``agents``, ``analysis``, ``scanner``, ``backtesting``, ``risk``,
``configuration``) whose ``build(ctx)`` lays out its components and wires its events; what they share
(the API client, the WebSocket feed, the catalogue) is ``state.Ctx``. Under the header, ``clock`` shows
the exchange clock (replay time, speed, state, source, or the wall clock) with the replay's controls.
On page load the catalogue comes from the API and fills every tab's pick lists, then the dashboard draws
its first chart. While the API is
unreachable the page still renders, with a readable message instead of the lists. Every handler calls the
API through ``ApiClient``; failures become readable messages (``render.error_html``), never stack traces.
Nothing here imports ``nq_ray``.
"""

from __future__ import annotations

from typing import Any

import gradio as gr

from nq_ray_ui import agents, analysis, backtesting, clock, configuration, dashboard, risk, scanner
from nq_ray_ui.client import ApiClient, ApiError
from nq_ray_ui.render import error_html, esc
from nq_ray_ui.state import Ctx, TabView

TABS = (dashboard, agents, analysis, scanner, backtesting, risk, configuration)


def header_html(ctx: Ctx) -> str:
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


def fill_catalog(ctx: Ctx, views: list[TabView]) -> list[Any]:
    """A note, then one update per catalogue-driven component of every tab. While the catalogue cannot be
    had, the note says why and the components stay as they are (the next page load tries again)."""
    skips = [gr.skip() for v in views for _ in v.catalog_outputs]
    try:
        catalog = ctx.catalog()
    except ApiError as exc:
        note = error_html(exc, "catalogue (symbols, intervals, strategies)")
        return [gr.update(value=note, visible=True), *skips]
    out: list[Any] = [gr.update(value="", visible=False)]
    for view in views:
        updates = view.fill(catalog)
        if len(updates) != len(view.catalog_outputs):
            raise ValueError(f"a tab filled {len(updates)} of its {len(view.catalog_outputs)} components")
        out += updates
    return out


def build_ui(api_url: str, token: str | None = None) -> gr.Blocks:
    """The whole UI as a ``gr.Blocks`` talking to the nq-ray API at ``api_url``."""
    ctx = Ctx(ApiClient(api_url, token))

    with gr.Blocks(title="nq-ray · trading desk", fill_width=True) as demo:
        with gr.Row(elem_id="nq-top"):
            header = gr.HTML(elem_id="nq-header")
            theme_btn = gr.Button("◐ Theme", size="sm", scale=0, min_width=80, elem_id="theme-toggle")
        theme_btn.click(None, js=_toggle_js())
        clock.build(ctx, demo)  # the exchange clock (replay time or the wall clock) and its controls
        catalog_msg = gr.HTML(elem_id="catalog-msg", visible=False)
        with gr.Tabs(elem_id="tabs"):
            views: list[TabView] = []
            for module in TABS:
                built = module.build(ctx)
                views += built if isinstance(built, list) else [built]

        demo.load(lambda: header_html(ctx), outputs=header)
        outputs = [catalog_msg, *(c for v in views for c in v.catalog_outputs)]
        filled = demo.load(lambda: fill_catalog(ctx, views), outputs=outputs)
        for view in views:
            if view.on_ready is not None:
                view.on_ready(filled)
    demo.nq_ctx = ctx  # type: ignore[attr-defined]
    return demo


def _toggle_js() -> str:
    from nq_ray_ui.theme import TOGGLE_JS

    return TOGGLE_JS


def launch_kwargs() -> dict[str, Any]:
    """Theme, CSS and head for ``launch()`` / ``gr.mount_gradio_app`` (Gradio 6 takes them there)."""
    from nq_ray_ui.theme import CSS, HEAD, theme

    return {"theme": theme(), "css": CSS, "head": HEAD}
