"""``nq_ray_ui.agents``: agent types and providers come from the API, and "(any)" leaves the router."""

from __future__ import annotations

from typing import Any

import gradio as gr
from nq_ray_ui import agents
from nq_ray_ui.client import ApiClient
from nq_ray_ui.state import Ctx


def test_agent_form_offers_the_servers_types_and_configured_providers(api_server: Any) -> None:
    import httpx

    ctx = Ctx(ApiClient(api_server.url))
    with gr.Blocks():
        view = agents.build(ctx)
    names = [
        p["name"] for p in httpx.get(api_server.url + "/api/config").json()["settings"]["llm"]["providers"]
    ]

    agent_type, provider = view.fill(ctx.catalog())

    assert agent_type["choices"] == ["analysis", "risk", "execution"]
    assert provider["choices"] == [agents.ANY_PROVIDER, *names]
    assert provider["value"] == agents.ANY_PROVIDER
