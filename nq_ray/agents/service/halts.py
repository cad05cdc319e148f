"""Halts and the kill switch: the risk-engine codes and the "every LLM is down" condition that halt the
desk automatically, the global kill switch (halt, close approvals, cancel and flatten), and ``resume``.
A halt is persisted (``desk_state``): a restarted desk is still halted, and the paper broker reads the same
row (``nq_ray.store.live.read_halt``) at start and before each order decision, so while halted its gate
refuses every order that opens or adds to a position (code ``halted``) whoever sends it — the desk, the
HTTP API or an MCP client — and still takes exits, so the kill switch's flatten goes through."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from nq_ray.agents.models import AnalysisReport, RiskAssessment
from nq_ray.agents.service.state import DeskCore
from nq_ray.errors import InvalidArgumentError, NQRayError

if TYPE_CHECKING:
    from nq_ray.agents.service.registry import AgentRegistry

# risk-verdict codes that halt the desk for new entries (the engine's circuit breaker and loss limits)
HALT_CODES = frozenset({"circuit_breaker", "daily_loss_limit", "trailing_drawdown"})


class DeskHaltedError(NQRayError):
    """The desk is halted (kill switch or automatic halt): no new entries until ``resume``."""

    code = "desk_halted"
    http_status = 409


def llms_down(status: list[dict[str, Any]]) -> str | None:
    """Why every configured LLM provider is down, or ``None`` (also when the chain is rules only)."""
    llms = [p for p in status if p.get("is_llm") and p.get("configured")]
    if not llms:
        return None
    down = [p for p in llms if p.get("healthy") is False or p.get("breaker") != "closed"]
    if len(down) < len(llms):
        return None
    detail = ", ".join(
        f"{p['name']}: {p.get('last_error') or p.get('health_detail') or p['breaker']}" for p in llms
    )
    return f"every LLM provider is down ({detail[:300]}); only the rules analyst answers"


class Halts:
    """Automatic halts, the kill switch and ``resume`` over the desk's persisted state."""

    def __init__(
        self, core: DeskCore, registry: AgentRegistry, *, stop_loop: Callable[[], Awaitable[None]]
    ) -> None:
        self.core = core
        self.registry = registry
        self.stop_loop = stop_loop

    async def halt_check(self, report: AnalysisReport, assessment: RiskAssessment) -> str | None:
        codes = {r.get("code") for r in ((assessment.verdict or {}).get("reasons") or [])}
        tripped = sorted(codes & HALT_CODES)
        if tripped:
            msgs = [r["message"] for r in assessment.verdict["reasons"] if r.get("code") in HALT_CODES]  # type: ignore[index]
            return f"risk engine: {', '.join(tripped)} ({'; '.join(msgs)[:300]})"
        if not report.is_llm:
            return llms_down(await self.registry.llm_status_list())
        return None

    async def set_halted(self, reason: str, *, who: str) -> None:
        core = self.core
        core.state.update(
            halted=True, halt_reason=reason, halted_by=who, halted_at=core.clock().isoformat(), running=False
        )
        await core.save()
        await core.emit("halted", {"reason": reason, "who": who})

    async def kill(self, reason: str = "manual", who: str = "api") -> dict[str, Any]:
        """The global kill switch: halt (persisted), stop the loop, close pending approvals, cancel working
        orders and flatten every position through the tools; new entries are refused until ``resume``.
        Returns the kill's record id and the flatten result (or its error)."""
        core = self.core
        if not isinstance(reason, str) or not isinstance(who, str) or len(who) > 64:
            raise InvalidArgumentError("reason and who must be strings (who at most 64 characters)")
        await self.set_halted(f"kill switch: {reason}", who=who)
        await self.stop_loop()
        now = core.clock()
        for a in await core.store.approvals(status="pending", limit=500):
            await core.store.decide_approval(a["id"], "rejected", who=who, at=now, reason="kill switch")
        assert core.tools is not None
        flatten: dict[str, Any] | None = None
        error = None
        try:
            flatten = await core.tools.call(
                "manage_position",
                {"action": "flatten_all", "client_order_id": f"kill-{uuid.uuid4().hex[:12]}"},
                who=self.registry.agent_id,
            )
        except Exception as exc:  # still halted: report that flattening needs a retry
            error = f"{type(exc).__name__}: {exc}"[:500]
        assert core.repo is not None
        record_id = await core.repo.record_decision(
            at=now,
            agent=self.registry.agent_id,
            action="kill",
            decision={
                "reason": reason,
                "who": who,
                "orders": (flatten or {}).get("orders", []),
                "flatten_error": error,
            },
        )
        await core.emit("kill", {"reason": reason, "who": who, "record_id": record_id, "error": error})
        return {"kill_record_id": record_id, "flatten": flatten, "flatten_error": error}

    async def resume(self, who: str = "api") -> None:
        """Lift a halt (manual or automatic); the loop stays stopped until ``start``."""
        core = self.core
        was = core.state.get("halt_reason")
        core.state.update(halted=False, halt_reason=None, halted_by=None, halted_at=None, resumed_by=who)
        await core.save()
        await core.emit("resumed", {"who": who, "was": was})
