"""``GET /health``: each part with its status and latency — MCP, the registry and broker actors, LLM
providers, the database, the cache, the data sources and the market replay — and the exchange clock
(``clock``: wall, or the replay's time, speed, pause and bars). Checks run concurrently, each with a
timeout. What the checks use is imported with this module: a first import inside a check would block the
event loop and time every other check out on a loaded host."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, Literal

from pydantic import BaseModel, Field
from sqlalchemy import text

from nq_ray.config import Settings
from nq_ray.llm.config import LLMConfig
from nq_ray.llm.router import LLMRouter
from nq_ray.ports import PaperBrokerPort
from nq_ray.store.cache import make_cache
from nq_ray.store.db import create_engine
from nq_ray.tools.data import load

Status = Literal["ok", "degraded", "down", "not_configured"]
CHECK_TIMEOUT_S = 3.0
CRITICAL = ("mcp", "database")


class Check(BaseModel):
    status: Status
    latency_ms: float | None = None
    detail: str = ""
    parts: dict[str, Check] | None = Field(default=None, description="per provider / per source")


class Health(BaseModel):
    """``ok`` when every part is; ``degraded`` when a non-critical part is down; ``down`` otherwise."""

    status: Literal["ok", "degraded", "down"]
    checks: dict[str, Check]
    clock: dict[str, Any] = Field(
        default_factory=dict,
        description="the exchange clock: {clock: wall, now} or the replay's state (now, start, until, "
        "speed, paused, ended, source, version) with its bars (released, bars_left, finished, seq)",
    )


async def _timed(fn: Callable[[], Awaitable[Check]]) -> Check:
    t0 = time.perf_counter()
    try:
        out = await asyncio.wait_for(fn(), CHECK_TIMEOUT_S)
    except TimeoutError:
        out = Check(status="down", detail=f"no answer within {CHECK_TIMEOUT_S:g} s")
    except Exception as exc:  # a health check reports failures; it never raises them
        out = Check(status="down", detail=f"{type(exc).__name__}: {exc}"[:300])
    if out.latency_ms is None:
        out.latency_ms = round((time.perf_counter() - t0) * 1000, 2)
    return out


class HealthChecker:
    def __init__(
        self,
        settings: Settings,
        *,
        tools: int,
        registry_actor: Any = None,
        broker: PaperBrokerPort | None = None,
        clock: Callable[[], Awaitable[dict[str, Any]]] | None = None,
    ) -> None:
        self.settings = settings
        self.tools = tools
        self.registry_actor = registry_actor
        self.broker = broker
        self.clock = clock
        self._engine: Any = None

    async def mcp(self) -> Check:
        return Check(status="ok" if self.tools else "down", detail=f"{self.tools} tools")

    async def registry(self) -> Check:
        if self.registry_actor is None:
            return Check(status="not_configured", detail="in-process registry (no Ray)")
        out = await self.registry_actor.ping.remote()
        return Check(status="ok", detail=f"actor tool_registry: {out['jobs_running']} jobs running")

    async def broker_check(self) -> Check:
        if self.broker is None:
            return Check(status="not_configured", detail="paper broker actor not started")
        out = await self.broker.ready()
        return Check(status="ok", detail=f"actor paper_broker: {out['open_orders']} open orders")

    async def database(self) -> Check:
        if self._engine is None:
            self._engine = create_engine(self.settings.store_url)
        async with self._engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        kind = "postgresql" if self.settings.store_url.startswith("postgresql") else "sqlite"
        return Check(status="ok", detail=kind)

    async def cache(self) -> Check:
        if self.settings.cache.url is None:
            return Check(status="ok", detail="in-process")
        cache = make_cache(self.settings.cache)
        await asyncio.to_thread(cache.ping)
        return Check(status="ok", detail="redis")

    async def llm(self) -> Check:
        raw = self.settings.llm
        config = (
            raw if isinstance(raw, LLMConfig) else LLMConfig.model_validate(raw.model_dump(mode="python"))
        )
        # built off the loop: the providers' first import (openai: seconds) would block every other check
        router = await asyncio.to_thread(LLMRouter.from_config, config)
        try:
            reports = await router.check_health()
            configured = {st.name: st.configured for st in router.status()}
        finally:
            await router.aclose()
        parts = {
            name: Check(
                status="ok" if r.healthy else "down" if configured.get(name, True) else "not_configured",
                latency_ms=round(r.latency_s * 1000, 2) if r.latency_s is not None else None,
                detail=r.detail[:200],
            )
            for name, r in reports.items()
        }
        used = [p for p in parts.values() if p.status != "not_configured"]
        healthy = [p for p in used if p.status == "ok"]
        status: Status = "ok" if len(healthy) == len(used) else "degraded" if healthy else "down"
        return Check(
            status=status, detail=f"{len(healthy)}/{len(used)} configured providers healthy", parts=parts
        )

    async def data(self) -> Check:
        t0 = time.perf_counter()
        bars = await asyncio.to_thread(load, self.settings, "NQ", "5m", "sample")
        parts = {
            "sample": Check(
                status="ok",
                latency_ms=round((time.perf_counter() - t0) * 1000, 2),
                detail=f"{len(bars)} NQ 5m bars, last {bars.index[-1].isoformat()} (not live)",
            ),
            "synthetic": Check(status="ok", detail="generator, always available"),
            "yahoo": Check(status="ok", detail="configured; reachability not probed by /health"),
            "tradovate": Check(
                status="ok" if self.settings.data.tradovate.configured else "not_configured",
                detail="credentials set" if self.settings.data.tradovate.configured else "no credentials",
            ),
        }
        return Check(status="ok", detail=f"default source {self.settings.data.default_source}", parts=parts)

    async def market(self, out: dict[str, Any]) -> Check:
        """The exchange clock (put in ``out``, for ``Health.clock``) and, on a replay, its driver."""
        if self.clock is None:
            from nq_ray.market.clock import WallClock

            out |= WallClock().info()
            return Check(status="not_configured", detail="wall clock: no market replay")
        info = await self.clock()
        out |= info
        if info.get("clock") != "replay":
            return Check(status="not_configured", detail="wall clock: no market replay")
        state = "finished" if info.get("finished") else "paused" if info.get("paused") else "running"
        return Check(
            status="ok",
            detail=f"replay {state} at {info.get('now')}, x{info.get('speed')}, "
            f"{info.get('bars_left')} bars left",
        )

    async def run(self) -> Health:
        clock: dict[str, Any] = {}

        async def market() -> Check:
            return await self.market(clock)

        names = ("mcp", "registry", "broker", "database", "cache", "llm", "data", "market")
        fns = (
            self.mcp,
            self.registry,
            self.broker_check,
            self.database,
            self.cache,
            self.llm,
            self.data,
            market,
        )
        results = await asyncio.gather(*(_timed(f) for f in fns))
        checks = dict(zip(names, results, strict=True))
        if any(checks[c].status == "down" for c in CRITICAL):
            overall: Literal["ok", "degraded", "down"] = "down"
        elif any(c.status in ("down", "degraded") for c in checks.values()):
            overall = "degraded"
        else:
            overall = "ok"
        if not clock:  # the replay's driver did not answer: the market check says why
            clock = {"clock": "replay", "error": checks["market"].detail}
        return Health(status=overall, checks=checks, clock=clock)
