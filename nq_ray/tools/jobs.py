"""Jobs: long tool calls run in the background. submit → job id → status/progress → result; cancellable.

A job runs ``ToolRegistry.call`` as an asyncio task; the tool reports progress through the bound
callback, which also raises ``JobCancelledError`` once a cancel was requested so work in a thread stops
at its next progress step.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections import OrderedDict
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from nq_ray.errors import InvalidArgumentError, NQRayError
from nq_ray.tools.registry import ToolRegistry
from nq_ray.tools.wire import JobCancelledError, as_nq_error

JobStatus = Literal["pending", "running", "succeeded", "failed", "cancelled"]


class UnknownJobError(NQRayError, KeyError):
    """A job id the registry does not hold (jobs live in memory until the registry restarts)."""

    code = "unknown_job"
    http_status = 404

    def __str__(self) -> str:
        return f"[{self.code}] {self.message}"


class JobRequest(BaseModel):
    """``POST /api/jobs`` body: which tool to run in the background, with which arguments."""

    tool: str = Field(max_length=64, description="a tool name from GET /api/tools")
    arguments: dict[str, Any] = Field(default_factory=dict)


class JobState(BaseModel):
    """A job's state; ``result`` once succeeded, ``error`` (code, message) once failed."""

    id: str
    tool: str
    status: JobStatus
    progress: float | None = Field(default=None, description="work done, in units of total")
    total: float | None = None
    message: str | None = None
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None

    @property
    def done(self) -> bool:
        return self.status in ("succeeded", "failed", "cancelled")


class JobManager:
    """Jobs of one registry, kept in memory (the last ``keep`` finished ones)."""

    def __init__(self, registry: ToolRegistry, *, keep: int = 200, max_running: int = 8) -> None:
        self.registry = registry
        self.keep = keep
        self.max_running = max_running
        self._jobs: OrderedDict[str, JobState] = OrderedDict()
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._cancel: dict[str, threading.Event] = {}
        self.counts: dict[str, int] = {}

    def submit(self, tool: str, arguments: dict[str, Any] | None = None, who: str = "anonymous") -> JobState:
        """Validate now (a bad request fails here, not later), then start the job."""
        self.registry.validate(tool, arguments or {})
        if len(self._tasks) >= self.max_running:
            raise InvalidArgumentError(
                f"{len(self._tasks)} jobs are running (at most {self.max_running}); wait or cancel one"
            )
        job = JobState(id=uuid.uuid4().hex, tool=tool, status="pending", created_at=datetime.now(UTC))
        self._jobs[job.id] = job
        self._trim()
        self._cancel[job.id] = threading.Event()
        task = asyncio.get_running_loop().create_task(self._run(job, arguments or {}, who))
        task.add_done_callback(lambda _t: self._settle(job))
        self._tasks[job.id] = task
        self._count("submitted")
        return job.model_copy()

    def get(self, job_id: str) -> JobState:
        job = self._jobs.get(job_id)
        if job is None:
            raise UnknownJobError(
                f"unknown job {job_id!r}; jobs are kept until the registry restarts", job=job_id
            )
        return job.model_copy()

    def list(self) -> list[JobState]:
        return [j.model_copy() for j in reversed(self._jobs.values())]

    def cancel(self, job_id: str) -> JobState:
        job = self._jobs.get(job_id)
        if job is None:
            raise UnknownJobError(f"unknown job {job_id!r}", job=job_id)
        if not job.done:
            flag = self._cancel.get(job_id)
            if flag is not None:
                flag.set()
            task = self._tasks.get(job_id)
            if task is not None:
                task.cancel()
        return job.model_copy()

    def running(self) -> int:
        return len(self._tasks)

    async def _run(self, job: JobState, arguments: dict[str, Any], who: str) -> None:
        cancelled = self._cancel[job.id]  # the worker thread keeps its own reference

        def progress(done: float, total: float | None = None, message: str | None = None) -> None:
            if cancelled.is_set():
                raise JobCancelledError(f"job {job.id} was cancelled")
            job.progress, job.total, job.message = done, total, message

        job.status, job.started_at = "running", datetime.now(UTC)
        try:
            job.result = await self.registry.call(job.tool, arguments, who=who, progress=progress)
            job.status = "succeeded"
        except asyncio.CancelledError:
            job.status, job.error = "cancelled", {"code": "cancelled", "message": "cancelled by request"}
        except BaseException as exc:
            err = as_nq_error(exc)
            if err is None:
                raise
            if isinstance(err, JobCancelledError) or cancelled.is_set():
                job.status, job.error = "cancelled", {"code": "cancelled", "message": "cancelled by request"}
            else:
                job.status, job.error = "failed", err.to_dict()
        finally:
            job.finished_at = datetime.now(UTC)
            self._tasks.pop(job.id, None)
            self._cancel.pop(job.id, None)
            self._count(job.status)

    def _settle(self, job: JobState) -> None:
        """A job cancelled before it started never ran ``_run``: record it as cancelled."""
        if not job.done:
            job.status, job.error = (
                "cancelled",
                {"code": "cancelled", "message": "cancelled before it started"},
            )
            job.finished_at = datetime.now(UTC)
            self._tasks.pop(job.id, None)
            self._cancel.pop(job.id, None)
            self._count("cancelled")

    def _count(self, key: str) -> None:
        self.counts[key] = self.counts.get(key, 0) + 1

    def _trim(self) -> None:
        while len(self._jobs) > self.keep:
            oldest = next((k for k, j in self._jobs.items() if j.done), None)
            if oldest is None:
                return
            del self._jobs[oldest]
