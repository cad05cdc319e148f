"""The desk's agent registry: where agents live (``AgentHost``), their configurations in the store, and
create / list / get / delete / task. The three default agents always exist and cannot be deleted."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import asdict
from datetime import datetime
from typing import Any, Protocol

from pydantic import ValidationError

from nq_ray.agents.agents import (
    AnalysisAgent,
    ExecutionAgent,
    MemoryManager,
    RiskAgent,
    Tools,
    UsageBook,
)
from nq_ray.agents.desk import TradingDesk
from nq_ray.agents.models import AgentConfig
from nq_ray.agents.service.halts import DeskHaltedError
from nq_ray.agents.service.state import DeskCore
from nq_ray.errors import InvalidArgumentError, NotFoundError
from nq_ray.llm.router import LLMRouter
from nq_ray.store.desk import DeskStore
from nq_ray.store.repository import Repository

AGENT_TYPES = ("analysis", "risk", "execution")
DEFAULT_AGENTS = {"analysis": "analysis_agent", "risk": "risk_agent", "execution": "execution_agent"}
COMMON_TASKS = ("get_memory_by_type", "get_recent_memory", "update_context")
AGENT_TASKS = {  # the task types each kind of agent runs (its ``execute_task`` handlers; tested equal)
    "analysis": ("market_analysis", "market_summary", "pattern_recognition", *COMMON_TASKS),
    "risk": ("assess_risk", *COMMON_TASKS),
    "execution": ("manage_position", "place_trade", *COMMON_TASKS),
}


class AgentHost(Protocol):
    """Where agents live: in this process, or as named Ray actors (``actors.RayAgentHost``)."""

    def build(self, agent_type: str, agent_id: str, config: AgentConfig) -> Any: ...

    def remove(self, agent_id: str) -> None: ...


def agent_options(settings: Any, agent_type: str) -> dict[str, Any]:
    """What the settings' ``desk`` section sets for an agent of ``agent_type``: the risk agent's sizing
    (``risk_pct``, ``atr_multiple``), the execution agent's ``entry_order``."""
    d = settings.desk
    if agent_type == "risk":
        return {"risk_pct": d.risk_pct, "atr_multiple": d.atr_multiple}
    if agent_type == "execution":
        return {"entry_order": d.entry_order}
    return {}


class LocalAgentHost:
    """Agents as objects in this process, over ``tools`` and ``router``, memory and usage in the store."""

    def __init__(
        self,
        tools: Tools,
        router: LLMRouter,
        repo: Repository,
        clock: Callable[[], datetime],
        settings: Any = None,
    ):
        self.tools, self.router, self.repo, self.clock = tools, router, repo, clock
        self.settings = settings  # its desk section's agent options (None: the agents' defaults)

    def _options(self, agent_type: str) -> dict[str, Any]:
        return {} if self.settings is None else agent_options(self.settings, agent_type)

    def build(self, agent_type: str, agent_id: str, config: AgentConfig) -> Any:
        memory = MemoryManager(self.repo, clock=self.clock)
        usage = UsageBook(DeskStore(self.repo), clock=self.clock)
        if agent_type == "analysis":
            return AnalysisAgent(
                self.tools, self.router, agent_id=agent_id, config=config, memory=memory, usage=usage
            )
        # the risk and execution agents ask the same router's LLMs (a narrative, an order plan)
        thinks = {"router": self.router, "usage": usage, **self._options(agent_type)}
        if agent_type == "risk":
            return RiskAgent(self.tools, agent_id=agent_id, config=config, memory=memory, **thinks)
        return ExecutionAgent(self.tools, agent_id=agent_id, config=config, memory=memory, **thinks)

    def remove(self, agent_id: str) -> None:
        return None


