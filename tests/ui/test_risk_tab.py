"""The Risk tab in a real browser: the margin use it shows is the API's percent (not a hundred times it)."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from nq_ray.testing.wait import wait_until

pytestmark = [pytest.mark.browser, pytest.mark.timeout(240)]
WAIT_MS = 60_000
ROW = """(name) => {
    const th = [...document.querySelectorAll('#risk-exposure th')].find(t => t.textContent === name);
    return th ? th.nextElementSibling.textContent : null; }"""


def test_margin_use_on_the_page_is_the_apis_percent(
    browser: Any, ui_server: Any, api_server: Any, replay: Any
) -> None:
    with httpx.Client(base_url=api_server.url, timeout=60) as api:
        order = {"symbol": "NQ", "side": "buy", "contracts": 1, "client_order_id": "ui-margin-buy-1"}
        assert api.post("/api/tools/place_order", json=order).status_code == 200
        replay("step", {"bars": 1})  # the market order fills at the next bar's open
        wait_until(
            lambda: api.post("/api/tools/assess_portfolio_risk", json={}).json()["positions"].get("NQ"),
            timeout_s=30,
            interval_s=0.2,
            message="the order filled",
        )
        risk = api.post("/api/tools/assess_portfolio_risk", json={}).json()
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    try:
        page.goto(ui_server.url + "/ui/", wait_until="domcontentloaded")
        page.get_by_role("tab", name="Risk", exact=True).click()
        page.wait_for_selector("#risk-exposure table", timeout=WAIT_MS)
        shown = page.evaluate(ROW, "margin use")
        limit = page.inner_text("#risk-limits")
    finally:
        page.close()
        with httpx.Client(base_url=api_server.url, timeout=60) as api:
            api.post("/api/tools/manage_position", json={"action": "flatten", "symbol": "NQ"})
        replay("step", {"bars": 1})

    by_hand = 100 * risk["initial_margin_usd"] / risk["equity_usd"]  # Σ |contracts| × margin ÷ equity
    assert risk["margin_use_pct"] == pytest.approx(by_hand) and 1 < by_hand < 100
    assert shown == f"{risk['margin_use_pct']:.1f}%"
    assert re.search(r"max_margin_use_pct\s+75\.0%", limit)  # the limit (a fraction, 0.75) beside it
