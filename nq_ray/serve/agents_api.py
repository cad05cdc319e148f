"""The agents REST API (the seed's): agents, the desk loop and kill switch, approvals, decisions and their
replay, the LLM chain's status.

A thin shell over ``DeskService``, the runtime's one desk (``Runtime.shared_desk``, also behind the MCP
``agents`` tools): with Ray up in this process every call goes to the ``trading_desk`` actor, shared by
every replica; without Ray one in-process ``DeskService`` per app over the app's own registry (so it
shares the app's in-process paper broker).
Bodies are pydantic models with limits; every error is a typed ``NQRayError`` that ``build_app`` renders as
RFC 9457 problem details (bad input 422, unknown ids 404, a halted desk 409, never a 500 for input).
Each action taken here is announced on the event bus as an ``agent_update`` (``source: "api"``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Path, Query
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, StrictBool, field_validator

from nq_ray.errors import ConfigError, NQRayError
from nq_ray.serve.deps import AppDeps
from nq_ray.serve.problems import problem_body
from nq_ray.tools.agents import MAX_TASK_PARAMETERS_BYTES, MAX_TASK_PARAMETERS_DEPTH, bounded_parameters
from nq_ray.tools.wire import as_nq_error

AgentId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")]
RowId = Annotated[int, Path(ge=1, le=2**62, description="numeric id")]
Who = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.@:-]+$")]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AgentCreate(_Body):
    """A new agent: its type and its config (provider, model, temperature, tools, budget, memory)."""

    agent_type: Literal["analysis", "risk", "execution"]
    config: dict[str, Any] = Field(default_factory=dict, description="AgentConfig fields")
    agent_id: str | None = Field(default=None, min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")


class AgentUpdate(_Body):
    """New values of some of an agent's config fields (``{"config": {"prompts": {...}}}``)."""

    config: dict[str, Any] = Field(min_length=1, description="AgentConfig fields to replace")


class TaskRequest(_Body):
    """The seed's task: ``{"type": "market_analysis", "parameters": {"symbol": "NQ=F", "timeframe": "1h",
    "analysis_depth": "comprehensive"}}``; the task types an agent runs are in its ``tasks``
    (``GET /api/agents/{agent_id}``)."""

    type: str = Field(min_length=1, max_length=64, pattern=r"^[a-z][a-z_]*$", examples=["market_analysis"])
    parameters: dict[str, Any] = Field(
        default_factory=dict,
        description=f"the task's parameters (JSON, at most {MAX_TASK_PARAMETERS_BYTES} bytes, "
        f"{MAX_TASK_PARAMETERS_DEPTH} levels deep)",
    )

    @field_validator("parameters")
    @classmethod
    def _bounded(cls, v: dict[str, Any]) -> dict[str, Any]:
        return bounded_parameters(v)


class TaskResponse(BaseModel):
    """A task's answer: the agent, the task type, the decision-log row it was recorded as, the result."""

    agent_id: str
    type: str
    record_id: int
    result: dict[str, Any]


class ChatMessage(_Body):
    role: Literal["system", "user", "assistant"]
    content: str = Field(min_length=1, max_length=20_000)


class ChatStreamRequest(_Body):
    """A chat for the LLM chain, answered as a stream (``POST /api/llm/stream``)."""

    messages: list[ChatMessage] = Field(min_length=1, max_length=8)
    task: str = Field(default="market_summary", min_length=1, max_length=64, description="routing task")


class StartRequest(_Body):
    symbols: list[Annotated[str, Field(min_length=1, max_length=16)]] | None = Field(
        default=None, min_length=1, max_length=16
    )
    cadence_s: float | None = Field(default=None, ge=1, le=86_400)


class KillRequest(_Body):
    reason: str = Field(default="manual", min_length=1, max_length=500)
    who: Who = "api"


class WhoRequest(_Body):
    who: Who = "api"


