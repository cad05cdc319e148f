"""Jobs on the HTTP API (``/api/jobs``): run a tool as a job, list, get and cancel jobs, and publish each
job's ``job_progress`` events on the event bus until it finishes."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter

from nq_ray.serve.deps import AppDeps
from nq_ray.tools.jobs import JobManager, JobRequest, JobState

JOB_POLL_S = 0.5


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


def jobs_router(deps: AppDeps, jobs: Jobs) -> APIRouter:
    """``POST /api/jobs`` (202), ``GET /api/jobs``, ``GET`` and ``DELETE /api/jobs/{job_id}``."""
    router = APIRouter()
    bus, metrics = deps.bus, deps.metrics

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

    @router.post(
        "/api/jobs", tags=["jobs"], status_code=202, response_model=JobState, summary="Run a tool as a job"
    )
    async def submit_job(request: JobRequest) -> dict[str, Any]:
        state = await jobs.submit(request.tool, request.arguments, "http")
        metrics.jobs.labels("submitted", metrics.replica).inc()
        task = asyncio.create_task(follow(state["id"]))
        followers.add(task)
        task.add_done_callback(followers.discard)
        return state

    @router.get("/api/jobs", tags=["jobs"], response_model=list[JobState], summary="Recent jobs")
    async def list_jobs() -> list[dict[str, Any]]:
        return await jobs.list()

    @router.get(
        "/api/jobs/{job_id}",
        tags=["jobs"],
        response_model=JobState,
        summary="A job's status, progress, result",
    )
    async def get_job(job_id: Annotated[str, _job_id()]) -> dict[str, Any]:
        return await jobs.get(job_id)

    @router.delete("/api/jobs/{job_id}", tags=["jobs"], response_model=JobState, summary="Cancel a job")
    async def cancel_job(job_id: Annotated[str, _job_id()]) -> dict[str, Any]:
        return await jobs.cancel(job_id)

    return router


def _job_id() -> Any:
    from fastapi import Path

    return Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")
