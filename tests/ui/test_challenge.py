"""``nq_ray_ui.challenge``: the Challenge view runs ``run_challenge`` as a job against the real API and shows
the report of the core's own challenge; its renderers on real ``ChallengeReport`` data; bad input as an
error in the view, never a traceback."""

from __future__ import annotations

import re
from typing import Any

import gradio as gr
import pytest
from nq_ray_ui import backtesting, challenge
from nq_ray_ui.client import ApiClient
from nq_ray_ui.render import percent, usd
from nq_ray_ui.state import Ctx

from nq_ray.config import Settings
from nq_ray.settings.propfirm import pack_names
from nq_ray.tools.backtesting import CostsArgs, costs_of
from nq_ray.tools.challenge import challenge_report

# the bundled sample, opening_range_breakout under topstep-50k at the default costs: three weeks pass on
# 2026-04-15; 2026-04-06..08 fails the maximum loss on 2026-04-07; at 5 contracts the three weeks end
# still in progress (the core's tests check those outcomes against hand computations)
STRATEGY = "opening_range_breakout"
PASSING = ("2026-03-30", "2026-04-17")
FAILING = ("2026-04-06", "2026-04-08")


def _report(start: str, end: str, costs: dict[str, Any] | None = None, n_sims: int = 0) -> dict[str, Any]:
    settings = Settings()
    common = {"symbol": "NQ", "interval": "5m", "source": "sample", "period": None}
    common |= {"start": start, "end": end, "as_of": None}
    c = costs_of(CostsArgs(**costs) if costs else None, settings)
    out = challenge_report(settings, common, "topstep-50k", STRATEGY, None, c, n_sims, 1)
    return out.model_dump(mode="json")


@pytest.fixture(scope="module")
def passed() -> dict[str, Any]:
    return _report(*PASSING, n_sims=200)


@pytest.fixture(scope="module")
def failed() -> dict[str, Any]:
    return _report(*FAILING)


def _form(pack: str = "topstep-50k", params: str = "", start: str = PASSING[0], **kw: Any) -> list[Any]:
    """The view's inputs in order (pack, strategy, params, symbol, interval, source, period, start, end,
    contracts, commission, slippage, stop, target, n_sims, seed)."""
    return [
        pack,
        kw.get("strategy", STRATEGY),
        params,
        "NQ",
        "5m",
        "sample",
        "",
        start,
        kw.get("end", PASSING[1]),
        None,
        None,
        None,
        None,
        None,
        kw.get("n_sims", 200),
        1,
    ]


def _build(ctx: Ctx) -> list[Any]:
    with gr.Blocks():
        return backtesting.build(ctx)


# --- against the real API -------------------------------------------------------------------------------


def test_the_form_fills_with_the_catalogues_packs_and_the_tools_defaults(api_server: Any) -> None:
    ctx = Ctx(ApiClient(api_server.url))
    view = _build(ctx)[-1]
    cat = ctx.catalog()

    values = dict(zip([c.label for c in view.catalog_outputs], view.fill(cat), strict=True))

    assert values["Rule pack"]["choices"] == pack_names() and "topstep-50k" in pack_names()
    assert values["Rule pack"]["value"] == cat.default("run_challenge", "pack") == "topstep-50k"
    assert values["Strategy"]["value"] == cat.default("run_challenge", "strategy")
    assert values["Monte Carlo paths"] == 1000 and values["Seed"] == 0  # the tool's schema defaults
    assert values["Commission $/side"] == cat.default("run_challenge", "costs")["commission_per_contract"]


def test_a_challenge_runs_as_a_job_and_shows_the_cores_report(api_server: Any, passed: dict) -> None:
    ctx = Ctx(ApiClient(api_server.url))

    steps = list(challenge.challenge_run(ctx, *_form()))

    progress, outcome, rules, daily, fig, err = steps[-1]
    assert err == ""
    assert 'data-status="succeeded"' in progress and len(steps) >= 2
    assert 'data-status="' in steps[0][0] and steps[0][1] == ""  # the first yield: the job, no report yet
    # the job's report is the core's own on the same bars, pack, costs and seed
    assert passed["outcome"] == "passed" and passed["passed"]["session_day"] == "2026-04-15"
    assert 'data-outcome="passed"' in outcome and "2026-04-15" in outcome
    pp = passed["pass_probability"]
    assert f"pass probability {percent(100 * pp['probability'])}" in outcome
    lo, hi = pp["ci95"]
    assert f"95% interval {percent(100 * lo)}–{percent(100 * hi)}" in outcome
    assert re.findall(r'data-state="(\w+)"', rules) == [r["state"] for r in passed["rules"]]
    assert re.findall(r'data-day="([\d-]+)"', daily) == [d["session_day"] for d in passed["daily"]]
    balance = next(t for t in fig.data if t.name == "end-of-day balance")
    assert list(balance.y) == [d["end_balance_usd"] for d in passed["daily"]]


def test_bad_parameters_json_is_an_error_in_the_view(api_server: Any) -> None:
    ctx = Ctx(ApiClient(api_server.url))

    steps = list(challenge.challenge_run(ctx, *_form(params='{"minutes": 15')))

    assert len(steps) == 1  # refused before any job
    progress, outcome, *_, err = steps[0]
    assert progress == outcome == ""
    assert 'role="alert"' in err and "parameters is not valid JSON" in err


def test_an_unknown_pack_shows_the_known_ones(api_server: Any) -> None:
    ctx = Ctx(ApiClient(api_server.url))

    err = list(challenge.challenge_run(ctx, *_form(pack="no-such-firm", n_sims=0)))[-1][-1]

    assert 'role="alert"' in err and "challenge failed" in err
    assert "no-such-firm" in err and "topstep-50k" in err and "Traceback" not in err


