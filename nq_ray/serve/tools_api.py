"""The tools on the HTTP API: the market endpoints (``/api/market/...``), the tool list, one typed
``POST /api/tools/<name>`` per tool (its own input and output models in the OpenAPI spec) and the
call-any-tool-by-name route. Every call goes through the registry, as on MCP."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Query

from nq_ray.serve.deps import AppDeps
from nq_ray.tools.registry import ToolRegistry, ToolSpec


def market_router(deps: AppDeps) -> APIRouter:
    """``/api/market/nq-price`` and ``/api/market/historical``."""
    router = APIRouter()
    registry = deps.registry

    async def call(name: str, arguments: dict[str, Any], who: str = "http") -> dict[str, Any]:
        return await registry.call(name, arguments, who=who)  # raises only NQRayError

    @router.get("/api/market/nq-price", tags=["market"], summary="Latest price (get_nq_price)")
    async def nq_price(
        symbol: Annotated[str, Query(max_length=16)] = "NQ",
        interval: Annotated[str, Query(max_length=8)] = "5m",
        source: Annotated[str, Query(max_length=512)] = "sample",
    ) -> dict[str, Any]:
        return await call("get_nq_price", {"symbol": symbol, "interval": interval, "source": source})

    @router.get("/api/market/historical", tags=["market"], summary="Historical bars (get_historical_data)")
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

    return router


def tools_router(deps: AppDeps) -> APIRouter:
    """``GET /api/tools``, ``POST /api/tools/<name>`` per tool, then ``POST /api/tools/{name}``."""
    router = APIRouter()
    registry = deps.registry

    @router.get("/api/tools", tags=["tools"], summary="Every tool with its input and output JSON schema")
    async def list_tools() -> list[dict[str, Any]]:
        return registry.list_tools()

    for spec in registry.specs.values():
        _add_tool_route(router, registry, spec)

    @router.post("/api/tools/{name}", tags=["tools"], summary="Call any tool by name (unknown names: 404)")
    async def call_tool(
        name: str, arguments: Annotated[dict[str, Any] | None, Body()] = None
    ) -> dict[str, Any]:
        return await registry.call(name, arguments or {}, who="http")  # raises only NQRayError

    return router


def _add_tool_route(router: APIRouter, registry: ToolRegistry, spec: ToolSpec) -> None:
    """``POST /api/tools/<name>`` with the tool's own input and output models in the OpenAPI spec."""
    model = spec.input_model

    async def endpoint(arguments: Any = None) -> Any:
        raw = arguments.model_dump(exclude_unset=True) if arguments is not None else {}
        return await registry.call(spec.name, raw, who="http")

    # real objects, not strings: this module uses postponed annotations
    endpoint.__annotations__ = {"arguments": Annotated[model | None, Body()], "return": Any}
    endpoint.__name__ = f"tool_{spec.name}"
    router.add_api_route(
        f"/api/tools/{spec.name}",
        endpoint,
        methods=["POST"],
        tags=[f"tools: {spec.category}"],
        summary=spec.name,
        description=spec.description,
        response_model=None,
        responses={200: {"model": spec.output_model, "description": spec.output_model.__doc__ or "result"}},
    )
