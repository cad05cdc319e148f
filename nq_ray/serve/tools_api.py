"""The tools on the HTTP API: the market endpoints (``/api/market/...``: the price, the bars and the
market replay's control), the tool list, one typed ``POST /api/tools/<name>`` per tool (its own input and
output models in the OpenAPI spec) and the call-any-tool-by-name route. Every tool call goes through the
registry, as on MCP.

Results that carry a time say which clock it is on (``clock``: ``wall`` or ``replay``): the price (in the
``get_nq_price`` tool's own result), and here the orders and the portfolio (``TIMED_TOOLS``)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Query
from pydantic import BaseModel, ConfigDict, Field, create_model

from nq_ray.market.clock import MAX_SPEED
from nq_ray.serve.deps import AppDeps
from nq_ray.tools.registry import ToolRegistry, ToolSpec

# tools whose REST result gains ``clock`` (their orders' and positions' times are on the runtime's clock)
TIMED_TOOLS = ("place_order", "manage_position", "assess_portfolio_risk")
ClockMode = Literal["wall", "replay"]
CLOCK_FIELD = "which clock the times in this result are on: wall, or a market replay's"


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SpeedRequest(_Body):
    """The replay's new speed: replay seconds per real second."""

    speed: float = Field(gt=0, le=MAX_SPEED, allow_inf_nan=False, examples=[600])


class JumpRequest(_Body):
    """Where replay time moves to: forward only (fills are final); naive = New York time."""

    to: str = Field(min_length=1, max_length=40, examples=["2026-04-21T09:30"])


class StepRequest(_Body):
    """How many bars to release now (replay time moves to each one's close)."""

    bars: int = Field(default=1, ge=1, le=10_000)


class ReplayStatus(BaseModel):
    """The market replay: its clock (``now``, ``speed``, ``paused``, ...) and where its bars stand."""

    model_config = ConfigDict(extra="allow")

    clock: Literal["replay"] = "replay"
    now: datetime | None = Field(default=None, description="replay time (UTC)")
    start: datetime | None = None
    until: datetime | None = None
    speed: float | None = Field(default=None, description="replay seconds per real second")
    paused: bool | None = None
    ended: bool | None = Field(default=None, description="replay time has reached until")
    source: str | None = None
    version: int | None = Field(default=None, description="the replay state's version (each change +1)")
    running: bool | None = None
    finished: bool | None = Field(default=None, description="every bar released")
    seq: int | None = Field(default=None, description="the last market_update's seq")
    released: dict[str, str] | None = Field(default=None, description="per symbol: the last bar released")
    next_release: datetime | None = None
    bars_left: int | None = None
    symbols: list[str] | None = None
    interval: str | None = None


_NOT_REPLAY: dict[int | str, dict[str, Any]] = {
    409: {"description": "not_replay: the runtime runs on the wall clock"}
}


def market_router(deps: AppDeps) -> APIRouter:
    """``/api/market/nq-price``, ``/api/market/historical`` and ``/api/market/replay*``."""
    router = APIRouter()
    registry = deps.registry
    default_source = deps.settings.data.default_source

    async def call(name: str, arguments: dict[str, Any], who: str = "http") -> dict[str, Any]:
        return await registry.call(name, arguments, who=who)  # raises only NQRayError

    @router.get(
        "/api/market/nq-price",
        tags=["market"],
        summary="Latest price (get_nq_price); on a replay, the last replayed bar (clock: replay)",
    )
    async def nq_price(
        symbol: Annotated[str, Query(max_length=16)] = "NQ",
        interval: Annotated[str, Query(max_length=8)] = "5m",
        source: Annotated[
            str | None, Query(max_length=512, description="default: data.default_source")
        ] = None,
    ) -> dict[str, Any]:
        args = {"symbol": symbol, "interval": interval, "source": source or default_source}
        return await call("get_nq_price", args)

    @router.get("/api/market/historical", tags=["market"], summary="Historical bars (get_historical_data)")
    async def historical(
        symbol: Annotated[str, Query(max_length=16)] = "NQ",
        period: Annotated[
            str | None, Query(description="1d 5d 1mo 3mo 6mo 1y ... (at most 8 characters)")
        ] = None,
        interval: Annotated[str, Query(max_length=8)] = "5m",
        start: Annotated[str | None, Query(description="ISO date or time (naive = New York)")] = None,
        end: Annotated[str | None, Query(description="ISO date or time (naive = New York)")] = None,
        source: Annotated[
            str | None, Query(max_length=512, description="default: data.default_source")
        ] = None,
        limit: Annotated[int, Query(ge=1, le=5000)] = 500,
    ) -> dict[str, Any]:
        args: dict[str, Any] = {"symbol": symbol, "period": period, "interval": interval}
        args |= {"start": start, "end": end, "source": source or default_source, "limit": limit}
        return await call("get_historical_data", args)

    _replay_routes(router, deps)
    return router


