"""What a tool runs with: the settings, the broker, a clock, an event sink, and progress reporting.

The registry binds one ``ToolContext`` (and, for long work, a progress callback) around each call, so the
tool functions keep clean, schema-friendly signatures and read their collaborators with ``current()``.

Point in time: a context with ``as_of`` set (``ToolContext.point_in_time``) is how replays and agent
backtests run the tools. Every bar a tool reads goes through ``nq_ray.tools.data.load``, which keeps only
the bars that had closed by ``as_of`` (the one choke point; ``end`` is clamped, ``period`` counts back from
the last of them); "now" is ``as_of``; and the broker is a ``PointInTimeBroker``: a flat paper book whose
risk gate judges at ``as_of`` and which refuses to send orders.
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from nq_ray.config import Settings
from nq_ray.errors import NQRayError

Progress = Callable[[float, float | None, str | None], None]
"""``progress(done, total, message)``; may be called from worker threads; may raise to cancel."""

EventSink = Callable[[str, dict[str, Any]], Awaitable[None] | None]
"""``publish(event_type, data)``: order_update, market_update, ... (the WebSocket fan-out)."""


def _wall_clock() -> datetime:
    return datetime.now(UTC)


class PointInTimeError(NQRayError):
    """A tool that would act in the present (send or change an order) called in a point-in-time run."""

    code = "point_in_time"
    http_status = 409


def as_utc(at: datetime | str | pd.Timestamp) -> datetime:
    """``at`` as a timezone-aware UTC datetime (a naive value is New York wall time, like the tools')."""
    ts = pd.Timestamp(at)
    if ts.tzinfo is None:
        ts = ts.tz_localize("America/New_York")
    return ts.tz_convert("UTC").to_pydatetime()


@dataclass
class ToolContext:
    """Collaborators of the tools. ``broker`` returns the paper broker's actor handle (created lazily).
    ``as_of`` (tz-aware) makes every tool see the market as it was then (see the module docstring)."""

    settings: Settings
    clock: Callable[[], datetime] = _wall_clock
    broker_factory: Callable[[Settings], Any] | None = None
    publish: EventSink | None = None
    as_of: datetime | None = None
    _broker: Any = field(default=None, repr=False)

    def now(self) -> datetime:
        """The tools' "now": ``as_of`` in a point-in-time run, else the clock."""
        return self.as_of if self.as_of is not None else self.clock()

    def point_in_time(self, as_of: datetime | str | pd.Timestamp) -> ToolContext:
        """A copy of this context that sees only data up to ``as_of``, publishes nothing and sends no
        orders (its broker is a ``PointInTimeBroker``)."""
        at = as_utc(as_of)
        return replace(
            self, as_of=at, publish=None, broker_factory=None, _broker=PointInTimeBroker(self.settings, at)
        )

    def broker(self) -> Any:
        """The ``paper_broker`` actor handle (``get_or_create_broker`` unless a factory was given)."""
        if self._broker is None:
            if self.as_of is not None:
                self._broker = PointInTimeBroker(self.settings, self.as_of)
            elif self.broker_factory is not None:
                self._broker = self.broker_factory(self.settings)
            else:
                from nq_ray.execution.actor import get_or_create_broker

                self._broker = get_or_create_broker(self.settings)
        return self._broker

    def close(self) -> None:
        """Close an in-process broker this context made (an actor handle needs nothing)."""
        if isinstance(self._broker, InProcessBroker):
            self._broker.close()
            self._broker = None

    async def emit(self, event: str, data: dict[str, Any]) -> None:
        if self.publish is None:
            return
        out = self.publish(event, data)
        if out is not None:
            await out


class _Remote:
    """``method.remote(...)`` → an awaitable, so tools call ``PointInTimeBroker`` like the broker actor."""

    def __init__(self, fn: Callable[..., Any]) -> None:
        self.fn = fn

    async def remote(self, *args: Any, **kwargs: Any) -> Any:
        return self.fn(*args, **kwargs)


class PointInTimeBroker:
    """The broker tools see in a point-in-time run: a flat, in-memory paper book (the settings' account
    size and risk limits) whose gate judges orders at ``as_of``. It answers ``check_order`` and
    ``portfolio``; ``place_order`` and ``manage_position`` raise ``PointInTimeError`` (a replay or a
    backtest never sends an order to the live book)."""

    def __init__(self, settings: Settings, as_of: datetime) -> None:
        from nq_ray.execution.broker import Broker

        self.as_of = as_of
        self.book = Broker(
            limits=settings.risk.limits,
            starting_balance_usd=settings.risk.account_size_usd,
            slippage_ticks=settings.execution.slippage_ticks,
            commission_per_contract=settings.execution.commission_per_contract,
        )
        self.check_order = _Remote(self._check)
        self.portfolio = _Remote(self._portfolio)
        self.place_order = _Remote(self._refuse("place_order"))
        self.manage_position = _Remote(self._refuse("manage_position"))

    def _check(self, order: Any) -> Any:
        from nq_ray.execution.broker import parse_order

        return self.book.check(parse_order(order), self.as_of)

    def _portfolio(self) -> dict[str, Any]:
        acct = self.book.account(self.as_of)
        zero = dict.fromkeys(("realized_pnl_usd", "unrealized_pnl_usd", "commission_usd", "net_pnl_usd"), 0.0)
        return {
            "positions": {},
            "total": zero,
            "equity_usd": acct.equity_usd,
            "balance_usd": acct.balance_usd,
            "as_of": self.as_of.isoformat(),
            "point_in_time": True,
        }

    def _refuse(self, what: str) -> Callable[..., Any]:
        def refuse(*_args: Any, **_kwargs: Any) -> Any:
            raise PointInTimeError(
                f"{what} is not available in a point-in-time run (as of {self.as_of.isoformat()}): replays "
                "and agent backtests never send orders; the backtest engine simulates the fills",
                as_of=self.as_of.isoformat(),
            )

        return refuse


class _Threaded:
    """``method.remote(...)`` → an awaitable run on a worker thread, one call at a time (``lock``)."""

    def __init__(self, fn: Callable[..., Any], lock: threading.Lock) -> None:
        self.fn, self.lock = fn, lock

    async def remote(self, *args: Any, **kwargs: Any) -> Any:
        def run() -> Any:
            with self.lock:
                return self.fn(*args, **kwargs)

        return await asyncio.to_thread(run)


class InProcessBroker:
    """The paper broker without Ray (a ``broker_factory``): ``BrokerService`` — what the ``paper_broker``
    actor hosts — journaled to the settings' store, on the wall clock, its methods called as
    ``await broker.<method>.remote(...)`` on a worker thread, one at a time. ``feed`` prices market orders
    from the data source, as in the runtime. One per process: two on one store keep two books."""

    def __init__(self, settings: Settings, *, feed: bool = True) -> None:
        from nq_ray.execution.actor import BrokerService

        self.svc = BrokerService(settings, feed=feed)
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> _Threaded:
        if name.startswith("_"):
            raise AttributeError(name)
        return _Threaded(getattr(self.svc, name), self._lock)

    def close(self) -> None:
        self.svc._svc.close()


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
