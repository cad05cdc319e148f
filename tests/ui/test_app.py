"""The web UI in a real browser: Debian's Chromium, driven by Playwright, against the real API and UI apps.

Each test checks what the page shows against what the API answers for the same question (never against
the UI's own earlier output), and every action goes through the page: clicks, typing, tabs.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

pytestmark = [pytest.mark.browser, pytest.mark.timeout(240)]

DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
TABS = ["Dashboard", "Agents", "Analysis", "Scanner", "Backtesting", "Risk", "Configuration"]
WAIT_MS = 60_000

# Records every value a selector's attribute / text takes, so a test can see intermediate states
# (a progress bar passing through "running", an answer growing while it streams).
WATCH_JS = """
([selector, attr]) => {
  window.__seen = [];
  const record = () => {
    const el = document.querySelector(selector);
    if (!el) return;
    const v = attr ? el.getAttribute(attr) : el.textContent.length;
    if (v !== null && window.__seen[window.__seen.length - 1] !== v) window.__seen.push(v);
  };
  new MutationObserver(record).observe(document.body, {subtree: true, childList: true,
    characterData: true, attributes: true});
}
"""


# Every Plotly chart on view has drawn its SVG (what the screenshots should show).
PLOTS_DRAWN = """() => [...document.querySelectorAll('.js-plotly-plot')]
    .filter(g => g.offsetParent !== null)
    .every(g => g._fullLayout && g.querySelector('svg.main-svg'))"""


def _api(server: Any) -> httpx.Client:
    return httpx.Client(base_url=server.url, timeout=60)


def _open(browser: Any, ui_server: Any, viewport: dict[str, int]) -> Any:
    page = browser.new_page(viewport=viewport)
    page.goto(ui_server.url + "/ui/", wait_until="domcontentloaded")
    page.wait_for_selector("#market-chart .js-plotly-plot", timeout=WAIT_MS)
    return page


@pytest.fixture(scope="module")
def page(browser: Any, ui_server: Any) -> Iterator[Any]:
    p = _open(browser, ui_server, DESKTOP)
    yield p
    p.close()


def _tab(page: Any, name: str) -> None:
    """Open a top-level tab; on a narrow screen Gradio moves some into its "More tabs" menu."""
    tab = page.get_by_role("tab", name=name, exact=True)
    if tab.count() and tab.first.is_visible():
        tab.first.click()
        return
    page.locator("#tabs .overflow-menu button[aria-label='More tabs']").first.click()
    page.locator("#tabs .overflow-dropdown:not(.hide) button", has_text=name).first.click()


def _plot_traces(page: Any, selector: str) -> list[dict[str, Any]]:
    return page.evaluate(
        """(sel) => { const g = document.querySelector(sel + ' .js-plotly-plot');
            return g && g.data ? g.data.map(t => ({type: t.type || 'scatter', name: t.name || '',
              n: (t.x || t.y || t.z || []).length})) : []; }""",
        selector,
    )


# --------------------------------------------------------------------------------------------- tabs
def test_dashboard_shows_real_candles_quote_source_and_account(page: Any, api_server: Any) -> None:
    with _api(api_server) as api:
        quote = api.get("/api/market/nq-price", params={"symbol": "NQ", "interval": "5m"}).json()
        hist = api.get("/api/market/historical", params={"interval": "5m", "limit": 240}).json()

    page.wait_for_selector("#quote .nq-quote", timeout=WAIT_MS)
    traces = _plot_traces(page, "#market-chart")
    names = {t["name"] for t in traces}
    candles = [t for t in traces if t["type"] == "candlestick"]

    assert f"{quote['price']:,.2f}" in page.inner_text("#quote")
    assert page.inner_text("#quote [data-testid=source]") == "SAMPLE · NOT LIVE"
    assert candles and candles[0]["n"] == hist["count"] == 240
    assert {"EMA 20", "VWAP", "Bollinger 20/2", "RSI 14", "MACD"} <= names
    last_bar = page.evaluate(
        "() => { const g = document.querySelector('#market-chart .js-plotly-plot');"
        " const c = g.data.find(t => t.type === 'candlestick'); return String(c.x[c.x.length - 1]); }"
    )
    assert last_bar.replace(" ", "T").startswith(hist["bars"][-1]["time"][:16])  # New York time
    assert "$100,000.00" in page.inner_text("#pnl")  # the paper account's starting equity
    assert "nearest support" in page.inner_text("#levels")


def test_dashboard_updates_live_from_the_websocket(page: Any, api_server: Any, replay: Any) -> None:
    _tab(page, "Dashboard")
    page.wait_for_selector("#feed [data-testid=ws-state]:has-text('CONNECTED')", timeout=WAIT_MS)

    with _api(api_server) as api:  # something happens on the server: a job publishes job_progress
        job = api.post("/api/jobs", json={"tool": "get_contract_info", "arguments": {}}).json()

    page.wait_for_selector(f"#feed:has-text('{job['id']}')", timeout=WAIT_MS)
    assert "job_progress" in page.inner_text("#feed")
    page.wait_for_selector("#positions:has-text('flat')", timeout=WAIT_MS)

    with _api(api_server) as api:  # an order: order_update over the WebSocket refreshes the book
        order = {"symbol": "NQ", "side": "buy", "contracts": 1, "client_order_id": "ui-test-buy-1"}
        placed = api.post("/api/tools/place_order", json=order)
        assert placed.status_code == 200, placed.text
    replay("step", {"bars": 1})  # the paused replay releases one bar: the market order fills at its open

    page.wait_for_selector("#feed:has-text('order_update')", timeout=WAIT_MS)
    page.wait_for_selector("#feed:has-text('market_update')", timeout=WAIT_MS)
    page.wait_for_selector("#positions:has-text('NQ')", timeout=WAIT_MS)
    assert "working orders" in page.inner_text("#pnl")


# The text of a row of the P&L box (``render.kv_table``), by its heading.
PNL_ROW = """(name) => {
    const th = [...document.querySelectorAll('#pnl th')].find(t => t.textContent === name);
    return th ? th.nextElementSibling.textContent : null; }"""
CHANGED = (
    "([sel, attr, was]) => { const el = document.querySelector(sel); if (!el) return false;"
    " const v = attr ? el.getAttribute(attr) : el.textContent; return v !== null && v !== was; }"
)


def test_the_dashboard_moves_with_the_replay_price_clock_and_pnl(
    page: Any, api_server: Any, replay: Any
) -> None:
    """The replay runs at 600x: the quote, the clock bar and the open position's P&L move with the bars
    the WebSocket pushes (the page's timer only drains pushed events; it asks the API for no price)."""
    _tab(page, "Dashboard")
    page.wait_for_selector("#nq-clock [data-clock=replay][data-state=paused]", timeout=WAIT_MS)
    page.wait_for_selector("#feed [data-testid=ws-state]:has-text('CONNECTED')", timeout=WAIT_MS)
    with _api(api_server) as api:
        order = {"symbol": "NQ", "side": "buy", "contracts": 2, "client_order_id": "ui-replay-buy-2"}
        placed = api.post("/api/tools/place_order", json=order)
        assert placed.status_code == 200, placed.text
    price0 = page.inner_text("#quote .px")
    clock0 = page.get_attribute("#nq-clock [data-testid=clock]", "data-now")
    pnl0 = page.evaluate(PNL_ROW, "unrealized P&L")

    status = replay("resume")
    page.wait_for_selector("#nq-clock [data-clock=replay][data-state=running]", timeout=WAIT_MS)
    page.wait_for_function(CHANGED, arg=["#quote .px", None, price0], timeout=WAIT_MS)
    page.wait_for_function(
        CHANGED, arg=["#nq-clock [data-testid=clock]", "data-now", clock0], timeout=WAIT_MS
    )
    page.wait_for_function(f"() => ({PNL_ROW})('unrealized P&L') !== {json.dumps(pnl0)}", timeout=WAIT_MS)
    pnl1 = page.evaluate(PNL_ROW, "unrealized P&L")
    page.wait_for_function(f"() => ({PNL_ROW})('unrealized P&L') !== {json.dumps(pnl1)}", timeout=WAIT_MS)
    clock1 = page.get_attribute("#nq-clock [data-testid=clock]", "data-now")
    paused = replay("pause")
    with _api(api_server) as api:
        book = api.post("/api/tools/manage_position", json={"action": "status"}).json()
        last = api.get("/api/market/nq-price", params={"symbol": "NQ", "interval": "5m"}).json()
    # paused: the last bar pushed is the API's latest price, and the page shows it
    page.wait_for_selector(f"#quote .px:text-is('{last['price']:,.2f}')", timeout=WAIT_MS)

    assert status["clock"] == "replay" and status["paused"] is False and status["speed"] == 600
    assert clock0 and clock1 and datetime.fromisoformat(clock1) > datetime.fromisoformat(clock0)
    assert datetime.fromisoformat(paused["now"]) > datetime.fromisoformat(status["now"])
    assert book["portfolio"]["positions"]["NQ"]["quantity"] >= 2  # the order filled on a replayed bar


def test_the_clock_bar_drives_the_replay_and_shows_the_apis_refusals(
    page: Any, api_server: Any, replay: Any
) -> None:
    _tab(page, "Dashboard")
    clock = "#nq-clock [data-testid=clock]"
    page.wait_for_selector("#nq-clock [data-clock=replay][data-state=paused]", timeout=WAIT_MS)
    with _api(api_server) as api:
        before = api.get("/api/market/replay").json()
    shown = page.get_attribute(clock, "data-now")

    page.click("#clock-step")  # one bar, still paused
    page.wait_for_function(CHANGED, arg=[clock, "data-now", shown], timeout=WAIT_MS)
    page.fill("#clock-jump input, #clock-jump textarea", "2026-04-17T09:30")  # back: refused
    page.click("#clock-jump-go")
    page.wait_for_selector("#clock-error .nq-error", timeout=WAIT_MS)
    refusal = page.inner_text("#clock-error")
    page.click("#clock-resume")
    page.wait_for_selector("#nq-clock [data-state=running]", timeout=WAIT_MS)
    page.click("#clock-speed input")
    page.get_by_role("option", name="x60", exact=True).click()
    page.wait_for_selector("#nq-clock [data-testid=clock-speed]:text-is('x60')", timeout=WAIT_MS)
    page.click("#clock-pause")
    page.wait_for_selector("#nq-clock [data-state=paused]", timeout=WAIT_MS)
    with _api(api_server) as api:
        after = api.get("/api/market/replay").json()
    replay("speed", {"speed": 600})  # changed elsewhere: the pushed status sets the page's speed back
    page.wait_for_selector("#nq-clock [data-testid=clock-speed]:text-is('x600')", timeout=WAIT_MS)
    page.wait_for_function(
        "() => document.querySelector('#clock-speed input').value === 'x600'", timeout=WAIT_MS
    )
    page.fill("#clock-jump input, #clock-jump textarea", "")

    assert after["seq"] > before["seq"] and after["paused"] is True and after["speed"] == 60
    assert "jump failed" in refusal and "fills are final" in refusal
    assert "Traceback" not in page.inner_text("body")


def test_backtest_runs_as_a_job_with_progress_then_equity_trades_and_metrics(
    page: Any, api_server: Any
) -> None:
    _tab(page, "Backtesting")
    page.wait_for_selector("#run-backtest", timeout=WAIT_MS)
    page.evaluate(WATCH_JS, ["#bt-progress .nq-progress", "data-status"])

    page.click("#run-backtest")
    page.wait_for_selector("#bt-progress .nq-progress[data-status=succeeded]", timeout=WAIT_MS)
    page.wait_for_selector("#bt-metrics [data-testid=metrics]", timeout=WAIT_MS)
    seen = page.evaluate("() => window.__seen")
    with _api(api_server) as api:
        args = {"strategy": "sma_cross", "params": {"fast": 10, "slow": 30}, "period": "1mo"}
        args |= {"costs": {"contracts": 1, "commission_per_contract": 2.25, "slippage_ticks": 1}}
        expected = api.post("/api/tools/run_backtest", json=args).json()

    assert seen[0] in ("pending", "running") and seen[-1] == "succeeded"
    assert page.get_attribute("#bt-progress .nq-progress", "aria-valuenow") == "100"
    equity = [t for t in _plot_traces(page, "#equity-chart") if t["name"] == "equity"]
    assert equity and equity[0]["n"] == len(expected["equity_curve"])
    net = expected["metrics"]["net_pnl_usd"]
    assert f"${abs(net):,.2f}" in page.inner_text("#bt-metrics")
    assert page.locator("a[download], button:has-text('Download CSV')").count() >= 1


def test_strategy_parameters_are_the_cores_defaults_from_the_api(
    page: Any, api_server: Any, expect: Any
) -> None:
    with _api(api_server) as api:
        strategies = api.get("/api/catalog").json()["strategies"]
    from nq_ray.backtest import get_strategy

    _tab(page, "Backtesting")
    page.get_by_role("tab", name="Run", exact=True).click()
    expect(page.locator("#bt-params textarea")).to_have_value(
        json.dumps(strategies["sma_cross"]), timeout=WAIT_MS
    )
    page.click("#bt-strategy input")
    page.get_by_role("option", name="ema_cross", exact=True).click()

    expect(page.locator("#bt-params textarea")).to_have_value(
        json.dumps(dict(get_strategy("ema_cross").defaults)), timeout=WAIT_MS
    )
    assert strategies["ema_cross"] == {"fast": 12, "slow": 26}
    page.click("#bt-strategy input")  # back to the default, for the tests that run the form as it opens
    page.get_by_role("option", name="sma_cross", exact=True).click()
    expect(page.locator("#bt-params textarea")).to_have_value(
        json.dumps(strategies["sma_cross"]), timeout=WAIT_MS
    )


def test_sweep_draws_a_heatmap_of_the_grid(page: Any, api_server: Any) -> None:
    _tab(page, "Backtesting")
    page.get_by_role("tab", name="Sweep", exact=True).click()
    grid = page.get_by_label("Grid (JSON)")
    grid.fill('{"fast": [5, 10], "slow": [30, 50]}')

    page.get_by_role("button", name="Run sweep").click()
    page.wait_for_selector(".nq-progress[data-status=succeeded]:has-text('sweep')", timeout=WAIT_MS)
    page.wait_for_function(
        "() => [...document.querySelectorAll('.js-plotly-plot')].some(g => (g.data || [])"
        ".some(t => t.type === 'heatmap'))",
        timeout=WAIT_MS,
    )
    heat = page.evaluate(
        "() => [...document.querySelectorAll('.js-plotly-plot')].flatMap(g => g.data || [])"
        ".find(t => t.type === 'heatmap').z"
    )
    z = heat.get("_inputArray", heat) if isinstance(heat, dict) else heat
    with _api(api_server) as api:
        args = {"strategy": "sma_cross", "grid": {"fast": [5, 10], "slow": [30, 50]}, "period": "1mo"}
        top = api.post("/api/tools/run_sweep", json=args | {"top": 100}).json()["top"]
    expected = {(r["slow"], r["fast"]): r["sharpe"] for r in top}

    assert len(z) == 2 and all(len(row) == 2 for row in z)  # rows: slow 30, 50; columns: fast 5, 10
    for i, slow in enumerate((30, 50)):
        for j, fast in enumerate((5, 10)):
            assert z[i][j] == pytest.approx(expected[(slow, fast)])
    page.get_by_role("tab", name="Run", exact=True).click()


def test_walk_forward_runs_as_a_job_and_shows_the_folds_and_out_of_sample_equity(
    page: Any, api_server: Any
) -> None:
    _tab(page, "Backtesting")
    page.get_by_role("tab", name="Walk-forward", exact=True).click()
    page.get_by_role("button", name="Run walk-forward").click()
    page.wait_for_selector(".nq-progress[data-status=succeeded]:has-text('walk-forward')", timeout=WAIT_MS)
    page.wait_for_selector("text=walk-forward efficiency", timeout=WAIT_MS)
    with _api(api_server) as api:
        args = {"strategy": "sma_cross", "grid": {"fast": [5, 10, 20], "slow": [30, 50, 100]}}
        args |= {"symbol": "NQ", "interval": "5m", "n_folds": 4, "period": "3mo"}
        out = api.post("/api/tools/run_walk_forward", json=args).json()
    shown = page.locator("text=walk-forward efficiency").first.inner_text()

    eff = out["efficiency_ratio"]
    assert (f"{eff:.2f}" if eff is not None else "n/a") in shown
    assert f"${out['oos_metrics']['net_pnl_usd']:,.2f}" in shown
    curve = [t for t in _plot_traces(page, "#wf-equity") if t["n"] == len(out["oos_equity_curve"])]
    assert curve, "the out-of-sample equity curve has the tool's points"
    page.get_by_role("tab", name="Run", exact=True).click()


def test_analysis_streams_in_with_the_rules_analyst(page: Any) -> None:
    _tab(page, "Analysis")
    page.wait_for_selector("#analyse", timeout=WAIT_MS)
    page.evaluate(WATCH_JS, ["#analysis-text", None])

    page.click("#analyse")
    page.wait_for_selector("#analysis-view [data-testid=view]", timeout=WAIT_MS)
    lengths = page.evaluate("() => window.__seen")
    text = page.inner_text("#analysis-text")
    view = page.inner_text("#analysis-view")

    assert len(lengths) >= 5  # the answer grew in several steps while the tools and the analyst answered
    for section in ("Price", "Indicators", "Levels", "Momentum", "Analyst"):
        assert section in text
    assert "rules analyst (deterministic, not an LLM)" in view
    assert "bias" in view and "invalidation" in view


def test_agents_tab_lists_agents_creates_one_and_works_the_kill_switch(page: Any) -> None:
    _tab(page, "Agents")
    page.wait_for_selector("#agents-table:has-text('analysis_agent')", timeout=WAIT_MS)
    page.get_by_text("Create / configure an agent").click()
    page.get_by_label("Name").fill("ui-test-agent")

    page.get_by_role("button", name="Create agent").click()
    page.wait_for_selector("#agents-table:has-text('ui-test-agent')", timeout=WAIT_MS)
    page.get_by_role("button", name="KILL SWITCH").click()
    page.wait_for_selector("#desk-status [data-testid=desk-state]:has-text('HALTED')", timeout=WAIT_MS)
    page.get_by_role("button", name="Resume after kill").click()
    page.wait_for_selector("#desk-status [data-testid=desk-state]:has-text('STOPPED')", timeout=WAIT_MS)

    page.get_by_label("Agent id").fill("analysis_agent")
    page.get_by_role("button", name="Show config and memory").click()
    # the block's label already says "memory": wait for a key of the answer itself
    page.wait_for_selector("#agent-json:has-text('recent_decisions')", timeout=WAIT_MS)

    assert "risk_agent" in page.inner_text("#agents-table")
    assert "recent_decisions" in page.inner_text("#agent-json")
    assert "scripted-analyst" in page.inner_text("#llm-status") or "serve" in page.inner_text("#llm-status")


# A calm hour of the replayed sample: the desk's risk agent (1% of $100k at 2 × ATR(14) of 5m bars) sizes
# ⌊$1,000 ÷ (2 × 22.9 pts × $20)⌋ = 1 contract here; around the RTH open (ATR ≈ 28–38 pts) it sizes 0.
CALM = "2026-04-20T14:00"


def test_risk_tab_shows_limits_var_and_approves_a_proposal(page: Any, api_server: Any, replay: Any) -> None:
    replay("jump", {"to": CALM})
    with _api(api_server) as api:  # approval mode on, then one desk cycle proposes a trade
        assert api.put("/api/desk/approval-mode", json={"on": True}).status_code == 200
        cycle = api.post("/api/desk/run-once", json={"symbol": "NQ"}).json()
        pending = api.get("/api/approvals").json()
        var = api.post("/api/tools/calculate_var", json={"symbol": "NQ"}).json()["var"]
    assert pending, f"the desk cycle made no proposal: {cycle}"
    approval_id = str(pending[0]["id"])

    _tab(page, "Risk")
    page.wait_for_selector(f"#approvals:has-text('{approval_id}')", timeout=WAIT_MS)
    page.wait_for_selector("#risk-var table", timeout=WAIT_MS)
    assert f"${var['var_usd']:,.2f}" in page.inner_text("#risk-var")
    assert "$2,000.00" in page.inner_text("#risk-limits")  # max_daily_loss_usd in force
    page.fill("#approval-id input, #approval-id textarea", approval_id)
    page.click("#approve")
    page.wait_for_selector("#approval-msg .nq-ok", timeout=WAIT_MS)

    with _api(api_server) as api:
        after = api.get("/api/approvals", params={"status": "all"}).json()
        api.put("/api/desk/approval-mode", json={"on": False})
    decided = next(a for a in after if str(a["id"]) == approval_id)
    assert decided["status"] not in ("pending",)
    assert decided.get("decided_by") == "ui"


def test_bad_risk_limit_is_refused_with_a_readable_error_and_a_good_one_is_recorded(
    page: Any, api_server: Any
) -> None:
    _tab(page, "Configuration")
    field = page.locator("#cfg-max_daily_loss_usd input")
    page.wait_for_function(
        "() => { const i = document.querySelector('#cfg-max_daily_loss_usd input'); return i && i.value; }",
        timeout=WAIT_MS,
    )
    field.fill("-5")
    field.press("Tab")  # commit the number before the click reads it

    page.click("#save-risk")
    answer = page.wait_for_selector("#config-msg .nq-error, #config-msg .nq-ok", timeout=WAIT_MS)
    error = answer.inner_text()
    assert "nq-error" in (answer.get_attribute("class") or ""), f"not refused: {error}"
    with _api(api_server) as api:
        still = api.get("/api/config").json()["settings"]["risk"]["limits"]["max_daily_loss_usd"]
    field.fill("2500")
    field.press("Tab")
    page.click("#save-risk")
    page.wait_for_selector("#config-msg .nq-ok", timeout=WAIT_MS)
    page.wait_for_selector("#config-changes:has-text('2500')", timeout=WAIT_MS)

    assert "max_daily_loss_usd" in error and "greater than 0" in error
    assert "Traceback" not in error
    assert still == 2000.0  # the refused patch changed nothing
    with _api(api_server) as api:
        assert api.get("/api/config").json()["settings"]["risk"]["limits"]["max_daily_loss_usd"] == 2500.0
        api.patch("/api/config", json={"risk": {"limits": {"max_daily_loss_usd": 2000}}})


def test_theme_toggle_switches_between_light_and_dark(page: Any, shots_dir: Path) -> None:
    _tab(page, "Dashboard")
    background = """() => { let el = document.querySelector('.gradio-container');
        while (el && getComputedStyle(el).backgroundColor === 'rgba(0, 0, 0, 0)') el = el.parentElement;
        return el ? getComputedStyle(el).backgroundColor : 'rgb(255, 255, 255)'; }"""
    light = page.evaluate(background)

    page.click("#theme-toggle")
    page.wait_for_function("() => document.body.classList.contains('dark')", timeout=WAIT_MS)
    page.wait_for_function(f"(light) => ({background})() !== light", arg=light, timeout=WAIT_MS)
    dark = page.evaluate(background)
    raw = page.screenshot(path=str(shots_dir / "dashboard-dark-1280x800.png"))
    if docs := os.environ.get("NQ_UI_SCREENSHOTS"):
        Path(docs).mkdir(parents=True, exist_ok=True)
        (Path(docs) / "dashboard-dark.png").write_bytes(_small_png(raw, 1000))
    page.click("#theme-toggle")
    page.wait_for_function("() => !document.body.classList.contains('dark')", timeout=WAIT_MS)

    assert _luminance(dark) < 0.2 < _luminance(light)


def _luminance(css_colour: str) -> float:
    nums = [float(x) for x in css_colour[css_colour.index("(") + 1 : -1].split(",")[:3]]
    return sum(nums) / (3 * 255)


def test_an_unreachable_api_shows_a_readable_message_not_a_stack_trace(
    browser: Any, server_class: Any
) -> None:
    from fastapi import FastAPI
    from nq_ray_ui import mount

    app = mount(FastAPI(), "http://127.0.0.1:1", path="/ui")
    server = server_class(app).start("/ui/")
    page = browser.new_page(viewport=DESKTOP)
    try:
        page.goto(server.url + "/ui/")
        page.wait_for_selector("#nq-header:has-text('cannot reach the nq-ray API')", timeout=WAIT_MS)
        page.wait_for_selector(".nq-error", timeout=WAIT_MS)
        body = page.inner_text("body")
    finally:
        page.close()
        server.stop()
        app.state.nq_ui.nq_ctx.feed.stop()

    assert "cannot reach the nq-ray API at http://127.0.0.1:1" in body
    assert "Traceback" not in body and "Exception" not in body


# --------------------------------------------------------------------------------------- screenshots
def _small_png(raw: bytes, width: int, limit_bytes: int = 150_000) -> bytes:
    """Downscale and quantise a screenshot until it is under ``limit_bytes``."""
    from PIL import Image

    img = Image.open(io.BytesIO(raw)).convert("RGB")
    for w in (width, int(width * 0.8), int(width * 0.65), int(width * 0.5)):
        h = round(img.height * w / img.width)
        small = img.resize((w, h), Image.LANCZOS).quantize(colors=96, method=Image.Quantize.MEDIANCUT)
        buf = io.BytesIO()
        small.save(buf, format="PNG", optimize=True)
        if buf.tell() < limit_bytes:
            return buf.getvalue()
    return buf.getvalue()


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["1280x800", "390x844"])
def test_every_tab_renders_and_is_photographed(
    browser: Any, ui_server: Any, shots_dir: Path, viewport: dict[str, int]
) -> None:
    page = _open(browser, ui_server, viewport)
    docs = os.environ.get("NQ_UI_SCREENSHOTS")
    size = f"{viewport['width']}x{viewport['height']}"
    ready = {
        "Dashboard": "#quote .nq-quote",
        "Agents": "#agents-table:has-text('analysis_agent')",
        "Analysis": "#analyse",
        "Scanner": "#run-scan",
        "Backtesting": "#run-backtest",
        "Risk": "#risk-var table",
        "Configuration": "#config-changes",
    }
    try:
        for name in TABS:
            _tab(page, name)
            page.wait_for_selector(ready[name], timeout=WAIT_MS)
            if name == "Backtesting" and docs:
                page.click("#run-backtest")
                page.wait_for_selector("#bt-metrics [data-testid=metrics]", timeout=WAIT_MS)
            if name == "Analysis" and docs:
                page.click("#analyse")
                page.wait_for_selector("#analysis-view [data-testid=view]", timeout=WAIT_MS)
            page.wait_for_function(PLOTS_DRAWN, timeout=WAIT_MS)
            overflow = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
            raw = page.screenshot(path=str(shots_dir / f"{name.lower()}-{size}.png"))

            assert overflow <= 2, f"{name} at {size} scrolls sideways by {overflow}px"
            assert "Traceback" not in page.inner_text("body")
            if docs:
                out = Path(docs)
                out.mkdir(parents=True, exist_ok=True)
                png = _small_png(raw, 1000 if viewport is DESKTOP else 390)
                (out / f"{name.lower()}-{'desktop' if viewport is DESKTOP else 'phone'}.png").write_bytes(png)
                assert len(png) < 150_000
    finally:
        page.close()


