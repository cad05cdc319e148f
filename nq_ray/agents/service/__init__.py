"""``DeskService``: the whole trading-desk API as one plain async class.

Used in process (tests, the CLI) and wrapped 1:1 by the ``trading_desk`` Ray actor (``actors.DeskActor``).
Its durable state — halted or not and why, approval mode, the loop's symbols/cadence/windows and whether
it runs, the agents' configurations, approvals and per-agent daily usage — lives in the store, so a new
instance (a restarted actor) comes back as the old one left off: still halted after a kill, still looping
if it was, the same agents. Every answer is JSON-able; bad input raises typed errors (``nq_ray.errors``).

Events (``agent_update``: decisions, approvals, halts, status changes) go to the optional ``publish``
callback and into a ring buffer read with ``events_since(seq)``.

``DeskService`` is the desk's lifecycle (set-up from the store, status, live settings, close) composed
of one part per idea, each in its own module of this package:

- ``state``: ``DeskCore``, the collaborators, persisted state and events every part shares;
- ``registry``: the agents (``AgentHost``, ``LocalAgentHost``, create/list/get/delete/task);
- ``loop``: cycles, the loop on its cadence and trading windows, recovery of a cycle cut short;
- ``halts``: automatic halts, the kill switch and ``resume``;
- ``approvals``: approval mode and the approvals queue;
- ``decisions``: queries over the decision log.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from typing import Any

from nq_ray.agents.agents import Tools, UsageBook
from nq_ray.agents.desk import TradingDesk
from nq_ray.agents.service.approvals import ApprovalClosedError, Approvals
from nq_ray.agents.service.decisions import DecisionLog
from nq_ray.agents.service.halts import HALT_CODES, DeskHaltedError, Halts, llms_down
from nq_ray.agents.service.loop import RECOVER_WITHIN, WINDOWS, DeskLoop, Windows, in_window
from nq_ray.agents.service.registry import (
    AGENT_TYPES,
    DEFAULT_AGENTS,
    AgentHost,
    AgentRegistry,
    LocalAgentHost,
)
from nq_ray.agents.service.state import STATE_KEY, DeskCore, Publish, _utc_now, check_limit, log
from nq_ray.config import Settings
from nq_ray.errors import ConfigError
from nq_ray.llm.router import LLMRouter
from nq_ray.store.desk import DeskStore
from nq_ray.store.repository import Repository

__all__ = [
    "AGENT_TYPES",
    "DEFAULT_AGENTS",
    "HALT_CODES",
    "RECOVER_WITHIN",
    "STATE_KEY",
    "WINDOWS",
    "AgentHost",
    "ApprovalClosedError",
    "DeskHaltedError",
    "DeskService",
    "LocalAgentHost",
    "Publish",
    "Windows",
    "in_window",
    "llms_down",
    "log",
]

_check_limit = check_limit  # the name it had before the split


class _Shared:
    """An attribute of ``DeskService`` that is the attribute ``name`` of its ``DeskCore``."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __get__(self, obj: Any, objtype: type | None = None) -> Any:
        return self if obj is None else getattr(obj._core, self.name)

    def __set__(self, obj: Any, value: Any) -> None:
        setattr(obj._core, self.name, value)