class AgentRegistry:
    """The desk's agents by id: configurations persisted in the store, instances built on first use."""

    def __init__(self, core: DeskCore, agent_id: str) -> None:
        self.core = core
        self.agent_id = agent_id  # the desk's own id in the decision log
        self.agents: dict[str, dict[str, Any]] = {}

    async def load(self) -> None:
        """The agents recorded in the store, plus the default ones where missing."""
        for row in await self.core.store.agents():
            self.agents[row["agent_id"]] = {
                "agent_type": row["agent_type"],
                "config": AgentConfig.model_validate(row["config"]),
                "created_at": row["created_at"],
                "agent": None,
            }
        for agent_type, agent_id in DEFAULT_AGENTS.items():
            if agent_id not in self.agents:
                await self.put(agent_type, agent_id, AgentConfig())

    async def put(self, agent_type: str, agent_id: str, config: AgentConfig) -> None:
        core = self.core
        await core.store.put_agent(agent_id, agent_type, config.model_dump(mode="json"), at=core.clock())
        self.agents[agent_id] = {
            "agent_type": agent_type,
            "config": config,
            "created_at": core.clock().isoformat(),
            "agent": None,
        }

    def agent(self, agent_id: str) -> Any:
        entry = self.agents.get(agent_id)
        if entry is None:
            raise self._unknown(agent_id)
        if entry["agent"] is None:
            assert self.core.host is not None
            entry["agent"] = self.core.host.build(entry["agent_type"], agent_id, entry["config"])
        return entry["agent"]

    def _unknown(self, agent_id: str) -> NotFoundError:
        known = sorted(self.agents)
        return NotFoundError(
            f"no agent {agent_id!r}; the desk's agents are {', '.join(known)} (list them with list_agents())",
            agent_id=agent_id,
            known=known,
        )

    def forget_instances(self) -> None:
        """Drop the built agents (they are rebuilt on next use, e.g. over a new router)."""
        for e in self.agents.values():
            e["agent"] = None

    def desk(self) -> TradingDesk:
        """The default agents as one ``TradingDesk`` over the store."""
        assert self.core.repo is not None
        return TradingDesk(
            self.agent(DEFAULT_AGENTS["analysis"]),
            self.agent(DEFAULT_AGENTS["risk"]),
            self.agent(DEFAULT_AGENTS["execution"]),
            self.core.repo,
            clock=self.core.clock,
            store=self.core.store,
        )

    async def llm_status_list(self) -> list[dict[str, Any]]:
        try:
            out: list[dict[str, Any]] = await self.agent(DEFAULT_AGENTS["analysis"]).llm_status()
            return out
        except NotFoundError:
            assert self.core.router is not None
            return [asdict(p) for p in self.core.router.status()]

    def describe(self, agent_id: str) -> dict[str, Any]:
        e = self.agents[agent_id]
        return {
            "agent_id": agent_id,
            "agent_type": e["agent_type"],
            "tasks": sorted(AGENT_TASKS.get(e["agent_type"], COMMON_TASKS)),
            "config": e["config"].model_dump(mode="json"),
            "created_at": e["created_at"],
            "default": agent_id in DEFAULT_AGENTS.values(),
        }

    async def create_agent(
        self, agent_type: str, config: dict[str, Any] | None = None, agent_id: str | None = None
    ) -> dict[str, Any]:
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
        if agent_id in self.agents:
            raise InvalidArgumentError(f"agent {agent_id!r} already exists", agent_id=agent_id)
        await self.put(agent_type, agent_id, cfg)
        self.agent(agent_id)  # build it now: a bad provider fails here, not on first use
        await self.core.emit("agent_created", {"agent_id": agent_id, "agent_type": agent_type})
        return self.describe(agent_id)

    async def _check_config(self, cfg: AgentConfig) -> None:
        if cfg.provider is not None:
            names = [p["name"] for p in await self.llm_status_list()]
            assert self.core.router is not None
            names = sorted(set(names) | {p.name for p in self.core.router.config.resolved()})
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
        return [self.describe(a) for a in self.agents]

    async def get_agent(self, agent_id: str) -> dict[str, Any]:
        """Config, status, recent memory and recent decisions of one agent."""
        core = self.core
        agent = self.agent(agent_id)
        decisions = await core.store.decisions(agent=agent_id, limit=20)
        if agent_id in DEFAULT_AGENTS.values():
            decisions = (await core.store.decisions(agent=self.agent_id, limit=20)) + decisions
        tokens, usd = await core.usage.used(agent_id)
        return {
            **self.describe(agent_id),
            "status": {
                "halted": bool(core.state.get("halted")),
                "tokens_used_today": tokens,
                "usd_used_today": round(usd, 6),
            },
            # the task, not the seed's blocking call: the desk's event loop never waits on a store query
            "memory": (await agent.execute_task({"type": "get_recent_memory", "parameters": {"n": 20}}))[
                "data"
            ]["memories"],
            "recent_decisions": decisions[:20],
        }

    async def update_agent(self, agent_id: str, config: dict[str, Any]) -> dict[str, Any]:
        """Change an agent's config: ``config``'s keys replace the current ones (a merge patch of one
        level: ``{"prompts": {...}}`` replaces the whole map), validated as at creation; the agent is
        rebuilt on its next use with the new config (its memory and decisions stay)."""
        entry = self.agents.get(agent_id)
        if entry is None:
            raise self._unknown(agent_id)
        if not isinstance(config, dict) or not config:
            raise InvalidArgumentError("config must be a non-empty object of AgentConfig fields")
        merged = entry["config"].model_dump(mode="json") | config
        try:
            cfg = AgentConfig.model_validate(merged)
        except ValidationError as exc:
            detail = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            raise InvalidArgumentError(f"invalid agent config: {detail}") from None
        await self._check_config(cfg)
        assert self.core.host is not None
        self.core.host.remove(agent_id)
        created_at = entry["created_at"]
        await self.put(entry["agent_type"], agent_id, cfg)
        self.agents[agent_id]["created_at"] = created_at
        await self.core.emit("agent_updated", {"agent_id": agent_id, "fields": sorted(config)})
        return self.describe(agent_id)

    async def delete_agent(self, agent_id: str) -> dict[str, Any]:
        self.agent(agent_id)
        if agent_id in DEFAULT_AGENTS.values():
            raise InvalidArgumentError(
                f"{agent_id} is one of the desk's default agents and cannot be deleted"
            )
        await self.core.store.delete_agent(agent_id)
        self.agents.pop(agent_id, None)
        assert self.core.host is not None
        self.core.host.remove(agent_id)
        await self.core.emit("agent_deleted", {"agent_id": agent_id})
        return {"agent_id": agent_id, "deleted": True}

    async def agent_task(self, agent_id: str, task: dict[str, Any]) -> dict[str, Any]:
        """Run a seed task on one agent; the task and its result are recorded (agent = ``agent_id``)."""
        core = self.core
        agent = self.agent(agent_id)
        if not isinstance(task, dict) or not isinstance(task.get("type"), str):
            raise InvalidArgumentError("task must be {'type': ..., 'parameters': {...}}")
        if task["type"] in ("place_trade", "manage_position") and core.state.get("halted"):
            params = task.get("parameters") or {}
            if task["type"] == "place_trade" or params.get("action") not in (
                "status",
                "flatten",
                "flatten_all",
                "partial_close",
                "move_stop",
                "move_target",
            ):
                raise DeskHaltedError(f"the desk is halted ({core.state.get('halt_reason')}); no new entries")
        result = await agent.execute_task(task)
        assert core.repo is not None
        record_id = await core.repo.record_decision(
            at=core.clock(),
            agent=agent_id,
            symbol=(task.get("parameters") or {}).get("symbol"),
            action=task["type"][:32],
            inputs={"task": task},
            decision=result,
        )
        await core.emit("task", {"agent_id": agent_id, "type": task["type"], "record_id": record_id})
        return {
            "agent_id": agent_id,
            "type": task["type"],
            "task": task["type"],  # the name it had first
            "record_id": record_id,
            "result": result,
        }
