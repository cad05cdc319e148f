"""The HTTP app: REST API, WebSocket, health, metrics, and the MCP server mounted at ``/mcp``.

``build_app`` is the builder that ``serve.ingress`` takes (a FastAPI app with a mounted FastMCP app does
not pickle, so each replica builds its own). It is also what ``benchmarks/bench_mcp.py`` runs on plain
uvicorn, so both sides of the comparison serve the same code.

``build_app`` only composes: it builds one replica's parts (settings, registry, event bus, metrics, jobs,
health, the MCP endpoint) and includes one router per area, each in its own module: ``tools_api``
(market and tools), ``jobs_api``, ``operations_api`` (health, metrics, index), ``ws_api`` (WebSocket),
``agents_api`` and ``config_api``; ``problems`` maps errors to problem details, ``replica_sync`` keeps
replicas in step, ``market_feed`` runs the market replay's updates to the WebSocket (a replay driver here
without Ray, a pump from the ``market_replay`` actor on Ray without Redis, nothing with Redis).
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI
from starlette.routing import Mount

from nq_ray.config import Settings, load_settings
from nq_ray.logs import RequestIdMiddleware, configure_logging
from nq_ray.runtime import Runtime
from nq_ray.serve.agents_api import agents_router
from nq_ray.serve.auth import OPEN_PATHS, BearerAuth
from nq_ray.serve.body_limit import BodyLimit
from nq_ray.serve.calendar_api import calendar_router
from nq_ray.serve.catalog_api import catalog_router
from nq_ray.serve.config_api import config_router
from nq_ray.serve.deps import AppDeps
from nq_ray.serve.events import EventBus
from nq_ray.serve.health import HealthChecker
from nq_ray.serve.jobs_api import Jobs, jobs_router
from nq_ray.serve.market_feed import MarketFeed
from nq_ray.serve.mcp_http import MCPEndpoint, MCPResponses, UnknownToolIsProtocolError
from nq_ray.serve.metrics import HTTPCountMiddleware, Metrics
from nq_ray.serve.oauth import ResourceServer, ToolScopeGate, ToolScopes
from nq_ray.serve.operations_api import operations_router
from nq_ray.serve.origin import OriginGuard
from nq_ray.serve.problems import add_problem_handlers, document_problems
from nq_ray.serve.replica_sync import ReplicaSync
from nq_ray.serve.tools_api import market_router, tools_router
from nq_ray.serve.ws_api import ws_router
from nq_ray.tools.audit import ForwardingAuditor
from nq_ray.tools.jobs import JobManager
from nq_ray.tools.mcp import build_mcp

log = logging.getLogger(__name__)


def _ray_up() -> Any:
    ray = sys.modules.get("ray")
    return ray if ray is not None and ray.is_initialized() else None


def _in_serve_replica() -> bool:
    """Whether this app is being built inside a Ray Serve replica (whose HTTP proxy adds X-Request-ID)."""
    serve = sys.modules.get("ray.serve")
    if serve is None:
        return False
    try:
        serve.get_replica_context()
    except Exception:
        return False
    return True


def build_app(
    settings: Settings | dict[str, Any] | None = None,
    *,
    use_actors: bool | None = None,
    cors_origins: list[str] | None = None,
    mcp_responses: MCPResponses = "auto",
    broker_name: str = "paper_broker",
    registry_name: str = "tool_registry",
    desk_name: str = "trading_desk",
    request_id_header: bool | None = None,
) -> FastAPI:
    """The whole HTTP app for one process / Serve replica.

    ``use_actors`` (default: whether Ray is initialised here) routes jobs and audit records to the
    ``tool_registry`` actor and orders to the ``paper_broker`` actor; without it jobs run in-process and
    the audit log is written directly. ``request_id_header`` (default: unless built in a Serve replica,
    whose proxy adds it) says whether the app adds ``X-Request-ID`` to its responses."""
    if settings is None:
        settings = load_settings()
    elif isinstance(settings, dict):
        settings = Settings.model_validate(settings)
    configure_logging(settings)
    ray = _ray_up() if use_actors is not False else None
    runtime = Runtime(
        settings,
        "local" if ray is not None else "in_process",
        broker_name=broker_name,
        registry_name=registry_name,
        desk_name=desk_name,
    )
    registry_actor = runtime.registry_actor() if runtime.on_ray else None

    metrics = Metrics()
    bus = EventBus(settings.cache.url)
    auditor = runtime.auditor()

    async def publish(event: str, data: dict[str, Any]) -> None:
        if event == "order_update":
            orders = [data["order"]] if "order" in data else data.get("orders", [])
            for o in orders:
                metrics.on_order(o)
        await bus.publish(event, data)

    # without Ray: one in-process paper broker, shared by the tools and the agents API's desk
    registry = runtime.registry(auditor=auditor, publish=publish)  # its agents tools: the runtime's desk
    context = registry.context
    known = set(registry.specs)
    registry.on_call = lambda tool, outcome, s: metrics.on_call(
        tool if tool in known else "_unknown", outcome, s
    )
    local_jobs = None
    if registry_actor is None:
        local_jobs = JobManager(
            registry,
            store_url=settings.store_url,
            max_running=settings.tools.max_running_jobs,
            progress_every_s=settings.tools.job_progress_every_s,
        )
    jobs = Jobs(registry_actor, local_jobs)
    sync = ReplicaSync(registry_actor, context, metrics)
    # the market replay (None on the wall clock): its driver here, or the actor's updates pumped to `bus`
    feed = MarketFeed(runtime, publish, redis=settings.cache.url is not None)
    health = HealthChecker(
        settings,
        tools=len(known),
        registry_actor=registry_actor,
        broker=runtime.broker() if runtime.on_ray else None,
        clock=feed.health,
    )

    mcp = build_mcp(registry, who="mcp-http")
    mcp.add_middleware(UnknownToolIsProtocolError())
    mcp_path = settings.mcp.path.rstrip("/") or "/mcp"
    # OAuth 2.1 resource server (mcp.oauth): JWTs beside the static token, scopes per toolset
    oauth = (
        ResourceServer(settings.mcp.oauth, list(registry.specs.values()), mcp_path)
        if settings.mcp.oauth.enabled
        else None
    )
    if oauth is not None:
        mcp.add_middleware(ToolScopes(oauth))
    mcp_app = MCPEndpoint(mcp, stateless=settings.mcp.stateless_http, responses=mcp_responses)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with mcp_app.lifespan(app):
            await bus.start()
            if local_jobs is not None:
                await local_jobs.recover()
            sync.start()
            await feed.start()
            try:
                yield
            finally:
                await feed.stop()
                await sync.stop()
                if isinstance(auditor, ForwardingAuditor):
                    await auditor.flush()
                if local_jobs is not None:
                    await local_jobs.close()
                await bus.stop()
                runtime.close()

    api = FastAPI(
        title="nq-ray",
        version="0.1.0",
        summary="Research, risk and paper trading for CME equity-index futures (NQ first)",
        description="REST face of the nq-ray tools (the same tools are served over MCP at /mcp/). "
        "Errors are RFC 9457 problem details. Send `Authorization: Bearer <token>` when a token is set.",
        lifespan=lifespan,
    )
    api.state.registry = registry
    api.state.bus = bus
    api.state.metrics = metrics
    api.state.feed = feed

    add_problem_handlers(api)
    tokens = [settings.mcp.auth_token.get_secret_value()] if settings.mcp.auth_token else []
    document_problems(api, open_paths=OPEN_PATHS if tokens or oauth is not None else None)

    deps = AppDeps(
        settings,
        registry,
        registry_actor,
        bus,
        metrics,
        ray,
        broker_name,
        registry_name,
        desk_name,
        clock=runtime.clock,
        feed=feed,
        desk=context.desk_factory,
    )
    api.state.sync = sync
    # the order of the route table: market, tools, jobs, operations, WebSocket, agents, config
    api.include_router(market_router(deps))
    api.include_router(tools_router(deps))
    api.include_router(jobs_router(deps, jobs))
    api.include_router(operations_router(deps, health=health, sync=sync))
    api.include_router(ws_router(deps))
    api.include_router(agents_router(deps))
    api.include_router(config_router(deps))
    api.include_router(catalog_router(lambda: deps.settings.propfirm.packs_dir))
    api.include_router(calendar_router(deps))
    if oauth is not None:
        api.router.routes.extend(oauth.routes())

    # innermost: a body over the limit is refused before anything parses it (after the token check, so
    # an unauthenticated body is never read at all)
    api.add_middleware(BodyLimit, max_bytes=settings.serve.max_body_bytes)
    if tokens or oauth is not None:
        api.add_middleware(BearerAuth, tokens=tokens, oauth=oauth)
    # before the token check: a page on a foreign origin is refused whatever it sends (DNS rebinding)
    api.add_middleware(OriginGuard, prefix=mcp_path, allowed_origins=settings.mcp.allowed_origins)
    cors_origins = cors_origins if cors_origins is not None else settings.serve.cors_origins
    if cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        api.add_middleware(
            CORSMiddleware,
            allow_origins=cors_origins,
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
            allow_headers=["authorization", "content-type", "mcp-protocol-version", "mcp-session-id"],
        )
    api.add_middleware(HTTPCountMiddleware, metrics=metrics)  # counts 401s too
    # outermost: even a 401 carries a request id. Behind Serve's proxy, which adds X-Request-ID to the
    # request (when the client sent none) and to every response, the app takes the proxy's id and does
    # not add a second header.
    if request_id_header is None:
        request_id_header = not _in_serve_replica()
    api.add_middleware(RequestIdMiddleware, echo=request_id_header)
    # first in the route table: an MCP call is matched at once, not after every REST route (Starlette's
    # router and Serve's per-request route naming both walk the table in order)
    mcp_asgi: Any = mcp_app if oauth is None else ToolScopeGate(mcp_app, oauth)
    api.router.routes.insert(0, Mount(mcp_path, app=mcp_asgi))
    return api


__all__ = ["build_app"]
