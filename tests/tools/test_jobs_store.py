"""Jobs in the store: results and terminal states survive a restart of the ``tool_registry`` actor; a job
running when the actor died comes back ``failed`` ("interrupted by restart")."""

from __future__ import annotations

import asyncio
import threading
import uuid
from typing import Any

import pytest
from pydantic import BaseModel

from nq_ray.tools.compute import in_thread
from nq_ray.tools.context import ToolContext, progress_callback
from nq_ray.tools.jobs import INTERRUPTED, JobManager, UnknownJobError
from nq_ray.tools.registry import ToolRegistry, spec_of
from nq_ray.tools.wire import as_nq_error
from tests.tools.conftest import VALID_CALLS

SWEEP = {"grid": {"fast": [5], "slow": [30, 50]}, "period": "5d"}


class Slow(BaseModel):
    steps: int


RELEASE = threading.Event()


def _slow(progress: Any) -> Slow:
    for i in range(1, 200):
        progress(i, 200, f"step {i}")
        if RELEASE.wait(0.05):
            return Slow(steps=i)
    return Slow(steps=200)


async def slow_steps() -> Slow:
    """Reports progress for about ten seconds (a test tool)."""
    return await in_thread(_slow, progress_callback())


async def _wait(get: Any, job_id: str, timeout_s: float = 60) -> dict[str, Any]:
    for _ in range(int(timeout_s / 0.05)):
        state = await get(job_id)
        state = state if isinstance(state, dict) else state.model_dump(mode="json")
        if state["status"] in ("succeeded", "failed", "cancelled"):
            return state
        await asyncio.sleep(0.05)
    raise AssertionError(f"job {job_id} did not finish")


async def test_a_finished_job_is_read_back_by_a_new_manager(registry, settings) -> None:
    first = JobManager(registry, store_url=settings.store_url)
    job = await first.submit("run_sweep", VALID_CALLS["run_sweep"], who="tester")
    done = await _wait(first.get, job.id)
    await first.close()

    second = JobManager(registry, store_url=settings.store_url)  # a new process: nothing in memory
    assert await second.recover() == []
    stored = await second.get(job.id)
    assert stored.status == "succeeded" and stored.result == done["result"]
    assert stored.result["combinations"] == 4 and stored.progress == stored.total
    assert [j.id for j in await second.list()] == [job.id]
    assert (await second.cancel(job.id)).status == "succeeded"  # a finished job stays finished
    with pytest.raises(UnknownJobError):
        await second.get("0" * 32)
    await second.close()


async def test_a_failed_job_keeps_its_typed_error_in_the_store(registry, settings) -> None:
    jobs = JobManager(registry, store_url=settings.store_url)
    job = await jobs.submit("run_backtest", {"strategy": "no_such_strategy"})
    await _wait(jobs.get, job.id)
    await jobs.close()
    again = JobManager(registry, store_url=settings.store_url)
    state = await again.get(job.id)
    assert state.status == "failed" and state.error["code"] == "invalid_argument"
    await again.close()


async def test_running_job_left_by_a_dead_process_becomes_failed_interrupted(settings) -> None:
    reg = ToolRegistry(context=ToolContext(settings=settings))
    reg.add(spec_of(slow_steps, "backtest", long_running=True))
    RELEASE.clear()
    dying = JobManager(reg, store_url=settings.store_url, progress_every_s=0.05)
    job = await dying.submit("slow_steps", {})
    for _ in range(200):  # running, with progress written to the store
        await asyncio.sleep(0.05)
        from nq_ray.store.jobs import get_job

        row = await get_job(await dying._store(), job.id)
        if row and row["status"] == "running" and (row["progress"] or 0) >= 2:
            break
    else:
        raise AssertionError("the job never reported progress to the store")
    # the "process" dies: a new manager starts on the same store while the old one is abandoned
    fresh = JobManager(reg, store_url=settings.store_url)
    assert await fresh.recover() == [job.id]
    state = await fresh.get(job.id)
    assert state.status == "failed" and state.error == {"code": "interrupted", "message": INTERRUPTED}
    assert state.progress is not None and state.progress >= 2 and state.finished_at is not None
    RELEASE.set()
    await fresh.close()


async def test_a_store_outage_refuses_the_job_with_a_typed_error(registry, tmp_path) -> None:
    blocked = tmp_path / "not_a_dir"
    blocked.write_text("a file where the database directory should be")
    jobs = JobManager(registry, store_url=f"sqlite+aiosqlite:///{blocked}/x/nq.db")
    with pytest.raises(Exception) as info:
        await jobs.submit("get_market_hours", {})
    assert as_nq_error(info.value).code == "store_unavailable"
    assert jobs.running() == 0


async def test_jobs_survive_a_kill_of_the_registry_actor(ray_session, settings) -> None:
    from nq_ray.runtime.registry import get_or_create_registry

    name = f"tool_registry_test_{uuid.uuid4().hex[:8]}"
    actor = get_or_create_registry(settings, name=name)
    try:
        done = await actor.submit.remote("run_sweep", SWEEP, "tester")
        finished = await _wait(actor.job.remote, done["id"])
        assert finished["status"] == "succeeded"
        long = await actor.submit.remote(
            "run_sweep", {"grid": {"fast": list(range(2, 52)), "slow": list(range(60, 160))}, "period": "3mo"}
        )
        for _ in range(400):
            if (await actor.job.remote(long["id"]))["status"] == "running":
                break
            await asyncio.sleep(0.05)
        pid_before = await actor.__ray_call__.remote(lambda self: __import__("os").getpid())

        ray_session.kill(actor, no_restart=False)  # the actor dies; Ray restarts it (max_restarts=-1)

        pid_after = pid_before
        for _ in range(600):  # ray.kill is asynchronous: the old process may answer once more
            try:
                pid_after = await actor.__ray_call__.remote(lambda self: __import__("os").getpid())
            except Exception:
                pid_after = pid_before
            if pid_after != pid_before:
                break
            await asyncio.sleep(0.1)
        assert pid_after != pid_before
        after = await actor.job.remote(finished["id"])
        assert after["status"] == "succeeded" and after["result"] == finished["result"]
        interrupted = await actor.job.remote(long["id"])
        assert interrupted["status"] == "failed"
        assert interrupted["error"] == {"code": "interrupted", "message": INTERRUPTED}
        ids = [j["id"] for j in await actor.list_jobs.remote()]
        assert finished["id"] in ids and long["id"] in ids
    finally:
        ray_session.kill(actor)
