"""The risk narrative and order plan: code checks on any model answer, and the risk and execution agents
asking a real local OpenAI-compatible server (``ScriptedLLMServer``) over the paper broker — valid
answers are used, answers that try to loosen risk are cut or rejected, garbage and timeouts fall back."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from nq_ray.agents.agents import ExecutionAgent, LocalTools, RiskAgent
from nq_ray.agents.memory import UsageBook
from nq_ray.agents.models import AgentConfig, AnalysisReport, MarketView, RiskAssessment, TradeProposal
from nq_ray.agents.thinking import (
    LimitDistance,
    ManualTrade,
    OrderPlan,
    RiskNarrative,
    ScaleOut,
    apply_narrative,
    check_order_plan,
    limit_distances,
    model_router,
    parse_market_conditions,
    parse_portfolio,
    plan_legs,
    volatility_var,
)
from nq_ray.config import Settings
from nq_ray.errors import InvalidArgumentError
from nq_ray.llm.config import LLMConfig, ProviderConfig
from nq_ray.llm.router import LLMRouter
from nq_ray.risk.limits import RiskLimits
from nq_ray.testing import ScriptedLLMServer
from nq_ray.testing.llm_server import Step
from nq_ray.tools.context import ToolContext
from nq_ray.tools.registry import build_registry

RULES = ProviderConfig(name="rules", kind="rules", model="nq-rules-v1", priority=1000)
LONG = TradeProposal(
    symbol="NQ", side="buy", contracts=2, entry=27284.75, stop=27264.75, target=27324.75, rationale="t"
)


def narrative(stance: str, suggested: int | None = None) -> RiskNarrative:
    return RiskNarrative(narrative="n", stance=stance, suggested_contracts=suggested)  # type: ignore[arg-type]


def plan(**kw: Any) -> OrderPlan:
    base = {"entry_type": "limit", "entry_price": 27284.75, "stop_price": 27270.0, "target_price": 27320.0}
    return OrderPlan.model_validate({**base, **kw})


# ---------------------------------------------------------------------------------- code checks
@pytest.mark.parametrize(
    ("stance", "suggested", "code", "expected"),
    [
        ("proceed", None, 3, 3),
        ("proceed", 2, 3, 2),
        ("proceed", 50, 3, 3),  # a bigger size is ignored
        ("reduce", None, 3, 1),  # half, rounded down
        ("reduce", 2, 3, 2),
        ("reduce", 9, 3, 1),  # an increase dressed as a reduction: half
        ("stand_aside", 3, 3, 0),
        ("proceed", 5, 0, 0),  # nothing the code refused comes back
    ],
)
def test_a_narrative_only_makes_the_size_smaller(
    stance: str, suggested: int | None, code: int, expected: int
):
    contracts, notes = apply_narrative(narrative(stance, suggested), code)

    assert contracts == expected
    assert (suggested is not None and suggested > code) == any("ignored" in n for n in notes)


def test_a_plan_inside_the_approved_risk_passes() -> None:
    assert check_order_plan(plan(scale_out=[ScaleOut(fraction=0.5, price=27300.0)]), LONG, 2) == []
    assert check_order_plan(plan(entry_type="market", entry_price=None), LONG, 2) == []


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"stop_price": 27250.0}, "risk per contract"),  # 34.75 points > the 20 approved: a wider stop
        ({"stop_price": 27290.0}, "wrong side"),  # a buy's stop above the entry
        ({"target_price": 27280.0}, "wrong side"),
        ({"stop_price": 27270.1}, "tick grid"),
        ({"entry_price": 27400.0, "stop_price": 27390.0, "target_price": 27420.0}, "outside the approved"),
        ({"entry_type": "market"}, "takes no entry_price"),
        ({"entry_price": None}, "needs entry_price"),
        ({"scale_out": [{"fraction": 0.7, "price": 27300.0}, {"fraction": 0.5, "price": 27310.0}]}, "sum"),
        ({"scale_out": [{"fraction": 0.5, "price": 27330.0}]}, "between the entry and the target"),
    ],
)
def test_a_plan_that_loosens_risk_or_breaks_the_grid_is_rejected(change: dict[str, Any], why: str) -> None:
    errors = check_order_plan(plan(**change), LONG, 2)

    assert any(why in e for e in errors), errors


def test_scale_outs_become_bracket_legs_that_add_up_to_the_approved_contracts() -> None:
    """3 contracts, ⅓ off at 27300, ⅒ off at 27310 (⌊0.3⌋ = 0: dropped): legs 2 @ target, 1 @ 27300."""
    p = plan(scale_out=[ScaleOut(fraction=1 / 3, price=27300.0), ScaleOut(fraction=0.1, price=27310.0)])

    legs, notes = plan_legs(p, 3)

    assert [(leg.contracts, leg.take_profit, leg.suffix) for leg in legs] == [
        (2, 27320.0, ""),
        (1, 27300.0, ".s1"),
    ]
    assert len(notes) == 1 and "dropped" in notes[0]


# ------------------------------------------------------------------------- the seed's parameters
@pytest.mark.parametrize(
    "portfolio",
    [
        [
            {"symbol": "NQ", "quantity": 2, "avg_price": 27000.0},
            {"symbol": "ES", "contracts": 1, "side": "short"},
        ],
        {"NQ": 2, "ES": -1},
        {"positions": {"NQ": {"quantity": 2, "avg_price": 27000.0}, "ES": {"quantity": -1}}},
        [{"symbol": "NQ=F", "qty": 2, "entry": 27000.0}, {"symbol": "ESM26", "position": -1}],
    ],
)
def test_every_accepted_portfolio_shape_reads_as_signed_contracts(portfolio: Any) -> None:
    positions, _ = parse_portfolio(portfolio)

    assert positions == {"NQ": 2, "ES": -1}


@pytest.mark.parametrize(
    "portfolio",
    ["NQ", [{"symbol": "XX", "quantity": 1}], [{"symbol": "NQ", "quantity": 1.5}], [{"symbol": "NQ"}]],
)
def test_a_portfolio_that_cannot_be_read_is_refused_with_what_to_send(portfolio: Any) -> None:
    with pytest.raises(InvalidArgumentError):
        parse_portfolio(portfolio)


def test_market_conditions_read_prices_and_daily_volatility() -> None:
    prices, vol = parse_market_conditions({"prices": {"NQ": 27000, "ES": 6000}, "volatility": 0.02})
    quote, none = parse_market_conditions({"symbol": "NQ", "price": 27284.75, "bar_time": "x"})

    assert prices == {"NQ": 27000.0, "ES": 6000.0} and vol == 0.02
    assert quote == {"NQ": 27284.75} and none is None
    with pytest.raises(InvalidArgumentError, match="daily fraction"):
        parse_market_conditions({"volatility": 18})


def test_volatility_var_is_z_sigma_exposure() -> None:
    """1 NQ at 20,000 = 400,000 USD; σ 1 % a day; z(95 %) = 1.644854 → 6,579.41 USD."""
    assert volatility_var({"NQ": 400_000.0}, 0.01, 0.95) == pytest.approx(6579.415, abs=0.01)


def test_limit_distances_measure_the_book_against_each_size_limit() -> None:
    """Long 3 NQ, short 2 ES on 100k: per symbol 3 of 4, total 5 of 10, margin 0.6 of 0.75."""
    limits = RiskLimits(max_contracts_per_symbol=4, max_total_contracts=10, max_notional_usd=None)

    rows = {d.limit: d for d in limit_distances({"NQ": 3, "ES": -2}, 60_000.0, 100_000.0, 1.0, limits)}

    assert set(rows) == {"max_contracts_per_symbol", "max_total_contracts", "max_margin_use_pct"}
    assert rows["max_contracts_per_symbol"] == LimitDistance(
        limit="max_contracts_per_symbol",
        value=3,
        limit_value=4,
        used_pct=75.0,
        room=1,
        unit="contracts",
        breached=False,
    )
    assert rows["max_total_contracts"].room == 5 and rows["max_margin_use_pct"].used_pct == pytest.approx(
        80.0
    )


def test_a_manual_trade_reads_the_seeds_fields_in_any_case() -> None:
    t = ManualTrade.model_validate({"action": "BUY", "quantity": 1, "price": 23000.0, "stop_loss": 22950.0})
    m = ManualTrade.model_validate({"action": "Sell", "quantity": 2, "order_type": "MARKET"})

    assert (t.action, t.kind, t.problems(None)) == ("buy", "limit", [])
    assert (m.action, m.kind) == ("sell", "market")
    wrong = ManualTrade.model_validate(
        {"action": "buy", "quantity": 1, "price": 23000.0, "stop_loss": 23010.0}
    )
    assert any("wrong side" in p for p in wrong.problems(None))


def test_the_model_router_leaves_the_rules_analyst_out() -> None:
    only_rules = LLMRouter.from_config(LLMConfig(providers=[RULES], health_interval_s=0))
    llm = ProviderConfig(name="local", kind="serve", base_url="http://127.0.0.1:9/v1", model="m", priority=0)
    both = LLMRouter.from_config(LLMConfig(providers=[llm, RULES], health_interval_s=0))

    assert model_router(only_rules, AgentConfig()) is None
    routed = model_router(both, AgentConfig())
    assert routed is not None and [s.name for s in routed.status()] == ["local"]
    assert routed.ledger is both.ledger


# ------------------------------------------------------------------- agents over a scripted server
@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data={"data_dir": str(tmp_path / "data")})


@pytest.fixture
def tools(settings: Settings, nq_5m: Any) -> Iterator[LocalTools]:
    """Every tool over an in-process paper broker at the sample's last bar (Globex open)."""
    import asyncio

    from nq_ray.runtime.broker import LocalBroker

    broker = LocalBroker(settings, feed=False, clock="bar")
    asyncio.run(broker.on_price("NQ", float(nq_5m["close"].iloc[-1]), nq_5m.index[-1].to_pydatetime()))
    try:
        yield LocalTools(build_registry(ToolContext(settings=settings, broker_factory=lambda s: broker)))
    finally:
        broker.close()


