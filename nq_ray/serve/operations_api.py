"""Operations on the HTTP API: ``/health`` (503 when down), ``/metrics`` (Prometheus; totals over every
replica unless ``scope=replica``) and ``/``, the index of where things are."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse, Response

from nq_ray.serve.deps import AppDeps
from nq_ray.serve.health import Health, HealthChecker
from nq_ray.serve.metrics import CONTENT_TYPE, render_totals
from nq_ray.serve.replica_sync import ReplicaSync


def operations_router(deps: AppDeps, *, health: HealthChecker, sync: ReplicaSync) -> APIRouter:
    """``GET /health``, ``GET /metrics`` and ``GET /``."""
    router = APIRouter()
    settings, metrics, registry_actor = deps.settings, deps.metrics, deps.registry_actor
    tools = len(deps.registry.specs)

    @router.get(
        "/health",
        tags=["operations"],
        response_model=Health,
        summary="Status and latency of every part",
        responses={503: {"model": Health, "description": "down: the same report, which part is down"}},
    )
    async def get_health() -> JSONResponse:
        report = await health.run()
        return JSONResponse(
            report.model_dump(mode="json"), status_code=503 if report.status == "down" else 200
        )

    @router.get(
        "/metrics",
        tags=["operations"],
        summary="Prometheus metrics: totals over every replica (scope=replica: this one only)",
        response_class=Response,
        responses={200: {"description": "Prometheus text format", "content": {CONTENT_TYPE: {}}}},
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

    @router.get("/", tags=["operations"], summary="Where things are")
    async def index() -> dict[str, Any]:
        return {
            "name": "nq-ray",
            "api_docs": "/docs",
            "openapi": "/openapi.json",
            "mcp": settings.mcp.path.rstrip("/") + "/",
            "websocket": "/ws",
            "health": "/health",
            "metrics": "/metrics",
            "tools": tools,
        }

    return router
