"""``TradingDesk.run_once``: analysis → risk → execution, with every decision in the store first.

The decision row (``agent_decisions``, agent ``trading_desk``) is written BEFORE any order is sent: time,
symbol, data window and its sha256, indicator values, prompt, provider/model, raw answer, parsed view,
proposal and risk verdict. The orders that resulted are then written as a second row (agent
``execution_agent``, action ``orders``) pointing at the first by ``decision_id``; the order's
``client_order_id`` (``desk-<decision_id>``) links them the other way and makes a retried order
idempotent at the broker.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from nq_ray.agents.agents import AnalysisAgent, ExecutionAgent, RiskAgent
from nq_ray.store.repository import Repository


def _utc_now() -> datetime:
    return datetime.now(UTC)


class TradingDesk:
    """The three agents and the store; ``run_once`` is one full decision cycle."""

    agent_id = "trading_desk"

    def __init__(
        self,
        analysis: AnalysisAgent,
        risk: RiskAgent,
        execution: ExecutionAgent,
        repository: Repository,
        *,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        self.analysis = analysis
        self.risk = risk
        self.execution = execution
        self.repository = repository
        self.clock = clock

    async def run_once(self, symbol: str = "NQ") -> dict[str, Any]:
        """One cycle; returns the ids of the rows written and what each agent answered."""
        report = await self.analysis.analyze_market(symbol)
        assessment = await self.risk.assess_trade(report)
        action = assessment.proposal.side if assessment.approved and assessment.proposal else "none"
        decision = {
            "view": report.view.model_dump(mode="json"),
            "provider": report.provider,
            "model": report.model,
            "is_llm": report.is_llm,
            "fallback": report.fallback,
            "last_price": report.last_price,
            "bar_time": report.bar_time,
            "risk": assessment.model_dump(mode="json"),
        }
        decision_id = await self.repository.record_decision(
            at=self.clock(),
            agent=self.agent_id,
            symbol=symbol,
            action=action,
            inputs=report.inputs,
            prompt=report.prompt,
            model=f"{report.provider}/{report.model}",
            raw_output=report.raw_output,
            decision=decision,
        )
        client_order_id = f"desk-{decision_id}"
        execution = await self.execution.execute_trade(assessment, client_order_id=client_order_id)
        execution_id = await self.repository.record_decision(
            at=self.clock(),
            agent=self.execution.agent_id,
            symbol=symbol,
            action="orders",
            decision={"decision_id": decision_id, **execution.model_dump(mode="json")},
        )
        return {
            "decision_id": decision_id,
            "execution_id": execution_id,
            "symbol": symbol,
            "action": action,
            "analysis": report.model_dump(mode="json", exclude={"prompt", "raw_output", "inputs"}),
            "risk": assessment.model_dump(mode="json"),
            "execution": execution.model_dump(mode="json"),
        }