def llm_router(srv: ScriptedLLMServer, timeout_s: float = 2.0) -> LLMRouter:
    pc = ProviderConfig(
        name="local",
        kind="serve",
        base_url=srv.base_url,
        model="local-model",
        priority=0,
        timeout_s=timeout_s,
    )
    cfg = LLMConfig(providers=[pc, RULES], health_interval_s=0, backoff_s=0.01, deadline_s=10)
    return LLMRouter.from_config(cfg)


def long_report(price: float) -> AnalysisReport:
    return AnalysisReport(
        symbol="NQ",
        view=MarketView(bias="long", confidence=0.9, reasoning="test"),
        last_price=price,
        bar_time="2026-04-28T23:35:00-04:00",
        provider="rules",
        model="nq-rules-v1",
        is_llm=False,
        prompt="[]",
        raw_output="",
        inputs={},
    )


def answer(**kw: Any) -> str:
    return json.dumps({"narrative": "scripted", "concerns": [], **kw})


async def test_a_valid_narrative_that_reduces_is_applied_and_recorded(tools: LocalTools, nq_5m: Any) -> None:
    with ScriptedLLMServer(default_text=answer(stance="stand_aside", suggested_contracts=0)) as srv:
        agent = RiskAgent(tools, router=llm_router(srv), risk_pct=3.0)

        r = await agent.assess_trade(long_report(float(nq_5m["close"].iloc[-1])))

    assert r.code_contracts and r.code_contracts >= 1
    assert (r.approved, r.contracts) == (False, 0) and "risk model: stand_aside" in r.reasons[-1]
    assert r.thought is not None and r.thought.is_llm and r.thought.provider == "local"
    assert r.thought.template == "risk_assessment" and r.thought.template_version.startswith("1+")
    sent = srv.requests[0]["messages"]
    assert "Proposed trade" in sent[0]["content"] and json.loads(r.thought.prompt) == sent


