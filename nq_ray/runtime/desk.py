"""The desk on Ray: ``DeskActor`` (named ``trading_desk``) wraps ``DeskService`` 1:1, and each agent is a
named actor ``agent-<agent_id>`` (``AgentActor``). All are namespace ``nq``, detached and restartable
(``max_restarts=-1``); they keep no state the store does not have, so a restart rebuilds them as they were.

Settings: each actor is created with the start-up settings and, when it starts or restarts, runs with them
plus the live settings overlay in the store (``nq_ray.store.live``), the one copy ``PATCH /api/config``
writes; pushes (``apply_settings``) bring later changes. The desk's halt is its persisted state, which
the paper broker reads from the store before each order decision, so a restarted desk or broker is still
halted and no caller — desk, API or MCP — gets a new entry past it.

Agent actors retry a call cut short by their own death (``max_task_retries=-1``): analysis is read-only,
and an order carries ``desk-<decision_id>`` as client order id, which the broker de-duplicates, so a retry
never sends twice. The desk actor does not retry (a cycle recorded and cut short is finished by
``DeskService``'s recovery when the actor comes back).
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import AsyncIterator
from typing import Any

import ray

from nq_ray.agents.agents import (
    AnalysisAgent,
    ExecutionAgent,
    MemoryManager,
    RiskAgent,
    UsageBook,
)
from nq_ray.agents.models import AgentConfig, AnalysisReport, ExecutionReport, RiskAssessment
from nq_ray.agents.service import DeskService
from nq_ray.agents.service.registry import agent_options
from nq_ray.config import Settings
from nq_ray.errors import InvalidArgumentError
from nq_ray.runtime.cluster import NAMESPACE, RemoteMethods, find_actor, named_actor
from nq_ray.runtime.registry import ACTOR_NAME as REGISTRY_NAME
from nq_ray.runtime.registry import RayTools, get_or_create_registry
from nq_ray.runtime.replay import clock_for

ACTOR_NAME = "trading_desk"
AGENT_METHODS = frozenset(
    {
        "analyze_market",
        "assess_trade",
        "execute_trade",
        "execute_task",
        "remember_decision",
        "remember",
        "get_recent_memory",
        "get_memory_by_type",
        "llm_status",
    }
)


def agent_actor_name(agent_id: str) -> str:
    return f"agent-{agent_id}"


@ray.remote(num_cpus=0, max_concurrency=8)  # type: ignore[call-overload]
class AgentActor:
    """One agent (analysis, risk or execution) built from its config; memory and usage in the store."""

    def __init__(
        self,
        settings: Settings,
        agent_type: str,
        agent_id: str,
        config: dict[str, Any],
        registry_name: str = REGISTRY_NAME,
    ) -> None:
        self.start = settings  # the start-up settings (the registry is created with these)
        self.settings = settings
        self._pushed = False  # True once the desk pushed settings (they include the live overlay)
        self.agent_type = agent_type
        self.agent_id = agent_id
        self.config = AgentConfig.model_validate(config)
        self.registry_name = registry_name
        self.clock = clock_for(settings)  # the exchange clock: memory times and budgets' "today"
        self._agent: Any = None
        self._repo: Any = None
        self._router: Any = None

    async def ready(self) -> dict[str, Any]:
        return {"pid": os.getpid(), "agent_id": self.agent_id}

    async def _build(self) -> Any:
        if self._agent is not None:
            return self._agent
        from nq_ray.llm.router import LLMRouter
        from nq_ray.store.desk import DeskStore
        from nq_ray.store.repository import Repository

        if self._repo is None:
            self._repo = await Repository.connect(self.settings.store_url)
        if not self._pushed:  # (re)started: the start-up settings plus the store's live overlay
            from nq_ray.store.live import effective_settings, read_overlay

            self.settings, _ = effective_settings(self.start, await read_overlay(self._repo))
        tools = RayTools(get_or_create_registry(self.start, name=self.registry_name))
        memory = MemoryManager(self._repo, clock=self.clock.now)
        self._router = LLMRouter.from_config(self.settings.llm)  # all three agents ask its LLMs
        usage = UsageBook(DeskStore(self._repo), clock=self.clock.now)
        if self.agent_type == "analysis":
            self._agent = AnalysisAgent(
                tools, self._router, agent_id=self.agent_id, config=self.config, memory=memory, usage=usage
            )
        else:
            opts = {"router": self._router, "usage": usage, **agent_options(self.settings, self.agent_type)}
            cls = RiskAgent if self.agent_type == "risk" else ExecutionAgent
            self._agent = cls(tools, agent_id=self.agent_id, config=self.config, memory=memory, **opts)
        return self._agent

    async def call(self, method: str, args: list[Any], kwargs: dict[str, Any]) -> Any:
        if method not in AGENT_METHODS:
            raise InvalidArgumentError(f"agent actors do not run {method!r}")
        agent = await self._build()
        fn = getattr(agent, method, None)
        if fn is None:
            raise InvalidArgumentError(f"a {self.agent_type} agent has no {method!r}")
        try:
            out = await fn(*args, **kwargs)
        except ray.exceptions.ActorDiedError:
            # the tool registry this agent holds a handle to was killed for good (an operator's
            # `ray kill`, a stale runtime's cleanup) and made anew under its name: build the agent over
            # the new handle and try once more (orders carry client order ids, so a retry never doubles)
            await self._drop_agent()
            out = await getattr(await self._build(), method)(*args, **kwargs)
        return out.model_dump(mode="json") if hasattr(out, "model_dump") else out

    async def _drop_agent(self) -> None:
        if self._router is not None:
            await self._router.aclose()
        self._agent = self._router = None

    async def apply_settings(self, settings: Settings) -> None:
        self.settings = settings
        self._pushed = True
        await self._drop_agent()


class RemoteAgent(RemoteMethods):
    """The agent interface the desk uses, forwarded to an ``AgentActor``; answers come back typed."""

    def __init__(self, handle: Any, agent_id: str, agent_type: str) -> None:
        super().__init__(handle)
        self.agent_id = agent_id
        self.agent_type = agent_type

    async def _call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return await super()._call("call", method, list(args), kwargs)

    async def analyze_market(
        self, symbol: str = "NQ", analysis_depth: str = "standard", timeframe: str | None = None
    ) -> AnalysisReport:
        return AnalysisReport.model_validate(
            await self._call("analyze_market", symbol, analysis_depth, timeframe)
        )

    async def assess_trade(self, analysis: AnalysisReport | dict[str, Any]) -> RiskAssessment:
        data = analysis.model_dump(mode="json") if isinstance(analysis, AnalysisReport) else analysis
        return RiskAssessment.model_validate(await self._call("assess_trade", data))

    async def execute_trade(
        self, assessment: RiskAssessment | dict[str, Any], client_order_id: str | None = None
    ) -> ExecutionReport:
        data = assessment.model_dump(mode="json") if isinstance(assessment, RiskAssessment) else assessment
        return ExecutionReport.model_validate(await self._call("execute_trade", data, client_order_id))

    async def remember_decision(self, decision_id: int, report: AnalysisReport | dict[str, Any]) -> int:
        data = report.model_dump(mode="json") if isinstance(report, AnalysisReport) else report
        out: int = await self._call("remember_decision", decision_id, data)
        return out

    async def execute_task(self, task: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = await self._call("execute_task", json.loads(json.dumps(task, default=str)))
        return out

    async def get_recent_memory(self, n: int = 10) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = await self._call("get_recent_memory", n)
        return out

    async def get_memory_by_type(self, type: str, n: int = 10) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = await self._call("get_memory_by_type", type, n)
        return out

    async def llm_status(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = await self._call("llm_status")
        return out


class RayAgentHost:
    """Agents as named, restartable actors ``agent-<agent_id>`` over the ``tool_registry`` actor."""

    def __init__(
        self,
        settings: Settings,
        *,
        registry_name: str = REGISTRY_NAME,
        prefix: str = "",
        start: Settings | None = None,
    ) -> None:
        self.settings = settings
        self.start = start or settings  # what new agent actors are created with (see the module docstring)
        self.registry_name = registry_name
        self.prefix = prefix  # isolates tests that share one Ray instance

    def name(self, agent_id: str) -> str:
        return agent_actor_name(self.prefix + agent_id)

    def build(self, agent_type: str, agent_id: str, config: AgentConfig) -> RemoteAgent:
        handle = named_actor(
            AgentActor,
            self.name(agent_id),
            self.start,
            agent_type,
            agent_id,
            config.model_dump(mode="json"),
            self.registry_name,
            max_task_retries=-1,
        )
        return RemoteAgent(handle, agent_id, agent_type)

    def remove(self, agent_id: str) -> None:
        handle = find_actor(self.name(agent_id))
        if handle is not None:
            with contextlib.suppress(ValueError):
                ray.kill(handle, no_restart=True)

    async def apply_settings(self, settings: Settings) -> None:
        self.settings = settings
        # new actors pick the settings up when the desk rebuilds its agents; running ones are told now
        for info in ray.util.list_named_actors(all_namespaces=True):
            name = info["name"] if isinstance(info, dict) else info
            if isinstance(name, str) and name.startswith(agent_actor_name(self.prefix)):
                handle = find_actor(name)
                if handle is not None:
                    await handle.apply_settings.remote(settings)


def _redis_publisher(url: str) -> Any:
    """``publish(event, data)`` onto the Redis channel the serve layer's ``EventBus`` listens on."""
    from datetime import UTC, datetime

    import redis.asyncio as aioredis

    client = aioredis.from_url(url)

    async def publish(event: str, data: dict[str, Any]) -> None:
        msg = {"type": event, "at": datetime.now(UTC).isoformat(), "data": data}
        await client.publish("nq:events", json.dumps(msg, default=str))

    return publish


