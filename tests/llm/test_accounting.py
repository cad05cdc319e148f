"""Usage ledger: totals per provider/model/caller, cost estimate, budgets, the sink seam."""

from __future__ import annotations

import pytest

from nq_ray.errors import InvalidArgumentError
from nq_ray.llm.accounting import Budget, UsageLedger, UsageRecord, estimate_cost


def rec(ledger: UsageLedger, caller: str, provider: str = "openai", p: int = 1000, c: int = 1000) -> None:
    cost = estimate_cost(p, c, 0.00015, 0.0006)
    ledger.record(
        provider=provider,
        model="gpt-4o-mini",
        caller=caller,
        task="t",
        prompt_tokens=p,
        completion_tokens=c,
        latency_s=0.1,
        cost_usd=cost,
        ok=True,
    )


def test_cost_is_tokens_over_1000_times_price() -> None:
    assert estimate_cost(2000, 500, 0.5, 1.5) == pytest.approx(2 * 0.5 + 0.5 * 1.5)


def test_totals_by_caller_and_provider() -> None:
    ledger = UsageLedger()
    rec(ledger, "a")
    rec(ledger, "a", provider="groq")
    rec(ledger, "b")

    assert ledger.totals(caller="a").total_tokens == 4000
    assert ledger.totals(provider="openai").requests == 2
    assert ledger.totals().cost_usd == pytest.approx(3 * (0.00015 + 0.0006))
    assert len(ledger.breakdown()) == 3


def test_budget_by_tokens_and_by_cost() -> None:
    ledger = UsageLedger()
    ledger.set_budget("a", Budget(max_tokens=3000))
    ledger.set_budget("b", Budget(max_cost_usd=0.0005))
    rec(ledger, "a")
    rec(ledger, "b")

    assert ledger.over_budget("a") is None and "spent" in (ledger.over_budget("b") or "")
    rec(ledger, "a")
    assert "4000 of 3000 tokens" in (ledger.over_budget("a") or "")


def test_records_reach_the_sinks() -> None:
    got: list[UsageRecord] = []

    class Sink:
        def record(self, r: UsageRecord) -> None:
            got.append(r)

    ledger = UsageLedger(sinks=[Sink()])
    rec(ledger, "a")

    assert len(got) == 1 and got[0].caller == "a"


def test_negative_budget_is_rejected() -> None:
    with pytest.raises(InvalidArgumentError):
        Budget(max_tokens=-1)
