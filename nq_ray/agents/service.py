"""``DeskService``: the whole trading-desk API as one plain async class.

Used in process (tests, the CLI) and wrapped 1:1 by the ``trading_desk`` Ray actor (``actors.DeskActor``).
Its durable state — halted or not and why, approval mode, the loop's symbols/cadence/windows and whether
it runs, the agents' configurations, approvals and per-agent daily usage — lives in the store, so a new
instance (a restarted actor) comes back as the old one left off: still halted after a kill, still looping
if it was, the same agents. Every answer is JSON-able; bad input raises typed errors (``nq_ray.errors``).

Events (``agent_update``: decisions, approvals, halts, status changes) go to the optional ``publish``
callback and into a ring buffer read with ``events_since(seq)``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections import deque
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Protocol

from pydantic import ValidationError

from nq_ray.agents.agents import (
    AnalysisAgent,
    ExecutionAgent,
    MemoryManager,
    RiskAgent,
    Tools,
    UsageBook,
)
from nq_ray.agents.desk import TradingDesk, client_order_id_for
from nq_ray.agents.models import AgentConfig, AnalysisReport, RiskAssessment
from nq_ray.config import Settings
from nq_ray.errors import ConfigError, InvalidArgumentError, NotFoundError, NQRayError
from nq_ray.llm.router import LLMRouter
from nq_ray.store.desk import DeskStore
from nq_ray.store.repository import Repository

log = logging.getLogger(__name__)

Publish = Callable[[str, dict[str, Any]], Awaitable[None]]
Windows = Literal["rth", "globex", "always"]
WINDOWS = ("rth", "globex", "always")
AGENT_TYPES = ("analysis", "risk", "execution")
DEFAULT_AGENTS = {"analysis": "analysis_agent", "risk": "risk_agent", "execution": "execution_agent"}
# risk-verdict codes that halt the desk for new entries (the engine's circuit breaker and loss limits)
HALT_CODES = frozenset({"circuit_breaker", "daily_loss_limit", "trailing_drawdown"})
STATE_KEY = "desk"
RECOVER_WITHIN = timedelta(minutes=5)


def _utc_now() -> datetime:
    return datetime.now(UTC)


class DeskHaltedError(NQRayError):
    """The desk is halted (kill switch or automatic halt): no new entries until ``resume``."""

    code = "desk_halted"
    http_status = 409


class ApprovalClosedError(NQRayError):
    """An approval that is no longer pending (rejected or expired) cannot be approved or rejected."""

    code = "approval_closed"
    http_status = 409


class AgentHost(Protocol):
    """Where agents live: in this process, or as named Ray actors (``actors.RayAgentHost``)."""

    def build(self, agent_type: str, agent_id: str, config: AgentConfig) -> Any: ...

    def remove(self, agent_id: str) -> None: ...


class LocalAgentHost:
    """Agents as objects in this process, over ``tools`` and ``router``, memory and usage in the store."""

    def __init__(self, tools: Tools, router: LLMRouter, repo: Repository, clock: Callable[[], datetime]):
        self.tools, self.router, self.repo, self.clock = tools, router, repo, clock

    def build(self, agent_type: str, agent_id: str, config: AgentConfig) -> Any:
        memory = MemoryManager(self.repo, clock=self.clock)
        if agent_type == "analysis":
            usage = UsageBook(DeskStore(self.repo), clock=self.clock)
            return AnalysisAgent(
                self.tools, self.router, agent_id=agent_id, config=config, memory=memory, usage=usage
            )
        if agent_type == "risk":
            return RiskAgent(self.tools, agent_id=agent_id, config=config, memory=memory)
        return ExecutionAgent(self.tools, agent_id=agent_id, config=config, memory=memory)

    def remove(self, agent_id: str) -> None:
        return None


def in_window(windows: str, now: datetime) -> bool:
    """Whether the loop may run a cycle at ``now``: RTH, any Globex hour, or always."""
    from nq_ray.market import sessions

    if windows == "always":
        return True
    if windows == "rth":
        return sessions.is_rth(now)
    return sessions.is_open(now)


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


class DeskService:
    """The trading desk: one-shot cycles, the loop, kill switch and automatic halts, approval mode,
    agents (create/list/get/delete/task), budgets, the decision log, settings and events."""

    agent_id = TradingDesk.agent_id

    def __init__(
        self,
        settings: Settings,
        *,
        repo: Repository | None = None,
        tools: Tools | None = None,
        router: LLMRouter | None = None,
        host: AgentHost | None = None,
        publish: Publish | None = None,
        clock: Callable[[], datetime] = _utc_now,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        approval_ttl_s: float = 300.0,
        cadence_s: float = 300.0,
        windows: Windows = "globex",
    ) -> None:
        self.settings = settings
        self._repo = repo
        self._own_repo = repo is None
        self._tools = tools
        self.router = router
        self._host = host
        self._publish = publish
        self.clock = clock
        self.sleep = sleep
        self.approval_ttl_s = approval_ttl_s
        self._defaults = {"cadence_s": cadence_s, "windows": windows}
        self._agents: dict[str, dict[str, Any]] = {}
        self._state: dict[str, Any] = {}
        self._ready = False
        self._init_lock = asyncio.Lock()
        self._approve_lock = asyncio.Lock()
        self._loop_task: asyncio.Task[None] | None = None
        self._events: deque[dict[str, Any]] = deque(maxlen=500)
        self._seq = 0
        self.cycles = 0
        self.last_cycle_at: str | None = None
        self.last_error: str | None = None

    # ------------------------------------------------------------------ set-up and state
    async def ensure(self) -> None:
        """Connect to the store, rebuild state and agents from it, finish cycles cut short, and resume
        the loop when it was running (idempotent)."""
        if self._ready:
            return
        async with self._init_lock:
            if self._ready:
                return
            if self._repo is None:
                self._repo = await Repository.connect(self.settings.store_url)
            self.store = DeskStore(self._repo)
            if self.router is None:
                self.router = LLMRouter.from_config(self.settings.llm)
            if self._tools is None:  # the composition root passes them (nq_ray.runtime.Runtime.tools)
                raise ConfigError("DeskService needs its tools: pass tools= (nq_ray.runtime.Runtime.tools())")
            if self._host is None:
                self._host = LocalAgentHost(self._tools, self.router, self._repo, self.clock)
            self.usage = UsageBook(self.store, clock=self.clock)
            self._state = await self.store.get_state(STATE_KEY) or {
                "halted": False,
                "halt_reason": None,
                "approval_mode": False,
                "running": False,
                "symbols": ["NQ"],
                **self._defaults,
            }
            for row in await self.store.agents():
                self._agents[row["agent_id"]] = {
                    "agent_type": row["agent_type"],
                    "config": AgentConfig.model_validate(row["config"]),
                    "created_at": row["created_at"],
                    "agent": None,
                }
            for agent_type, agent_id in DEFAULT_AGENTS.items():
                if agent_id not in self._agents:
                    await self._put_agent(agent_type, agent_id, AgentConfig())
            self._ready = True
        await self._recover()
        if self._state.get("running") and not self._state.get("halted"):
            self._spawn_loop()

    async def _save(self) -> None:
        await self.store.set_state(STATE_KEY, dict(self._state), at=self.clock())

    async def _put_agent(self, agent_type: str, agent_id: str, config: AgentConfig) -> None:
        await self.store.put_agent(agent_id, agent_type, config.model_dump(mode="json"), at=self.clock())
        self._agents[agent_id] = {
            "agent_type": agent_type,
            "config": config,
            "created_at": self.clock().isoformat(),
            "agent": None,
        }

    def _agent(self, agent_id: str) -> Any:
        entry = self._agents.get(agent_id)
        if entry is None:
            raise NotFoundError(f"no agent {agent_id!r}; list them with list_agents()", agent_id=agent_id)
        if entry["agent"] is None:
            assert self._host is not None
            entry["agent"] = self._host.build(entry["agent_type"], agent_id, entry["config"])
        return entry["agent"]

    def _desk(self) -> TradingDesk:
        assert self._repo is not None
        return TradingDesk(
            self._agent(DEFAULT_AGENTS["analysis"]),
            self._agent(DEFAULT_AGENTS["risk"]),
            self._agent(DEFAULT_AGENTS["execution"]),
            self._repo,
            clock=self.clock,
            store=self.store,
        )

    async def _recover(self) -> None:
        """Approved decisions recorded by a cycle that died before it wrote its execution: send them now
        when recent (the client order id makes that idempotent at the broker), else close them unsent."""
        from nq_ray.agents.models import ExecutionReport

        now = self.clock()
        ids = await self.store.unexecuted_decisions(
            agent=self.agent_id, exec_agent=DEFAULT_AGENTS["execution"], since=now - timedelta(days=2)
        )
        desk = self._desk()
        for decision_id in ids:
            rec = await self.store.decision(decision_id)
            if rec is None:
                continue
            at = datetime.fromisoformat(rec["at"])
            risk = RiskAssessment.model_validate(rec["decision"]["risk"])
            if now - at <= RECOVER_WITHIN and not self._state.get("halted"):
                execution = await desk.execution.execute_trade(
                    risk, client_order_id=client_order_id_for(decision_id)
                )
            else:
                execution = ExecutionReport(placed=False, note="cycle cut short; decision too old to send")
            await desk.record_execution(decision_id, rec["symbol"] or "", execution)
            await self._emit("recovered", {"decision_id": decision_id, "placed": execution.placed})

    async def _emit(self, kind: str, data: dict[str, Any]) -> None:
        self._seq += 1
        event = {"seq": self._seq, "kind": kind, "at": self.clock().isoformat(), **data}
        self._events.append(event)
        if self._publish is not None:
            try:
                await self._publish("agent_update", event)
            except Exception as exc:  # an event bus outage never stops the desk
                log.warning("desk: publishing %s failed: %s", kind, exc)

    async def events_since(self, seq: int = 0) -> list[dict[str, Any]]:
        """The buffered ``agent_update`` events after ``seq`` (the last 500 are kept)."""
        return [e for e in self._events if e["seq"] > seq]

    # ------------------------------------------------------------------ cycles and the loop
    async def _halt_check(self, report: AnalysisReport, assessment: RiskAssessment) -> str | None:
        codes = {r.get("code") for r in ((assessment.verdict or {}).get("reasons") or [])}
        tripped = sorted(codes & HALT_CODES)
        if tripped:
            msgs = [r["message"] for r in assessment.verdict["reasons"] if r.get("code") in HALT_CODES]  # type: ignore[index]
            return f"risk engine: {', '.join(tripped)} ({'; '.join(msgs)[:300]})"
        if not report.is_llm:
            return llms_down(await self.llm_status_list())
        return None

    async def run_once(self, symbol: str = "NQ") -> dict[str, Any]:
        """One analysis → risk → execution cycle for ``symbol`` (recorded before any order is sent)."""
        await self.ensure()
        from nq_ray.domain.contracts import get_contract

        if not isinstance(symbol, str):
            raise InvalidArgumentError("symbol must be a string such as 'NQ'")
        get_contract(symbol)  # UnknownSymbolError for a symbol nq-ray does not know
        try:
            out = await self._desk().run_once(
                symbol,
                halted=self._state.get("halt_reason") if self._state.get("halted") else None,
                halt_check=self._halt_check,
                approval_mode=bool(self._state.get("approval_mode")),
                approval_ttl_s=self.approval_ttl_s,
            )
        except Exception as exc:
            self.last_error = f"{type(exc).__name__}: {exc}"[:500]
            await self._emit("cycle_failed", {"symbol": symbol, "error": self.last_error})
            raise
        self.cycles += 1
        self.last_cycle_at = self.clock().isoformat()
        if out["auto_halt"] and not self._state.get("halted"):
            await self._set_halted(out["auto_halt"], who="desk")
        await self._emit(
            "decision",
            {
                "decision_id": out["decision_id"],
                "symbol": symbol,
                "action": out["action"],
                "halted": out["halted"],
                "approval_id": (out["approval"] or {}).get("id"),
                "placed": (out["execution"] or {}).get("placed"),
            },
        )
        if out["approval"] is not None:
            await self._emit("approval_pending", {"approval": out["approval"]})
        return out

    async def start(self, symbols: list[str] | None = None, cadence_s: float | None = None) -> dict[str, Any]:
        """Start (or re-configure) the loop: every ``cadence_s`` seconds, inside the trading windows, one
        cycle per symbol, all symbols in parallel."""
        await self.ensure()
        if self._state.get("halted"):
            raise DeskHaltedError(
                f"the desk is halted ({self._state.get('halt_reason')}); resume it first",
                halt_reason=self._state.get("halt_reason"),
            )
        if symbols is not None:
            from nq_ray.domain.contracts import get_contract

            if not isinstance(symbols, list) or not symbols or len(symbols) > 16:
                raise InvalidArgumentError("symbols must be a list of 1 to 16 symbols such as ['NQ', 'ES']")
            self._state["symbols"] = [get_contract(s).symbol for s in symbols]
        if cadence_s is not None:
            if not isinstance(cadence_s, int | float) or not 1 <= cadence_s <= 86_400:
                raise InvalidArgumentError(
                    "cadence_s must be between 1 and 86400 seconds", cadence_s=cadence_s
                )
            self._state["cadence_s"] = float(cadence_s)
        self._state["running"] = True
        await self._save()
        self._spawn_loop()
        await self._emit("status", {"running": True})
        return await self.status()

    async def set_windows(self, windows: str) -> dict[str, Any]:
        """Trading windows of the loop: ``rth`` (09:30–16:00 ET), ``globex`` (any open hour), ``always``."""
        await self.ensure()
        if windows not in WINDOWS:
            raise InvalidArgumentError(f"windows must be one of {list(WINDOWS)}, got {windows!r}")
        self._state["windows"] = windows
        await self._save()
        return await self.status()

    async def stop(self) -> dict[str, Any]:
        await self.ensure()
        self._state["running"] = False
        await self._save()
        await self._cancel_loop()
        await self._emit("status", {"running": False})
        return await self.status()

    def _spawn_loop(self) -> None:
        if self._loop_task is None or self._loop_task.done():
            self._loop_task = asyncio.create_task(self._loop(), name="desk-loop")

    async def _cancel_loop(self) -> None:
        task, self._loop_task = self._loop_task, None
        if task is not None and task is not asyncio.current_task():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def _loop(self) -> None:
        while self._state.get("running") and not self._state.get("halted"):
            if in_window(self._state.get("windows", "globex"), self.clock()):
                results = await asyncio.gather(
                    *(self.run_once(s) for s in self._state["symbols"]), return_exceptions=True
                )
                for r in results:
                    if isinstance(r, BaseException) and not isinstance(r, Exception):
                        raise r
            await self.sleep(float(self._state["cadence_s"]))

    # ------------------------------------------------------------------ kill switch and halts
    async def _set_halted(self, reason: str, *, who: str) -> None:
        self._state.update(
            halted=True, halt_reason=reason, halted_by=who, halted_at=self.clock().isoformat(), running=False
        )
        await self._save()
        await self._emit("halted", {"reason": reason, "who": who})

    async def kill(self, reason: str = "manual", who: str = "api") -> dict[str, Any]:
        """The global kill switch: halt (persisted), stop the loop, close pending approvals, cancel working
        orders and flatten every position through the tools; new entries are refused until ``resume``."""
        await self.ensure()
        if not isinstance(reason, str) or not isinstance(who, str) or len(who) > 64:
            raise InvalidArgumentError("reason and who must be strings (who at most 64 characters)")
        await self._set_halted(f"kill switch: {reason}", who=who)
        await self._cancel_loop()
        now = self.clock()
        for a in await self.store.approvals(status="pending", limit=500):
            await self.store.decide_approval(a["id"], "rejected", who=who, at=now, reason="kill switch")
        assert self._tools is not None
        flatten: dict[str, Any] | None = None
        error = None
        try:
            flatten = await self._tools.call(
                "manage_position",
                {"action": "flatten_all", "client_order_id": f"kill-{uuid.uuid4().hex[:12]}"},
                who=self.agent_id,
            )
        except Exception as exc:  # still halted: report that flattening needs a retry
            error = f"{type(exc).__name__}: {exc}"[:500]
        assert self._repo is not None
        record_id = await self._repo.record_decision(
            at=now,
            agent=self.agent_id,
            action="kill",
            decision={
                "reason": reason,
                "who": who,
                "orders": (flatten or {}).get("orders", []),
                "flatten_error": error,
            },
        )
        await self._emit("kill", {"reason": reason, "who": who, "record_id": record_id, "error": error})
        return {
            **(await self.status()),
            "kill_record_id": record_id,
            "flatten": flatten,
            "flatten_error": error,
        }

    async def resume(self, who: str = "api") -> dict[str, Any]:
        """Lift a halt (manual or automatic); the loop stays stopped until ``start``."""
        await self.ensure()
        was = self._state.get("halt_reason")
        self._state.update(halted=False, halt_reason=None, halted_by=None, halted_at=None, resumed_by=who)
        await self._save()
        await self._emit("resumed", {"who": who, "was": was})
        return await self.status()

    # ------------------------------------------------------------------ status
    async def status(self) -> dict[str, Any]:
        await self.ensure()
        budgets: dict[str, Any] = {}
        for agent_id, entry in self._agents.items():
            b = entry["config"].budget
            tokens, usd = await self.usage.used(agent_id)
            budgets[agent_id] = {
                "tokens_used": tokens,
                "tokens_limit": b.tokens_per_day if b else None,
                "usd_used": round(usd, 6),
                "usd_limit": b.usd_per_day if b else None,
            }
        return {
            "running": bool(self._state.get("running"))
            and self._loop_task is not None
            and not self._loop_task.done(),
            "halted": bool(self._state.get("halted")),
            "halt_reason": self._state.get("halt_reason"),
            "halted_by": self._state.get("halted_by"),
            "halted_at": self._state.get("halted_at"),
            "approval_mode": bool(self._state.get("approval_mode")),
            "symbols": list(self._state.get("symbols", [])),
            "cadence_s": self._state.get("cadence_s"),
            "windows": self._state.get("windows"),
            "cycles": self.cycles,
            "last_cycle_at": self.last_cycle_at,
            "last_error": self.last_error,
            "agents": [self._describe(a) for a in self._agents],
            "budgets": budgets,
            "llm": await self.llm_status_list(),
            "event_seq": self._seq,
        }

    async def llm_status_list(self) -> list[dict[str, Any]]:
        from dataclasses import asdict

        try:
            out: list[dict[str, Any]] = await self._agent(DEFAULT_AGENTS["analysis"]).llm_status()
            return out
        except NotFoundError:
            assert self.router is not None
            return [asdict(p) for p in self.router.status()]

    async def llm_status(self) -> dict[str, Any]:
        """``router.status()`` of the analysis agent's router: health, breaker, tokens and cost."""
        await self.ensure()
        providers = await self.llm_status_list()
        return {"providers": providers, "all_llms_down": llms_down(providers)}

    # ------------------------------------------------------------------ approvals
    async def set_approval_mode(self, on: bool) -> dict[str, Any]:
        await self.ensure()
        if not isinstance(on, bool):
            raise InvalidArgumentError("on must be true or false")
        self._state["approval_mode"] = on
        await self._save()
        await self._emit("status", {"approval_mode": on})
        return await self.status()

    async def pending_approvals(self) -> list[dict[str, Any]]:
        await self.ensure()
        await self._expire()
        return await self.store.approvals(status="pending", limit=500)

    async def approvals(self, limit: int = 50) -> list[dict[str, Any]]:
        await self.ensure()
        _check_limit(limit)
        await self._expire()
        return await self.store.approvals(limit=limit)

    async def _expire(self) -> None:
        n = await self.store.expire_approvals(self.clock())
        if n:
            await self._emit("approvals_expired", {"count": n})

    async def _approval(self, approval_id: int) -> dict[str, Any]:
        if not isinstance(approval_id, int) or isinstance(approval_id, bool):
            raise InvalidArgumentError("approval_id must be an integer", approval_id=approval_id)
        await self._expire()
        a = await self.store.approval(approval_id)
        if a is None:
            raise NotFoundError(
                f"no approval {approval_id}; see pending_approvals()", approval_id=approval_id
            )
        return a

    async def approve(self, approval_id: int, who: str = "api") -> dict[str, Any]:
        """Send a pending proposal through the execution agent (client order id ``desk-<decision_id>``).
        Idempotent: approving again returns the same execution and never sends twice."""
        await self.ensure()
        async with self._approve_lock:
            a = await self._approval(approval_id)
            if a["status"] == "pending":
                if self._state.get("halted"):
                    raise DeskHaltedError(
                        f"the desk is halted ({self._state.get('halt_reason')}); no new entries",
                        approval_id=approval_id,
                    )
                await self.store.decide_approval(approval_id, "approved", who=who, at=self.clock())
                a = await self._approval(approval_id)
            if a["status"] != "approved":
                raise ApprovalClosedError(
                    f"approval {approval_id} is {a['status']}; it can no longer be approved",
                    approval_id=approval_id,
                    status=a["status"],
                )
            if a["execution"] is not None:
                return {"approval": a, "already": True}
            desk = self._desk()
            assessment = RiskAssessment.model_validate(a["assessment"])
            execution = await desk.execution.execute_trade(
                assessment, client_order_id=client_order_id_for(a["decision_id"])
            )
            exec_id = await desk.record_execution(a["decision_id"], a["symbol"], execution)
            await self.store.set_approval_execution(
                approval_id, {"execution_id": exec_id, **execution.model_dump(mode="json")}
            )
            a = await self._approval(approval_id)
        await self._emit("approved", {"approval_id": approval_id, "who": who, "placed": execution.placed})
        return {"approval": a, "already": False}

    async def reject(self, approval_id: int, who: str = "api", reason: str = "") -> dict[str, Any]:
        await self.ensure()
        async with self._approve_lock:
            a = await self._approval(approval_id)
            if a["status"] != "pending":
                raise ApprovalClosedError(
                    f"approval {approval_id} is {a['status']}; only a pending one can be rejected",
                    approval_id=approval_id,
                    status=a["status"],
                )
            await self.store.decide_approval(
                approval_id, "rejected", who=who, at=self.clock(), reason=str(reason)[:1000]
            )
            a = await self._approval(approval_id)
        await self._emit("rejected", {"approval_id": approval_id, "who": who})
        return {"approval": a}

    # ------------------------------------------------------------------ agents
    def _describe(self, agent_id: str) -> dict[str, Any]:
        e = self._agents[agent_id]
        return {
            "agent_id": agent_id,
            "agent_type": e["agent_type"],
            "config": e["config"].model_dump(mode="json"),
            "created_at": e["created_at"],
            "default": agent_id in DEFAULT_AGENTS.values(),
        }

    async def create_agent(
        self, agent_type: str, config: dict[str, Any] | None = None, agent_id: str | None = None
    ) -> dict[str, Any]:
        await self.ensure()
        if agent_type not in AGENT_TYPES:
            raise InvalidArgumentError(f"agent_type must be one of {list(AGENT_TYPES)}, got {agent_type!r}")
        try:
            cfg = AgentConfig.model_validate(config or {})
        except ValidationError as exc:
            detail = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            raise InvalidArgumentError(f"invalid agent config: {detail}") from None
        await self._check_config(cfg)
        if agent_id is None:
            agent_id = f"{agent_type}-{uuid.uuid4().hex[:8]}"
        elif (
            not isinstance(agent_id, str)
            or not agent_id.replace("-", "").replace("_", "").isalnum()
            or len(agent_id) > 48
        ):
            raise InvalidArgumentError("agent_id must be letters, digits, '-' or '_' (max 48)")
        if agent_id in self._agents:
            raise InvalidArgumentError(f"agent {agent_id!r} already exists", agent_id=agent_id)
        await self._put_agent(agent_type, agent_id, cfg)
        self._agent(agent_id)  # build it now: a bad provider fails here, not on first use
        await self._emit("agent_created", {"agent_id": agent_id, "agent_type": agent_type})
        return self._describe(agent_id)

    async def _check_config(self, cfg: AgentConfig) -> None:
        if cfg.provider is not None:
            names = [p["name"] for p in await self.llm_status_list()]
            assert self.router is not None
            names = sorted(set(names) | {p.name for p in self.router.config.resolved()})
            if cfg.provider not in names:
                raise InvalidArgumentError(
                    f"unknown provider {cfg.provider!r}; the router has {names}", provider=cfg.provider
                )
        if cfg.tools is not None:
            from nq_ray.tools.catalog import specs

            known = {s.name for s in specs()}
            unknown = sorted(set(cfg.tools) - known)
            if unknown:
                raise InvalidArgumentError(
                    f"unknown tools {unknown}; known: {sorted(known)}", unknown=unknown
                )

    async def list_agents(self) -> list[dict[str, Any]]:
        await self.ensure()
        return [self._describe(a) for a in self._agents]

    async def get_agent(self, agent_id: str) -> dict[str, Any]:
        """Config, status, recent memory and recent decisions of one agent."""
        await self.ensure()
        agent = self._agent(agent_id)
        decisions = await self.store.decisions(agent=agent_id, limit=20)
        if agent_id in DEFAULT_AGENTS.values():
            decisions = (await self.store.decisions(agent=self.agent_id, limit=20)) + decisions
        tokens, usd = await self.usage.used(agent_id)
        return {
            **self._describe(agent_id),
            "status": {
                "halted": bool(self._state.get("halted")),
                "tokens_used_today": tokens,
                "usd_used_today": round(usd, 6),
            },
            "memory": await agent.get_recent_memory(20),
            "recent_decisions": decisions[:20],
        }

    async def delete_agent(self, agent_id: str) -> dict[str, Any]:
        await self.ensure()
        self._agent(agent_id)
        if agent_id in DEFAULT_AGENTS.values():
            raise InvalidArgumentError(
                f"{agent_id} is one of the desk's default agents and cannot be deleted"
            )
        await self.store.delete_agent(agent_id)
        self._agents.pop(agent_id, None)
        assert self._host is not None
        self._host.remove(agent_id)
        await self._emit("agent_deleted", {"agent_id": agent_id})
        return {"agent_id": agent_id, "deleted": True}

    async def agent_task(self, agent_id: str, task: dict[str, Any]) -> dict[str, Any]:
        """Run a seed task on one agent; the task and its result are recorded (agent = ``agent_id``)."""
        await self.ensure()
        agent = self._agent(agent_id)
        if not isinstance(task, dict) or not isinstance(task.get("type"), str):
            raise InvalidArgumentError("task must be {'type': ..., 'parameters': {...}}")
        if task["type"] in ("place_trade", "manage_position") and self._state.get("halted"):
            params = task.get("parameters") or {}
            if task["type"] == "place_trade" or params.get("action") not in (
                "status",
                "flatten",
                "flatten_all",
                "partial_close",
                "move_stop",
                "move_target",
            ):
                raise DeskHaltedError(
                    f"the desk is halted ({self._state.get('halt_reason')}); no new entries"
                )
        result = await agent.execute_task(task)
        assert self._repo is not None
        record_id = await self._repo.record_decision(
            at=self.clock(),
            agent=agent_id,
            symbol=(task.get("parameters") or {}).get("symbol"),
            action=task["type"][:32],
            inputs={"task": task},
            decision=result,
        )
        await self._emit("task", {"agent_id": agent_id, "type": task["type"], "record_id": record_id})
        return {"agent_id": agent_id, "task": task["type"], "record_id": record_id, "result": result}

    # ------------------------------------------------------------------ the decision log
    async def decisions(self, limit: int = 50, symbol: str | None = None) -> list[dict[str, Any]]:
        await self.ensure()
        _check_limit(limit)
        return await self.store.decisions(agent=self.agent_id, limit=limit, symbol=symbol)

    async def decision(self, decision_id: int) -> dict[str, Any]:
        """The full record: inputs, prompt, provider/model/params, raw answer, parsed result, risk
        verdict, the execution rows and broker orders that followed, and the approval if any."""
        await self.ensure()
        if not isinstance(decision_id, int) or isinstance(decision_id, bool):
            raise InvalidArgumentError("decision_id must be an integer")
        rec = await self.store.decision(decision_id)
        if rec is None:
            raise NotFoundError(f"no decision {decision_id}", decision_id=decision_id)
        d = rec.get("decision") or {}
        assert self._repo is not None
        order = await self._repo.get_order(client_order_id_for(decision_id))
        return {
            **rec,
            "params": d.get("params"),
            "parsed": d.get("view"),
            "risk": d.get("risk"),
            "executions": await self.store.executions_for(decision_id, agent=DEFAULT_AGENTS["execution"]),
            "orders": [order.model_dump(mode="json")] if order is not None else [],
            "approval": await self.store.approval_for_decision(decision_id),
        }

    # ------------------------------------------------------------------ settings
    async def apply_settings(self, patch: dict[str, Any]) -> dict[str, Any]:
        """Apply a validated settings patch live: the LLM chain rebuilds the router (and the agents that
        use it); other sections take effect for what the desk reads from them."""
        await self.ensure()
        from nq_ray.config import _build, _deep_merge

        if not isinstance(patch, dict) or not patch:
            raise ConfigError("a settings patch must be a non-empty object")
        new = _build(_deep_merge(self.settings.model_dump(mode="python"), patch), from_env=False)
        self.settings = new
        if "llm" in patch:
            old = self.router
            assert old is not None
            self.router = LLMRouter.from_config(new.llm, ledger=old.ledger)
            if isinstance(self._host, LocalAgentHost):
                self._host.router = self.router
            elif hasattr(self._host, "apply_settings"):
                await self._host.apply_settings(new)  # type: ignore[union-attr]
            for e in self._agents.values():
                e["agent"] = None
            with contextlib.suppress(Exception):
                await old.aclose()
        await self._emit("settings", {"keys": sorted(patch)})
        return {"applied": sorted(patch), "llm": await self.llm_status_list()}

    async def close(self) -> None:
        await self._cancel_loop()
        if self.router is not None:
            with contextlib.suppress(Exception):
                await self.router.aclose()
        if self._own_repo and self._repo is not None:
            await self._repo.close()
            self._repo = None
        self._ready = False


def _check_limit(limit: int) -> None:
    if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= 1000:
        raise InvalidArgumentError("limit must be an integer between 1 and 1000", limit=limit)
