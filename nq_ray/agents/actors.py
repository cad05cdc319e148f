"""``DeskActor``: the trading desk as a named Ray actor (``trading_desk``, namespace ``nq``, restartable).

A thin shell: it builds the three agents over the ``tool_registry`` actor (``ActorTools``) and the LLM
router from the settings, and keeps no state of its own — the decision log is in the store, so a
restarted actor answers ``last_decision`` exactly as before.
"""

from __future__ import annotations

import os
from typing import Any

import ray
from sqlalchemy import select

from nq_ray.agents.agents import ActorTools, AnalysisAgent, ExecutionAgent, RiskAgent
from nq_ray.agents.desk import TradingDesk
from nq_ray.config import Settings
from nq_ray.errors import InvalidArgumentError
from nq_ray.llm.router import LLMRouter
from nq_ray.store.models import AgentDecisionRow
from nq_ray.store.repository import Repository
from nq_ray.tools.actor import ACTOR_NAME as REGISTRY_NAME
from nq_ray.tools.actor import NAMESPACE, get_or_create_registry

ACTOR_NAME = "trading_desk"


@ray.remote(num_cpus=0, max_concurrency=4)  # type: ignore[call-overload]
class DeskActor:
    """Remote face of ``TradingDesk`` and of its agents' ``execute_task``."""

    def __init__(self, settings: Settings, registry_name: str = REGISTRY_NAME) -> None:
        self.settings = settings
        tools = ActorTools(get_or_create_registry(settings, name=registry_name))
        self.router = LLMRouter.from_config(settings.llm)
        self.analysis = AnalysisAgent(tools, self.router)
        self.risk = RiskAgent(tools)
        self.execution = ExecutionAgent(tools)
        self._repo: Repository | None = None

    async def ready(self) -> dict[str, Any]:
        """Liveness and the process id (changes on a restart)."""
        return {"pid": os.getpid()}

    async def _repository(self) -> Repository:
        if self._repo is None:
            self._repo = await Repository.connect(self.settings.store_url)
        return self._repo

    async def run_once(self, symbol: str = "NQ") -> dict[str, Any]:
        desk = TradingDesk(self.analysis, self.risk, self.execution, await self._repository())
        return await desk.run_once(symbol)

    async def execute_task(self, task: dict[str, Any]) -> dict[str, Any]:
        """The seed's task interface: ``market_analysis``, ``assess_risk`` or ``place_trade``."""
        for agent in (self.analysis, self.risk, self.execution):
            if task.get("type") in agent.handlers():
                return await agent.execute_task(task)
        raise InvalidArgumentError(
            f"unknown task type {task.get('type')!r}; use market_analysis, assess_risk or place_trade"
        )

    async def last_decision(self) -> dict[str, Any] | None:
        """The desk's latest decision row from the store (its state survives a restart)."""
        repo = await self._repository()
        q = select(AgentDecisionRow).where(AgentDecisionRow.agent == TradingDesk.agent_id)
        async with repo.sessions() as s:
            row = await s.scalar(q.order_by(AgentDecisionRow.id.desc()).limit(1))
        if row is None:
            return None
        return {"id": row.id, "at": row.at.isoformat(), "symbol": row.symbol, "action": row.action}


def get_or_create_desk(
    settings: Settings,
    *,
    name: str = ACTOR_NAME,
    namespace: str = NAMESPACE,
    registry_name: str = REGISTRY_NAME,
) -> Any:
    """The handle of the named desk actor, created (detached, restartable) when it does not exist."""
    return DeskActor.options(  # type: ignore[attr-defined]
        name=name,
        namespace=namespace,
        lifetime="detached",
        get_if_exists=True,
        max_restarts=-1,
        max_task_retries=0,
    ).remote(settings, registry_name)