async def test_a_narrative_asking_for_more_contracts_keeps_the_code_size(
    tools: LocalTools, nq_5m: Any
) -> None:
    with ScriptedLLMServer(default_text=answer(stance="proceed", suggested_contracts=40)) as srv:
        agent = RiskAgent(tools, router=llm_router(srv), risk_pct=3.0)

        r = await agent.assess_trade(long_report(float(nq_5m["close"].iloc[-1])))

    assert (
        r.approved
        and r.contracts == r.code_contracts
        and r.narrative
        and r.narrative.suggested_contracts == 40
    )
    assert r.thought and r.thought.is_llm and any("ignored" in n for n in r.thought.notes)


@pytest.mark.parametrize(
    ("step", "reason"),
    [(Step(text="I would buy, looks fine"), "no model answered"), (Step(delay_s=3.0), "no model answered")],
)
async def test_garbage_or_a_timeout_falls_back_to_the_rules_narrative(
    tools: LocalTools, nq_5m: Any, step: Step, reason: str
) -> None:
    with ScriptedLLMServer(default_text=step.text) as srv:
        srv.push(step, step)
        agent = RiskAgent(tools, router=llm_router(srv, timeout_s=0.5), risk_pct=3.0)

        r = await agent.assess_trade(long_report(float(nq_5m["close"].iloc[-1])))

    assert r.approved and r.contracts == r.code_contracts
    assert r.thought and not r.thought.is_llm and r.thought.fallback and reason in r.thought.fallback
    assert r.narrative and r.narrative.narrative.startswith("[rules]")


