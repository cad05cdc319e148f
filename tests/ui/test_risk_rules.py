"""``nq_ray_ui.risk.rules_html``: the Risk tab's rule-pack table — every rule's value, limit and distance in
its unit, the row coloured by its state, and what the gate says about a one-lot buy now."""

from __future__ import annotations

import re
from typing import Any

from nq_ray_ui import risk


def _row(rule: str, state: str, value: Any, limit: Any, distance: Any, unit: str, consequence: str) -> dict:
    return {
        "rule": rule,
        "kind": "x",
        "consequence": consequence,
        "value": value,
        "limit": limit,
        "distance": distance,
        "unit": unit,
        "state": state,
        "message": f"{rule} message",
    }


VERDICT = {
    "approved": False,
    "reasons": [{"code": "prop_stopped_day", "message": "stopped for the day on 2026-03-10"}],
    "distances": [
        _row("maximum_loss_limit", "warning", 48_300.0, 48_000.0, 300.0, "usd", "fail"),
        _row("daily_loss_limit", "breached", -1_200.0, -1_000.0, -200.0, "usd", "stop_day"),
        _row("maximum_position_size", "ok", 2.0, 5.0, 3.0, "contracts", "block"),
        _row("profit_target", "pending", -1_700.0, 3_000.0, 4_700.0, "usd", "block"),
        _row("consistency_target", "met", 40.0, 50.0, 10.0, "pct", "block"),
        _row("flat_by_close", "ok", 95.0, 0.0, 95.0, "minutes", "block"),
    ],
}


def test_every_rule_is_a_row_coloured_by_its_state_with_value_limit_and_distance_in_its_unit() -> None:
    html = risk.rules_html("topstep-50k", VERDICT)

    assert "Rule pack · topstep-50k" in html
    rows = re.findall(r'<tr class="nq-rule-(\w+)"[^>]*><th>([^<]+)</th>(.*?)</tr>', html)
    assert [(state, rule) for state, rule, _ in rows] == [
        ("warning", "maximum_loss_limit"),
        ("breached", "daily_loss_limit"),
        ("ok", "maximum_position_size"),
        ("pending", "profit_target"),
        ("met", "consistency_target"),
        ("ok", "flat_by_close"),
    ]
    cells = {rule: re.findall(r"<td[^>]*>([^<]*)</td>", rest) for _, rule, rest in rows}
    assert cells["maximum_loss_limit"] == ["$48,300.00", "$48,000.00", "$300.00", "warning", "fail"]
    assert cells["daily_loss_limit"][:3] == ["−$1,200.00", "−$1,000.00", "−$200.00"]
    assert cells["maximum_position_size"][:3] == ["2", "5", "3"]
    assert cells["consistency_target"][:3] == ["40.0%", "50.0%", "10.0%"]
    assert cells["flat_by_close"][2] == "95 min"
    assert "denied: prop_stopped_day (stopped for the day on 2026-03-10)" in html


def test_without_a_pack_the_table_is_the_gates_own_limits_and_says_so() -> None:
    verdict = {
        "approved": True,
        "reasons": [],
        "distances": [_row("limits.max_daily_loss_usd", "ok", 0.0, -2_000.0, 2_000.0, "usd", "block")],
    }
    html = risk.rules_html(None, verdict)

    assert "Rule pack · none active" in html and "propfirm.pack" in html
    assert 'class="nq-rule-ok"' in html and "limits.max_daily_loss_usd" in html
    assert "a 1-lot NQ buy now would be approved" in html


def test_names_and_messages_are_escaped() -> None:
    bad = {"approved": False, "reasons": [{"code": "x", "message": "<script>"}], "distances": []}
    html = risk.rules_html("<b>pack</b>", bad)

    assert "<script>" not in html and "<b>pack</b>" not in html and "&lt;script&gt;" in html


def test_the_panel_shows_the_pack_patched_live_through_the_api(api_server: Any) -> None:
    """Through the real API: no pack → the gate's own limits; ``PATCH /api/config`` sets Topstep 50K →
    its rules with their values, limits and distances (the fresh account: max-loss room $2,000, the
    daily loss room $1,000, the $3,000 target pending); the patch is undone after."""
    from nq_ray_ui.client import ApiClient
    from nq_ray_ui.state import Ctx

    ctx = Ctx(ApiClient(api_server.url))
    before = risk.rules_load(ctx)
    try:
        ctx.client.patch("/api/config", {"propfirm": {"pack": "topstep-50k"}})
        during = risk.rules_load(ctx)
        verdict = ctx.client.tool("check_risk_limits", symbol="NQ", side="buy", contracts=1)["verdict"]
    finally:
        ctx.client.patch("/api/config", {"propfirm": {"pack": None}})
    after = risk.rules_load(ctx)

    assert "Rule pack · none active" in before and "maximum_loss_limit" not in before
    assert "Rule pack · topstep-50k" in during
    rows = {r["rule"]: r for r in verdict["distances"]}
    assert rows["maximum_loss_limit"]["distance"] == 2_000.0
    assert rows["daily_loss_limit"]["distance"] == 1_000.0
    assert rows["profit_target"]["state"] == "pending"
    for name, r in rows.items():
        assert f'<tr class="nq-rule-{r["state"]}" title=' in during and f"<th>{name}</th>" in during
    assert "Rule pack · none active" in after
