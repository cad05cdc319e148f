"""Halts and the kill switch: the risk-engine codes and the "every LLM is down" condition that halt the
desk automatically, the global kill switch (halt, close approvals, cancel and flatten), and ``resume``.

LLM providers and the halt: a provider that never answered since this desk (process or actor) started —
the default chain on a machine without Serve, Ollama or API keys — does not halt the desk: it runs on the
rules analyst and says so as ``degraded`` (which providers, why) in ``status()`` and each decision's
event. A provider that answered (a passed health check or a successful call) and is then lost, so that
every configured LLM is down, halts the desk as before, unless ``desk.halt_on_llm_loss`` is false, when
that too only degrades. "Answered" is kept in memory only: a restarted desk starts a new session.
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

# prop-firm codes of a rule that fails the account or stops its day (``nq_ray.propfirm.order_check``):
# the desk halts and flattens; the other prop codes (size, flat-by time) and ``event_blackout`` only
# refuse the order
PROP_HALT_CODES = frozenset({"prop_failed", "prop_stopped_day", "prop_max_loss", "prop_daily_loss"})
# risk-verdict codes that halt the desk for new entries (the engine's circuit breaker and loss limits)
HALT_CODES = frozenset({"circuit_breaker", "daily_loss_limit", "trailing_drawdown"}) | PROP_HALT_CODES


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


def _successes(p: dict[str, Any]) -> int:
    """Calls of a provider that did not fail (the router counts every attempt and every failure)."""
    return max(0, int(p.get("calls") or 0) - int(p.get("errors") or 0))


def _unavailable(p: dict[str, Any]) -> bool:
    """Whether the router would not get an answer from this LLM provider now: not configured, its last
    health check failed, its breaker is not closed, or its last call failed."""
    return (
        not p.get("configured")
        or p.get("healthy") is False
        or p.get("breaker", "closed") != "closed"
        or int(p.get("consecutive_failures") or 0) > 0
    )


def _why(p: dict[str, Any]) -> str:
    return str(p.get("last_error") or p.get("health_detail") or p.get("breaker") or "unavailable")[:200]


def _breached_rules(verdict: dict[str, Any] | None) -> str:
    """`` (rule ...)`` naming the prop-firm rules the verdict's distances show breached with a consequence
    that fails the account or stops its day; empty when none."""
    rows = [
        d
        for d in (verdict or {}).get("distances") or []
        if d.get("state") == "breached" and d.get("consequence") in ("fail", "stop_day")
    ]
    if not rows:
        return ""
    return " rule " + ", ".join(f"{d.get('rule')!r} ({d.get('consequence')})" for d in rows)


class Halts:
    """Automatic halts, the kill switch and ``resume`` over the desk's persisted state, and which LLM
    providers answered since this desk started (``reachable``)."""

    def __init__(
        self, core: DeskCore, registry: AgentRegistry, *, stop_loop: Callable[[], Awaitable[None]]
    ) -> None:
        self.core = core
        self.registry = registry
        self.stop_loop = stop_loop
        self.reachable: set[str] = set()  # LLM providers that answered since this desk started
        self.degraded: dict[str, Any] | None = None  # as of the last cycle
        self._seen: dict[str, int] = {}  # each provider's successful calls when this desk first saw it

    def observe(self, status: list[dict[str, Any]]) -> dict[str, Any] | None:
        """Note the providers that answered (a passed health check, or more successful calls than when
        this desk first saw them: a router can outlive a desk), and say whether the desk is degraded now:
        every LLM provider of the chain unavailable, so the rules analyst decides. ``None`` when it is not
        (an LLM is available, or the chain is rules only)."""
        for p in status:
            if not p.get("is_llm"):
                continue
            name, ok = p["name"], _successes(p)
            base = self._seen.setdefault(name, ok)
            if ok < base:  # a new router (a settings change): its counts start again
                base = self._seen[name] = 0
            if p.get("healthy") is True or ok > base:
                self.reachable.add(name)
        llms = [p for p in status if p.get("is_llm")]
        if not llms or not all(_unavailable(p) for p in llms):
            return None
        providers = [
            {
                "name": p["name"],
                "configured": bool(p.get("configured")),
                "reachable_before": p["name"] in self.reachable,
                "why": _why(p),
            }
            for p in llms
        ]
        lost = [p["name"] for p in providers if p["reachable_before"]]
        reason = (
            f"LLM provider(s) {', '.join(lost)} lost; the rules analyst decides"
            if lost
            else "no LLM provider has answered since the desk started; the rules analyst decides"
        )
        return {"reason": reason, "providers": providers}

    async def halt_check(self, report: AnalysisReport, assessment: RiskAssessment) -> str | None:
        """Why this cycle halts the desk, or ``None``. Also records whether the desk is degraded."""
        status: list[dict[str, Any]] | None = None
        if report.is_llm:
            self.reachable.add(report.provider)
            self.degraded = None
        else:
            status = await self.registry.llm_status_list()
            self.degraded = self.observe(status)
        codes = {r.get("code") for r in ((assessment.verdict or {}).get("reasons") or [])}
        tripped = sorted(codes & HALT_CODES)
        if tripped:
            msgs = [r["message"] for r in assessment.verdict["reasons"] if r.get("code") in HALT_CODES]  # type: ignore[index]
            rules = _breached_rules(assessment.verdict)
            return f"risk engine: {', '.join(tripped)}{rules} ({'; '.join(msgs)[:300]})"
        if status is None:
            return None
        down = llms_down(status)
        lost = sorted(
            p["name"]
            for p in status
            if p.get("is_llm") and p.get("configured") and p["name"] in self.reachable
        )
        if down is None or not lost or not self.core.settings.desk.halt_on_llm_loss:
            return None  # never answered since the desk started, or the policy says degrade only
        return f"{down}; lost since the desk started: {', '.join(lost)}"

    async def set_halted(self, reason: str, *, who: str) -> None:
        core = self.core
        core.state.update(
            halted=True, halt_reason=reason, halted_by=who, halted_at=core.clock().isoformat(), running=False
        )
        await core.save()
        await core.emit("halted", {"reason": reason, "who": who})

    async def flatten(self, reason: str, *, who: str) -> dict[str, Any]:
        """Cancel working entries and flatten every position through the tools (a prop-firm breach's
        halt); returns the orders sent, or the error (the halt stands either way)."""
        core = self.core
        assert core.tools is not None
        try:
            out = await core.tools.call(
                "manage_position",
                {"action": "flatten_all", "client_order_id": f"halt-{uuid.uuid4().hex[:12]}"},
                who=self.registry.agent_id,
            )
            result: dict[str, Any] = {"orders": out.get("orders", []), "error": None}
        except Exception as exc:
            result = {"orders": [], "error": f"{type(exc).__name__}: {exc}"[:500]}
        await core.emit("flattened", {"reason": reason, "who": who, **result})
        return result

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
