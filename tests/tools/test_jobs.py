"""Jobs: submit → id → status/progress → result; cancel; unknown ids; bad requests fail at submit."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest
from pydantic import BaseModel

from nq_ray.errors import InvalidArgumentError
from nq_ray.tools.compute import in_thread
from nq_ray.tools.context import ToolContext, progress_callback
from nq_ray.tools.jobs import JobManager, UnknownJobError
from nq_ray.tools.registry import ToolRegistry, spec_of
from tests.tools.conftest import VALID_CALLS


async def _wait(jobs: JobManager, job_id: str, timeout_s: float = 60) -> dict:
    for _ in range(int(timeout_s / 0.05)):
        state = await jobs.get(job_id)
        if state.done:
            return state.model_dump()
        await asyncio.sleep(0.05)
    raise AssertionError("job did not finish")


async def test_sweep_job_reports_progress_and_result(registry) -> None:
    jobs = JobManager(registry)
    job = await jobs.submit("run_sweep", VALID_CALLS["run_sweep"])
    assert job.status == "pending" and len(job.id) == 32
    state = await _wait(jobs, job.id)
    assert state["status"] == "succeeded"
    assert state["progress"] == state["total"] and state["result"]["combinations"] == 4


async def test_bad_request_fails_at_submit_not_later(registry) -> None:
    jobs = JobManager(registry)
    with pytest.raises(InvalidArgumentError):
        await jobs.submit("run_sweep", {"grid": "all of them"})
    with pytest.raises(UnknownJobError):
        await jobs.get("nope")


async def test_failed_job_keeps_the_typed_error(registry) -> None:
    jobs = JobManager(registry)
    job = await jobs.submit("run_backtest", {"strategy": "no_such_strategy"})
    state = await _wait(jobs, job.id)
    assert state["status"] == "failed" and state["error"]["code"] == "invalid_argument"


class Counted(BaseModel):
    done: int


STARTED = threading.Event()


def _count(progress: Any) -> Counted:
    i = 0
    for i in range(1, 10_000):
        STARTED.set()
        progress(i, 10_000, None)
        threading.Event().wait(0.01)
    return Counted(done=i)


async def count_slowly() -> Counted:
    """Counts to 10,000 slowly (a test tool)."""
    return await in_thread(_count, progress_callback())


async def test_cancel_stops_a_running_job_at_its_next_progress_step(settings) -> None:
    reg = ToolRegistry(context=ToolContext(settings=settings))
    reg.add(spec_of(count_slowly, "backtest", long_running=True))
    jobs = JobManager(reg)
    job = await jobs.submit("count_slowly", {})
    await asyncio.to_thread(STARTED.wait, 10)
    await jobs.cancel(job.id)
    state = await _wait(jobs, job.id)
    assert state["status"] == "cancelled" and state["error"]["code"] == "cancelled"
