"""Long tool calls over MCP: progress notifications, and cancellation that stops the work.

Every long registry tool (``ToolSpec.long_running``: the backtests, the sweep, walk-forward, the scans)
called over MCP runs with the progress callback of a ``LongCall`` (``run_long``; ``RegistryTool.run``
is the one caller):

- Progress: when the client sent ``params._meta.progressToken``, each report becomes a
  ``notifications/progress``. Values only go up (a repeat, such as a Ray fan-out's heartbeat, is not
  sent: the spec says the value MUST increase with each notification), at most one every
  ``PROGRESS_MIN_INTERVAL_S`` except the last (``done == total``), which is always sent; every
  notification is written before the result (``flush``), so a client never sees progress after it.
- Cancellation: the call's asyncio task is cancelled when the client sends ``notifications/cancelled``
  (the SDK interrupts the request handler) or, over HTTP, when the client drops the request. The tool's
  coroutine then stops waiting at once, but its work runs on a worker thread and in Ray tasks, which a
  task cancel does not reach: ``run_long`` sets the call's cancel flag, and the callback raises
  ``JobCancelledError`` at the tool's next progress step. The Ray fan-outs call it every 0.2 s while
  they wait (``nq_ray.backtest.sweep.map_tasks``, ``nq_ray.analysis.scanner.run_cells``) and cancel
  their tasks in flight when it raises; in-process (no Ray) a sweep stops after its running chunk. The
  single-backtest tools run as one Ray task (``nq_ray.tools.compute.offload``), cancelled with the call.
  This is the jobs API's mechanism (``nq_ray.tools.jobs``: its callback raises once a job is cancelled).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from nq_ray.tools.context import Progress
from nq_ray.tools.wire import JobCancelledError

log = logging.getLogger(__name__)

T = TypeVar("T")

PROGRESS_MIN_INTERVAL_S = 0.2
"""At most five progress notifications a second per call (the last one is always sent)."""


class LongCall:
    """One long ``tools/call``: a thread-safe progress callback that sends MCP progress notifications
    (when the client asked) and raises ``JobCancelledError`` once the call is cancelled."""

    def __init__(self, ctx: Any | None, loop: asyncio.AbstractEventLoop) -> None:
        self._ctx = ctx
        self._loop = loop
        self._cancelled = threading.Event()
        self._lock = threading.Lock()
        self._last_at = 0.0
        self._last_done: float | None = None
        self._final_sent = False
        self._sending: set[asyncio.Task[None]] = set()

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    def cancel(self) -> None:
        self._cancelled.set()

    def progress(self, done: float, total: float | None = None, message: str | None = None) -> None:
        """The tool's ``Progress``: may be called from any thread."""
        if self._cancelled.is_set():
            raise JobCancelledError("the MCP client cancelled this call")
        if self._ctx is None:
            return
        final = total is not None and done >= total
        with self._lock:
            if self._final_sent or (self._last_done is not None and done <= self._last_done):
                return  # not increasing: a heartbeat, or a phase that counts again from zero
            now = time.monotonic()
            if not final and now - self._last_at < PROGRESS_MIN_INTERVAL_S:
                return
            self._last_at, self._last_done, self._final_sent = now, done, final
        self._loop.call_soon_threadsafe(self._send, done, total, message)

    def _send(self, done: float, total: float | None, message: str | None) -> None:
        assert self._ctx is not None
        task = self._loop.create_task(self._ctx.report_progress(done, total, message))
        self._sending.add(task)
        task.add_done_callback(self._sent)

    def _sent(self, task: asyncio.Task[None]) -> None:
        self._sending.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.debug("progress notification not sent: %s", task.exception())

    async def flush(self) -> None:
        """Wait until every notification scheduled so far is written (they go before the result)."""
        await asyncio.sleep(0)  # let call_soon_threadsafe callbacks from worker threads run
        while self._sending:
            await asyncio.gather(*list(self._sending), return_exceptions=True)


def mcp_context() -> Any | None:
    """FastMCP's context of the running request (None outside one: a direct call)."""
    try:
        from fastmcp.server.dependencies import get_context

        return get_context()
    except RuntimeError:
        return None


async def run_long(call: Callable[[Progress], Awaitable[T]]) -> T:
    """``await call(progress)`` as a long MCP tool call: progress notifications, and on cancellation the
    callback raises at the work's next progress step so its thread and Ray tasks stop (see the module
    docstring)."""
    long = LongCall(mcp_context(), asyncio.get_running_loop())
    try:
        out = await call(long.progress)
    except asyncio.CancelledError:
        long.cancel()
        log.info("long MCP tool call cancelled by the client; stopping its work")
        raise
    await long.flush()
    return out