@ray.remote(num_cpus=0, max_concurrency=16)  # type: ignore[call-overload]
class DeskActor:
    """Remote face of ``DeskService``: the same methods, the same answers."""

    def __init__(
        self, settings: Settings, registry_name: str = REGISTRY_NAME, agent_prefix: str = ""
    ) -> None:
        from nq_ray.store.live import effective_settings, read_live_sync

        start = settings
        live = read_live_sync(start.store_url)
        settings, self.stale = effective_settings(start, live.overlay)
        self.settings_version = live.overlay.version
        publish = _redis_publisher(settings.cache.url) if settings.cache.url else None
        self.clock = clock_for(start)  # the exchange clock: the wall clock, or the replay's (followed)
        self.service = DeskService(
            settings,
            tools=RayTools(get_or_create_registry(start, name=registry_name)),
            host=RayAgentHost(settings, registry_name=registry_name, prefix=agent_prefix, start=start),
            publish=publish,
            clock=self.clock.now,
            sleep=self.clock.sleep,
        )

    async def ready(self) -> dict[str, Any]:
        """Liveness and the process id (changes on a restart); brings the service up."""
        await self.service.ensure()
        return {"pid": os.getpid()}

    async def run_once(self, symbol: str = "NQ") -> dict[str, Any]:
        return await self.service.run_once(symbol)

    async def start(self, symbols: list[str] | None = None, cadence_s: float | None = None) -> dict[str, Any]:
        return await self.service.start(symbols, cadence_s)

    async def stop(self) -> dict[str, Any]:
        return await self.service.stop()

    async def set_windows(self, windows: str) -> dict[str, Any]:
        return await self.service.set_windows(windows)

    async def kill(self, reason: str = "manual", who: str = "api") -> dict[str, Any]:
        return await self.service.kill(reason, who)

    async def resume(self, who: str = "api") -> dict[str, Any]:
        return await self.service.resume(who)

    async def status(self) -> dict[str, Any]:
        return await self.service.status()

    async def llm_status(self) -> dict[str, Any]:
        return await self.service.llm_status()

    async def chat_stream(
        self, messages: list[dict[str, str]], task: str = "market_summary", caller: str = "ui"
    ) -> AsyncIterator[dict[str, Any]]:
        """A streaming generator (call it with ``.options(num_returns="streaming")``)."""
        async for event in self.service.chat_stream(messages, task, caller):
            yield event

    async def set_approval_mode(self, on: bool) -> dict[str, Any]:
        return await self.service.set_approval_mode(on)

    async def pending_approvals(self) -> list[dict[str, Any]]:
        return await self.service.pending_approvals()

    async def approvals(self, limit: int = 50) -> list[dict[str, Any]]:
        return await self.service.approvals(limit)

    async def approve(self, approval_id: int, who: str = "api") -> dict[str, Any]:
        return await self.service.approve(approval_id, who)

    async def reject(self, approval_id: int, who: str = "api", reason: str = "") -> dict[str, Any]:
        return await self.service.reject(approval_id, who, reason)

    async def create_agent(
        self, agent_type: str, config: dict[str, Any] | None = None, agent_id: str | None = None
    ) -> dict[str, Any]:
        return await self.service.create_agent(agent_type, config, agent_id)

    async def list_agents(self) -> list[dict[str, Any]]:
        return await self.service.list_agents()

    async def get_agent(self, agent_id: str) -> dict[str, Any]:
        return await self.service.get_agent(agent_id)

    async def update_agent(self, agent_id: str, config: dict[str, Any]) -> dict[str, Any]:
        return await self.service.update_agent(agent_id, config)

    async def delete_agent(self, agent_id: str) -> dict[str, Any]:
        return await self.service.delete_agent(agent_id)

    async def agent_task(self, agent_id: str, task: dict[str, Any]) -> dict[str, Any]:
        return await self.service.agent_task(agent_id, task)

    async def decisions(self, limit: int = 50, symbol: str | None = None) -> list[dict[str, Any]]:
        return await self.service.decisions(limit, symbol)

    async def decision(self, decision_id: int) -> dict[str, Any]:
        return await self.service.decision(decision_id)

    async def apply_settings(self, patch: dict[str, Any]) -> dict[str, Any]:
        return await self.service.apply_settings(patch)

    async def events_since(self, seq: int = 0) -> list[dict[str, Any]]:
        return await self.service.events_since(seq)

    async def execute_task(self, task: dict[str, Any]) -> dict[str, Any]:
        """The seed's task interface on the desk's default agents (by task type)."""
        kind = task.get("type") if isinstance(task, dict) else None
        owner = {
            "market_analysis": "analysis_agent",
            "pattern_recognition": "analysis_agent",
            "market_summary": "analysis_agent",
            "assess_risk": "risk_agent",
            "place_trade": "execution_agent",
            "manage_position": "execution_agent",
        }.get(str(kind))
        if owner is None:
            raise InvalidArgumentError(
                f"unknown task type {kind!r}; use market_analysis, pattern_recognition, market_summary, "
                "assess_risk, place_trade or manage_position"
            )
        return (await self.service.agent_task(owner, task))["result"]

    async def last_decision(self) -> dict[str, Any] | None:
        """The desk's latest decision from the store (its state survives a restart)."""
        rows = await self.service.decisions(limit=1)
        return rows[0] if rows else None


