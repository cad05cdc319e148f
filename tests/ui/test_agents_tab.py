"""The Agents tab in a real browser: the seed-task form (run, result, refusals) and a decision's detail."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

pytestmark = [pytest.mark.browser, pytest.mark.timeout(240)]
WAIT_MS = 60_000


@pytest.fixture(scope="module")
def page(browser: Any, ui_server: Any) -> Iterator[Any]:
    p = browser.new_page(viewport={"width": 1280, "height": 800})
    p.goto(ui_server.url + "/ui/", wait_until="domcontentloaded")
    p.get_by_role("tab", name="Agents", exact=True).click()
    p.wait_for_selector("#agents-table:has-text('analysis_agent')", timeout=WAIT_MS)
    p.get_by_text("Run a task (the seed's agent API)").click()
    p.wait_for_function(
        "() => document.querySelector('#task-agent input')?.value === 'analysis_agent'", timeout=WAIT_MS
    )
    yield p
    p.close()


def _pick(page: Any, elem_id: str, option: str) -> None:
    page.click(f"#{elem_id} input")
    page.get_by_role("option", name=option, exact=True).click()


def _params(page: Any) -> str:
    return str(page.evaluate("() => document.querySelector('#task-params .cm-content').innerText"))


def test_a_seed_task_runs_from_the_form_and_its_summary_is_the_apis(page: Any, api_server: Any) -> None:
    _pick(page, "task-type", "pattern_recognition")
    page.wait_for_function(
        "() => document.querySelector('#task-params .cm-content').innerText.includes('\"symbol\"')"
        " && !document.querySelector('#task-params .cm-content').innerText.includes('timeframe')",
        timeout=WAIT_MS,
    )
    prefilled = json.loads(_params(page))

    page.click("#task-run")
    page.wait_for_selector("#task-result [data-testid=task-summary]", timeout=WAIT_MS)
    shown = page.inner_text("#task-result [data-testid=task-summary]")
    with httpx.Client(base_url=api_server.url, timeout=60) as api:
        body = {"type": "pattern_recognition", "parameters": prefilled}
        expected = api.post("/api/agents/analysis_agent/tasks", json=body).json()

    assert prefilled == {"symbol": "NQ"}  # the seed's example for the type
    assert shown == expected["result"]["summary"]  # the paused replay: the same bars, the same answer


def test_a_refused_task_shows_the_apis_problem(page: Any) -> None:
    _pick(page, "task-type", "market_summary")  # the form moves to the analysis agent
    _pick(page, "task-agent", "risk_agent")  # which this one does not run: 422 from the API

    page.click("#task-run")
    page.wait_for_selector("#task-result .nq-error", timeout=WAIT_MS)
    error = page.inner_text("#task-result")
    _pick(page, "task-agent", "analysis_agent")

    assert "risk_agent" in error and "market_summary" in error
    assert "Traceback" not in error


def test_a_decision_shows_readably_with_who_decided(page: Any, api_server: Any) -> None:
    with httpx.Client(base_url=api_server.url, timeout=60) as api:
        out = api.post("/api/desk/run-once", json={"symbol": "NQ"}).json()
        record = api.get(f"/api/decisions/{out['decision_id']}").json()

    page.fill("#decision-id input, #decision-id textarea", str(out["decision_id"]))
    page.click("#decision-show")
    page.wait_for_selector("#decision-detail [data-testid=decision]", timeout=WAIT_MS)
    shown = page.inner_text("#decision-detail")

    assert record["agent"] in shown and str(record["id"]) in shown
    assert f"view\t{record['bias']}" in shown or f"view {record['bias']}" in shown
