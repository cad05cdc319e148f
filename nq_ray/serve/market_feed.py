"""How market replay updates reach this replica's WebSocket clients, and the replay's control for the API.

``MarketFeed`` is what ``build_app`` runs for the runtime's market (``Runtime.market``), one of four ways:

- ``wall``: the wall clock. Nothing runs; replay control answers ``not_replay`` (409).
- ``in_process`` (no Ray): the app hosts the ``MarketReplay`` driver itself, publishing straight to the
  app's event bus (through Redis when ``cache.url`` is set); started and stopped with the app.
- ``pump`` (Ray, no Redis): the ``market_replay`` actor keeps its recent updates, and each replica runs a
  ``MarketPump`` that long-polls them (``updates_since``) and publishes each one on its own bus.
- ``redis`` (Ray and Redis): the actor publishes to the ``nq:events`` channel itself and every replica's
  bus listens to it, so the replica does nothing.

**Order and duplicates (the pump).** An update carries ``seq``, which the driver numbers 1, 2, 3, ... and
keeps in the store with its progress: an actor that restarts goes on from the stored ``seq`` and may
release again the few bars it released after its last save, under the same numbers. The pump publishes an
update only when its ``seq`` is above the last one it published, in ``seq`` order, so a client sees every
bar once, in order. A replica that starts (or restarts) while the replay runs starts from the actor's
current ``seq``: its clients get the bars released from then on, not the history (the price and the bars
are one ``GET`` away). A new replay on the store (another ``start`` or ``source`` in the status, looked at
after a quiet poll) numbers from 1 again: the pump starts again at its ``seq``. (A restarted actor's
lower ``seq`` is not a new replay: it releases again what the pump has published, which is dropped.)
A gap (the pump fell more than the actor's buffer behind) is counted in ``gaps`` and logged; the bars in
it are not sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Literal

from nq_ray.errors import NotReplayError

log = logging.getLogger(__name__)

Publish = Callable[[str, dict[str, Any]], Awaitable[None]]
FeedMode = Literal["wall", "in_process", "pump", "redis"]
POLL_TIMEOUT_S = 10.0  # one long poll of the actor
RETRY_S = 1.0  # after a failed poll (the actor restarting)


async def market_status(market: Any) -> dict[str, Any]:
    """``market.status()``: ``MarketReplay`` answers at once, ``RayMarket`` with an actor call."""
    out = market.status()
    if inspect.isawaitable(out):
        out = await out
    return dict(out)


class MarketPump:
    """Long-polls ``market.updates_since`` (a ``RayMarket``) and publishes each new update as
    ``market_update``, by ``seq`` (see the module docstring)."""

    def __init__(
        self,
        market: Any,
        publish: Publish,
        *,
        timeout_s: float = POLL_TIMEOUT_S,
        retry_s: float = RETRY_S,
    ) -> None:
        self.market, self.publish = market, publish
        self.timeout_s, self.retry_s = timeout_s, retry_s
        self.last_seq: int | None = None  # None until the first status says where the replay stands
        self.replay: tuple[Any, Any] | None = None  # (start, source): which replay the seqs count
        self.published = 0
        self.duplicates = 0
        self.gaps = 0
        self.errors = 0
        self.last_error: str | None = None
        self._task: asyncio.Task[None] | None = None
        self.ready = asyncio.Event()  # set once the pump knows the current seq and is polling

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="nq-market-pump")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    def status(self) -> dict[str, Any]:
        return {
            "last_seq": self.last_seq,
            "published": self.published,
            "duplicates": self.duplicates,
            "gaps": self.gaps,
            "errors": self.errors,
            "last_error": self.last_error,
        }

    async def _run(self) -> None:
        while True:
            try:
                if self.last_seq is None:
                    st = await market_status(self.market)
                    self.last_seq, self.replay = int(st.get("seq") or 0), (st.get("start"), st.get("source"))
                    self.ready.set()
                updates = await self.market.updates_since(self.last_seq, timeout=self.timeout_s)
                if updates:
                    await self.take(updates)
                else:
                    await self._check_reset()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the actor restarting, or Ray busy: try again shortly
                self.errors += 1
                self.last_error = f"{type(exc).__name__}: {exc}"[:300]
                log.warning("market pump: %s; retrying in %.1f s", self.last_error, self.retry_s)
                await asyncio.sleep(self.retry_s)

    async def take(self, updates: list[dict[str, Any]]) -> int:
        """Publish the updates after ``last_seq``, in ``seq`` order; how many were published."""
        n = 0
        for update in sorted(updates, key=lambda u: int(u.get("seq") or 0)):
            seq = int(update.get("seq") or 0)
            last = self.last_seq or 0
            if seq <= last:
                self.duplicates += 1
                continue
            if seq > last + 1 and self.last_seq is not None:
                self.gaps += seq - last - 1
                log.warning("market pump: updates %d..%d were lost (the pump fell behind)", last + 1, seq - 1)
            await self.publish("market_update", update)
            self.last_seq = seq
            self.published += 1
            n += 1
            await asyncio.sleep(0)  # a burst (a jump) lets the WebSocket senders run between updates
        return n

    async def _check_reset(self) -> None:
        """After a quiet poll: a new replay on the store (another start or source) counts from its own
        ``seq``; the pump follows it from there."""
        st = await market_status(self.market)
        replay = (st.get("start"), st.get("source"))
        if self.replay is not None and replay != self.replay:
            seq = int(st.get("seq") or 0)
            log.info("market pump: a new replay (%s, seq %d); following it", replay, seq)
            self.last_seq, self.replay = seq, replay


class MarketFeed:
    """The runtime's market as this app runs it (see the module docstring): ``market`` is the driver
    (``MarketReplay`` here, ``RayMarket`` on Ray; ``None`` on the wall clock), ``clock`` the runtime's
    exchange clock. ``start``/``stop`` from the app's lifespan; ``control`` for the replay API."""

    def __init__(self, runtime: Any, publish: Publish, *, redis: bool) -> None:
        self.clock = runtime.clock
        self.market: Any = runtime.market(publish=publish)
        self.pump: MarketPump | None = None
        self.mode: FeedMode
        if self.market is None:
            self.mode = "wall"
        elif not runtime.on_ray:
            self.mode = "in_process"
        elif redis:
            self.mode = "redis"
        else:
            self.mode = "pump"
            self.pump = MarketPump(self.market, publish)

    @property
    def replay(self) -> bool:
        return self.market is not None

    async def start(self) -> None:
        if self.mode == "in_process":
            await self.market.start()
        elif self.pump is not None:
            self.pump.start()

    async def stop(self) -> None:
        if self.pump is not None:
            await self.pump.stop()
        if self.mode == "in_process":
            await self.market.stop()

    def _driver(self) -> Any:
        if self.market is None:
            raise NotReplayError(
                "the runtime runs on the wall clock: there is no market replay to control; start one with "
                "nq-ray up --replay START [--until END] [--speed X] (or NQ_REPLAY__CLOCK=replay)",
                clock="wall",
            )
        return self.market

    async def status(self) -> dict[str, Any]:
        return await market_status(self._driver())

    async def pause(self) -> dict[str, Any]:
        out: dict[str, Any] = await self._driver().pause()
        return out

    async def resume(self) -> dict[str, Any]:
        out: dict[str, Any] = await self._driver().resume()
        return out

    async def set_speed(self, speed: float) -> dict[str, Any]:
        out: dict[str, Any] = await self._driver().set_speed(speed)
        return out

    async def jump(self, to: str) -> dict[str, Any]:
        out: dict[str, Any] = await self._driver().jump(to)
        return out

    async def step(self, bars: int) -> dict[str, Any]:
        out: dict[str, Any] = await self._driver().step(bars)
        return out

    def clock_mode(self) -> str:
        """``wall`` or ``replay``: what results that carry a time say about it."""
        return str(getattr(self.clock, "mode", "wall"))

    async def health(self) -> dict[str, Any]:
        """``/health``'s ``clock``: the clock's state and, on a replay, where the bars stand."""
        from nq_ray.market.clock import clock_info

        info = clock_info(self.clock)
        if self.market is None:
            return info
        st = await self.status()
        keep = ("released", "bars_left", "finished", "seq", "next_release", "running")
        out = {**info, **{k: v for k, v in st.items() if k in info}}  # the driver's clock is the truth
        out |= {k: st.get(k) for k in keep}
        out["feed"] = self.mode
        if self.pump is not None:
            out["pump"] = self.pump.status()
        return out


__all__ = ["MarketFeed", "MarketPump"]