class RejectRequest(_Body):
    who: Who = "api"
    reason: str = Field(default="", max_length=500)


class RunOnceRequest(_Body):
    symbol: str = Field(default="NQ", min_length=1, max_length=16)


class ApprovalMode(_Body):
    on: StrictBool


class ReplayRequest(_Body):
    """Replay with the recorded model (default: its recorded answer), or another provider/model."""

    provider: str | None = Field(default=None, min_length=1, max_length=40)
    model: str | None = Field(default=None, min_length=1, max_length=256)
    fresh: bool = Field(default=False, description="ask the recorded model again instead of its record")


class Desk:
    """Where the API's calls go: the runtime's one desk (``AppDeps.desk``, ``Runtime.shared_desk``), the
    same the MCP ``agents`` tools use: the ``trading_desk`` actor's handle on Ray, else this app's
    in-process ``DeskService``."""

    def __init__(self, deps: AppDeps) -> None:
        self.deps = deps
        self._target_of: tuple[Any, bool] | None = None
        self._lock = asyncio.Lock()

    async def _target(self) -> tuple[Any, bool]:
        async with self._lock:
            if self._target_of is None:
                if self.deps.desk is None:
                    raise ConfigError("this app has no desk (AppDeps.desk): build it with build_app")
                port = self.deps.desk()
                handle = getattr(port, "handle", None)  # RayDesk: every actor method, streams included
                self._target_of = (handle, True) if handle is not None else (port, False)
            return self._target_of

    async def call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        target, remote = await self._target()
        try:
            if remote:
                return await getattr(target, method).remote(*args, **kwargs)
            return await getattr(target, method)(*args, **kwargs)
        except NQRayError:
            raise
        except Exception as exc:  # a Ray-wrapped typed error, or something unexpected: typed either way
            err = as_nq_error(exc)
            if err is None:
                raise
            raise err from exc

    async def stream(self, method: str, *args: Any) -> AsyncIterator[Any]:
        """The items of a streaming method (an async generator of ``DeskService``; on the actor a Ray
        streaming generator), errors typed as ``call``'s are."""
        target, remote = await self._target()
        try:
            if remote:
                async for ref in getattr(target, method).options(num_returns="streaming").remote(*args):
                    yield await ref
            else:
                async for item in getattr(target, method)(*args):
                    yield item
        except NQRayError:
            raise
        except Exception as exc:
            err = as_nq_error(exc)
            if err is None:
                raise
            raise err from exc

    async def close(self) -> None:
        """Stop this app's in-process desk (its loop state stays in the store)."""
        if self._target_of is not None and not self._target_of[1]:
            await self._target_of[0].close()
        self._target_of = None


