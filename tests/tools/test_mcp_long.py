"""Long tool calls over MCP (``nq_ray.tools.mcp_long``), through fastmcp's in-memory ``Client`` (a real
client and server session: progress tokens, ``notifications/progress``, ``notifications/cancelled``)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
import pytest
from fastmcp import Client

from nq_ray.testing.wait import await_until
from nq_ray.tools.mcp import build_mcp
from nq_ray.tools.mcp_long import PROGRESS_MIN_INTERVAL_S
from nq_ray.tools.registry import ToolRegistry
from tests.conftest import SUMMARY_PROPERTY
from tests.tools.conftest import VALID_CALLS

# a sweep that keeps every CPU busy for many seconds: 5000 Bollinger-breakout combinations (a Python
# loop per combination, about 4 ms each) on a year of synthetic 1m bars: about 20 s on one core here
# (8 chunks in-process, 4 per CPU on Ray), so without a working cancel it outlives the 5 s bound
BIG_SWEEP: dict[str, Any] = {
    "strategy": "bollinger_breakout",
    "grid": {"period": list(range(5, 105)), "num_std": [round(1 + 0.05 * i, 2) for i in range(50)]},
    "interval": "1m",
    "period": "1y",
    "source": "synthetic",
}
IDLE_CORES = 0.1  # below this the measured processes count as idle (a stopped sweep uses ~0)
FREED_WITHIN_S = 5.0


def long_tools(registry: ToolRegistry) -> list[str]:
    return sorted(n for n, s in registry.specs.items() if s.long_running)


async def test_every_long_tool_sends_increasing_progress_ending_at_total(registry) -> None:
    mcp = build_mcp(registry, who="test")
    names = long_tools(registry)
    assert len(names) == 8  # the five backtest tools, the two scans and the challenge
    async with Client(mcp) as client:
        for name in names:
            seen: list[tuple[float, float | None, float]] = []

            async def on_progress(progress: float, total: float | None, message: str | None) -> None:
                seen.append((progress, total, time.monotonic()))  # noqa: B023 - read before the next loop

            res = await client.call_tool(name, VALID_CALLS[name], progress_handler=on_progress)
            assert not res.is_error, name
            assert seen, f"{name} sent no progress"
            values = [p for p, _, _ in seen]
            assert values == sorted(set(values)), f"{name}: not strictly increasing: {values}"
            last, total, _ = seen[-1]
            assert total is not None and last == total, f"{name}: last {last}/{total}"
            # rate limit: only the final notification may follow the one before it within the interval
            gaps = [b[2] - a[2] for a, b in itertools.pairwise(seen[:-1])]
            assert all(g >= PROGRESS_MIN_INTERVAL_S * 0.5 for g in gaps), f"{name}: {gaps}"


async def test_no_progress_token_no_notifications_and_same_result(registry) -> None:
    async with Client(build_mcp(registry, who="test")) as client:
        res = await client.call_tool("run_sweep", VALID_CALLS["run_sweep"])
    assert res.structured_content["combinations"] == 4


def _this_process() -> list[psutil.Process]:
    return [psutil.Process()]


def _ray_workers() -> list[psutil.Process]:
    """The Ray worker processes of the Ray instance this test process started (``ray::…`` titles)."""
    out = []
    for p in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.Error):
            if p.name().startswith("ray::") or " ".join(p.cmdline()[:1]).startswith("ray::"):
                out.append(p)
    return out


def ours() -> list[psutil.Process]:
    """This process and its Ray workers: where a sweep runs, with Ray up in this process or not."""
    return _this_process() + _ray_workers()


Procs = Callable[[], list[psutil.Process]]


async def cpu_cores(procs: Procs, window_s: float = 0.5) -> float:
    """CPU used by ``procs()`` in cores over ``window_s`` (sampled without blocking the event loop, which
    carries the MCP messages); processes that end in the window count what they used before."""

    def times() -> dict[int, float]:
        out = {}
        for p in procs():
            with contextlib.suppress(psutil.Error):
                t = p.cpu_times()
                out[p.pid] = t.user + t.system
        return out

    a = times()
    t0 = time.monotonic()
    await asyncio.sleep(window_s)
    b = times()
    dt = time.monotonic() - t0
    return sum(max(0.0, b[pid] - a.get(pid, b[pid])) for pid in b) / dt


async def cancel_big_sweep(registry: ToolRegistry, procs: Procs, busy_cores: float) -> tuple[float, float]:
    """Start ``BIG_SWEEP`` from an MCP client, wait for its first progress and until ``procs`` use
    ``busy_cores`` (well under their CPUs: the machine is shared), cancel the call (the client sends
    ``notifications/cancelled``); return (busy cores seen, seconds until ``procs`` are idle)."""
    async with Client(build_mcp(registry, who="test")) as client:
        seen: list[float] = []

        async def on_progress(progress: float, total: float | None, message: str | None) -> None:
            seen.append(progress)

        async def busy() -> float | None:
            used = await cpu_cores(procs)
            return used if used >= busy_cores else None

        async def idle() -> bool:
            return await cpu_cores(procs) < IDLE_CORES

        call = asyncio.create_task(client.call_tool("run_sweep", BIG_SWEEP, progress_handler=on_progress))
        await await_until(lambda: seen, timeout_s=120, message="the sweep's first progress notification")
        used = await await_until(busy, timeout_s=30, message=f"the sweep used {busy_cores} cores")
        assert not call.done(), "the sweep finished before it could be cancelled: make it bigger"
        t0 = time.monotonic()
        call.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await call
        await await_until(idle, timeout_s=60, message="the cancelled sweep stopped using the CPUs")
        freed = time.monotonic() - t0
        ok = await client.call_tool("get_contract_info", {"symbol": "NQ"})  # the server keeps serving
        assert ok.structured_content["symbol"] == "NQ"
    return used, freed


async def _in_process_cancel(data_dir: str) -> float:
    """Run in a fresh interpreter (no Ray there) by the test below: seconds until the CPU is freed."""
    from nq_ray.config import Settings
    from nq_ray.tools.context import ToolContext
    from nq_ray.tools.registry import build_registry

    registry = build_registry(ToolContext(settings=Settings(data={"data_dir": data_dir})))
    _, freed = await cancel_big_sweep(registry, _this_process, busy_cores=0.2)
    return freed


def test_cancelling_an_in_process_sweep_stops_its_thread(tmp_path, record_property) -> None:
    """Without Ray the sweep runs in 8 chunks on a worker thread: a cancel stops it after the running
    chunk (about 2.5 s on one core here; without the cancel it ran on for 9.5 s). In a fresh interpreter:
    this one may have Ray up from another test, which would take the Ray path."""
    code = (
        "import asyncio, sys; from tests.tools.test_mcp_long import _in_process_cancel; "
        "print('freed', asyncio.run(_in_process_cancel(sys.argv[1])))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "data")],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert out.returncode == 0, out.stderr[-3000:]
    freed = float(out.stdout.split("freed", 1)[1])
    record_property(SUMMARY_PROPERTY, f"in-process sweep cancelled over MCP: CPU freed in {freed:.2f} s")
    assert freed < FREED_WITHIN_S


@pytest.mark.usefixtures("ray_session")
async def test_cancelling_a_ray_sweep_frees_the_cpus_within_5s(registry, record_property) -> None:
    """With Ray up the sweep's chunks are Ray tasks (one CPU each, both CPUs of the test cluster busy);
    cancelling the MCP call cancels them: the Ray workers' CPU use drops within 5 s."""
    busy, freed = await cancel_big_sweep(registry, _ray_workers, busy_cores=0.4)
    record_property(
        SUMMARY_PROPERTY,
        f"Ray sweep cancelled over MCP: {busy:.1f} cores busy, CPUs freed in {freed:.2f} s "
        f"(target {FREED_WITHIN_S:.0f} s)",
    )
    assert freed < FREED_WITHIN_S