class DeskService:
    """The trading desk: one-shot cycles, the loop, kill switch and automatic halts, approval mode,
    agents (create/list/get/delete/task), budgets, the decision log, settings and events."""

    agent_id = TradingDesk.agent_id

    settings = _Shared("settings")
    router = _Shared("router")
    clock = _Shared("clock")
    sleep = _Shared("sleep")
    approval_ttl_s = _Shared("approval_ttl_s")
    store = _Shared("store")
    usage = _Shared("usage")
    _repo = _Shared("repo")
    _own_repo = _Shared("own_repo")
    _tools = _Shared("tools")
    _host = _Shared("host")
    _state = _Shared("state")

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
        self._core = DeskCore(
            settings,
            repo=repo,
            tools=tools,
            router=router,
            host=host,
            publish=publish,
            clock=clock,
            sleep=sleep,
            approval_ttl_s=approval_ttl_s,
            defaults={"cadence_s": cadence_s, "windows": windows},
        )
        self._registry = AgentRegistry(self._core, self.agent_id)
        self._halts = Halts(self._core, self._registry, stop_loop=self._cancel_loop)
        self._loop = DeskLoop(self._core, self._registry, self._halts)
        self._approvals = Approvals(self._core, self._registry)
        self._decisions = DecisionLog(self._core, self.agent_id)
        self._ready = False
        self._init_lock = asyncio.Lock()

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
                self._host = LocalAgentHost(
                    self._tools, self.router, self._repo, self.clock, settings=self.settings
                )
            self.usage = UsageBook(self.store, clock=self.clock)
            self._state = await self.store.get_state(STATE_KEY) or {
                "halted": False,
                "halt_reason": None,
                "approval_mode": False,
                "running": False,
                "symbols": ["NQ"],
                **self._core.defaults,
            }
            await self._registry.load()
            self._ready = True
        await self._loop.recover()
        if self._state.get("running") and not self._state.get("halted"):
            self._loop.spawn()

    def _agent(self, agent_id: str) -> Any:
        return self._registry.agent(agent_id)

    async def _cancel_loop(self) -> None:
        await self._loop.cancel()

    async def events_since(self, seq: int = 0) -> list[dict[str, Any]]:
        """The buffered ``agent_update`` events after ``seq`` (the last 500 are kept)."""
        return await self._core.events_since(seq)

    @property
    def cycles(self) -> int:
        return self._loop.cycles

    @property
    def last_cycle_at(self) -> str | None:
        return self._loop.last_cycle_at

    @property
    def last_error(self) -> str | None:
        return self._loop.last_error

    # ------------------------------------------------------------------ cycles and the loop
    async def run_once(self, symbol: str = "NQ") -> dict[str, Any]:
        """One analysis → risk → execution cycle for ``symbol`` (recorded before any order is sent)."""
        await self.ensure()
        return await self._loop.run_once(symbol)

    async def start(self, symbols: list[str] | None = None, cadence_s: float | None = None) -> dict[str, Any]:
        """Start (or re-configure) the loop: every ``cadence_s`` seconds, inside the trading windows, one
        cycle per symbol, all symbols in parallel."""
        await self.ensure()
        await self._loop.start(symbols, cadence_s)
        return await self.status()

    async def set_windows(self, windows: str) -> dict[str, Any]:
        """Trading windows of the loop: ``rth`` (09:30–16:00 ET), ``globex`` (any open hour), ``always``."""
        await self.ensure()
        await self._loop.set_windows(windows)
        return await self.status()

    @property
    def hosts_loop(self) -> bool:
        """Whether this instance runs the loop's cycles. A one-shot command (``nq-ray desk``) sets it
        false: ``start`` then records the loop as running in the store, for the process that hosts the
        desk, and this instance never runs a cycle of it."""
        return self._loop.hosted

    @hosts_loop.setter
    def hosts_loop(self, value: bool) -> None:
        self._loop.hosted = bool(value)

    async def stop(self) -> dict[str, Any]:
        await self.ensure()
        await self._loop.stop()
        return await self.status()

    # ------------------------------------------------------------------ kill switch and halts
    async def kill(self, reason: str = "manual", who: str = "api") -> dict[str, Any]:
        """The global kill switch: halt (persisted), stop the loop, close pending approvals, cancel working
        orders and flatten every position through the tools; new entries are refused until ``resume``."""
        await self.ensure()
        killed = await self._halts.kill(reason, who)
        return {**(await self.status()), **killed}

    async def resume(self, who: str = "api") -> dict[str, Any]:
        """Lift a halt (manual or automatic); the loop stays stopped until ``start``."""
        await self.ensure()
        await self._halts.resume(who)
        return await self.status()

    # ------------------------------------------------------------------ status
    async def status(self) -> dict[str, Any]:
        await self.ensure()
        budgets: dict[str, Any] = {}
        for agent_id, entry in self._registry.agents.items():
            b = entry["config"].budget
            tokens, usd = await self.usage.used(agent_id)
            budgets[agent_id] = {
                "tokens_used": tokens,
                "tokens_limit": b.tokens_per_day if b else None,
                "usd_used": round(usd, 6),
                "usd_limit": b.usd_per_day if b else None,
            }
        llm = await self.llm_status_list()
        loop_alive = self._loop.running or not self._loop.hosted  # a non-host reports the stored state
        return {
            "running": bool(self._state.get("running")) and loop_alive,
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
            "agents": [self._registry.describe(a) for a in self._registry.agents],
            "budgets": budgets,
            "llm": llm,
            "degraded": self._halts.observe(llm),
            "event_seq": self._core.seq,
        }

    async def llm_status_list(self) -> list[dict[str, Any]]:
        return await self._registry.llm_status_list()

    async def chat_stream(
        self, messages: list[dict[str, str]], task: str = "market_summary", caller: str = "ui"
    ) -> AsyncIterator[dict[str, Any]]:
        """The LLM chain's answer to ``messages`` as it is produced: ``{"delta": text}`` per chunk, then
        ``{"done": True, provider, model, is_llm, tokens, cost_usd}``; counted in the ledger as ``caller``.
        Errors before the first chunk fail over (the router's policy) or raise, typed."""
        await self.ensure()
        assert self.router is not None
        stream = await self.router.chat(messages, task=task, stream=True, caller=caller)
        try:
            async for chunk in stream:
                yield {"delta": chunk}
        finally:
            await stream.aclose()
        r = stream.result
        yield {
            "done": True,
            "provider": stream.provider,
            "model": stream.model,
            "is_llm": stream.is_llm,
            "prompt_tokens": r.usage.prompt_tokens if r else None,
            "completion_tokens": r.usage.completion_tokens if r else None,
            "cost_usd": r.cost_usd if r else None,
        }

    async def llm_status(self) -> dict[str, Any]:
        """``router.status()`` of the analysis agent's router: health, breaker, tokens and cost."""
        await self.ensure()
        providers = await self.llm_status_list()
        return {
            "providers": providers,
            "all_llms_down": llms_down(providers),
            "degraded": self._halts.observe(providers),
        }

    # ------------------------------------------------------------------ approvals
    async def set_approval_mode(self, on: bool) -> dict[str, Any]:
        await self.ensure()
        await self._approvals.set_mode(on)
        return await self.status()

    async def pending_approvals(self) -> list[dict[str, Any]]:
        await self.ensure()
        return await self._approvals.pending()

    async def approvals(self, limit: int = 50) -> list[dict[str, Any]]:
        await self.ensure()
        return await self._approvals.approvals(limit)

    async def approve(self, approval_id: int, who: str = "api") -> dict[str, Any]:
        """Send a pending proposal through the execution agent (client order id ``desk-<decision_id>``).
        Idempotent: approving again returns the same execution and never sends twice."""
        await self.ensure()
        return await self._approvals.approve(approval_id, who)

    async def reject(self, approval_id: int, who: str = "api", reason: str = "") -> dict[str, Any]:
        await self.ensure()
        return await self._approvals.reject(approval_id, who, reason)

    # ------------------------------------------------------------------ agents
    async def create_agent(
        self, agent_type: str, config: dict[str, Any] | None = None, agent_id: str | None = None
    ) -> dict[str, Any]:
        await self.ensure()
        return await self._registry.create_agent(agent_type, config, agent_id)

    async def list_agents(self) -> list[dict[str, Any]]:
        await self.ensure()
        return await self._registry.list_agents()

    async def get_agent(self, agent_id: str) -> dict[str, Any]:
        """Config, status, recent memory and recent decisions of one agent."""
        await self.ensure()
        return await self._registry.get_agent(agent_id)

    async def update_agent(self, agent_id: str, config: dict[str, Any]) -> dict[str, Any]:
        """Change an agent's config (the given fields; validated; the agent rebuilt on next use)."""
        await self.ensure()
        return await self._registry.update_agent(agent_id, config)

    async def delete_agent(self, agent_id: str) -> dict[str, Any]:
        await self.ensure()
        return await self._registry.delete_agent(agent_id)

    async def agent_task(self, agent_id: str, task: dict[str, Any]) -> dict[str, Any]:
        """Run a seed task on one agent; the task and its result are recorded (agent = ``agent_id``)."""
        await self.ensure()
        return await self._registry.agent_task(agent_id, task)

    # ------------------------------------------------------------------ the decision log
    async def decisions(self, limit: int = 50, symbol: str | None = None) -> list[dict[str, Any]]:
        await self.ensure()
        return await self._decisions.decisions(limit, symbol)

    async def decision(self, decision_id: int) -> dict[str, Any]:
        """The full record: inputs, prompt, provider/model/params, raw answer, parsed result, risk
        verdict, the execution rows and broker orders that followed, and the approval if any."""
        await self.ensure()
        return await self._decisions.decision(decision_id)

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
                await self._host.apply_settings(new)
            self._registry.forget_instances()
            with contextlib.suppress(Exception):
                await old.aclose()
        await self._core.emit("settings", {"keys": sorted(patch)})
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
