"""The HTTP app: REST API, WebSocket, health, metrics, and the MCP server mounted at ``/mcp``.

``build_app`` is the builder that ``serve.ingress`` takes (a FastAPI app with a mounted FastMCP app does
not pickle, so each replica builds its own). It is also what ``benchmarks/bench_mcp.py`` runs on plain
uvicorn, so both sides of the comparison serve the same code.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

from fastapi import Body, FastAPI, Query, Request, WebSocket, WebSocketDisconnect
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Mount

from nq_ray.config import Settings, load_settings
from nq_ray.errors import InvalidArgumentError, NQRayError
from nq_ray.logs import RequestIdMiddleware, configure_logging
from nq_ray.serve.agents_api import agents_router
from nq_ray.serve.auth import BearerAuth
from nq_ray.serve.catalog_api import catalog_router
from nq_ray.serve.config_api import config_router
from nq_ray.serve.deps import AppDeps
from nq_ray.serve.events import EVENT_TYPES, EventBus
from nq_ray.serve.health import Health, HealthChecker
from nq_ray.serve.mcp_http import MCPEndpoint, MCPResponses
from nq_ray.serve.metrics import CONTENT_TYPE, HTTPCountMiddleware, Metrics, render_totals
from nq_ray.tools.audit import ForwardingAuditor, StoreAuditor
from nq_ray.tools.context import InProcessBroker, ToolContext
from nq_ray.tools.jobs import JobManager, JobRequest, JobState
from nq_ray.tools.mcp import build_mcp
from nq_ray.tools.registry import ToolRegistry, ToolSpec, build_registry
from nq_ray.tools.wire import as_nq_error, problem_details

log = logging.getLogger(__name__)

JOB_POLL_S = 0.5
SYNC_S = 1.0
PROBLEM = "application/problem+json"


def _ray_up() -> Any:
    ray = sys.modules.get("ray")
    return ray if ray is not None and ray.is_initialized() else None


class Jobs:
    """Jobs in the ``tool_registry`` actor (shared by every replica), or in this process without Ray;
    stored in the ``jobs`` table either way."""

    def __init__(self, actor: Any, local: JobManager | None) -> None:
        self.actor, self.local = actor, local

    async def submit(self, tool: str, arguments: dict[str, Any], who: str) -> dict[str, Any]:
        if self.actor is not None:
            return await self.actor.submit.remote(tool, arguments, who)
        assert self.local is not None
        return (await self.local.submit(tool, arguments, who)).model_dump(mode="json")

    async def get(self, job_id: str) -> dict[str, Any]:
        if self.actor is not None:
            return await self.actor.job.remote(job_id)
        assert self.local is not None
        return (await self.local.get(job_id)).model_dump(mode="json")

    async def cancel(self, job_id: str) -> dict[str, Any]:
        if self.actor is not None:
            return await self.actor.cancel.remote(job_id)
        assert self.local is not None
        return (await self.local.cancel(job_id)).model_dump(mode="json")

    async def list(self) -> list[dict[str, Any]]:
        if self.actor is not None:
            return await self.actor.list_jobs.remote()
        assert self.local is not None
        return [j.model_dump(mode="json") for j in await self.local.list()]


def _problem(err: NQRayError, request: Request) -> JSONResponse:
    return JSONResponse(
        problem_details(err, str(request.url.path)), status_code=err.http_status, media_type=PROBLEM
    )


def build_app(
    settings: Settings | dict[str, Any] | None = None,
    *,
    use_actors: bool | None = None,
    cors_origins: list[str] | None = None,
    mcp_responses: MCPResponses = "auto",
    broker_name: str = "paper_broker",
    registry_name: str = "tool_registry",
    desk_name: str = "trading_desk",
) -> FastAPI:
    """The whole HTTP app for one process / Serve replica.

    ``use_actors`` (default: whether Ray is initialised here) routes jobs and audit records to the
    ``tool_registry`` actor and orders to the ``paper_broker`` actor; without it jobs run in-process and
    the audit log is written directly."""
    if settings is None:
        settings = load_settings()
    elif isinstance(settings, dict):
        settings = Settings.model_validate(settings)
    configure_logging(settings)
    ray = _ray_up() if use_actors is not False else None
    registry_actor = None
    if ray is not None:
        from nq_ray.tools.actor import get_or_create_registry

        registry_actor = get_or_create_registry(settings, name=registry_name)

    metrics = Metrics()
    bus = EventBus(settings.cache.url)
    auditor = (
        ForwardingAuditor(registry_actor) if registry_actor is not None else StoreAuditor(settings.store_url)
    )

    async def publish(event: str, data: dict[str, Any]) -> None:
        if event == "order_update":
            orders = [data["order"]] if "order" in data else data.get("orders", [])
            for o in orders:
                metrics.on_order(o)
        await bus.publish(event, data)

    # without Ray: one in-process paper broker, shared by the tools and the agents API's desk
    brokers = _broker_factory(broker_name) if ray is not None else InProcessBroker
    context = ToolContext(settings=settings, publish=publish, broker_factory=brokers)
    registry = build_registry(context, auditor=auditor)
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
    health = HealthChecker(
        settings,
        tools=len(known),
        registry_actor=registry_actor,
        broker=context.broker() if ray is not None else None,
    )

    mcp = build_mcp(registry, who="mcp-http")
    mcp_app = MCPEndpoint(mcp, stateless=settings.mcp.stateless_http, responses=mcp_responses)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with mcp_app.lifespan(app):
            await bus.start()
            if local_jobs is not None:
                await local_jobs.recover()
            sync.start()
            try:
                yield
            finally:
                await sync.stop()
                if isinstance(auditor, ForwardingAuditor):
                    await auditor.flush()
                if local_jobs is not None:
                    await local_jobs.close()
                await bus.stop()
                context.close()

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

    # ---------------------------------------------------------------------------------- errors
    @api.exception_handler(NQRayError)
    async def _nq_error(request: Request, exc: NQRayError) -> JSONResponse:
        return _problem(exc, request)

    @api.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errs = [
            {
                "field": ".".join(str(p) for p in e.get("loc", ())),
                "problem": str(e.get("msg", "")),
                "type": e.get("type"),
            }
            for e in exc.errors()[:20]
        ]
        msg = "; ".join(f"{e['field']}: {e['problem']}" for e in errs[:5])
        return _problem(InvalidArgumentError(f"invalid request: {msg}", errors=errs), request)

    @api.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        body = {
            "type": "about:blank",
            "title": str(exc.detail) if exc.detail else "error",
            "status": exc.status_code,
            "detail": str(exc.detail),
            "code": "not_found" if exc.status_code == 404 else "http_error",
            "instance": str(request.url.path),
        }
        return JSONResponse(body, status_code=exc.status_code, media_type=PROBLEM, headers=exc.headers)

    @api.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        err = as_nq_error(exc) or NQRayError("internal error")
        return _problem(err, request)

    # ---------------------------------------------------------------------------------- market
    async def call(name: str, arguments: dict[str, Any], who: str = "http") -> dict[str, Any]:
        return await registry.call(name, arguments, who=who)  # raises only NQRayError

    @api.get("/api/market/nq-price", tags=["market"], summary="Latest price (get_nq_price)")
    async def nq_price(
        symbol: Annotated[str, Query(max_length=16)] = "NQ",
        interval: Annotated[str, Query(max_length=8)] = "5m",
        source: Annotated[str, Query(max_length=512)] = "sample",
    ) -> dict[str, Any]:
        return await call("get_nq_price", {"symbol": symbol, "interval": interval, "source": source})

    @api.get("/api/market/historical", tags=["market"], summary="Historical bars (get_historical_data)")
    async def historical(
        symbol: Annotated[str, Query(max_length=16)] = "NQ",
        period: Annotated[
            str | None, Query(description="1d 5d 1mo 3mo 6mo 1y ... (at most 8 characters)")
        ] = None,
        interval: Annotated[str, Query(max_length=8)] = "5m",
        start: Annotated[str | None, Query(description="ISO date or time (naive = New York)")] = None,
        end: Annotated[str | None, Query(description="ISO date or time (naive = New York)")] = None,
        source: Annotated[str, Query(max_length=512)] = "sample",
        limit: Annotated[int, Query(ge=1, le=5000)] = 500,
    ) -> dict[str, Any]:
        args = {"symbol": symbol, "period": period, "interval": interval, "start": start, "end": end}
        args |= {"source": source, "limit": limit}
        return await call("get_historical_data", args)

    # ----------------------------------------------------------------------------------- tools
    @api.get("/api/tools", tags=["tools"], summary="Every tool with its input and output JSON schema")
    async def list_tools() -> list[dict[str, Any]]:
        return registry.list_tools()

    for spec in registry.specs.values():
        _add_tool_route(api, registry, spec)

    @api.post("/api/tools/{name}", tags=["tools"], summary="Call any tool by name (unknown names: 404)")
    async def call_tool(
        name: str, arguments: Annotated[dict[str, Any] | None, Body()] = None
    ) -> dict[str, Any]:
        return await call(name, arguments or {})

    # ------------------------------------------------------------------------------------ jobs
    async def follow(job_id: str) -> None:
        """Publish ``job_progress`` events for a job until it finishes."""
        last: tuple[Any, ...] | None = None
        while True:
            try:
                state = await jobs.get(job_id)
            except Exception as exc:  # the job vanished (registry restart): say so and stop
                await bus.publish(
                    "job_progress", {"id": job_id, "status": "unknown", "error": str(exc)[:200]}
                )
                return
            key = (state["status"], state.get("progress"), state.get("message"))
            if key != last:
                last = key
                event = {k: state.get(k) for k in ("id", "tool", "status", "progress", "total", "message")}
                await bus.publish("job_progress", event)
            if state["status"] in ("succeeded", "failed", "cancelled"):
                metrics.jobs.labels(state["status"], metrics.replica).inc()
                return
            await asyncio.sleep(JOB_POLL_S)

    followers: set[asyncio.Task[None]] = set()

    @api.post(
        "/api/jobs", tags=["jobs"], status_code=202, response_model=JobState, summary="Run a tool as a job"
    )
    async def submit_job(request: JobRequest) -> dict[str, Any]:
        state = await jobs.submit(request.tool, request.arguments, "http")
        metrics.jobs.labels("submitted", metrics.replica).inc()
        task = asyncio.create_task(follow(state["id"]))
        followers.add(task)
        task.add_done_callback(followers.discard)
        return state

    @api.get("/api/jobs", tags=["jobs"], response_model=list[JobState], summary="Recent jobs")
    async def list_jobs() -> list[dict[str, Any]]:
        return await jobs.list()

    @api.get(
        "/api/jobs/{job_id}",
        tags=["jobs"],
        response_model=JobState,
        summary="A job's status, progress, result",
    )
    async def get_job(job_id: Annotated[str, _job_id()]) -> dict[str, Any]:
        return await jobs.get(job_id)

    @api.delete("/api/jobs/{job_id}", tags=["jobs"], response_model=JobState, summary="Cancel a job")
    async def cancel_job(job_id: Annotated[str, _job_id()]) -> dict[str, Any]:
        return await jobs.cancel(job_id)

    # ------------------------------------------------------------------------------ operations
    @api.get(
        "/health", tags=["operations"], response_model=Health, summary="Status and latency of every part"
    )
    async def get_health() -> JSONResponse:
        report = await health.run()
        return JSONResponse(
            report.model_dump(mode="json"), status_code=503 if report.status == "down" else 200
        )

    @api.get(
        "/metrics",
        tags=["operations"],
        summary="Prometheus metrics: totals over every replica (scope=replica: this one only)",
    )
    async def get_metrics(
        scope: Annotated[Literal["cluster", "replica"], Query()] = "cluster",
    ) -> Response:
        if scope == "replica" or registry_actor is None:
            return Response(metrics.render(), media_type=CONTENT_TYPE)
        await sync.push()
        return Response(
            render_totals(await registry_actor.metrics_snapshots.remote()), media_type=CONTENT_TYPE
        )

    @api.get("/", tags=["operations"], summary="Where things are")
    async def index() -> dict[str, Any]:
        return {
            "name": "nq-ray",
            "api_docs": "/docs",
            "openapi": "/openapi.json",
            "mcp": settings.mcp.path.rstrip("/") + "/",
            "websocket": "/ws",
            "health": "/health",
            "metrics": "/metrics",
            "tools": len(known),
        }

    # ------------------------------------------------------------------------------- websocket
    @api.websocket("/ws")
    async def ws(socket: WebSocket) -> None:
        await socket.accept()
        queue = bus.subscribe()
        metrics.ws_clients.labels(metrics.replica).inc()
        try:
            await socket.send_json(
                {
                    "type": "system_notification",
                    "data": {"message": "connected", "events": list(EVENT_TYPES), "fan_out": bus.mode},
                }
            )
            reader = asyncio.create_task(_drain(socket))
            try:
                while not reader.done():
                    getter = asyncio.create_task(queue.get())
                    done, _ = await asyncio.wait({getter, reader}, return_when=asyncio.FIRST_COMPLETED)
                    if getter in done:
                        await socket.send_json(getter.result())
                    else:
                        getter.cancel()
            finally:
                reader.cancel()
        except WebSocketDisconnect:
            pass
        finally:
            bus.unsubscribe(queue)
            metrics.ws_clients.labels(metrics.replica).dec()

    deps = AppDeps(
        settings, registry, registry_actor, bus, metrics, ray, broker_name, registry_name, desk_name
    )
    api.state.sync = sync
    api.include_router(agents_router(deps))
    api.include_router(config_router(deps))
    api.include_router(catalog_router())

    tokens = [settings.mcp.auth_token.get_secret_value()] if settings.mcp.auth_token else []
    if tokens:
        api.add_middleware(BearerAuth, tokens=tokens)
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
    api.add_middleware(RequestIdMiddleware)  # outermost: even a 401 carries a request id
    # first in the route table: an MCP call is matched at once, not after every REST route (Starlette's
    # router and Serve's per-request route naming both walk the table in order)
    api.router.routes.insert(0, Mount(settings.mcp.path.rstrip("/") or "/mcp", app=mcp_app))
    return api


def _broker_factory(name: str) -> Any:
    def make(settings: Settings) -> Any:
        from nq_ray.execution.actor import get_or_create_broker

        return get_or_create_broker(settings, name=name, feed=True)

    make.broker_name = name  # type: ignore[attr-defined]  # the config API tells this broker of changes
    return make


class ReplicaSync:
    """This replica's heartbeat to the ``tool_registry`` actor every ``SYNC_S``: pushes its metrics
    snapshot (for the cluster totals at ``/metrics``) and takes the effective settings when they changed
    (a ``PATCH /api/config`` on any replica), so every replica's tools run with the same settings."""

    def __init__(self, actor: Any, context: ToolContext, metrics: Metrics) -> None:
        self.actor, self.context, self.metrics = actor, context, metrics
        self.version = 0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self.actor is not None and self._task is None:
            self._task = asyncio.create_task(self._loop(), name="nq-replica-sync")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None

    async def push(self) -> None:
        version, settings = await self.actor.sync.remote(
            self.metrics.replica, self.metrics.snapshot(), self.version
        )
        self.take(version, settings)

    def take(self, version: int, settings: Settings | None) -> None:
        if settings is not None and version > self.version:
            self.context.settings = settings
        self.version = max(self.version, version)

    async def _loop(self) -> None:
        while True:
            try:
                await self.push()
            except Exception as exc:  # the actor is restarting: try again next period
                log.debug("replica sync failed: %s", exc)
            await asyncio.sleep(SYNC_S)


def _job_id() -> Any:
    from fastapi import Path

    return Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")


async def _drain(socket: WebSocket) -> None:
    """Read (and ignore) client messages until the client goes away."""
    with contextlib.suppress(WebSocketDisconnect):
        while True:
            await socket.receive_text()


def _add_tool_route(api: FastAPI, registry: ToolRegistry, spec: ToolSpec) -> None:
    """``POST /api/tools/<name>`` with the tool's own input and output models in the OpenAPI spec."""
    model = spec.input_model

    async def endpoint(arguments: Any = None) -> Any:
        raw = arguments.model_dump(exclude_unset=True) if arguments is not None else {}
        return await registry.call(spec.name, raw, who="http")

    # real objects, not strings: this module uses postponed annotations
    endpoint.__annotations__ = {"arguments": Annotated[model | None, Body()], "return": Any}
    endpoint.__name__ = f"tool_{spec.name}"
    api.add_api_route(
        f"/api/tools/{spec.name}",
        endpoint,
        methods=["POST"],
        tags=[f"tools: {spec.category}"],
        summary=spec.name,
        description=spec.description,
        response_model=None,
        responses={200: {"model": spec.output_model, "description": spec.output_model.__doc__ or "result"}},
    )


__all__ = ["build_app"]
