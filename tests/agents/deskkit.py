"""Shared parts of the desk tests: a real paper broker actor on a temp store, the tool registry over it,
a settable clock, and a ``DeskService`` built over them (in process)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from nq_ray.agents.agents import LocalTools
from nq_ray.agents.service import DeskService
from nq_ray.config import Settings
from nq_ray.llm.config import LLMConfig, ProviderConfig
from nq_ray.llm.router import LLMRouter
from nq_ray.store.repository import Repository
from nq_ray.testing.llm_server import ScriptedLLMServer
from nq_ray.tools.context import ToolContext
from nq_ray.tools.registry import ToolRegistry, build_registry

RULES = ProviderConfig(name="rules", kind="rules", model="nq-rules-v1", priority=1000)
# the sample's last 5-minute bar: Tuesday 2026-04-28 23:35 New York (Globex open, outside RTH)
LAST_BAR = datetime(2026, 4, 29, 3, 35, tzinfo=UTC)


class Clock:
    """A clock tests move by hand (``advance``) — the desk's only notion of "now"."""

    def __init__(self, at: datetime = LAST_BAR) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at

    def advance(self, seconds: float) -> None:
        self.at += timedelta(seconds=seconds)


def make_settings(tmp_path: Path, llm: LLMConfig | None = None, store_url: str | None = None) -> Settings:
    kw: dict[str, Any] = {"data": {"data_dir": str(tmp_path / "data")}}
    if store_url is not None:
        kw["store"] = {"url": store_url}
    return Settings(**kw, llm=llm or LLMConfig(providers=[RULES], health_interval_s=0))


@contextmanager
def broker_registry(ray: Any, settings: Settings, nq_5m: Any) -> Iterator[tuple[ToolRegistry, Any]]:
    """Every tool over a real paper broker actor (unique name, the temp store), its clock at the sample's
    last bar; yields (registry, broker handle) and kills the broker afterwards."""
    from nq_ray.runtime.broker import RayBroker, get_or_create_broker

    name = f"paper_broker_svc_{uuid.uuid4().hex[:8]}"
    handle = get_or_create_broker(settings, name=name, clock="bar")
    ray.get(handle.on_price.remote("NQ", float(nq_5m["close"].iloc[-1]), nq_5m.index[-1].to_pydatetime()))
    try:
        yield (
            build_registry(ToolContext(settings=settings, broker_factory=lambda s: RayBroker(handle))),
            handle,
        )
    finally:
        ray.kill(handle)


async def make_service(
    settings: Settings,
    registry: ToolRegistry,
    *,
    clock: Clock | None = None,
    router: LLMRouter | None = None,
    **kw: Any,
) -> DeskService:
    repo = await Repository.connect(settings.store_url)
    svc = DeskService(
        settings,
        repo=repo,
        tools=LocalTools(registry),
        router=router or LLMRouter.from_config(settings.llm),
        clock=clock or Clock(),
        **kw,
    )
    svc._own_repo = True  # close() closes the repository it was given
    await svc.ensure()
    return svc


def orders_for(broker: Any, ray: Any, client_order_id: str) -> list[Any]:
    return [o for o in ray.get(broker.orders.remote()) if o.client_order_id == client_order_id]


def analysis_requests(srv: ScriptedLLMServer) -> list[dict[str, Any]]:
    """The requests the analysis agent made of ``srv`` (its ``analysis_base`` system prompt): the risk and
    execution agents ask the same LLM for a narrative and an order plan, only when there is a trade."""
    return [
        r
        for r in srv.requests
        if any("Your job: technical analysis" in str(m.get("content")) for m in r.get("messages", []))
    ]
