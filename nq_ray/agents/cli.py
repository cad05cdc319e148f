"""Body of ``nq-ray trade --once``: one desk cycle (analysis → risk → paper execution), recorded in the store.

Tools run in this process; the paper broker is the ``paper_broker`` actor, so Ray is joined
(``RAY_ADDRESS``) or a small local Ray is started when none is running.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from nq_ray.agents.agents import LocalTools
from nq_ray.agents.service import DeskService
from nq_ray.config import Settings
from nq_ray.llm.router import LLMRouter
from nq_ray.tools.context import ToolContext
from nq_ray.tools.registry import ToolRegistry, build_registry


def _broker(settings: Settings) -> Any:
    """The ``paper_broker`` actor, joining or starting Ray first."""
    import ray

    from nq_ray.execution.actor import get_or_create_broker

    if not ray.is_initialized():
        address = os.environ.get("RAY_ADDRESS") or None
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        if address is None:
            os.environ.setdefault("RAY_AUTH_MODE", "disabled")
        ray.init(address=address, namespace="nq", log_to_driver=False, configure_logging=False)
    return get_or_create_broker(settings)


async def run_desk(
    settings: Settings,
    *,
    symbol: str = "NQ",
    registry: ToolRegistry | None = None,
    router: LLMRouter | None = None,
) -> dict[str, Any]:
    """One ``DeskService.run_once`` over ``settings`` — the desk's own cycle, so a halted desk, approval
    mode, memory and budgets apply as in the loop (registry and router are seams for tests)."""
    registry = registry or build_registry(ToolContext(settings=settings, broker_factory=_broker))
    service = DeskService(settings, tools=LocalTools(registry), router=router)
    try:
        return await service.run_once(symbol)
    finally:
        await service.close()


def trade_once(
    settings: Settings,
    *,
    symbol: str = "NQ",
    registry: ToolRegistry | None = None,
    router: LLMRouter | None = None,
) -> dict[str, Any]:
    """Run one desk cycle and return its summary (decision id, view, risk verdict, orders)."""
    return asyncio.run(run_desk(settings, symbol=symbol, registry=registry, router=router))
