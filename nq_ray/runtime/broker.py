"""The paper broker's shells: ``BrokerService`` (the book, its journal and the price feed behind one face),
hosted as the named actor ``BrokerActor`` or in this process, and the two ``PaperBrokerPort`` adapters
callers use: ``RayBroker`` (the actor) and ``LocalBroker`` (in-process, on a worker thread).

``BrokerActor``: the paper broker as a named, detached, restartable Ray actor (a thin shell).

Named ``paper_broker`` in namespace ``nq``, ``lifetime="detached"``, ``max_restarts=-1``: a restart
re-runs ``__init__``, which rebuilds open orders, positions and the account from the store. Every
method is idempotent (client order ids, bar times, cancel of a cancelled order), so ``max_task_retries``
can replay a call that was in flight when the actor died without doing anything twice. Methods run
one at a time (a sync actor), which serialises the book.

With ``feed=True`` (what ``nq-ray up`` and the Serve app create) the broker prices itself from the
configured data source (``nq_ray.runtime.feed``): before a market order is checked, the latest price of
its symbol is pushed as a mark (so the gate has a price), and once accepted the order fills at that price
(plus slippage) at the order's time, instead of waiting for a bar nobody pushes. ``refresh_marks`` pushes
newer bars for every symbol with open orders or a position (the runtime calls it periodically).

Live state comes from the store (``nq_ray.store.live``), the one source every actor reads: at start (and
on every restart) the broker runs with its start-up settings plus the live settings overlay, and before
each order decision (``check_order``, ``place_order``, ``manage_position``) it reads the overlay's version
and the desk's halt, so a limit patched live or a kill switch pulled while this actor was down or
restarting is in force for the very next order. While halted its gate refuses every order that opens or
adds to a position (code ``halted``); exits and flattening pass. ``apply_settings`` (the registry's push)
only makes a change take effect before the next read.

Prop-firm pack and event blackouts (``nq_ray.runtime.propfirm``): the gate of every order also gets the
active pack (``propfirm.pack``, live) with the account's state under it, marked after every fill and mark
and before every decision on this broker's clock, and the economic-event blackout in force. When the pack
or a news window with action ``flatten`` says positions must be flat (failed, day stopped, flat-by time,
flatten window), the broker flattens every position itself, on the mark that finds it (client order ids
``prop-flat-...``), whoever else is or is not running; ``prop_status`` is what tools and the UI show.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
import ray

from nq_ray.domain.bars import Bar
from nq_ray.domain.orders import Fill, Order, OrderType
from nq_ray.execution.broker import LEG_ROLES, Broker, ManagePosition, PositionAction, parse_order
from nq_ray.execution.paper import PaperBroker
from nq_ray.execution.records import FillRecord, OrderRecord
from nq_ray.risk.gate import RiskVerdict
from nq_ray.risk.limits import RiskLimits
from nq_ray.runtime.cluster import NAMESPACE, RemoteMethods, named_actor
from nq_ray.runtime.feed import MarkFeed
from nq_ray.runtime.journal import Journal
from nq_ray.runtime.propfirm import FLATTEN_PREFIX, LivePropFirm
from nq_ray.store.live import Halt, effective_settings, live_version, read_live

ACTOR_NAME = "paper_broker"
MAX_TASK_RETRIES = 5


def _wall_clock() -> datetime:
    return datetime.now(UTC)


def _limits(settings: Any) -> RiskLimits:
    return RiskLimits.model_validate(settings.risk.limits.model_dump())


class BrokerService:
    """The broker's face: ``PaperBroker`` plus the price feed; ``clock="wall"`` (default) or ``"bar"``
    (the latest bar's time, for replays and tests). Hosted by ``BrokerActor`` on Ray, or in-process by
    ``LocalBroker`` without it — the same methods either way. ``settings`` are the start-up settings; the
    live overlay and the halt are read from the store (see the module docstring)."""

    def __init__(
        self,
        settings: Any,
        clock: Any = "wall",
        broker_kwargs: dict[str, Any] | None = None,
        feed: bool = False,
    ) -> None:
        from nq_ray.runtime.replay import clock_for

        self._start = settings
        # "wall": the settings' exchange clock (the wall clock, or the replay's when settings say so);
        # "bar": the latest bar's time; or the caller's clock object (the runtime's, in process)
        self.clock: Any = clock_for(settings) if clock == "wall" else None if clock == "bar" else clock
        self.replay = getattr(self.clock, "mode", "wall") == "replay"
        journal = Journal(settings.store_url)
        try:
            live = journal.run(read_live(journal.repo))
            self.settings, self.stale = effective_settings(settings, live.overlay)
            ex = self.settings.execution
            book = Broker(
                limits=_limits(self.settings),
                starting_balance_usd=self.settings.risk.account_size_usd,
                slippage_ticks=ex.slippage_ticks,
                commission_per_contract=ex.commission_per_contract,
                **(broker_kwargs or {}),
            )
            self._journal = journal
            self._book = book
            book.settings_version = live.overlay.version
            self._set_halt(live.halt)
            self._svc = PaperBroker(journal, book, clock=self.clock.now if self.clock is not None else None)
            self._prop = LivePropFirm(journal, self.settings)
            self._prop.attach(book)  # the stored state, for the orders recover decides
            self._svc.recover()  # orders journaled but not decided are decided under the live state
            self._prop.sync(book, self._now())
        except BaseException:
            journal.close()
            raise
        self._feed = MarkFeed(self.settings) if feed else None

    # ---- live state -----------------------------------------------------------------------------

    @property
    def _version(self) -> int:
        """The live overlay's version the gate's limits come from (the book stamps it on verdicts)."""
        return self._book.settings_version or 0

    def _set_halt(self, halt: Halt) -> None:
        self._halt = halt
        self._book.halt_reason = (halt.reason or "halted") if halt.halted else None

    def _take(self, settings: Any, version: int) -> None:
        self._prop.configure(settings)  # an unknown pack raises here: no order is decided without it
        self.settings = settings
        self._book.limits = _limits(settings)
        self._book.settings_version = version
        self._prop.sync(self._book, self._now())
        if self._feed is not None:
            self._feed = MarkFeed(settings, ttl_s=self._feed.ttl_s)

    def _refresh(self) -> None:
        """Read the halt and the overlay's version from the store; take a newer overlay (one small
        query per order decision: the store, not a push that may be lost, decides)."""
        version, halt = self._journal.run(live_version(self._journal.repo))
        self._set_halt(halt)
        if version != self._version:
            live = self._journal.run(read_live(self._journal.repo))
            settings, self.stale = effective_settings(self._start, live.overlay)
            self._take(settings, live.overlay.version)
            self._set_halt(live.halt)
        self._prop.sync(self._book, self._now())  # rolls the session day on this clock

    def _now(self) -> datetime | None:
        """This broker's time: its clock's, else the latest bar's (``None`` before any)."""
        return self.clock.now() if self.clock is not None else self._svc.book.market_time()

    def live(self) -> dict[str, Any]:
        """The live state this broker's gate applies now (read from the store first)."""
        self._refresh()
        h = self._halt
        return {
            "settings_version": self._version,
            "limits": self._book.limits.model_dump(mode="json"),
            "halt": {"halted": h.halted, "reason": h.reason, "by": h.by, "at": h.at},
            "stale": list(self.stale),
            "rule_pack": self._prop.pack.name if self._prop.pack is not None else None,
        }

    def prop_status(self) -> dict[str, Any]:
        """The active prop-firm pack, every rule's value, limit and distance now, the account's state under
        it, the blackout in force and the upcoming events (``LivePropFirm.status``)."""
        self._refresh()
        book = self._svc.book
        positions = {s: p.position.quantity for s, p in book.positions().items() if p.position.quantity}
        return self._prop.status(book, self._now(), positions)

    def _after_market(self, fills: list[Fill]) -> list[Fill]:
        """After fills or marks: mark the pack's state, then flatten when the pack or a news window says
        positions must be flat now (once: not while a forced flatten's orders still work)."""
        now = self._now()
        self._prop.sync(self._book, now, traded=bool(fills))
        why = self._prop.flatten_reason(now) if now is not None else None
        if why is None or now is None:
            return fills
        book = self._svc.book
        held = any(p.position.quantity for p in book.positions().values())
        entries = [r for r in book.open_orders() if r.role not in LEG_ROLES and not r.reduce_only]
        forcing = any(r.client_order_id.startswith(FLATTEN_PREFIX) for r in book.open_orders())
        if forcing or not (held or entries):
            return fills
        coid = f"{FLATTEN_PREFIX}{now.strftime('%Y%m%dT%H%M%S')}"
        req = ManagePosition(action=PositionAction.FLATTEN_ALL, client_order_id=coid)
        out = self._svc.manage_position(req)
        self._prop.last_flatten = {
            "at": now.isoformat(),
            "reason": why,
            "orders": [r.client_order_id for r in out],
        }
        return fills

    def ready(self) -> dict[str, Any]:
        """Liveness plus what was recovered: open orders and the process id (changes on a restart)."""
        return {"pid": os.getpid(), "open_orders": len(self._svc.book.open_orders())}

    def check_order(self, order: Order | Mapping[str, Any]) -> RiskVerdict:
        o = parse_order(order)
        self._refresh()
        if (
            self._feed is not None
            and o.order_type is OrderType.MARKET
            and o.symbol not in self._svc.book.marks()
        ):
            self._mark(o.symbol)  # the gate needs a price for a market order's notional
        return self._svc.check(o)

    def submit_order(
        self,
        order: Order | Mapping[str, Any],
        verdict: RiskVerdict | Mapping[str, Any] | None,
        source: str | None = None,
    ) -> OrderRecord:
        self._prop.sync(self._book, self._now())
        return self._svc.submit(order, verdict, source=source)

    def place_order(self, order: Order | Mapping[str, Any], source: str | None = None) -> OrderRecord:
        """Check with the gate, then submit with that verdict (one round trip for callers); with the feed,
        a market order is priced from the data source and filled at once (see the module docstring)."""
        o = parse_order(order)
        fresh = self._svc.book.get(o.client_order_id) is None
        if fresh:
            self._refresh()
        if self._feed is not None and fresh and o.order_type is OrderType.MARKET:
            self._mark(o.symbol)
        rec = self._svc.submit(o, self._svc.check(o), source=source)
        if self._feed is not None and fresh and not self.replay:
            self._after_market(self._fill_market({rec.symbol}))
            rec = self._svc.order(rec.client_order_id)
        return rec

    def cancel_order(self, client_order_id: str) -> OrderRecord:
        return self._svc.cancel(client_order_id)

    def manage_position(self, request: ManagePosition | Mapping[str, Any]) -> list[OrderRecord]:
        self._refresh()
        out = self._svc.manage_position(request)
        if self._feed is not None and out and not self.replay:
            self._after_market(self._fill_market({r.symbol for r in out}))
            out = [self._svc.order(r.client_order_id) for r in out]
        return out

    # ---- the price feed -------------------------------------------------------------------------

    def _mark(self, symbol: str, *, fresh: bool = False) -> list[Fill]:
        """Push the feed's current price of ``symbol``: on the wall clock a one-price bar at the broker's
        time (strictly after the last mark, so it is never mistaken for a replayed bar); in a replay the
        last bar closed by replay time, as it is (one the broker already has is ignored)."""
        assert self._feed is not None
        if self.replay:
            assert self.clock is not None
            q = self._feed.quote(symbol, as_of=self.clock.now())
            return [] if q is None else self._svc.on_bar(q.symbol, q.bar)
        q = self._feed.quote(symbol, fresh=fresh)
        if q is None:
            return []
        t = self.clock.now() if self.clock is not None else _wall_clock()
        last = self._svc.book.marks().get(q.symbol)
        if last is not None and t <= last.bar_time:
            t = last.bar_time + timedelta(milliseconds=1)
        return self._svc.on_price(q.symbol, q.bar.close, t)

    def _fill_market(self, symbols: set[str]) -> list[Fill]:
        fills: list[Fill] = []
        for sym in symbols:
            working = [r for r in self._svc.book.open_orders(sym) if r.order_type is OrderType.MARKET]
            if working:
                fills.extend(self._mark(sym))
        return fills

    def refresh_marks(self) -> dict[str, Any]:
        """Read the latest price of every symbol with open orders or a position and push it when it is
        newer than the last mark (works limit/stop orders and marks positions to market)."""
        if self._feed is None or self.replay:  # a replay's bars come from its driver (MarketReplay)
            return {"symbols": [], "fills": 0, "feed": self._feed is not None, "replay": self.replay}
        symbols = {r.symbol for r in self._svc.book.open_orders()}
        symbols |= {s for s, p in self._svc.book.positions().items() if p.position.quantity}
        fills: list[Fill] = []
        for sym in sorted(symbols):
            q = self._feed.quote(sym, fresh=True)
            last = self._svc.book.marks().get(sym)
            if q is not None and (last is None or q.bar.time > last.bar_time):
                fills.extend(self._svc.on_bar(sym, q.bar))
        self._after_market(fills)
        return {"symbols": sorted(symbols), "fills": len(fills), "feed": True}

    def apply_settings(self, settings: Any, version: int | None = None) -> dict[str, Any]:
        """Take live settings changes (the registry's push of overlay ``version``): the risk gate's limits
        (in force for the next order) and the feed's data source. A push older than what this broker has
        already read from the store is ignored (pushes may arrive out of order)."""
        if version is None or version >= self._version:
            self._take(settings, self._version if version is None else version)
        return {
            "limits": self._svc.book.limits.model_dump(mode="json"),
            "settings_version": self._version,
        }

    def limits(self) -> dict[str, Any]:
        return self._svc.book.limits.model_dump(mode="json")

    def on_bar(self, symbol: str, bar: Bar | Mapping[str, Any]) -> list[Fill]:
        return self._after_market(self._svc.on_bar(symbol, bar))

    def on_price(self, symbol: str, price: float, time: datetime) -> list[Fill]:
        return self._after_market(self._svc.on_price(symbol, price, time))

    def process_bars(self, symbol: str, frame: pd.DataFrame) -> list[Fill]:
        return self._after_market(self._svc.process_bars(symbol, frame))

    def order(self, client_order_id: str) -> OrderRecord:
        return self._svc.order(client_order_id)

    def orders(self, open_only: bool = False, symbol: str | None = None) -> list[OrderRecord]:
        return self._svc.orders(open_only=open_only, symbol=symbol)

    def fills(self, symbol: str | None = None) -> list[FillRecord]:
        return self._svc.fills(symbol)

    def portfolio(self) -> dict[str, Any]:
        return self._svc.portfolio()

    def close(self) -> None:
        """Close the journal's store connection (an in-process host's shutdown)."""
        self._svc.close()

    def crash_after_journal(self) -> None:
        """Fault injection for tests: the next new order kills this process right after its journal
        row is committed and before the broker acts on it."""

        def die(_rec: OrderRecord) -> None:
            os._exit(1)

        self._svc.after_journal = die