async def test_no_model_is_asked_once_the_budget_is_spent(tools: LocalTools, nq_5m: Any) -> None:
    usage = UsageBook()
    await usage.add("risk_agent", 10_000, 0.0)
    with ScriptedLLMServer(default_text=answer(stance="proceed")) as srv:
        agent = RiskAgent(
            tools,
            router=llm_router(srv),
            usage=usage,
            config={"budget": {"tokens_per_day": 5_000}},
            risk_pct=3.0,
        )

        r = await agent.assess_trade(long_report(float(nq_5m["close"].iloc[-1])))

    assert srv.requests == [] and r.thought and r.thought.fallback and r.thought.fallback.startswith("budget")


def approved(price: float, contracts: int = 2) -> RiskAssessment:
    entry = round(price * 4) / 4
    p = TradeProposal(
        symbol="NQ",
        side="buy",
        contracts=contracts,
        entry=entry,
        stop=entry - 20,
        target=entry + 40,
        rationale="t",
    )
    return RiskAssessment(symbol="NQ", approved=True, contracts=contracts, proposal=p)


def order_plan(**kw: Any) -> str:
    return json.dumps({"entry_type": "limit", "reasoning": "scripted", **kw})


async def test_a_valid_order_plan_is_sent_in_legs_through_the_gate(tools: LocalTools, nq_5m: Any) -> None:
    a = approved(float(nq_5m["close"].iloc[-1]))
    p = a.proposal
    assert p is not None
    text = order_plan(
        entry_price=p.entry - 2,
        stop_price=p.entry - 12,
        target_price=p.target,
        scale_out=[{"fraction": 0.5, "price": p.entry + 20}],
    )
    with ScriptedLLMServer(default_text=text) as srv:
        report = await ExecutionAgent(tools, router=llm_router(srv)).execute_trade(
            a, client_order_id="t-plan"
        )

    assert report.placed and report.thought and report.thought.is_llm and report.rejected_plan is None
    assert report.client_order_ids == ["t-plan", "t-plan.s1"]
    assert [(o["requested_quantity"], o["limit_price"]) for o in report.orders] == [(1, p.entry - 2)] * 2
    assert (
        report.thought.template == "execution_base"
        and "Trade idea" in srv.requests[0]["messages"][0]["content"]
    )


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"stop_price_offset": -40}, "risk per contract"),  # a stop twice as far as approved
        ({"stop_price_offset": +5}, "wrong side"),
        ({"stop_price_offset": -10.1}, "tick grid"),
    ],
)
async def test_a_plan_that_loosens_risk_is_rejected_and_the_rules_plan_sent(
    tools: LocalTools, nq_5m: Any, change: dict[str, float], why: str
) -> None:
    a = approved(float(nq_5m["close"].iloc[-1]))
    p = a.proposal
    assert p is not None
    text = order_plan(
        entry_price=p.entry, stop_price=p.entry + change["stop_price_offset"], target_price=p.target
    )
    with ScriptedLLMServer(default_text=text) as srv:
        report = await ExecutionAgent(tools, router=llm_router(srv)).execute_trade(a, client_order_id="t-bad")

    assert report.placed and report.rejected_plan is not None and report.thought
    assert not report.thought.is_llm and any(why in e for e in report.thought.rejected)
    assert report.plan and (report.plan.stop_price, report.plan.target_price) == (p.stop, p.target)
    assert report.orders[0]["requested_quantity"] == 2 and len(report.orders) == 1