def _replay_routes(router: APIRouter, deps: AppDeps) -> None:
    """The market replay's control: status, pause, resume, speed, jump (forward), step. On the wall
    clock each answers 409 ``not_replay``; bad input 422 ``invalid_argument`` (a jump back too: fills are
    final). Each change holds for every replica and process (the replay's state is in the store)."""
    feed = deps.feed
    ok: dict[int | str, dict[str, Any]] = {
        200: {"model": ReplayStatus, "description": "the replay after the change"},
        **_NOT_REPLAY,
    }

    async def announce(action: str, status: dict[str, Any]) -> dict[str, Any]:
        # the driver announces its changes itself where it publishes (here in process; through Redis);
        # the market_replay actor without Redis has nowhere to, so this replica tells its clients
        if feed.mode == "pump":
            await deps.bus.publish(
                "system_notification", {"message": f"replay {action}", "source": "api", "clock": status}
            )
        return status

    @router.get(
        "/api/market/replay",
        tags=["market"],
        summary="The market replay: replay time, speed, paused, bars released and left",
        responses=ok,
    )
    async def replay_status() -> dict[str, Any]:
        return await feed.status()

    @router.post("/api/market/replay/pause", tags=["market"], summary="Pause replay time", responses=ok)
    async def replay_pause() -> dict[str, Any]:
        return await announce("paused", await feed.pause())

    @router.post("/api/market/replay/resume", tags=["market"], summary="Resume replay time", responses=ok)
    async def replay_resume() -> dict[str, Any]:
        return await announce("resumed", await feed.resume())

    @router.post(
        "/api/market/replay/speed",
        tags=["market"],
        summary=f"Set the replay speed (0 < speed ≤ {MAX_SPEED:g} replay seconds per real second)",
        responses=ok,
    )
    async def replay_speed(body: SpeedRequest) -> dict[str, Any]:
        return await announce("speed", await feed.set_speed(body.speed))

    @router.post(
        "/api/market/replay/jump",
        tags=["market"],
        summary="Move replay time forward (the bars in between are released at once, in order)",
        description="Only forward: fills are final, so a time before replay time now is refused "
        "(422 invalid_argument), as is one after the replay's end.",
        responses=ok,
    )
    async def replay_jump(body: JumpRequest) -> dict[str, Any]:
        return await announce("jumped", await feed.jump(body.to))

    @router.post(
        "/api/market/replay/step",
        tags=["market"],
        summary="Release the next bars now (1 to 10000; a paused replay stays paused)",
        responses=ok,
    )
    async def replay_step(body: Annotated[StepRequest | None, Body()] = None) -> dict[str, Any]:
        return await announce("stepped", await feed.step((body or StepRequest()).bars))


def tools_router(deps: AppDeps) -> APIRouter:
    """``GET /api/tools``, ``POST /api/tools/<name>`` per tool, then ``POST /api/tools/{name}``."""
    router = APIRouter()
    registry = deps.registry

    @router.get("/api/tools", tags=["tools"], summary="Every tool with its input and output JSON schema")
    async def list_tools() -> list[dict[str, Any]]:
        return registry.list_tools()

    for spec in registry.specs.values():
        _add_tool_route(router, deps, spec)

    @router.post("/api/tools/{name}", tags=["tools"], summary="Call any tool by name (unknown names: 404)")
    async def call_tool(
        name: str, arguments: Annotated[dict[str, Any] | None, Body()] = None
    ) -> dict[str, Any]:
        out = await registry.call(name, arguments or {}, who="http")  # raises only NQRayError
        return with_clock(out, deps.clock_mode) if name in TIMED_TOOLS else out

    return router


def with_clock(result: Any, mode: str) -> Any:
    """A timed tool's REST result with ``clock`` (``wall`` / ``replay``) added."""
    if isinstance(result, dict):
        return {**result, "clock": mode}
    return result


def _add_tool_route(router: APIRouter, deps: AppDeps, spec: ToolSpec) -> None:
    """``POST /api/tools/<name>`` with the tool's own input and output models in the OpenAPI spec."""
    registry: ToolRegistry = deps.registry
    model = spec.input_model
    output: type[BaseModel] = spec.output_model
    timed = spec.name in TIMED_TOOLS
    if timed:  # the documented result has the clock too
        output = create_model(
            f"{spec.output_model.__name__}WithClock",
            __base__=spec.output_model,
            __doc__=spec.output_model.__doc__,
            clock=(ClockMode, Field(description=CLOCK_FIELD)),
        )

    async def endpoint(arguments: Any = None) -> Any:
        raw = arguments.model_dump(exclude_unset=True) if arguments is not None else {}
        out = await registry.call(spec.name, raw, who="http")
        return with_clock(out, deps.clock_mode) if timed else out

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
        responses={200: {"model": output, "description": spec.output_model.__doc__ or "result"}},
    )