BrokerActor = ray.remote(num_cpus=0)(BrokerService)


def get_or_create_broker(
    settings: Any,
    *,
    name: str = ACTOR_NAME,
    namespace: str = NAMESPACE,
    clock: Any = "wall",
    max_task_retries: int = MAX_TASK_RETRIES,
    broker_kwargs: dict[str, Any] | None = None,
    feed: bool = False,
) -> Any:
    """The handle of the named broker actor, created (detached, restartable) when it does not exist;
    ``feed`` prices market orders from the configured data source (the runtime turns it on)."""
    return named_actor(
        BrokerActor,
        name,
        settings,
        clock,
        broker_kwargs,
        feed,
        namespace=namespace,
        max_task_retries=max_task_retries,
    )


class RayBroker(RemoteMethods):
    """``PaperBrokerPort`` over the ``paper_broker`` actor: each method is one actor call."""

    async def check_order(self, order: Order | Mapping[str, Any]) -> RiskVerdict:
        out: RiskVerdict = await self._call("check_order", order)
        return out

    async def place_order(self, order: Order | Mapping[str, Any], source: str | None = None) -> OrderRecord:
        out: OrderRecord = await self._call("place_order", order, source=source)
        return out

    async def manage_position(self, request: ManagePosition | Mapping[str, Any]) -> list[OrderRecord]:
        out: list[OrderRecord] = await self._call("manage_position", request)
        return out

    async def portfolio(self) -> dict[str, Any]:
        out: dict[str, Any] = await self._call("portfolio")
        return out

    async def ready(self) -> dict[str, Any]:
        out: dict[str, Any] = await self._call("ready")
        return out

    async def cancel_order(self, client_order_id: str) -> OrderRecord:
        out: OrderRecord = await self._call("cancel_order", client_order_id)
        return out

    async def order(self, client_order_id: str) -> OrderRecord:
        out: OrderRecord = await self._call("order", client_order_id)
        return out

    async def orders(self, open_only: bool = False, symbol: str | None = None) -> list[OrderRecord]:
        out: list[OrderRecord] = await self._call("orders", open_only, symbol)
        return out

    async def fills(self, symbol: str | None = None) -> list[FillRecord]:
        out: list[FillRecord] = await self._call("fills", symbol)
        return out

    async def on_price(self, symbol: str, price: float, time: datetime) -> list[Fill]:
        out: list[Fill] = await self._call("on_price", symbol, price, time)
        return out

    async def on_bar(self, symbol: str, bar: Bar | Mapping[str, Any]) -> list[Fill]:
        out: list[Fill] = await self._call("on_bar", symbol, bar)
        return out

    async def refresh_marks(self) -> dict[str, Any]:
        out: dict[str, Any] = await self._call("refresh_marks")
        return out

    async def apply_settings(self, settings: Any, version: int | None = None) -> dict[str, Any]:
        out: dict[str, Any] = await self._call("apply_settings", settings, version)
        return out

    async def live(self) -> dict[str, Any]:
        out: dict[str, Any] = await self._call("live")
        return out

    async def prop_status(self) -> dict[str, Any]:
        out: dict[str, Any] = await self._call("prop_status")
        return out

    async def limits(self) -> dict[str, Any]:
        out: dict[str, Any] = await self._call("limits")
        return out