async def test_garbage_order_plan_falls_back_to_the_deterministic_plan(tools: LocalTools, nq_5m: Any) -> None:
    a = approved(float(nq_5m["close"].iloc[-1]))
    with ScriptedLLMServer(default_text="market, now!") as srv:
        report = await ExecutionAgent(tools, router=llm_router(srv)).execute_trade(
            a, client_order_id="t-junk"
        )

    assert report.placed and report.thought and not report.thought.is_llm and report.rejected_plan is None
    assert report.thought.fallback and "no model answered" in report.thought.fallback
    assert report.plan and report.plan.entry_type == "limit" and len(srv.requests) == 2  # answer + one repair
    assert math.isclose(report.orders[0]["limit_price"], a.proposal.entry if a.proposal else 0)


async def test_a_book_valued_at_given_prices_and_volatility(tools: LocalTools) -> None:
    """1 NQ at 20,000 = 400,000 USD exposure; σ 1 % a day → normal 95 % VaR 1.644854 × 4,000 = 6,579.41."""
    r = await RiskAgent(tools).assess_portfolio({"NQ": 1}, {"prices": {"NQ": 20_000.0}, "volatility": 0.01})

    assert r.portfolio is not None and r.portfolio.exposure_usd == {"NQ": 400_000.0}
    assert r.portfolio.volatility_var_usd == pytest.approx(6579.415, abs=0.01)
    assert r.portfolio.unassessed == ["max_daily_loss_usd", "trailing_drawdown_usd", "max_orders_per_minute"]


async def test_a_book_the_model_says_to_flatten_is_not_approved(tools: LocalTools) -> None:
    with ScriptedLLMServer(default_text=answer(stance="stand_aside")) as srv:
        r = await RiskAgent(tools, router=llm_router(srv)).assess_portfolio({"NQ": 1})

    assert not r.approved and r.reasons and "stand aside" in r.reasons[-1]
    assert r.thought and r.thought.is_llm and "Open positions" in srv.requests[0]["messages"][0]["content"]


async def test_a_retry_whose_model_plans_differently_sends_nothing_new(tools: LocalTools, nq_5m: Any) -> None:
    a = approved(float(nq_5m["close"].iloc[-1]))
    p = a.proposal
    assert p is not None
    first, second = (
        order_plan(entry_price=p.entry - k, stop_price=p.stop, target_price=p.target) for k in (1, 2)
    )
    with ScriptedLLMServer(default_text=first) as srv:
        srv.push(Step(text=first), Step(text=first), Step(text=second))
        agent = ExecutionAgent(tools, router=llm_router(srv))
        sent, same, other = [await agent.execute_trade(a, client_order_id="t-retry") for _ in range(3)]

    assert sent.placed and same.placed and same.orders == sent.orders  # the same plan: the stored order
    assert not other.placed and other.orders == []
    assert other.refusal is not None and other.refusal.code == "duplicate_client_order_id"
