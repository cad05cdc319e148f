"""ContextManager: the seed's sources within a token budget, least important trimmed first, drops reported."""

from __future__ import annotations

import pytest

from nq_ray.agents.context import ContextManager, ContextSource, approx_tokens
from nq_ray.errors import InvalidArgumentError

RISK = {"max_contracts": 2, "max_daily_loss_usd": 2000, "stop_required": True}
MARKET = "NQ 5m as of 2026-04-28 15:55: last 21500.25\nTrend up (ADX 24)\nRSI 61.3, MACD hist 1.25"
TRADES = [{"id": f"t{i}", "side": "long", "pnl_usd": 100 * i} for i in range(10)]
MEMORY = [f"note {i}: NQ respected VWAP on the retest of the overnight high" for i in range(20)]
SOURCES = ["current_market_data", "recent_trades", "risk_parameters", "agent_memory"]
DATA = {
    "current_market_data": MARKET,
    "recent_trades": TRADES,
    "risk_parameters": RISK,
    "agent_memory": MEMORY,
}


def test_everything_fits_in_a_large_budget_in_the_requested_order() -> None:
    cm = ContextManager(token_budget=5000)

    ctx = cm.build_context(SOURCES, data=DATA)

    assert ctx.sections == tuple(SOURCES) and not ctx.trimmed
    assert ctx.text.index("Current market data") < ctx.text.index("Risk parameters")
    assert "max_daily_loss_usd: 2000" in ctx.text and "- id=t9, side=long, pnl_usd=900" in ctx.text


def test_least_important_is_trimmed_first_oldest_items_first() -> None:
    cm = ContextManager()
    full = cm.build_context(SOURCES, data=DATA, token_budget=5000).tokens

    ctx = cm.build_context(SOURCES, data=DATA, token_budget=full - 100)

    assert ctx.tokens <= full - 100 and ctx.dropped[0].source == "agent_memory"
    assert "oldest of 20 items" in ctx.dropped[0].what
    assert "note 19" in ctx.text and "note 0:" not in ctx.text
    assert all(d.source == "agent_memory" for d in ctx.dropped) and len(TRADES) == ctx.text.count("- id=t")


def test_tight_budget_drops_memory_then_trims_trades_and_keeps_risk() -> None:
    cm = ContextManager()

    ctx = cm.build_context(SOURCES, data=DATA, token_budget=150)

    assert ctx.tokens <= 150
    assert [d.source for d in ctx.dropped][:2] == ["agent_memory", "recent_trades"]
    assert "agent_memory" not in ctx.sections and "risk_parameters" in ctx.sections
    assert "max_contracts: 2" in ctx.text and "[context trimmed to fit 150 tokens" in ctx.text


def test_providers_supply_sources_and_custom_sources_carry_importance() -> None:
    cm = ContextManager(token_budget=100, providers={"current_market_data": lambda: MARKET})
    chatter = ContextSource("chatter", ["x" * 200] * 5, importance=1, title="Chatter")

    ctx = cm.build_context(["current_market_data", chatter])

    assert ctx.sections == ("current_market_data",) and ctx.dropped[0].source == "chatter"


def test_token_estimate_is_chars_over_four_rounded_up() -> None:
    assert (approx_tokens(""), approx_tokens("abcd"), approx_tokens("abcde")) == (0, 1, 2)


@pytest.mark.parametrize(
    ("sources", "budget"), [(["unknown"], 1000), (["current_market_data"] * 2, 1000), ([], 10)]
)
def test_bad_requests_are_rejected(sources: list[str], budget: int) -> None:
    with pytest.raises(InvalidArgumentError):
        ContextManager().build_context(sources, data=DATA, token_budget=budget)
