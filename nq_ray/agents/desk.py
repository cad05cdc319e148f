"""``TradingDesk.run_once``: analysis → risk → execution, with every decision in the store first.

The decision row (``agent_decisions``, agent ``trading_desk``) is written BEFORE any order is sent: time,
symbol, data window and its sha256, indicator values, prompt, provider/model and sampling parameters, raw
answer, parsed view, proposal and risk verdict. The orders that resulted are then written as a second row
(agent ``execution_agent``, action ``orders``) pointing at the first by ``decision_id``; the order's
``client_order_id`` (``desk-<decision_id>``) links them the other way and makes a retried order
idempotent at the broker.

Two gates sit between the verdict and the broker: a halt (kill switch, circuit breaker, every LLM down)
refuses new entries — the decision is still recorded, with the reason — and approval mode turns an
approved proposal into a pending approval (``desk_approvals``) that a human approves or rejects.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from nq_ray.agents.models import AnalysisReport, ExecutionReport, RiskAssessment
from nq_ray.store.repository import Repository

log = logging.getLogger(__name__)

HaltCheck = Callable[[AnalysisReport, RiskAssessment], Awaitable[str | None]]


def _utc_now() -> datetime:
    return datetime.now(UTC)


class AnalysisLike(Protocol):
    agent_id: str

    async def analyze_market(
        self, symbol: str = "NQ", analysis_depth: str = "standard"
    ) -> AnalysisReport: ...


class RiskLike(Protocol):
    agent_id: str

    async def assess_trade(self, analysis: AnalysisReport | dict[str, Any]) -> RiskAssessment: ...


class ExecutionLike(Protocol):
    agent_id: str

    async def execute_trade(
        self, assessment: RiskAssessment | dict[str, Any], client_order_id: str | None = None
    ) -> ExecutionReport: ...


def client_order_id_for(decision_id: int) -> str:
    return f"desk-{decision_id}"


class TradingDesk:
    """The three agents and the store; ``run_once`` is one full decision cycle."""

    agent_id = "trading_desk"

    def __init__(
        self,
        analysis: Any,
        risk: Any,
        execution: Any,
        repository: Repository,
        *,
        clock: Callable[[], datetime] = _utc_now,
        store: Any = None,
    ) -> None:
        self.analysis = analysis
        self.risk = risk
        self.execution = execution
        self.repository = repository
        self.clock = clock
        self.store = store  # a DeskStore, needed for approval mode

    async def run_once(
        self,
        symbol: str = "NQ",
        *,
        halted: str | None = None,
        halt_check: HaltCheck | None = None,
        approval_mode: bool = False,
        approval_ttl_s: float = 300.0,
    ) -> dict[str, Any]:
        """One cycle; returns the ids of the rows written and what each agent answered. ``halted`` (or
        what ``halt_check`` finds) refuses a new entry; ``approval_mode`` parks it as a pending approval."""
        report = await self.analysis.analyze_market(symbol)
        assessment = await self.risk.assess_trade(report)
        auto_halt = await halt_check(report, assessment) if halt_check is not None else None
        halt = halted or auto_halt
        approved = bool(assessment.approved and assessment.proposal)
        action = assessment.proposal.side if approved and assessment.proposal else "none"
        wants_approval = approved and approval_mode and halt is None
        decision = {
            "view": report.view.model_dump(mode="json"),
            "provider": report.provider,
            "model": report.model,
            "params": report.params,
            "is_llm": report.is_llm,
            "fallback": report.fallback,
            "committee": report.committee.model_dump(mode="json") if report.committee else None,
            "template": report.template,
            "template_version": report.template_version,
            "last_price": report.last_price,
            "bar_time": report.bar_time,
            "risk": assessment.model_dump(mode="json"),
            "halted": halt,
            "auto_halt": auto_halt,
            "approval": wants_approval,
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
        remember = getattr(self.analysis, "remember_decision", None)
        if remember is not None:
            try:
                await remember(decision_id, report)
            except Exception as exc:  # memory is advice: never let it block the recorded decision
                log.warning("desk: could not store the memory of decision %s: %s", decision_id, exc)
        out: dict[str, Any] = {
            "decision_id": decision_id,
            "execution_id": None,
            "symbol": symbol,
            "action": action,
            "halted": halt,
            "auto_halt": auto_halt,
            "analysis": report.model_dump(mode="json", exclude={"prompt", "raw_output", "inputs"}),
            "risk": assessment.model_dump(mode="json"),
            "execution": None,
            "approval": None,
        }
        if wants_approval:
            if self.store is None:
                raise RuntimeError("approval mode needs the desk store")
            now = self.clock()
            out["approval"] = await self.store.add_approval(
                decision_id=decision_id,
                symbol=symbol,
                proposal=assessment.proposal.model_dump(mode="json") if assessment.proposal else None,
                assessment=assessment.model_dump(mode="json"),
                created_at=now,
                expires_at=now + timedelta(seconds=approval_ttl_s),
            )
            return out
        if halt is not None and approved:
            execution = ExecutionReport(placed=False, note=f"desk halted, no new entries: {halt}")
        else:
            execution = await self.execution.execute_trade(
                assessment, client_order_id=client_order_id_for(decision_id)
            )
        out["execution_id"] = await self.record_execution(decision_id, symbol, execution)
        out["execution"] = execution.model_dump(mode="json")
        return out

    async def record_execution(self, decision_id: int, symbol: str, execution: ExecutionReport) -> int:
        return await self.repository.record_decision(
            at=self.clock(),
            agent=self.execution.agent_id,
            symbol=symbol,
            action="orders",
            decision={"decision_id": decision_id, **execution.model_dump(mode="json")},
        )
