"""Wait on a condition with a deadline instead of sleeping a fixed time and hoping it holds.

``wait_until(lambda: job()["status"] == "done", timeout_s=30, message="the sweep job finished")`` polls
the predicate until it returns a truthy value (returned to the caller) or the deadline passes; then it
raises :class:`WaitTimeout` (an ``AssertionError``, so pytest reports it as a failed check) naming what
was awaited and the last value seen. ``await_until`` is the same for async code; its predicate may be a
coroutine function. Where the code exposes a real event (an ``asyncio.Event``, a future), await that.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")

__all__ = ["WaitTimeout", "await_until", "wait_until"]


class WaitTimeout(AssertionError):
    """A condition did not hold before its deadline."""


def _timeout(
    message: str, timeout_s: float, polls: int, last: object, error: BaseException | None
) -> WaitTimeout:
    detail = f"last value {last!r}" if error is None else f"last error {type(error).__name__}: {error}"
    return WaitTimeout(f"timed out after {timeout_s:g} s ({polls} polls) waiting until {message}; {detail}")


def wait_until(
    predicate: Callable[[], T],
    *,
    timeout_s: float,
    message: str,
    interval_s: float = 0.05,
    retry_on: tuple[type[BaseException], ...] = (),
) -> T:
    """Poll ``predicate`` until it returns a truthy value (returned) or ``timeout_s`` passes (raises).

    Exceptions of the types in ``retry_on`` count as "not yet"; any other exception propagates at once.
    """
    deadline = time.monotonic() + timeout_s
    polls, last, error = 0, None, None
    while True:
        polls += 1
        try:
            value = predicate()
            error = None
        except retry_on as exc:
            value, error = None, exc  # type: ignore[assignment]
        if value:
            return value
        last = value
        if time.monotonic() >= deadline:
            raise _timeout(message, timeout_s, polls, last, error)
        time.sleep(interval_s)


async def await_until(
    predicate: Callable[[], T | Awaitable[T]],
    *,
    timeout_s: float,
    message: str,
    interval_s: float = 0.05,
    retry_on: tuple[type[BaseException], ...] = (),
) -> T:
    """``wait_until`` for async code: ``predicate`` may return an awaitable, and polls yield to the loop."""
    deadline = time.monotonic() + timeout_s
    polls, last, error = 0, None, None
    while True:
        polls += 1
        try:
            got = predicate()
            value = await got if inspect.isawaitable(got) else got
            error = None
        except retry_on as exc:
            value, error = None, exc
        if value:
            return value  # type: ignore[return-value]
        last = value
        if time.monotonic() >= deadline:
            raise _timeout(message, timeout_s, polls, last, error)
        await asyncio.sleep(interval_s)