def test_the_catalogue_fills_every_tab_or_says_why_it_cannot(api_server: Any) -> None:
    import gradio as gr
    from nq_ray_ui.app import TABS, fill_catalog
    from nq_ray_ui.client import ApiClient
    from nq_ray_ui.state import Ctx

    down, up = Ctx(ApiClient("http://127.0.0.1:1", timeout_s=2)), Ctx(ApiClient(api_server.url))
    views = []
    with gr.Blocks(), gr.Tabs():
        for module in TABS:
            built = module.build(down)
            views += built if isinstance(built, list) else [built]
    n = sum(len(v.catalog_outputs) for v in views)

    note, *skipped = fill_catalog(down, views)
    cleared, *filled = fill_catalog(up, views)

    assert "cannot reach the nq-ray API" in note["value"] and note["visible"] and len(skipped) == n
    assert all(u == gr.skip() for u in skipped)
    assert cleared["visible"] is False and len(filled) == n
    assert not any(u == gr.skip() for u in filled)


def test_the_tab_bar_holds_only_the_six_tabs() -> None:
    """A component built directly in ``gr.Tabs`` (not in a tab) shifts every later tab's button."""
    import gradio as gr
    from nq_ray_ui import build_ui

    demo = build_ui("http://127.0.0.1:1")
    tabs = next(b for b in demo.blocks.values() if isinstance(b, gr.Tabs) and b.elem_id == "tabs")
    demo.nq_ctx.feed.stop()

    assert [type(c) for c in tabs.children] == [gr.Tab] * len(TABS)
    assert [c.label for c in tabs.children] == TABS