def agents_router(deps: AppDeps) -> APIRouter:
    """Routes of the agents API over ``deps`` (see the module docstring)."""
    desk = Desk(deps)

    @contextlib.asynccontextmanager
    async def lifespan(_app: Any) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await desk.close()

    router = APIRouter(lifespan=lifespan)

    async def announce(what: str, **data: Any) -> None:
        await deps.bus.publish("agent_update", {"source": "api", "action": what, **data})

    # ---------------------------------------------------------------------------------- agents
    @router.post("/api/agents", tags=["agents"], status_code=201, summary="Create an agent → agent_id")
    async def create_agent(body: AgentCreate) -> dict[str, Any]:
        out = await desk.call("create_agent", body.agent_type, body.config, body.agent_id)
        await announce("agent_created", agent_id=out.get("agent_id"), agent_type=body.agent_type)
        return out

    @router.get("/api/agents", tags=["agents"], summary="Every agent with its type and config")
    async def list_agents() -> list[dict[str, Any]]:
        return await desk.call("list_agents")

    @router.get("/api/agents/{agent_id}", tags=["agents"], summary="An agent: status, memory, decisions")
    async def get_agent(agent_id: AgentId) -> dict[str, Any]:
        return await desk.call("get_agent", agent_id)

    @router.patch("/api/agents/{agent_id}", tags=["agents"], summary="Change an agent's config fields")
    async def update_agent(agent_id: AgentId, body: AgentUpdate) -> dict[str, Any]:
        out = await desk.call("update_agent", agent_id, body.config)
        await announce("agent_updated", agent_id=agent_id, fields=sorted(body.config))
        return out

    @router.delete("/api/agents/{agent_id}", tags=["agents"], summary="Delete an agent")
    async def delete_agent(agent_id: AgentId) -> dict[str, Any]:
        out = await desk.call("delete_agent", agent_id)
        await announce("agent_deleted", agent_id=agent_id)
        return out

    @router.post(
        "/api/agents/{agent_id}/tasks",
        tags=["agents"],
        summary="Run a seed task on an agent (market_analysis, update_context, ...) → its result",
    )
    async def agent_task(agent_id: AgentId, body: TaskRequest) -> TaskResponse:
        out = await desk.call("agent_task", agent_id, body.model_dump())
        await announce("agent_task", agent_id=agent_id, task=body.type)
        return TaskResponse(
            agent_id=agent_id, type=body.type, record_id=out["record_id"], result=out["result"]
        )

    # ------------------------------------------------------------------------------------ desk
    @router.post("/api/desk/start", tags=["desk"], summary="Start (or re-configure) the desk loop")
    async def start(body: Annotated[StartRequest | None, Body()] = None) -> dict[str, Any]:
        b = body or StartRequest()
        out = await desk.call("start", b.symbols, b.cadence_s)
        await announce("desk_started", symbols=out.get("symbols"), cadence_s=out.get("cadence_s"))
        return out

    @router.post("/api/desk/stop", tags=["desk"], summary="Stop the loop (positions stay)")
    async def stop() -> dict[str, Any]:
        out = await desk.call("stop")
        await announce("desk_stopped")
        return out

    @router.post("/api/desk/kill", tags=["desk"], summary="Kill switch: halt, flatten, refuse new entries")
    async def kill(body: Annotated[KillRequest | None, Body()] = None) -> dict[str, Any]:
        b = body or KillRequest()
        out = await desk.call("kill", b.reason, b.who)
        await announce("desk_killed", reason=b.reason, who=b.who, flatten_error=out.get("flatten_error"))
        return out

    @router.post("/api/desk/resume", tags=["desk"], summary="Lift a halt (the loop stays stopped)")
    async def resume(body: Annotated[WhoRequest | None, Body()] = None) -> dict[str, Any]:
        b = body or WhoRequest()
        out = await desk.call("resume", b.who)
        await announce("desk_resumed", who=b.who)
        return out

    @router.get("/api/desk/status", tags=["desk"], summary="Running, halted, approval mode, budgets")
    async def status() -> dict[str, Any]:
        return await desk.call("status")

    @router.post("/api/desk/run-once", tags=["desk"], summary="One analysis → risk → execution cycle")
    async def run_once(body: Annotated[RunOnceRequest | None, Body()] = None) -> dict[str, Any]:
        b = body or RunOnceRequest()
        out = await desk.call("run_once", b.symbol)
        await announce(
            "decision", decision_id=out.get("decision_id"), symbol=b.symbol, decided=out.get("action")
        )
        return out

    @router.put("/api/desk/approval-mode", tags=["desk"], summary="Human approval of proposals on/off")
    async def approval_mode(body: ApprovalMode) -> dict[str, Any]:
        out = await desk.call("set_approval_mode", body.on)
        await announce("approval_mode", on=body.on)
        return out

    # ------------------------------------------------------------------------------- approvals
    @router.get("/api/approvals", tags=["approvals"], summary="Pending approvals, or the recent ones")
    async def approvals(
        status: Annotated[Literal["pending", "all"], Query()] = "pending",
        limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    ) -> list[dict[str, Any]]:
        if status == "pending":
            return (await desk.call("pending_approvals"))[:limit]
        return await desk.call("approvals", limit)

    @router.post("/api/approvals/{approval_id}/approve", tags=["approvals"], summary="Approve: execute it")
    async def approve(
        approval_id: RowId, body: Annotated[WhoRequest | None, Body()] = None
    ) -> dict[str, Any]:
        b = body or WhoRequest()
        out = await desk.call("approve", approval_id, b.who)
        await announce("approved", approval_id=approval_id, who=b.who)
        return out

    @router.post("/api/approvals/{approval_id}/reject", tags=["approvals"], summary="Reject: send nothing")
    async def reject(
        approval_id: RowId, body: Annotated[RejectRequest | None, Body()] = None
    ) -> dict[str, Any]:
        b = body or RejectRequest()
        out = await desk.call("reject", approval_id, b.who, b.reason)
        await announce("rejected", approval_id=approval_id, who=b.who)
        return out

    # ------------------------------------------------------------------------------- decisions
    @router.get("/api/decisions", tags=["decisions"], summary="The desk's recent decisions, newest first")
    async def decisions(
        limit: Annotated[int, Query(ge=1, le=1000)] = 50,
        symbol: Annotated[str | None, Query(min_length=1, max_length=16)] = None,
    ) -> list[dict[str, Any]]:
        rows = await desk.call("decisions", limit, symbol)
        return [{**r, "clock": deps.clock_mode} for r in rows]  # the times are on the runtime's clock

    @router.get("/api/decisions/{decision_id}", tags=["decisions"], summary="A decision's full record")
    async def decision(decision_id: RowId) -> dict[str, Any]:
        out: dict[str, Any] = await desk.call("decision", decision_id)
        return {**out, "clock": deps.clock_mode}

    @router.post(
        "/api/decisions/{decision_id}/replay",
        tags=["decisions"],
        summary="Rebuild a decision's inputs point in time, decide again, show the differences",
    )
    async def replay(
        decision_id: RowId, body: Annotated[ReplayRequest | None, Body()] = None
    ) -> dict[str, Any]:
        from nq_ray.agents.replay import replay_decision

        b = body or ReplayRequest()
        result = await replay_decision(
            deps.settings, decision_id, provider=b.provider, model=b.model, fresh=b.fresh
        )
        await announce("replayed", decision_id=decision_id, same=result.same)
        return result.model_dump(mode="json")

    # ------------------------------------------------------------------------------------- llm
    @router.get("/api/llm/status", tags=["llm"], summary="Providers: health, breaker, tokens, cost")
    async def llm_status() -> dict[str, Any]:
        return await desk.call("llm_status")

    @router.post(
        "/api/llm/stream",
        tags=["llm"],
        summary="The LLM chain's answer as it is produced (text/event-stream)",
        response_class=StreamingResponse,
    )
    async def llm_stream(body: ChatStreamRequest) -> StreamingResponse:
        """Server-sent events: ``data: {"delta": "..."}`` per chunk as the model produces it, then
        ``data: {"done": true, "provider", "model", "is_llm", tokens, "cost_usd"}``. A failure before the
        first chunk is problem details (no provider answered: 503); one after it is a last
        ``event: error`` whose data is the problem."""
        messages = [m.model_dump() for m in body.messages]
        events = desk.stream("chat_stream", messages, body.task, "ui")
        first = await events.__anext__()  # typed errors before the stream opens: problem details

        async def sse() -> AsyncIterator[bytes]:
            yield f"data: {json.dumps(first)}\n\n".encode()
            try:
                async for event in events:
                    yield f"data: {json.dumps(event)}\n\n".encode()
            except NQRayError as exc:
                yield f"event: error\ndata: {json.dumps(problem_body(exc))}\n\n".encode()

        return StreamingResponse(sse(), media_type="text/event-stream", headers={"Cache-Control": "no-store"})

    return router
