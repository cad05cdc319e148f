"""``nq_ray_ui.analysis``: depths from the agents' own list; the view is found wherever the API puts it."""

from __future__ import annotations

from typing import Any

import gradio as gr
from nq_ray_ui import analysis
from nq_ray_ui.client import ApiClient
from nq_ray_ui.state import Ctx


def test_depths_are_the_analysis_agents(api_server: Any) -> None:
    from nq_ray.agents.agents import DEPTH_BARS

    ctx = Ctx(ApiClient(api_server.url))
    with gr.Blocks():
        view = analysis.build(ctx)

    _symbol, _interval, depth = view.fill(ctx.catalog())

    assert depth["choices"] == list(DEPTH_BARS) and depth["value"] == "standard"
    assert set(depth["choices"]) <= set(analysis.DEPTH_TOOLS)  # every depth has its steps in this tab


def test_find_view_and_meta_dig_the_market_view_out_of_a_task_answer() -> None:
    answer = {
        "result": {"report": {"bias": "long", "confidence": 0.7, "invalidation": 1.0}},
        "provider": "rules",
        "is_llm": False,
        "record_id": 7,
    }

    assert analysis._find_view(answer) == {"bias": "long", "confidence": 0.7, "invalidation": 1.0}
    assert analysis._find_meta(answer) == {"provider": "rules", "is_llm": False, "decision_id": "7"}


def test_the_analyst_is_asked_with_the_tabs_timeframe_and_depth(api_server: Any) -> None:
    ctx = Ctx(ApiClient(api_server.url))

    answer = analysis._ask_analyst(ctx, "NQ", "15m", "quick", analysis.ANALYSTS[0])

    record = ctx.client.get(f"/api/decisions/{answer['record_id']}")
    sent = record["inputs"]["task"]["parameters"]
    assert sent["analysis_depth"] == "quick" and sent["symbol"] == "NQ"
    # the timeframe went with the task, or (a server whose analyst takes none) the page says it did not
    assert sent.get("timeframe") == "15m" or answer.get("timeframe_ignored") == "15m"


def test_the_seed_task_carries_timeframe_and_depth() -> None:
    assert analysis.analysis_task("NQ=F", "1h", "comprehensive") == {
        "type": "market_analysis",
        "parameters": {"symbol": "NQ=F", "timeframe": "1h", "analysis_depth": "comprehensive"},
    }
