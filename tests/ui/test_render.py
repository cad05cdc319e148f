"""``nq_ray_ui.render``: percent vs fraction, the committee and decision renderers on decisions shaped as
the API records them."""

from __future__ import annotations

import re

from nq_ray_ui.render import committee_html, decision_html, pct, percent

COMMITTEE = {
    "rule": "majority",
    "quorum": 2,
    "votes": {"long": 1, "short": 1, "flat": 0},
    "agreement": 0.5,
    "decision": "flat",
    "no_entry_reason": "members disagree: agreement 50% below the 67% threshold",
    "debate": False,
    "members": [
        {
            "name": "bull",
            "provider": "serve",
            "model": "scripted-a",
            "ok": True,
            "error": None,
            "bias": "long",
            "confidence": 0.72,
            "reasoning": "higher lows above VWAP",
            "latency_ms": 812.4,
            "prompt_tokens": 900,
            "completion_tokens": 120,
            "cost_usd": 0.0042,
            "round": 1,
        },
        {
            "name": "bear",
            "provider": "serve",
            "model": "scripted-b",
            "ok": True,
            "bias": "short",
            "confidence": 0.61,
            "reasoning": "lower highs under the prior day high",
            "latency_ms": 1500,
            "prompt_tokens": 900,
            "completion_tokens": 98,
            "cost_usd": 0.0031,
            "round": 1,
        },
        {
            "name": "slow",
            "provider": "serve",
            "model": "scripted-c",
            "ok": False,
            "error": "timed out after 30 s",
            "latency_ms": 30000,
            "cost_usd": 0.0,
            "round": 1,
        },
    ],
}


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_percent_formats_a_percent_and_pct_a_fraction() -> None:
    assert percent(72.61) == "72.6%"  # the margin_use_pct the API answers: 72.6 % of equity
    assert pct(0.7261) == "72.6%"  # a fraction (a limit, a win rate)
    assert percent(None) == pct(None) == "—"


def test_committee_shows_each_members_answer_latency_cost_and_the_no_entry_reason() -> None:
    text = _text(committee_html(COMMITTEE))

    assert "NO ENTRY" in text and "agreement 50% below the 67% threshold" in text
    assert "majority" in text and "long 1, short 1, flat 0" in text
    assert "bull · serve · scripted-a" in text and "higher lows above VWAP" in text and "72%" in text
    assert "812 ms" in text and "$0.0042" in text  # a call's cost in fractions of a cent
    assert "1,500 ms" in text and "lower highs" in text
    assert "FAILED" in text and "timed out after 30 s" in text
    assert committee_html(COMMITTEE).count('data-testid="committee-member"') == 3


def test_an_agreeing_committee_shows_its_decision() -> None:
    agreed = COMMITTEE | {"decision": "long", "no_entry_reason": None, "agreement": 1.0}

    text = _text(committee_html(agreed))

    assert "LONG" in text and "NO ENTRY" not in text and "100%" in text


def test_decision_shows_its_template_version_and_committee_wherever_recorded() -> None:
    record = {
        "id": 41,
        "agent": "analysis_agent",
        "symbol": "NQ",
        "action": "analysis",
        "decision": {
            "view": {"bias": "flat", "confidence": 0.5},
            "template": "analysis_base",
            "template_version": "3",
            "committee": COMMITTEE,
        },
    }

    text = _text(decision_html(record))

    assert "analysis_base v3" in text
    assert "flat 50%" in text
    assert "NO ENTRY" in text and "scripted-b" in text


def test_a_decision_without_template_or_committee_renders_without_them() -> None:
    text = _text(decision_html({"id": 1, "agent": "analysis_agent", "decision": {"view": {"bias": "long"}}}))

    assert "analysis_agent" in text and "long" in text
    assert "prompt template" not in text and "Committee" not in text
    assert decision_html(None) == ""
