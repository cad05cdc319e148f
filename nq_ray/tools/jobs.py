"""Jobs: long tool calls run in the background. submit → job id → status/progress → result; cancellable.

A job runs ``ToolRegistry.call`` as an asyncio task; the tool reports progress through the bound
callback, which also raises ``JobCancelledError`` once a cancel was requested so work in a thread stops
at its next progress step.

With a store (``store_url``), every job is written to the ``jobs`` table when it is submitted, when it
starts, on progress (at most once a second) and when it ends: results and terminal states survive a
restart of the process (the ``tool_registry`` actor). A job that was pending or running when its process
died is not resumed (a half-done sweep cannot be trusted to pick up where it stopped, and re-running a
tool that placed orders would not be safe); ``recover()`` marks it ``failed`` with code ``interrupted``
and the message "interrupted by restart", so a client polling it gets an answer instead of a 404.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import uuid
from collections import OrderedDict
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from nq_ray.errors import InvalidArgumentError, NQRayError
from nq_ray.tools.registry import ToolRegistry
from nq_ray.tools.wire import JobCancelledError, as_nq_error

log = logging.getLogger(__name__)

JobStatus = Literal["pending", "running", "succeeded", "failed", "cancelled"]
INTERRUPTED = "interrupted by restart"
TERMINAL = ("succeeded", "failed", "cancelled")


class UnknownJobError(NQRayError, KeyError):
    """A job id neither the registry nor the store holds."""

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
        return self.status in TERMINAL


class JobManager:
    """Jobs of one registry: live ones in memory, every one in the store when ``store_url`` is given
    (else only the last ``keep`` finished ones, in memory)."""

    def __init__(
        self,
        registry: ToolRegistry,
        *,
        store_url: str | None = None,
        keep: int = 200,
        max_running: int = 8,
        progress_every_s: float = 1.0,
    ) -> None:
        self.registry = registry
        self.store_url = store_url
        self.keep = keep
        self.max_running = max_running
        self.progress_every_s = progress_every_s
        self._jobs: OrderedDict[str, JobState] = OrderedDict()
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._cancel: dict[str, threading.Event] = {}
        self._writes: set[asyncio.Task[None]] = set()
        self._repo: Any = None
        self._lock = asyncio.Lock()
        self.counts: dict[str, int] = {}

    # ---- store ----------------------------------------------------------------------------------

    async def _store(self) -> Any:
        if self.store_url is None:
            return None
        async with self._lock:
            if self._repo is None:
                from nq_ray.store.repository import Repository

                self._repo = await Repository.connect(self.store_url)
            return self._repo

    async def recover(self) -> list[str]:
        """Settle jobs a previous process left pending/running: ``failed``, "interrupted by restart"."""
        repo = await self._store()
        if repo is None:
            return []
        from nq_ray.store.jobs import interrupt_unfinished

        ids = await interrupt_unfinished(repo, at=datetime.now(UTC), message=INTERRUPTED)
        if ids:
            log.warning("%d job(s) interrupted by a restart: %s", len(ids), ", ".join(ids[:10]))
        return ids

    async def _save(self, job: JobState, *fields: str) -> None:
        repo = await self._store()
        if repo is None:
            return
        from nq_ray.store.jobs import update_job

        await update_job(repo, job.id, **{f: getattr(job, f) for f in fields})

    def _save_later(self, job: JobState, *fields: str) -> None:
        """A progress write that must not slow the job down (a failure is logged, the next one retries)."""
        task = asyncio.get_running_loop().create_task(self._save(job, *fields))
        self._writes.add(task)
        task.add_done_callback(self._written)

    def _written(self, task: asyncio.Task[None]) -> None:
        self._writes.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("could not store job progress: %s", task.exception())

    # ---- API ------------------------------------------------------------------------------------

    async def submit(
        self, tool: str, arguments: dict[str, Any] | None = None, who: str = "anonymous"
    ) -> JobState:
        """Validate now (a bad request fails here, not later), record the job, then start it."""
        self.registry.validate(tool, arguments or {})
        if len(self._tasks) >= self.max_running:
            raise InvalidArgumentError(
                f"{len(self._tasks)} jobs are running (at most {self.max_running}); wait or cancel one"
            )
        job = JobState(id=uuid.uuid4().hex, tool=tool, status="pending", created_at=datetime.now(UTC))
        repo = await self._store()
        if repo is not None:  # stored before it starts: a store outage refuses the job, typed
            from nq_ray.store.jobs import insert_job

            await insert_job(
                repo, job_id=job.id, tool=tool, who=who, arguments=arguments, created_at=job.created_at
            )
        self._jobs[job.id] = job
        self._trim()
        self._cancel[job.id] = threading.Event()
        task = asyncio.get_running_loop().create_task(self._run(job, arguments or {}, who))
        self._tasks[job.id] = task
        task.add_done_callback(lambda _t: self._settle(job))
        self._count("submitted")
        return job.model_copy()

    async def get(self, job_id: str) -> JobState:
        job = self._jobs.get(job_id)
        if job is not None:
            return job.model_copy()
        repo = await self._store()
        if repo is not None:
            from nq_ray.store.jobs import get_job

            row = await get_job(repo, job_id)
            if row is not None:
                return JobState.model_validate(row)
        raise UnknownJobError(f"unknown job {job_id!r}; GET /api/jobs lists the recent ones", job=job_id)

    async def list(self, limit: int = 100) -> list[JobState]:
        """The newest jobs first (from the store when there is one)."""
        repo = await self._store()
        if repo is None:
            return [j.model_copy() for j in reversed(self._jobs.values())][:limit]
        from nq_ray.store.jobs import list_jobs

        stored = [JobState.model_validate(r) for r in await list_jobs(repo, limit=limit)]
        live = {k: j for k, j in self._jobs.items() if not j.done}  # fresher progress than the store
        return [live[s.id].model_copy() if s.id in live else s for s in stored]

    async def cancel(self, job_id: str) -> JobState:
        """Ask a live job to stop; a finished (or stored) job is returned unchanged."""
        job = self._jobs.get(job_id)
        if job is None:
            return await self.get(job_id)
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

    async def close(self) -> None:
        if self._writes:
            await asyncio.gather(*self._writes, return_exceptions=True)
        if self._repo is not None:
            await self._repo.close()
            self._repo = None

    # ---- running --------------------------------------------------------------------------------

    async def _run(self, job: JobState, arguments: dict[str, Any], who: str) -> None:
        cancelled = self._cancel[job.id]  # the worker thread keeps its own reference
        loop = asyncio.get_running_loop()
        last_write = [0.0]

        def progress(done: float, total: float | None = None, message: str | None = None) -> None:
            if cancelled.is_set():
                raise JobCancelledError(f"job {job.id} was cancelled")
            job.progress, job.total, job.message = done, total, message
            now = time.monotonic()
            if self.store_url is not None and now - last_write[0] >= self.progress_every_s:
                last_write[0] = now
                loop.call_soon_threadsafe(self._save_later, job, "progress", "total", "message")

        job.status, job.started_at = "running", datetime.now(UTC)
        try:
            await self._save(job, "status", "started_at")
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
            # tracked with the other writes, so ``close`` waits for it: the job already reads as
            # finished in memory, and closing the store under this write would lose its final state
            final = loop.create_task(self._save_final(job))
            self._writes.add(final)
            final.add_done_callback(self._written)
            await asyncio.shield(final)

    async def _save_final(self, job: JobState) -> None:
        fields = ("status", "progress", "total", "message", "finished_at", "result", "error")
        try:
            await self._save(job, *fields)
        except Exception as exc:  # the result stays readable in memory; the outage is logged
            log.error("could not store the final state of job %s: %s", job.id, exc)

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
            if self.store_url is not None:
                self._save_later(job, "status", "error", "finished_at")

    def _count(self, key: str) -> None:
        self.counts[key] = self.counts.get(key, 0) + 1

    def _trim(self) -> None:
        while len(self._jobs) > self.keep:
            oldest = next((k for k, j in self._jobs.items() if j.done), None)
            if oldest is None:
                return
            del self._jobs[oldest]
