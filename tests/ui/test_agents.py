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


def _text(html: str) -> str:
    import html as h
    import re

    return h.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)))


def test_task_form_runs_a_seed_task_and_shows_its_summary(api_server: Any) -> None:
    ctx = Ctx(ApiClient(api_server.url))

    out, answer = agents.run_task(ctx, "analysis_agent", "pattern_recognition", '{"symbol": "NQ"}')

    assert "nq-error" not in out, out
    assert answer["agent_id"] == "analysis_agent" and answer["result"]["symbol"] == "NQ"
    assert answer["result"]["summary"] in _text(out)  # the API's summary, as the page shows it


def test_task_form_shows_the_apis_refusals_readably(api_server: Any) -> None:
    ctx = Ctx(ApiClient(api_server.url))

    unknown_agent, _ = agents.run_task(ctx, "nobody", "market_summary", '{"symbol": "NQ"}')
    bad_json, _ = agents.run_task(ctx, "analysis_agent", "market_summary", '{"symbol": ')
    bad_type, none = agents.run_task(ctx, "risk_agent", "pattern_recognition", '{"symbol": "NQ"}')

    assert "nq-error" in unknown_agent and "nobody" in _text(unknown_agent)
    assert "not valid JSON" in _text(bad_json)
    assert "nq-error" in bad_type and "pattern_recognition" in _text(bad_type) and none is None
    assert "Traceback" not in unknown_agent + bad_json + bad_type


def test_the_task_form_prefills_the_seeds_example_for_each_type() -> None:
    import json

    params, agent = agents.task_example("place_trade")

    assert json.loads(params) == {
        "action": "BUY",
        "quantity": 1,
        "price": 23000.0,
        "stop_loss": 22950.0,
        "take_profit": 23100.0,
    }
    assert agent["value"] == "execution_agent"
    assert set(agents.SEED_TASKS) == {
        "market_analysis",
        "pattern_recognition",
        "market_summary",
        "assess_risk",
        "place_trade",
        "update_context",
        "get_recent_memory",
        "get_memory_by_type",
    }


def test_the_prompt_editor_says_when_the_built_in_template_applies(api_server: Any) -> None:
    ctx = Ctx(ApiClient(api_server.url))

    text, note = agents.load_prompt(ctx, "risk_agent", "risk_assessment")

    assert text == "" and "built-in risk_assessment template" in _text(note)


def test_a_prompt_override_is_saved_and_loaded_back(api_server: Any) -> None:
    ctx = Ctx(ApiClient(api_server.url))
    override = "You analyse {symbol} on {timeframe} bars for the desk."

    saved = agents.save_prompt(ctx, "analysis_agent", "analysis_base", override)
    text, _note = agents.load_prompt(ctx, "analysis_agent", "analysis_base")
    removed = agents.save_prompt(ctx, "analysis_agent", "analysis_base", "")

    assert "nq-ok" in saved and text == override and "nq-ok" in removed
    assert "analysis_base" not in (ctx.client.get("/api/agents/analysis_agent")["config"]["prompts"] or {})


def test_saving_a_prompt_override_the_server_refuses_shows_why(api_server: Any) -> None:
    ctx = Ctx(ApiClient(api_server.url))

    out = agents.save_prompt(ctx, "nobody", "analysis_base", "text")

    assert "nq-error" in out and "nobody" in _text(out)
