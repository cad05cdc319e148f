"""What a tool runs with: the settings, the broker, a clock, an event sink, and progress reporting.

The registry binds one ``ToolContext`` (and, for long work, a progress callback) around each call, so the
tool functions keep clean, schema-friendly signatures and read their collaborators with ``current()``.

Point in time: a context with ``as_of`` set (``ToolContext.point_in_time``) is how replays and agent
backtests run the tools. Every bar a tool reads goes through ``nq_ray.tools.data.load``, which keeps only
the bars that had closed by ``as_of`` (the one choke point; ``end`` is clamped, ``period`` counts back from
the last of them); "now" is ``as_of``; and the broker is a ``PointInTimeBroker``: a flat paper book whose
risk gate judges at ``as_of`` and which refuses to send orders.

Where the collaborators come from: ``nq_ray.runtime.Runtime`` (the composition root) builds the context
for its mode. This module never starts Ray or makes a broker of its own; outside a registry call,
``current()`` uses what the runtime installed (``set_default_context``) or, failing that, the settings
from the environment with no broker.
"""

from __future__ import annotations

import contextvars
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pandas as pd

from nq_ray.config import Settings
from nq_ray.errors import ConfigError, NQRayError
from nq_ray.ports import AgentsPort, BrokerPort, Clock

if TYPE_CHECKING:
    from nq_ray.domain.orders import Order
    from nq_ray.execution.broker import ManagePosition
    from nq_ray.execution.records import OrderRecord
    from nq_ray.risk.gate import RiskVerdict

Progress = Callable[[float, float | None, str | None], None]
"""``progress(done, total, message)``; may be called from worker threads; may raise to cancel."""

EventSink = Callable[[str, dict[str, Any]], Awaitable[None] | None]
"""``publish(event_type, data)``: order_update, market_update, ... (the WebSocket fan-out)."""


def _wall_clock() -> datetime:
    return datetime.now(UTC)


class DeskUnavailableError(NQRayError):
    """A tool that needs the trading desk (the ``agents`` toolset) in a context that has none."""

    code = "desk_unavailable"
    http_status = 503


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
    """Collaborators of the tools. ``broker()`` is the paper broker (a ``BrokerPort``) that
    ``broker_factory`` makes on first use; ``nq_ray.runtime.Runtime.tool_context`` gives the factory for
    its mode (in-process, local Ray, cluster). A context built without one has no broker: the tools that
    need it raise ``ConfigError``. ``desk()`` is the trading desk's agents (an ``AgentsPort``), from
    ``desk_factory``: the runtime's one desk, the same the agents API uses (``Runtime.registry`` sets
    it); without it the ``agents`` tools raise ``DeskUnavailableError``. ``as_of`` (tz-aware) makes every
    tool see the market as it was then (see the module docstring)."""

    settings: Settings
    clock: Clock = _wall_clock
    broker_factory: Callable[[Settings], BrokerPort] | None = None
    publish: EventSink | None = None
    as_of: datetime | None = None
    desk_factory: Callable[[], AgentsPort] | None = None
    _broker: BrokerPort | None = field(default=None, repr=False)

    def now(self) -> datetime:
        """The tools' "now": ``as_of`` in a point-in-time run, else the clock."""
        return self.as_of if self.as_of is not None else self.clock()

    @property
    def replay(self) -> bool:
        """Whether the clock is a market replay's (``nq_ray.market.clock.ReplayClock``)."""
        return getattr(self.clock, "mode", "wall") == "replay"

    @property
    def data_as_of(self) -> datetime | None:
        """The point-in-time cut-off for market data: ``as_of`` in a point-in-time run, replay time on a
        replay clock (a bar is visible once it has closed, as the replay releases it), else none."""
        if self.as_of is not None:
            return self.as_of
        return self.clock() if self.replay else None

    @classmethod
    def at(cls, settings: Settings, as_of: datetime | str | pd.Timestamp) -> ToolContext:
        """The context of a replay or an agent backtest: ``settings`` as of ``as_of`` (see
        ``point_in_time``). Needs no runtime: it has no broker to reach and publishes nothing."""
        return cls(settings=settings).point_in_time(as_of)

    def point_in_time(self, as_of: datetime | str | pd.Timestamp, prop: Any = None) -> ToolContext:
        """A copy of this context that sees only data up to ``as_of``, publishes nothing and sends no
        orders (its broker is a ``PointInTimeBroker``; ``prop``: a prop-firm ``(pack, state)`` its gate
        applies, as the agent backtest under a pack passes it)."""
        at = as_utc(as_of)
        return replace(
            self,
            as_of=at,
            publish=None,
            broker_factory=None,
            desk_factory=None,
            _broker=PointInTimeBroker(self.settings, at, prop),
        )

    def broker(self) -> BrokerPort:
        """The paper broker, made by ``broker_factory`` on first use."""
        if self._broker is None:
            if self.as_of is not None:
                self._broker = PointInTimeBroker(self.settings, self.as_of)
            elif self.broker_factory is not None:
                self._broker = self.broker_factory(self.settings)
            else:
                raise ConfigError(
                    "this tool context has no paper broker: build it with nq_ray.runtime.Runtime "
                    "(Runtime(settings, mode='in_process').tool_context()) or pass broker_factory"
                )
        return self._broker

    def desk(self) -> AgentsPort:
        """The trading desk's agents (``desk_factory()``); ``DeskUnavailableError`` when there is none."""
        if self.as_of is not None:
            raise PointInTimeError(
                "the desk's agents are not available in a point-in-time run "
                f"(as of {self.as_of.isoformat()})",
                as_of=self.as_of.isoformat(),
            )
        if self.desk_factory is None:
            raise DeskUnavailableError(
                "this server has no trading desk for agent tasks (its tool registry was built without one: "
                "the tool_registry actor, or a registry not made by nq_ray.runtime.Runtime.registry); use "
                "the agents API (POST /api/agents/{agent_id}/tasks) or the MCP server of `nq-ray up` or "
                "`nq-ray mcp`"
            )
        return self.desk_factory()

    def close(self) -> None:
        """Close the broker this context made, when it has anything to close (an in-process book)."""
        close = getattr(self._broker, "close", None)
        if callable(close):
            close()
        self._broker = None

    async def emit(self, event: str, data: dict[str, Any]) -> None:
        if self.publish is None:
            return
        out = self.publish(event, data)
        if out is not None:
            await out


