"""Approval mode: when it is on, a cycle's proposal waits for a person; ``approve`` sends it through the
execution agent exactly once (client order id ``desk-<decision_id>``), ``reject`` closes it, and proposals
older than the time-to-live expire. An MCP client's order queued in approval mode (a client that cannot
confirm by elicitation, ``nq_ray.tools.mcp_elicit``) is approved by sending that exact order through
``place_order`` under the ``client_order_id`` it was queued with (once, however often it is approved)."""

from __future__ import annotations

import asyncio
from typing import Any

from nq_ray.agents.desk import client_order_id_for
from nq_ray.agents.models import RiskAssessment
from nq_ray.agents.service.halts import DeskHaltedError
from nq_ray.agents.service.registry import AgentRegistry
from nq_ray.agents.service.state import DeskCore, check_limit
from nq_ray.errors import InvalidArgumentError, NotFoundError, NQRayError
from nq_ray.tools.mcp_elicit import is_mcp_approval, place_approved


class ApprovalClosedError(NQRayError):
    """An approval that is no longer pending (rejected or expired) cannot be approved or rejected."""

    code = "approval_closed"
    http_status = 409


class Approvals:
    """Approval mode and the approvals queue in the store."""

    def __init__(self, core: DeskCore, registry: AgentRegistry) -> None:
        self.core = core
        self.registry = registry
        self._lock = asyncio.Lock()

    async def set_mode(self, on: bool) -> None:
        if not isinstance(on, bool):
            raise InvalidArgumentError("on must be true or false")
        self.core.state["approval_mode"] = on
        await self.core.save()
        await self.core.emit("status", {"approval_mode": on})

    async def pending(self) -> list[dict[str, Any]]:
        await self._expire()
        return await self.core.store.approvals(status="pending", limit=500)

    async def approvals(self, limit: int = 50) -> list[dict[str, Any]]:
        check_limit(limit)
        await self._expire()
        return await self.core.store.approvals(limit=limit)

    async def _expire(self) -> None:
        n = await self.core.store.expire_approvals(self.core.clock())
        if n:
            await self.core.emit("approvals_expired", {"count": n})

    async def _approval(self, approval_id: int) -> dict[str, Any]:
        if not isinstance(approval_id, int) or isinstance(approval_id, bool):
            raise InvalidArgumentError("approval_id must be an integer", approval_id=approval_id)
        await self._expire()
        a = await self.core.store.approval(approval_id)
        if a is None:
            raise NotFoundError(
                f"no approval {approval_id}; see pending_approvals()", approval_id=approval_id
            )
        return a

    async def approve(self, approval_id: int, who: str = "api") -> dict[str, Any]:
        """Send a pending proposal through the execution agent (client order id ``desk-<decision_id>``).
        Idempotent: approving again returns the same execution and never sends twice."""
        core = self.core
        async with self._lock:
            a = await self._approval(approval_id)
            if a["status"] == "pending":
                if core.state.get("halted"):
                    raise DeskHaltedError(
                        f"the desk is halted ({core.state.get('halt_reason')}); no new entries",
                        approval_id=approval_id,
                    )
                await core.store.decide_approval(approval_id, "approved", who=who, at=core.clock())
                a = await self._approval(approval_id)
            if a["status"] != "approved":
                raise ApprovalClosedError(
                    f"approval {approval_id} is {a['status']}; it can no longer be approved",
                    approval_id=approval_id,
                    status=a["status"],
                )
            if a["execution"] is not None:
                return {"approval": a, "already": True}
            if is_mcp_approval(a):  # an MCP client's order (no elicitation): that exact order, once
                assert core.tools is not None
                record = await place_approved(core.tools, a, who)
                placed = record["placed"]
                await core.store.set_approval_execution(approval_id, record)
            else:
                desk = self.registry.desk()
                assessment = RiskAssessment.model_validate(a["assessment"])
                execution = await desk.execution.execute_trade(
                    assessment, client_order_id=client_order_id_for(a["decision_id"])
                )
                placed = execution.placed
                exec_id = await desk.record_execution(a["decision_id"], a["symbol"], execution)
                await core.store.set_approval_execution(
                    approval_id, {"execution_id": exec_id, **execution.model_dump(mode="json")}
                )
            a = await self._approval(approval_id)
        await core.emit("approved", {"approval_id": approval_id, "who": who, "placed": placed})
        return {"approval": a, "already": False}

    async def reject(self, approval_id: int, who: str = "api", reason: str = "") -> dict[str, Any]:
        core = self.core
        async with self._lock:
            a = await self._approval(approval_id)
            if a["status"] != "pending":
                raise ApprovalClosedError(
                    f"approval {approval_id} is {a['status']}; only a pending one can be rejected",
                    approval_id=approval_id,
                    status=a["status"],
                )
            await core.store.decide_approval(
                approval_id, "rejected", who=who, at=core.clock(), reason=str(reason)[:1000]
            )
            a = await self._approval(approval_id)
        await core.emit("rejected", {"approval_id": approval_id, "who": who})
        return {"approval": a}