def get_or_create_desk(
    settings: Settings,
    *,
    name: str = ACTOR_NAME,
    namespace: str = NAMESPACE,
    registry_name: str = REGISTRY_NAME,
    agent_prefix: str | None = None,
) -> Any:
    """The handle of the named desk actor, created (detached, restartable) when it does not exist. Its
    agents are actors ``agent-<prefix><id>``; the prefix defaults to ``<name>-`` for any desk but the
    default one, so two desks in one cluster never share an agent actor."""
    if agent_prefix is None:
        agent_prefix = "" if name == ACTOR_NAME else f"{name}-"
    return named_actor(
        DeskActor, name, settings, registry_name, agent_prefix, namespace=namespace, max_task_retries=0
    )


class RayDesk(RemoteMethods):
    """``DeskPort`` over the ``trading_desk`` actor: the ``DeskService`` methods the loop uses, as plain
    async methods (the actor's answers, typed errors raised as themselves)."""

    async def ready(self) -> dict[str, Any]:
        out: dict[str, Any] = await self._call("ready")
        return out

    async def start(self, symbols: list[str] | None = None, cadence_s: float | None = None) -> dict[str, Any]:
        out: dict[str, Any] = await self._call("start", symbols, cadence_s)
        return out

    async def stop(self) -> dict[str, Any]:
        out: dict[str, Any] = await self._call("stop")
        return out

    async def set_windows(self, windows: str) -> dict[str, Any]:
        out: dict[str, Any] = await self._call("set_windows", windows)
        return out

    async def set_approval_mode(self, on: bool) -> dict[str, Any]:
        out: dict[str, Any] = await self._call("set_approval_mode", on)
        return out

    async def events_since(self, seq: int = 0) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = await self._call("events_since", seq)
        return out

    async def decision(self, decision_id: int) -> dict[str, Any]:
        out: dict[str, Any] = await self._call("decision", decision_id)
        return out

    async def list_agents(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = await self._call("list_agents")
        return out

    async def agent_task(self, agent_id: str, task: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = await self._call("agent_task", agent_id, task)
        return out
