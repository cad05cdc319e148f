"""Body of ``nq-ray trade --once``: one desk cycle (analysis → risk → paper execution), recorded in the store.

Tools run in this process over the registry the caller gives (``nq-ray trade --once`` builds it with
``nq_ray.runtime.Runtime``: the paper broker is the ``paper_broker`` actor, on the cluster at
``RAY_ADDRESS`` or a small local Ray).
"""

from __future__ import annotations

import asyncio
from typing import Any

from nq_ray.agents.agents import LocalTools
from nq_ray.agents.service import DeskService
from nq_ray.config import Settings
from nq_ray.llm.router import LLMRouter
from nq_ray.tools.registry import ToolRegistry


async def run_desk(
    settings: Settings,
    *,
    symbol: str = "NQ",
    registry: ToolRegistry,
    router: LLMRouter | None = None,
    clock: Any = None,
) -> dict[str, Any]:
    """One ``DeskService.run_once`` over ``settings`` and ``registry`` — the desk's own cycle, so a halted
    desk, approval mode, memory and budgets apply as in the loop (``router`` is a seam for tests);
    ``clock`` is the runtime's exchange clock (default the wall clock)."""
    kw: dict[str, Any] = {} if clock is None else {"clock": clock.now, "sleep": clock.sleep}
    service = DeskService(settings, tools=LocalTools(registry), router=router, **kw)
    try:
        return await service.run_once(symbol)
    finally:
        await service.close()


def trade_once(
    settings: Settings,
    *,
    symbol: str = "NQ",
    registry: ToolRegistry,
    router: LLMRouter | None = None,
    clock: Any = None,
) -> dict[str, Any]:
    """Run one desk cycle and return its summary (decision id, view, risk verdict, orders)."""
    return asyncio.run(run_desk(settings, symbol=symbol, registry=registry, router=router, clock=clock))
