"""Queries over the desk's decision log: the recent decisions, and one decision in full with the
executions, broker orders and approval that followed it."""

from __future__ import annotations

from typing import Any

from nq_ray.agents.desk import client_order_id_for
from nq_ray.agents.service.registry import DEFAULT_AGENTS
from nq_ray.agents.service.state import DeskCore, check_limit
from nq_ray.errors import InvalidArgumentError, NotFoundError


class DecisionLog:
    """Read-only view of the decisions the desk (``agent_id``) recorded."""

    def __init__(self, core: DeskCore, agent_id: str) -> None:
        self.core = core
        self.agent_id = agent_id

    async def decisions(self, limit: int = 50, symbol: str | None = None) -> list[dict[str, Any]]:
        check_limit(limit)
        return await self.core.store.decisions(agent=self.agent_id, limit=limit, symbol=symbol)

    async def decision(self, decision_id: int) -> dict[str, Any]:
        """The full record: inputs, prompt, provider/model/params, raw answer, parsed result, risk
        verdict, the execution rows and broker orders that followed, and the approval if any."""
        store = self.core.store
        if not isinstance(decision_id, int) or isinstance(decision_id, bool):
            raise InvalidArgumentError("decision_id must be an integer")
        rec = await store.decision(decision_id)
        if rec is None:
            raise NotFoundError(f"no decision {decision_id}", decision_id=decision_id)
        d = rec.get("decision") or {}
        assert self.core.repo is not None
        order = await self.core.repo.get_order(client_order_id_for(decision_id))
        return {
            **rec,
            "params": d.get("params"),
            "parsed": d.get("view"),
            "risk": d.get("risk"),
            "committee": d.get("committee"),
            "executions": await store.executions_for(decision_id, agent=DEFAULT_AGENTS["execution"]),
            "orders": [order.model_dump(mode="json")] if order is not None else [],
            "approval": await store.approval_for_decision(decision_id),
        }
