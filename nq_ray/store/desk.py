"""Store helpers of the trading desk: durable desk state, agent configurations, approvals, per-agent daily
LLM usage, and read access to the decision log. Each method is one transaction over ``Repository``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, update

from nq_ray.store.models import (
    AgentConfigRow,
    AgentDecisionRow,
    AgentUsageRow,
    DeskApprovalRow,
    DeskStateRow,
    MemoryRow,
)
from nq_ray.store.repository import Repository

APPROVAL_STATUSES = ("pending", "approved", "rejected", "expired")


def _iso(t: datetime | None) -> str | None:
    return t.isoformat() if t is not None else None


def approval_dict(r: DeskApprovalRow) -> dict[str, Any]:
    return {
        "id": r.id,
        "decision_id": r.decision_id,
        "symbol": r.symbol,
        "proposal": r.proposal,
        "assessment": r.assessment,
        "created_at": _iso(r.created_at),
        "expires_at": _iso(r.expires_at),
        "status": r.status,
        "decided_at": _iso(r.decided_at),
        "decided_by": r.decided_by,
        "reason": r.reason,
        "execution": r.execution,
    }


def decision_dict(r: AgentDecisionRow, *, full: bool) -> dict[str, Any]:
    d = r.decision or {}
    out: dict[str, Any] = {
        "id": r.id,
        "at": _iso(r.at),
        "agent": r.agent,
        "symbol": r.symbol,
        "action": r.action,
        "model": r.model,
        "provider": d.get("provider"),
        "is_llm": d.get("is_llm"),
        "fallback": d.get("fallback"),
        "bias": (d.get("view") or {}).get("bias"),
        "confidence": (d.get("view") or {}).get("confidence"),
        "approved": (d.get("risk") or {}).get("approved"),
        "halted": d.get("halted"),
    }
    if full:
        out.update(
            {"inputs": r.inputs, "prompt": r.prompt, "raw_output": r.raw_output, "decision": r.decision}
        )
    return out


class DeskStore:
    """The desk's tables (``desk_state``, ``agent_configs``, ``desk_approvals``, ``agent_usage``)."""

    def __init__(self, repo: Repository) -> None:
        self.repo = repo

    # ---- desk state ------------------------------------------------------------------------------
    async def get_state(self, key: str) -> dict[str, Any] | None:
        async with self.repo.sessions() as s:
            row = await s.get(DeskStateRow, key)
            return dict(row.value) if row is not None else None

    async def set_state(self, key: str, value: dict[str, Any], *, at: datetime) -> None:
        async with self.repo.sessions() as s, s.begin():
            row = await s.get(DeskStateRow, key)
            if row is None:
                s.add(DeskStateRow(key=key, value=value, updated_at=at))
            else:
                row.value, row.updated_at = value, at

    # ---- agent configurations --------------------------------------------------------------------
    async def put_agent(
        self, agent_id: str, agent_type: str, config: dict[str, Any], *, at: datetime
    ) -> None:
        async with self.repo.sessions() as s, s.begin():
            row = await s.get(AgentConfigRow, agent_id)
            if row is None:
                s.add(AgentConfigRow(agent_id=agent_id, agent_type=agent_type, config=config, created_at=at))
            else:
                row.agent_type, row.config = agent_type, config

    async def agents(self) -> list[dict[str, Any]]:
        async with self.repo.sessions() as s:
            rows = await s.scalars(select(AgentConfigRow).order_by(AgentConfigRow.created_at))
            return [
                {
                    "agent_id": r.agent_id,
                    "agent_type": r.agent_type,
                    "config": r.config,
                    "created_at": _iso(r.created_at),
                }
                for r in rows
            ]

    async def delete_agent(self, agent_id: str) -> bool:
        async with self.repo.sessions() as s, s.begin():
            res = await s.execute(delete(AgentConfigRow).where(AgentConfigRow.agent_id == agent_id))
            return bool(res.rowcount)  # type: ignore[attr-defined]

    # ---- memory ----------------------------------------------------------------------------------
    async def memories_since(
        self, agent: str, since: datetime, *, kind: str | None = None, limit: int = 200
    ) -> list[dict[str, Any]]:
        q = select(MemoryRow).where(MemoryRow.agent == agent, MemoryRow.at >= since)
        if kind is not None:
            q = q.where(MemoryRow.kind == kind)
        async with self.repo.sessions() as s:
            rows = await s.scalars(q.order_by(MemoryRow.id.desc()).limit(limit))
            return [
                {"id": r.id, "at": _iso(r.at), "kind": r.kind, "content": r.content, "meta": r.meta}
                for r in rows
            ]

    # ---- approvals -------------------------------------------------------------------------------
    async def add_approval(
        self,
        *,
        decision_id: int,
        symbol: str,
        proposal: dict[str, Any] | None,
        assessment: dict[str, Any],
        created_at: datetime,
        expires_at: datetime,
    ) -> dict[str, Any]:
        async with self.repo.sessions() as s, s.begin():
            row = DeskApprovalRow(
                decision_id=decision_id,
                symbol=symbol,
                proposal=proposal,
                assessment=assessment,
                created_at=created_at,
                expires_at=expires_at,
                status="pending",
            )
            s.add(row)
            await s.flush()
            return approval_dict(row)

    async def approval(self, approval_id: int) -> dict[str, Any] | None:
        async with self.repo.sessions() as s:
            row = await s.get(DeskApprovalRow, approval_id)
            return approval_dict(row) if row is not None else None

    async def approval_for_decision(self, decision_id: int) -> dict[str, Any] | None:
        async with self.repo.sessions() as s:
            row = await s.scalar(select(DeskApprovalRow).where(DeskApprovalRow.decision_id == decision_id))
            return approval_dict(row) if row is not None else None

    async def expire_approvals(self, now: datetime) -> int:
        """Mark every pending approval whose time is up as expired; how many were."""
        async with self.repo.sessions() as s, s.begin():
            res = await s.execute(
                update(DeskApprovalRow)
                .where(DeskApprovalRow.status == "pending", DeskApprovalRow.expires_at <= now)
                .values(status="expired", decided_at=now, decided_by="desk", reason="approval window passed")
            )
            return int(res.rowcount or 0)  # type: ignore[attr-defined]

    async def approvals(self, *, status: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        q = select(DeskApprovalRow)
        if status is not None:
            q = q.where(DeskApprovalRow.status == status)
        async with self.repo.sessions() as s:
            rows = await s.scalars(q.order_by(DeskApprovalRow.id.desc()).limit(limit))
            return [approval_dict(r) for r in rows]

    async def decide_approval(
        self, approval_id: int, status: str, *, who: str, at: datetime, reason: str | None = None
    ) -> bool:
        """pending → ``status``, atomically (only one caller wins; the others see ``False``)."""
        async with self.repo.sessions() as s, s.begin():
            res = await s.execute(
                update(DeskApprovalRow)
                .where(
                    DeskApprovalRow.id == approval_id,
                    DeskApprovalRow.status == "pending",
                    DeskApprovalRow.expires_at > at,
                )
                .values(status=status, decided_at=at, decided_by=who, reason=reason)
            )
            return bool(res.rowcount)  # type: ignore[attr-defined]

    async def set_approval_execution(self, approval_id: int, execution: dict[str, Any]) -> None:
        async with self.repo.sessions() as s, s.begin():
            await s.execute(
                update(DeskApprovalRow).where(DeskApprovalRow.id == approval_id).values(execution=execution)
            )

    # ---- per-agent daily usage -------------------------------------------------------------------
    async def usage(self, agent_id: str, day: str) -> tuple[int, float]:
        async with self.repo.sessions() as s:
            row = await s.get(AgentUsageRow, (agent_id, day))
            return (row.tokens, row.usd) if row is not None else (0, 0.0)

    async def add_usage(self, agent_id: str, day: str, tokens: int, usd: float) -> None:
        async with self.repo.sessions() as s, s.begin():
            row = await s.get(AgentUsageRow, (agent_id, day), with_for_update=True)
            if row is None:
                s.add(AgentUsageRow(agent_id=agent_id, day=day, tokens=tokens, usd=usd))
            else:
                row.tokens, row.usd = row.tokens + tokens, row.usd + usd

    # ---- the decision log ------------------------------------------------------------------------
    async def decisions(
        self, *, agent: str, limit: int = 50, symbol: str | None = None
    ) -> list[dict[str, Any]]:
        q = select(AgentDecisionRow).where(AgentDecisionRow.agent == agent)
        if symbol is not None:
            q = q.where(AgentDecisionRow.symbol == symbol)
        async with self.repo.sessions() as s:
            rows = await s.scalars(q.order_by(AgentDecisionRow.id.desc()).limit(limit))
            return [decision_dict(r, full=False) for r in rows]

    async def decision(self, decision_id: int) -> dict[str, Any] | None:
        async with self.repo.sessions() as s:
            row = await s.get(AgentDecisionRow, decision_id)
            return decision_dict(row, full=True) if row is not None else None

    async def executions_for(self, decision_id: int, *, agent: str, scan: int = 200) -> list[dict[str, Any]]:
        """The execution rows (``action='orders'``) written for ``decision_id`` (they follow it in id)."""
        q = (
            select(AgentDecisionRow)
            .where(
                AgentDecisionRow.id > decision_id,
                AgentDecisionRow.agent == agent,
                AgentDecisionRow.action == "orders",
            )
            .order_by(AgentDecisionRow.id)
            .limit(scan)
        )
        async with self.repo.sessions() as s:
            rows = await s.scalars(q)
            return [
                {"id": r.id, "at": _iso(r.at), **(r.decision or {})}
                for r in rows
                if (r.decision or {}).get("decision_id") == decision_id
            ]

    async def unexecuted_decisions(self, *, agent: str, exec_agent: str, since: datetime) -> list[int]:
        """Approved desk decisions since ``since`` with no execution row (a cycle cut short)."""
        async with self.repo.sessions() as s:
            rows = list(
                await s.scalars(
                    select(AgentDecisionRow)
                    .where(AgentDecisionRow.at >= since)
                    .where(AgentDecisionRow.agent.in_([agent, exec_agent]))
                    .order_by(AgentDecisionRow.id)
                )
            )
        done = {
            (r.decision or {}).get("decision_id")
            for r in rows
            if r.agent == exec_agent and r.action == "orders"
        }
        return [
            r.id
            for r in rows
            if r.agent == agent
            and r.action in ("buy", "sell")
            and not (r.decision or {}).get("halted")
            and not (r.decision or {}).get("approval")
            and r.id not in done
        ]