class LocalBroker:
    """``PaperBrokerPort`` without Ray: ``BrokerService`` — what the ``paper_broker`` actor hosts —
    journaled to the settings' store, on the wall clock, each call run on a worker thread, one at a time
    (as the actor runs them). ``feed`` prices market orders from the data source, as in the runtime. One
    per process: two on one store keep two books."""

    def __init__(self, settings: Any, *, feed: bool = True, clock: Any = "wall") -> None:
        self.svc = BrokerService(settings, clock=clock, feed=feed)
        self._lock = threading.Lock()

    async def _run(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        def run() -> Any:
            with self._lock:
                return fn(*args, **kwargs)

        return await asyncio.to_thread(run)

    async def check_order(self, order: Order | Mapping[str, Any]) -> RiskVerdict:
        out: RiskVerdict = await self._run(self.svc.check_order, order)
        return out

    async def place_order(self, order: Order | Mapping[str, Any], source: str | None = None) -> OrderRecord:
        out: OrderRecord = await self._run(self.svc.place_order, order, source=source)
        return out

    async def manage_position(self, request: ManagePosition | Mapping[str, Any]) -> list[OrderRecord]:
        out: list[OrderRecord] = await self._run(self.svc.manage_position, request)
        return out

    async def portfolio(self) -> dict[str, Any]:
        out: dict[str, Any] = await self._run(self.svc.portfolio)
        return out

    async def ready(self) -> dict[str, Any]:
        out: dict[str, Any] = await self._run(self.svc.ready)
        return out

    async def cancel_order(self, client_order_id: str) -> OrderRecord:
        out: OrderRecord = await self._run(self.svc.cancel_order, client_order_id)
        return out

    async def order(self, client_order_id: str) -> OrderRecord:
        out: OrderRecord = await self._run(self.svc.order, client_order_id)
        return out

    async def orders(self, open_only: bool = False, symbol: str | None = None) -> list[OrderRecord]:
        out: list[OrderRecord] = await self._run(self.svc.orders, open_only, symbol)
        return out

    async def fills(self, symbol: str | None = None) -> list[FillRecord]:
        out: list[FillRecord] = await self._run(self.svc.fills, symbol)
        return out

    async def on_price(self, symbol: str, price: float, time: datetime) -> list[Fill]:
        out: list[Fill] = await self._run(self.svc.on_price, symbol, price, time)
        return out

    async def on_bar(self, symbol: str, bar: Bar | Mapping[str, Any]) -> list[Fill]:
        out: list[Fill] = await self._run(self.svc.on_bar, symbol, bar)
        return out

    async def refresh_marks(self) -> dict[str, Any]:
        out: dict[str, Any] = await self._run(self.svc.refresh_marks)
        return out

    async def apply_settings(self, settings: Any, version: int | None = None) -> dict[str, Any]:
        out: dict[str, Any] = await self._run(self.svc.apply_settings, settings, version)
        return out

    async def live(self) -> dict[str, Any]:
        out: dict[str, Any] = await self._run(self.svc.live)
        return out

    async def prop_status(self) -> dict[str, Any]:
        out: dict[str, Any] = await self._run(self.svc.prop_status)
        return out

    async def limits(self) -> dict[str, Any]:
        out: dict[str, Any] = await self._run(self.svc.limits)
        return out

    def close(self) -> None:
        self.svc.close()
