"""The seed's risk and execution agent snippets (``../shared/seed``, "Agent Framework"), run as written on
the bundled sample data through an in-process paper broker (clock at the sample's last bar, 27,284.75),
and the same snippets over REST (``POST /api/agents/{id}/tasks``, the app in process)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from nq_ray.agents.agents import AnalysisAgent, ExecutionAgent, LocalTools, RiskAgent
from nq_ray.agents.models import ExecutionReport, RiskAssessment
from nq_ray.config import Settings
from nq_ray.domain.contracts import get_contract
from nq_ray.errors import InvalidArgumentError
from nq_ray.llm.config import LLMConfig, ProviderConfig
from nq_ray.llm.router import LLMRouter
from nq_ray.tools.context import ToolContext
from nq_ray.tools.registry import build_registry

LAST = 27284.75  # the sample's last 5-minute close (2026-04-28 23:35 New York)


def desk(tmp_path: Path, nq_5m: Any, **risk: Any) -> tuple[LocalTools, Any]:
    from nq_ray.runtime.broker import LocalBroker

    settings = Settings(data={"data_dir": str(tmp_path / "data")}, **({"risk": risk} if risk else {}))
    broker = LocalBroker(settings, feed=False, clock="bar")
    broker.svc.on_price(
        "NQ", float(nq_5m["close"].iloc[-1]), nq_5m.index[-1].to_pydatetime()
    )  # sync: any loop
    return LocalTools(build_registry(ToolContext(settings=settings, broker_factory=lambda s: broker))), broker


@pytest.fixture
def parts(tmp_path: Path, nq_5m: Any) -> Iterator[tuple[LocalTools, Any]]:
    tools, broker = desk(tmp_path, nq_5m)
    yield tools, broker
    broker.close()


async def test_seed_assess_risk_of_a_given_portfolio_and_market_conditions(
    parts: tuple[LocalTools, Any],
) -> None:
    """Long 2 NQ valued at the quote's 27,284.75: exposure 2 × 27,284.75 × 20 = 1,091,390 USD, 2 of 4
    contracts per symbol used, notional 1,091,390 of 1,500,000 (72.76 %)."""
    tools, _ = parts
    risk_agent = RiskAgent(tools)
    current_positions = [{"symbol": "NQ", "quantity": 2, "avg_price": 27250.0}]
    market_data = await tools.call("get_nq_price", {"symbol": "NQ"}, who="test")

    result = await risk_agent.execute_task(
        {
            "type": "assess_risk",
            "parameters": {"portfolio": current_positions, "market_conditions": market_data},
        }
    )

    r = RiskAssessment.model_validate(result)
    book = r.portfolio
    assert book is not None and book.positions == {"NQ": 2} and book.prices_from == "market_conditions"
    assert book.exposure_usd == {"NQ": pytest.approx(1_091_390.0)} and not book.from_broker
    assert book.initial_margin_usd == pytest.approx(2 * get_contract("NQ").initial_margin_usd)
    rows = {d.limit: d for d in book.distances}
    assert rows["max_contracts_per_symbol"].room == 2 and rows["max_notional_usd"].used_pct == pytest.approx(
        72.7593, abs=1e-3
    )
    assert book.var is not None and book.var["var_usd"] > 0 and book.avg_prices == {"NQ": 27250.0}
    assert r.approved and r.narrative is not None and r.thought and r.thought.template == "risk_assessment"
    assert not r.thought.is_llm and r.thought.fallback  # no LLM in this chain: the rules narrative, said so


async def test_seed_assess_risk_without_parameters_reads_the_live_book(
    parts: tuple[LocalTools, Any], nq_5m: Any
) -> None:
    tools, broker = parts
    execution_agent, risk_agent = ExecutionAgent(tools), RiskAgent(tools)
    await execution_agent.execute_task(
        {"type": "place_trade", "parameters": {"action": "buy", "quantity": 1, "order_type": "market"}}
    )
    await broker.on_price("NQ", LAST + 1, nq_5m.index[-1].to_pydatetime() + timedelta(minutes=5))  # fills

    result = await risk_agent.execute_task({"type": "assess_risk", "parameters": {}})

    book = RiskAssessment.model_validate(result).portfolio
    assert book is not None and book.from_broker and book.positions == {"NQ": 1}


async def test_seed_place_trade_sends_a_bracketed_limit_through_the_gate(
    parts: tuple[LocalTools, Any],
) -> None:
    tools, _ = parts
    execution_agent = ExecutionAgent(tools)

    result = await execution_agent.execute_task(
        {
            "type": "place_trade",
            "parameters": {
                "action": "BUY",
                "quantity": 1,
                "price": 23000.0,
                "stop_loss": 22950.0,
                "take_profit": 23100.0,
            },
        }
    )

    r = ExecutionReport.model_validate(result)
    order = r.orders[0]
    assert r.placed and r.refusal is None and order["status"] in ("new", "working", "accepted")
    assert (order["side"], order["order_type"], order["limit_price"], order["requested_quantity"]) == (
        "buy",
        "limit",
        23000.0,
        1,
    )
    assert order["bracket"]["stop_loss_price"] == 22950.0 and order["bracket"]["take_profit_price"] == 23100.0


async def test_place_trade_is_idempotent_by_client_order_id(parts: tuple[LocalTools, Any]) -> None:
    tools, _ = parts
    task = {
        "type": "place_trade",
        "parameters": {"action": "sell", "quantity": 1, "price": 27300.0, "client_order_id": "seed-1"},
    }

    first, again = [
        ExecutionReport.model_validate(await ExecutionAgent(tools).execute_task(task)) for _ in range(2)
    ]

    assert first.placed and again.placed and first.client_order_ids == again.client_order_ids == ["seed-1"]
    assert first.orders[0]["created_at"] == again.orders[0]["created_at"]


@pytest.mark.parametrize(
    ("params", "why"),
    [
        ({"action": "HOLD", "quantity": 1}, "action"),
        ({"action": "BUY", "quantity": 0}, "quantity"),
        ({"action": "BUY", "quantity": 1, "price": 23000.1}, "tick grid"),
        ({"action": "BUY", "quantity": 1, "price": 23000.0, "stop_loss": 23050.0}, "wrong side"),
        ({"action": "SELL", "quantity": 1, "stop_loss": 27000.0}, "wrong side"),  # market: vs the last price
        ({"action": "BUY", "quantity": 1, "order_type": "limit"}, "needs price"),
        ({"action": "BUY", "quantity": 1, "venue": "x"}, "venue"),
    ],
)
async def test_a_bad_manual_order_is_refused_before_the_broker(
    parts: tuple[LocalTools, Any], params: dict[str, Any], why: str
) -> None:
    tools, broker = parts

    with pytest.raises(InvalidArgumentError, match=why):
        await ExecutionAgent(tools).execute_task({"type": "place_trade", "parameters": params})

    assert await broker.orders() == []


async def test_a_gate_refusal_is_a_structured_answer(tmp_path: Path, nq_5m: Any) -> None:
    tools, broker = desk(tmp_path, nq_5m, limits={"max_contracts_per_symbol": 0})
    try:
        result = await ExecutionAgent(tools).execute_task(
            {"type": "place_trade", "parameters": {"action": "BUY", "quantity": 1, "price": 27280.0}}
        )
    finally:
        broker.close()

    r = ExecutionReport.model_validate(result)
    assert not r.placed and r.refusal is not None and r.refusal.code == "risk_denied"
    assert [x["code"] for x in r.refusal.reasons] == ["max_contracts_per_symbol"]


async def test_seed_multi_agent_workflow(parts: tuple[LocalTools, Any]) -> None:
    """The seed's "Agent Communication": analysis → risk → execution (rules analyst, sample data)."""
    tools, _ = parts
    router = LLMRouter.from_config(
        LLMConfig(providers=[ProviderConfig(name="rules", kind="rules", model="r")], health_interval_s=0)
    )
    analysis_agent, risk_agent, execution_agent = (
        AnalysisAgent(tools, router),
        RiskAgent(tools),
        ExecutionAgent(tools),
    )

    analysis_result = await analysis_agent.analyze_market()
    risk_assessment = await risk_agent.assess_trade(analysis_result)
    execution_result = await execution_agent.execute_trade(risk_assessment)

    p = risk_assessment.proposal  # the rules analyst is long at the last bar; margin allows 2 contracts
    assert analysis_result.view.bias == "long" and risk_assessment.approved and p is not None
    assert (risk_assessment.code_contracts, risk_assessment.contracts) == (2, 2)
    assert execution_result.placed and execution_result.plan and execution_result.thought
    assert (execution_result.plan.stop_price, execution_result.plan.target_price) == (p.stop, p.target)
    assert execution_result.orders[0]["requested_quantity"] == 2