class PointInTimeBroker:
    """The ``BrokerPort`` tools see in a point-in-time run: a flat, in-memory paper book (the settings'
    account size and risk limits) whose gate judges orders at ``as_of``. It answers ``check_order`` and
    ``portfolio``; ``place_order`` and ``manage_position`` raise ``PointInTimeError`` (a replay or a
    backtest never sends an order to the live book)."""

    def __init__(self, settings: Settings, as_of: datetime, prop: Any = None) -> None:
        from nq_ray.execution.broker import Broker

        self.as_of = as_of
        self.book = Broker(
            limits=settings.risk.limits,
            starting_balance_usd=settings.risk.account_size_usd,
            slippage_ticks=settings.execution.slippage_ticks,
            commission_per_contract=settings.execution.commission_per_contract,
        )
        self.book.prop = prop  # (RulePack, PropState at as_of) or None: the book's gate applies it

    async def check_order(self, order: Order | Mapping[str, Any]) -> RiskVerdict:
        from nq_ray.execution.broker import parse_order

        return self.book.check(parse_order(order), self.as_of)

    async def portfolio(self) -> dict[str, Any]:
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

    async def place_order(self, order: Order | Mapping[str, Any], source: str | None = None) -> OrderRecord:
        raise self._refused("place_order")

    async def manage_position(self, request: ManagePosition | Mapping[str, Any]) -> list[OrderRecord]:
        raise self._refused("manage_position")

    def _refused(self, what: str) -> PointInTimeError:
        return PointInTimeError(
            f"{what} is not available in a point-in-time run (as of {self.as_of.isoformat()}): replays "
            "and agent backtests never send orders; the backtest engine simulates the fills",
            as_of=self.as_of.isoformat(),
        )


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


DefaultContext = Callable[[], ToolContext]
_default: DefaultContext | None = None


def set_default_context(factory: DefaultContext | None) -> None:
    """The hook through which the composition root (``nq_ray.runtime.Runtime.make_default``) supplies
    the context that tool functions called outside a registry call run with; ``None`` removes it."""
    global _default
    _default = factory


def current() -> ToolContext:
    """The context of the running tool call. Outside a call: the one the composition root installed with
    ``set_default_context``, else (explicitly) the environment's settings with no broker — the tools
    never build a runtime of their own."""
    ctx = _context.get()
    if ctx is None:
        if _default is not None:
            ctx = _default()
        else:
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
