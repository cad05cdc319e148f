"""A dropped HTTP request stops its long MCP tool call: the app on a real uvicorn server on loopback, a
raw streamable-HTTP POST of a big sweep (a JSON answer without a progress token, an SSE stream with
one) that the client abandons; the sweep stops using the CPU (this process's thread, or the Ray workers
when an earlier test left Ray up here: the tools then fan out as Ray tasks)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from nq_ray.config import Settings
from nq_ray.serve.app import build_app
from nq_ray.testing.asgi import ThreadedUvicorn
from nq_ray.testing.wait import await_until
from tests.conftest import SUMMARY_PROPERTY
from tests.serve.conftest import AUTH
from tests.tools.test_mcp_long import BIG_SWEEP, FREED_WITHIN_S, IDLE_CORES, cpu_cores, ours

HEADERS = {
    **AUTH,
    "Accept": "application/json, text/event-stream",
    "Content-Type": "application/json",
    "MCP-Protocol-Version": "2025-06-18",
}


@pytest.fixture
def served(settings: Settings) -> Iterator[str]:
    with ThreadedUvicorn(build_app(settings, use_actors=False)) as server:
        yield server.url + "/mcp/"


@pytest.mark.parametrize("progress_token", [None, "p1"], ids=["json", "sse"])
async def test_a_dropped_request_stops_the_sweep(
    served: str, progress_token: str | None, record_property
) -> None:
    params: dict[str, Any] = {"name": "run_sweep", "arguments": BIG_SWEEP}
    if progress_token is not None:
        params["_meta"] = {"progressToken": progress_token}
    body = {"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": params}
    lines: list[str] = []

    async def post(client: httpx.AsyncClient) -> None:
        async with client.stream("POST", served, json=body, headers=HEADERS) as r:
            async for line in r.aiter_lines():
                lines.append(line)

    async def busy() -> bool:
        return await cpu_cores(ours) >= 0.2

    async def idle() -> bool:
        return await cpu_cores(ours) < IDLE_CORES

    async with httpx.AsyncClient(timeout=120) as client:
        call = asyncio.create_task(post(client))
        if progress_token is not None:
            await await_until(
                lambda: any("notifications/progress" in x for x in lines),
                timeout_s=120,
                message="the first progress event",
            )
        await await_until(busy, timeout_s=60, message="the sweep is using the CPU")
        assert not call.done() and not any('"result"' in x for x in lines), "the sweep ended too soon"
        t0 = time.monotonic()
        call.cancel()  # closes the response: the connection is dropped
        with contextlib.suppress(asyncio.CancelledError):
            await call
    await await_until(idle, timeout_s=60, message="the sweep of the dropped request stopped")
    freed = time.monotonic() - t0
    mode = "JSON" if progress_token is None else "SSE"
    record_property(
        SUMMARY_PROPERTY, f"dropped {mode} MCP request: sweep stopped, CPU freed in {freed:.2f} s"
    )
    assert freed < FREED_WITHIN_S