def test_a_pack_name_the_schema_refuses_is_an_error_naming_the_field(api_server: Any) -> None:
    ctx = Ctx(ApiClient(api_server.url))

    err = list(challenge.challenge_run(ctx, *_form(pack="Bad Pack!")))[-1][-1]

    assert 'role="alert"' in err and "pack" in err and "Traceback" not in err


def test_no_pack_is_refused_before_any_job() -> None:
    with pytest.raises(challenge.ApiError, match="pick a rule pack"):
        challenge.challenge_args(*_form(pack=" "))


def test_empty_fields_are_left_to_the_server() -> None:
    args = challenge.challenge_args(*_form(n_sims=None))

    assert args == {
        "pack": "topstep-50k",
        "strategy": STRATEGY,
        "symbol": "NQ",
        "interval": "5m",
        "source": "sample",
        "start": PASSING[0],
        "end": PASSING[1],
        "seed": 1,
    }


# --- rendering real reports -----------------------------------------------------------------------------


def test_a_failure_names_the_rule_time_and_balances_in_red(failed: dict[str, Any]) -> None:
    f = failed["failed"]
    assert failed["outcome"] == "failed" and f["rule"] == "maximum_loss_limit"

    html = challenge.outcome_html(failed)

    assert 'data-outcome="failed"' in html and ">FAILED<" in html and "#ef5350" in html
    assert f"rule <b>{f['rule']}</b> at {f['at']}" in html and f["session_day"] in html
    assert usd(f["balance_usd"]) in html and usd(f["equity_usd"]) in html
    assert "not estimated (n_sims 0)" in html


def test_the_rules_table_colours_each_rule_by_its_state(failed: dict[str, Any]) -> None:
    html = challenge.rules_html(failed["rules"])

    rows = re.findall(r'<tr class="nq-rule-(\w+)" data-state="(\w+)"', html)
    assert [s for s, _ in rows] == [r["state"] for r in failed["rules"]]
    assert "breached" in [s for s, _ in rows]  # the maximum loss
    ml = next(r for r in failed["rules"] if r["rule"] == "maximum_loss_limit")
    row = html[html.index('data-state="breached"') :].split("</tr>")[0]
    assert f"<td>{usd(ml['value'])}</td><td>{usd(ml['limit'])}</td><td>{usd(ml['distance'])}</td>" in row
    assert "color:#ef5350" in row and "BREACHED" in row


def test_the_daily_table_marks_the_failing_day_and_the_room_used_up(failed: dict[str, Any]) -> None:
    html = challenge.daily_html(failed["daily"])

    days = re.findall(r'<tr class="nq-day-(\w+)" data-day="([\d-]+)"', html)
    assert [d for _, d in days] == [d["session_day"] for d in failed["daily"]]
    assert dict((d, k) for k, d in days)[failed["failed"]["session_day"]] == "failed"
    last = failed["daily"][-1]
    assert usd(last["pnl_usd"], signed=True) in html and usd(last["max_loss_floor_usd"]) in html


def test_the_balance_chart_draws_the_floor_and_marks_the_end(
    failed: dict[str, Any], passed: dict[str, Any]
) -> None:
    fig = challenge.balance_figure(failed)

    traces = {t.name: t for t in fig.data}
    assert list(traces["max-loss floor"].y) == [d["max_loss_floor_usd"] for d in failed["daily"]]
    assert list(traces["day's low equity"].y) == [d["low_equity_usd"] for d in failed["daily"]]
    marks = [a.text for a in fig.layout.annotations]
    assert "failed: maximum_loss_limit" in marks and "start" in marks
    target = next(r["limit"] for r in passed["rules"] if r["kind"] == "profit_target")
    shapes = challenge.balance_figure(passed).layout.shapes
    assert passed["start_balance_usd"] + target in [s.y0 for s in shapes]
    assert "passed" in [a.text for a in challenge.balance_figure(passed).layout.annotations]


def test_still_in_progress_at_the_end_of_the_data_is_amber() -> None:
    res = _report(*PASSING, costs={"contracts": 5})
    assert res["outcome"] == "in_progress"

    html = challenge.outcome_html(res)

    assert ">IN PROGRESS<" in html and "#f59e0b" in html and usd(res["balance_usd"]) in html
    assert challenge.balance_figure({"daily": []}).layout.annotations[0].text == "no session day in the range"


# --- in the browser ---------------------------------------------------------------------------------------


@pytest.mark.browser
@pytest.mark.timeout(240)
def test_the_challenge_sub_tab_runs_with_the_forms_defaults(browser: Any, ui_server: Any) -> None:
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    try:
        page.goto(ui_server.url + "/ui/", wait_until="domcontentloaded")
        page.wait_for_selector("#market-chart .js-plotly-plot", timeout=60_000)
        page.get_by_role("tab", name="Backtesting", exact=True).click()
        page.get_by_role("tab", name="Challenge", exact=True).click()
        page.get_by_role("button", name="Run challenge").click()

        page.wait_for_selector(".nq-progress[data-status=succeeded]:has-text('challenge')", timeout=120_000)
        report = page.locator("[data-testid=challenge-report]")
        report.wait_for(timeout=60_000)

        assert report.get_attribute("data-outcome") in ("passed", "failed", "in_progress")
        assert "pass probability" in page.locator("[data-testid=pass-probability]").inner_text()
        assert page.locator("[data-testid=challenge-rules] tr[data-state]").count() >= 1
        assert page.locator("[data-testid=challenge-daily] tr[data-day]").count() >= 1
        page.wait_for_selector("#challenge-chart .js-plotly-plot", timeout=30_000)
        assert page.locator("#ch-error [role=alert]").count() == 0
    finally:
        page.close()