# ---------------------------------------------------------------- the same snippets over REST
@pytest.fixture
def client(tmp_path: Path) -> Iterator[Any]:
    """The app in process (no Ray) on the replay clock of the bundled bars, as ``nq-ray up`` runs it."""
    from fastapi.testclient import TestClient

    from nq_ray.runtime.replay import prepare_replay
    from nq_ray.serve.app import build_app

    rules = {
        "providers": [{"name": "rules", "kind": "rules", "model": "nq-rules-v1"}],
        "health_interval_s": 0,
    }
    s = Settings(
        data={"data_dir": str(tmp_path / "data")},
        llm=rules,
        replay={"clock": "replay", "start": "2026-04-20T09:30", "speed": 1, "symbols": ["NQ"]},
    )
    prepare_replay(s)
    with TestClient(build_app(s, use_actors=False), base_url="http://127.0.0.1") as c:
        yield c


def test_seed_assess_risk_and_place_trade_over_rest(client: Any) -> None:
    market_data = client.post("/api/tools/get_nq_price", json={"symbol": "NQ"}).json()
    current_positions = [{"symbol": "NQ", "quantity": 1, "avg_price": 27000.0}]
    risk = client.post(
        "/api/agents/risk_agent/tasks",
        json={
            "type": "assess_risk",
            "parameters": {"portfolio": current_positions, "market_conditions": market_data},
        },
    )
    trade = client.post(
        "/api/agents/execution_agent/tasks",
        json={
            "type": "place_trade",
            "parameters": {
                "action": "BUY",
                "quantity": 1,
                "price": 23000.0,
                "stop_loss": 22950.0,
                "take_profit": 23100.0,
            },
        },
    )
    wrong = client.post(
        "/api/agents/execution_agent/tasks",
        json={
            "type": "place_trade",
            "parameters": {"action": "BUY", "quantity": 1, "price": 23000.0, "stop_loss": 23050.0},
        },
    )

    assert risk.status_code == 200, risk.text
    book = risk.json()["result"]["portfolio"]
    assert book["positions"] == {"NQ": 1} and book["exposure_usd"]["NQ"] == pytest.approx(
        market_data["price"] * 20
    )
    assert trade.status_code == 200, trade.text
    placed = trade.json()["result"]
    assert placed["placed"] and placed["orders"][0]["limit_price"] == 23000.0
    assert wrong.status_code == 422 and wrong.headers["content-type"].startswith("application/problem+json")
