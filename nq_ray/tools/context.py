"""What a tool runs with: the settings, the broker, a clock, an event sink, and progress reporting.

The registry binds one ``ToolContext`` (and, for long work, a progress callback) around each call, so the
tool functions keep clean, schema-friendly signatures and read their collaborators with ``current()``.
"""

from __future__ import annotations

import contextvars
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from nq_ray.config import Settings

Progress = Callable[[float, float | None, str | None], None]
"""``progress(done, total, message)``; may be called from worker threads; may raise to cancel."""

EventSink = Callable[[str, dict[str, Any]], Awaitable[None] | None]
"""``publish(event_type, data)``: order_update, market_update, ... (the WebSocket fan-out)."""


def _wall_clock() -> datetime:
    return datetime.now(UTC)


@dataclass
class ToolContext:
    """Collaborators of the tools. ``broker`` returns the paper broker's actor handle (created lazily)."""

    settings: Settings
    clock: Callable[[], datetime] = _wall_clock
    broker_factory: Callable[[Settings], Any] | None = None
    publish: EventSink | None = None
    _broker: Any = field(default=None, repr=False)

    def broker(self) -> Any:
        """The ``paper_broker`` actor handle (``get_or_create_broker`` unless a factory was given)."""
        if self._broker is None:
            if self.broker_factory is not None:
                self._broker = self.broker_factory(self.settings)
            else:
                from nq_ray.execution.actor import get_or_create_broker

                self._broker = get_or_create_broker(self.settings)
        return self._broker

    async def emit(self, event: str, data: dict[str, Any]) -> None:
        if self.publish is None:
            return
        out = self.publish(event, data)
        if out is not None:
            await out


_context: contextvars.ContextVar[ToolContext | None] = contextvars.ContextVar("nq_tool_context", default=None)
_progress: contextvars.ContextVar[Progress | None] = contextvars.ContextVar("nq_tool_progress", default=None)


@contextmanager
def bind(context: ToolContext, progress: Progress | None = None) -> Iterator[None]:
    t1, t2 = _context.set(context), _progress.set(progress)
    try:
        yield
    finally:
        _context.reset(t1)
        _progress.reset(t2)


def current() -> ToolContext:
    """The context of the running tool call (a default one from the environment outside a call)."""
    ctx = _context.get()
    if ctx is None:
        from nq_ray.config import load_settings

        ctx = ToolContext(settings=load_settings())
        _context.set(ctx)
    return ctx


def progress_callback() -> Progress | None:
    """The progress callback bound to this call, if the caller asked for progress."""
    return _progress.get()


def report(done: float, total: float | None = None, message: str | None = None) -> None:
    cb = _progress.get()
    if cb is not None:
        cb(done, total, message)
