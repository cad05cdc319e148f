"""Market replay: the clock the runtime runs on (``clock_for``), the replay's start-up plan
(``prepare_replay``: checked before anything starts, kept in the store) and its driver
(``MarketReplay``), which releases the data source's bars as replay time passes.

**Which clock.** ``replay.clock``: ``wall``, ``replay`` or ``auto`` (the default): a historical source
(sample, synthetic, ``csv:``, ``parquet:``) is replayed — its bars are history, and a wall clock on them is
meaningless — and a live one (yahoo, tradovate) runs on the wall clock. Entry points resolve ``auto``
once (``resolve``) and hand the resolved settings to every process they start.

**The plan.** ``prepare_replay`` checks the replay against the source's bars (start before the first bar
or after the last, an end before the start, a speed out of range, a source without intraday bars: one
``ConfigError``, exit 2 at the command line) and stores its state (``nq_ray.store.replay``). On a store
that already holds a replay of the same source, the replay continues where its bars stopped; an explicit
start earlier than that is refused (fills are final).

**The driver.** ``MarketReplay`` (in process, or the named actor ``market_replay`` on Ray) owns the
replay clock. It releases each bar of ``replay.symbols`` once, in time order, never early: a bar labelled
at ``t`` is released when replay time reaches ``t + interval`` (when it has closed). Each release goes to
the paper broker first (``on_bar``: working orders fill by the backtester's rules — a market order at
this bar's open plus slippage), then out as ``market_update`` (the event sink; Redis when ``cache.url``
is set; ``updates_since`` for Serve replicas to long-poll), then to the hooks (a desk in lock-step).
Pause, resume, speed and jump (forward only) change the shared state, which every process follows.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from nq_ray.data.loader import HISTORICAL_KINDS
from nq_ray.domain.bars import Bar
from nq_ray.domain.contracts import get_contract
from nq_ray.errors import ConfigError, NQRayError
from nq_ray.market.clock import ReplayClock, ReplayState, WallClock, check_speed, parse_time
from nq_ray.runtime.cluster import RemoteMethods
from nq_ray.store.db import run_sync
from nq_ray.store.live import DESK_STATE_KEY as DESK_KEY
from nq_ray.store.replay import read_replay, read_replay_state, write_replay
from nq_ray.store.repository import Repository

log = logging.getLogger(__name__)

ACTOR_NAME = "market_replay"
BUFFER = 2_000  # market updates kept for replicas that long-poll
SAVE_EVERY_S = 0.5  # the driver's progress is written at most this often (and on every control change)
STARTING = "starting"  # a prepared replay held (paused) until its driver starts

Hook = Callable[[str, Bar], Awaitable[None]]
Publish = Callable[[str, dict[str, Any]], Awaitable[None] | None]


# ---- which clock -------------------------------------------------------------------------------------
def is_replay(settings: Any) -> bool:
    """Whether ``settings`` run on a replay clock (``auto``: a historical source)."""
    mode = settings.replay.clock
    if mode == "auto":
        return bool(settings.data.default_source.partition(":")[0] in HISTORICAL_KINDS)
    return bool(mode == "replay")


def resolve(settings: Any) -> Any:
    """``settings`` with ``replay.clock`` resolved to ``wall`` or ``replay`` (what every process gets)."""
    if settings.replay.clock != "auto":
        return settings
    mode = "replay" if is_replay(settings) else "wall"
    return settings.merged({"replay": {"clock": mode}})


class StoreFollower:
    """Keeps a ``ReplayClock`` on the state in the store: a daemon thread with its own event loop and
    connection reads the row every ``every`` seconds (any process that is not the driver)."""

    def __init__(self, clock: ReplayClock, store_url: str, every: float = 0.25) -> None:
        self.clock, self.store_url, self.every = clock, store_url, every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="nq-replay-clock", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        async def go() -> None:
            repo = await Repository.connect(self.store_url)
            try:
                while not self._stop.is_set():
                    with contextlib.suppress(Exception):  # the store briefly away: keep the last state
                        state = await read_replay_state(repo)
                        if state is not None and state.version > self.clock.state.version:
                            self.clock.adopt(state, notify=False)
                    await asyncio.sleep(self.every)
            finally:
                await repo.close()

        with contextlib.suppress(Exception):
            asyncio.run(go())

    def stop(self) -> None:
        self._stop.set()


def clock_for(settings: Any, *, follow: bool = True) -> WallClock | ReplayClock:
    """The exchange clock of a process started with ``settings``: the replay clock on the store's state,
    followed by a ``StoreFollower`` (``follow``), when ``replay.clock`` is ``replay`` — what the entry
    points resolve ``auto`` to on a historical source after preparing the replay — else the wall clock
    (also for unresolved ``auto``: a library caller that wants a replay asks for one)."""
    if settings.replay.clock != "replay":
        return WallClock()
    state = run_sync(lambda: _read_state(settings.store_url))
    if state is None:
        raise ConfigError(
            "this process runs on the replay clock but the store holds no replay; the entry point "
            "(nq-ray up / mcp / trade) prepares it (nq_ray.runtime.replay.prepare_replay)"
        )
    clock = ReplayClock(state)
    if follow:
        clock.follower = StoreFollower(clock, settings.store_url)
    return clock


async def _read_state(url: str) -> ReplayState | None:
    repo = await Repository.connect(url)
    try:
        return await read_replay_state(repo)
    finally:
        await repo.close()


# ---- the plan ----------------------------------------------------------------------------------------
def replay_bars(settings: Any, symbol: str) -> pd.DataFrame:
    """The bars the replay releases for ``symbol`` (``replay.interval`` of ``data.default_source``);
    ``ConfigError`` when the source has no intraday bars for it."""
    from nq_ray.data import load_bars
    from nq_ray.data.intervals import is_intraday, parse_interval

    source = settings.data.default_source
    try:
        interval = parse_interval(settings.replay.interval)
        if not is_intraday(interval):
            raise ConfigError(
                f"a replay needs intraday bars; replay.interval is {interval}",
                key="replay.interval",
            )
        frame = load_bars(get_contract(symbol).symbol, interval, source=source, settings=settings)
    except ConfigError:
        raise
    except NQRayError as exc:
        raise ConfigError(
            f"cannot replay {symbol} {settings.replay.interval} bars from {source}: {exc.message}; a replay "
            "needs a source with intraday bars (sample, synthetic, or a csv:/parquet: file of 1m–4h bars)",
            key="data.default_source",
        ) from None
    if len(frame) < 2:
        raise ConfigError(f"{source} has fewer than two {symbol} bars; nothing to replay")
    return frame


def default_start(frame: pd.DataFrame, sessions_back: int) -> datetime:
    """The first bar of the session ``sessions_back`` sessions before the last one in ``frame`` (its
    open), so a replay starts at a session open with enough history before it."""
    from nq_ray.market.sessions import session_dates

    days = session_dates(frame.index)
    distinct = pd.unique(days)
    pick = distinct[max(0, len(distinct) - 1 - sessions_back)]
    first: datetime = frame.index[days == pick][0].to_pydatetime()
    return first.astimezone(UTC)


@dataclass(frozen=True)
class ReplayPlan:
    """What ``prepare_replay`` decided: the state stored, and how it came about (for the banner)."""

    state: ReplayState
    resumed: bool
    first_bar: datetime
    last_bar: datetime

    def banner(self) -> list[str]:
        s = self.state
        now = s.at(time.time())
        how = "continues" if self.resumed else "starts"
        until = s.until.isoformat() if s.until else "the last bar"
        lines = [
            f"replay of {s.source} {how} at {_et(now)} ET, x{s.speed:g} real time, until {_et(until)}"
            + (" (paused)" if s.paused and s.note != STARTING else ""),
            "change it: nq-ray up --replay START [--until END] [--speed X] (or NQ_REPLAY__*); "
            "NQ_REPLAY__CLOCK=wall for the wall clock; pause/resume/jump in the UI or "
            "POST /api/market/replay",
        ]
        return lines


def _et(t: Any) -> str:
    if isinstance(t, str):
        try:
            t = datetime.fromisoformat(t)
        except ValueError:
            return t
    return f"{pd.Timestamp(t).tz_convert('America/New_York'):%a %Y-%m-%d %H:%M}"


def prepare_replay(
    settings: Any,
    *,
    start: Any = None,
    until: Any = None,
    speed: float | None = None,
    wall: Callable[[], float] = time.time,
) -> ReplayPlan:
    """Check the replay asked for (``start``/``until``/``speed`` from the command line, else settings)
    against the source's bars and the store, store its state, and return the plan (see the module
    docstring). ``ConfigError`` for anything that cannot be replayed."""
    rs = settings.replay
    symbol = get_contract(rs.symbols[0] if rs.symbols else "NQ").symbol
    frame = replay_bars(settings, symbol)
    from nq_ray.data.intervals import interval_length

    step = interval_length(settings.replay.interval)
    first = frame.index[0].to_pydatetime().astimezone(UTC)
    last = frame.index[-1].to_pydatetime().astimezone(UTC)
    last_close = last + step.to_pytimedelta()
    try:
        sp = check_speed(speed if speed is not None else rs.speed)
        explicit = start if start is not None else rs.start
        t0 = (
            parse_time(explicit, "replay start")
            if explicit is not None
            else default_start(frame, rs.sessions_back)
        )
        end_given = until if until is not None else rs.until
        t1 = parse_time(end_given, "replay until") if end_given is not None else last_close
    except NQRayError as exc:
        raise ConfigError(exc.message, **exc.details) from None
    span = f"{_et(first)} to {_et(last)} ET"
    if t0 < first:
        raise ConfigError(
            f"replay start {_et(t0)} ET is before the first {symbol} bar of {settings.data.default_source} "
            f"({span})",
            key="replay.start",
        )
    if t0 > last:
        raise ConfigError(
            f"replay start {_et(t0)} ET is after the last {symbol} bar of {settings.data.default_source} "
            f"({span})",
            key="replay.start",
        )
    if t1 <= t0:
        raise ConfigError(
            f"replay until {_et(t1)} ET is not after its start {_et(t0)} ET", key="replay.until"
        )
    t1 = min(t1, last_close)
    source = settings.data.default_source

    async def decide() -> ReplayPlan:
        repo = await Repository.connect(settings.store_url)
        try:
            stored, progress = await read_replay(repo)
            released = _latest(progress)
            if stored is not None and stored.source == source and explicit is None:
                # continue where the bars stopped (the formula's time ran on while nothing was running);
                # held until the driver starts, unless someone paused it (then it stays paused)
                at = max([stored.anchor_at, *([released + step.to_pytimedelta()] if released else [])])
                at = min(at, stored.until or at)
                held = stored.paused and stored.note != STARTING
                state = stored.model_copy(
                    update={
                        "anchor_at": at,
                        "anchor_wall": wall(),
                        "speed": sp if speed is not None else stored.speed,
                        "version": stored.version + 1,
                        "paused": True,
                        "note": "" if held else STARTING,
                    }
                )
                await write_replay(repo, state)
                return ReplayPlan(state, True, first, last)
            if released is not None and t0 < released:
                raise ConfigError(
                    f"this store already holds a replay of {stored.source if stored else source} up to "
                    f"{_et(released)} ET; fills are final, so a replay on it must start there or later — "
                    "or use a new store (NQ_DATA__DATA_DIR or NQ_STORE__URL)",
                    key="replay.start",
                )
            state = ReplayState(
                start=t0,
                until=t1,
                speed=sp,
                anchor_at=t0,
                anchor_wall=wall(),
                version=(stored.version + 1) if stored else 1,
                source=source,
                paused=True,  # held at its start until the driver starts: start-up takes no replay time
                note=STARTING,
            )
            await write_replay(
                repo, state, progress={} if stored is None or stored.source != source else progress
            )
            return ReplayPlan(state, False, first, last)
        finally:
            await repo.close()

    return run_sync(decide)


def _latest(progress: dict[str, Any]) -> datetime | None:
    times = [datetime.fromisoformat(v) for v in (progress.get("released") or {}).values() if v]
    return max(times) if times else None


# ---- the driver --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Release:
    at: datetime  # when the bar has closed: its start plus the interval
    symbol: str
    bar: Bar


class MarketReplay:
    """Releases the source's bars on the replay clock (see the module docstring). ``broker`` is anything
    with ``async on_bar(symbol, bar)`` (a ``PaperBrokerPort``); ``publish`` the event sink."""

    def __init__(
        self,
        settings: Any,
        *,
        broker: Any = None,
        publish: Publish | None = None,
        clock: ReplayClock | None = None,
        wall: Callable[[], float] | None = None,
    ) -> None:
        self.settings = settings
        self.broker = broker
        self.publish = publish
        self.wall = wall or (clock.wall if clock is not None else time.time)
        self.hooks: list[Hook] = []
        self._given = clock  # the runtime's clock, when in process: the one the broker and tools read
        self.clock: ReplayClock | None = None
        self._schedule: list[Release] = []
        self._next = 0
        self._released: dict[str, str] = {}
        self._buffer: deque[dict[str, Any]] = deque(maxlen=BUFFER)
        self.seq = 0
        self._cond: asyncio.Condition | None = None
        self._task: asyncio.Task[None] | None = None
        self._repo: Repository | None = None
        self._saved_at = 0.0
        self._wake = asyncio.Event()
        self.errors = 0
        self.last_error: str | None = None
        self.finished = False
        self._stopping = False

    # ---- set-up ----------------------------------------------------------------------------------
    @property
    def started(self) -> bool:
        return self._task is not None

    async def start(self, *, paused: bool = False) -> dict[str, Any]:
        """Read the stored state (``prepare_replay`` wrote it), build the release schedule past what was
        already released, seed the broker with the last bar before replay time, and start releasing —
        from now: time starts to run only once all that is done. ``paused``: a new replay stays paused
        at its start (for stepping by hand)."""
        if self._task is not None and not self._task.done():
            return self.status()
        self._cond = asyncio.Condition()
        self._repo = await Repository.connect(self.settings.store_url)
        state, progress = await read_replay(self._repo)
        if state is None:
            raise ConfigError("no replay in the store; nq-ray up / mcp / trade prepares one (prepare_replay)")
        self._released = dict(progress.get("released") or {})
        self.seq = int(progress.get("seq") or 0)
        self._schedule = await asyncio.to_thread(self._build_schedule, state)
        await self._seed(state.anchor_at)
        self._next = 0  # release_due skips what was released before (the stored progress)
        self._skip_done()
        state = await self._go(state, paused=paused)  # time runs from here
        if self._given is not None:
            self._given.adopt(state)
            self.clock = self._given
        else:
            self.clock = ReplayClock(state, wall=self.wall)
        self._task = asyncio.create_task(self._run(), name="nq-market-replay")
        return self.status()

    async def _go(self, state: ReplayState, *, paused: bool = False) -> ReplayState:
        """Time runs from now: a replay held for start-up is let go (or kept paused: ``paused``); a
        running one whose driver died goes on from where its bars stopped (time stood still while nothing
        was released)."""
        assert self._repo is not None
        if state.note == STARTING:
            update: dict[str, Any] = {"paused": paused, "note": ""}
        elif not state.paused:
            from nq_ray.data.intervals import interval_length

            released = _latest({"released": self._released})
            at = state.anchor_at
            if released is not None:
                at = max(at, released + interval_length(self.settings.replay.interval).to_pytimedelta())
            update = {"anchor_at": min(at, state.until or at)}
        else:
            return state
        state = state.model_copy(update=update | {"anchor_wall": self.wall(), "version": state.version + 1})
        await write_replay(self._repo, state)
        return state

    def _build_schedule(self, state: ReplayState) -> list[Release]:
        from nq_ray.data.intervals import interval_length

        step = interval_length(self.settings.replay.interval).to_pytimedelta()
        out: list[Release] = []
        for sym in self.settings.replay.symbols:
            root = get_contract(sym).symbol
            try:
                frame = replay_bars(self.settings, root)
            except ConfigError as exc:  # ES missing from a csv: file of NQ only — replay what there is
                log.warning("replay: %s", exc)
                continue
            closes = frame.index + pd.Timedelta(step)
            start = pd.Timestamp(state.start)
            # the last bar closed by the start (the broker's first price), then the replay's own bars
            frame = pd.concat([frame.loc[closes <= start].tail(1), frame.loc[closes > start]])
            if state.until is not None:
                frame = frame.loc[frame.index + pd.Timedelta(step) <= pd.Timestamp(state.until)]
            cols = frame[["open", "high", "low", "close", "volume"]].to_numpy(dtype=float)
            for t, (o, h, lo, c, v) in zip(frame.index.to_pydatetime(), cols, strict=True):
                bar = Bar(time=t, open=o, high=h, low=lo, close=c, volume=v)
                out.append(Release(at=(t + step).astimezone(UTC), symbol=root, bar=bar))
        out.sort(key=lambda r: (r.at, r.symbol))
        return out

    def _skip_done(self) -> None:
        while self._next < len(self._schedule) and self._done(self._schedule[self._next]):
            self._next += 1

    def _done(self, r: Release) -> bool:
        seen = self._released.get(r.symbol)
        return seen is not None and r.bar.time <= datetime.fromisoformat(seen)

    async def _seed(self, now: datetime) -> None:
        """A new replay: give the broker each symbol's last bar closed by ``now`` (history, so the gate
        has a price from the first order on) and count it released; a continued replay has progress."""
        last: dict[str, Release] = {}
        for r in self._schedule:
            if r.at > now:
                break
            if r.symbol not in self._released:
                last[r.symbol] = r
        for r in last.values():
            if self.broker is not None:
                with contextlib.suppress(Exception):
                    await self.broker.on_bar(r.symbol, r.bar)
            self._released[r.symbol] = max(self._released.get(r.symbol, ""), r.bar.time.isoformat())

    # ---- the loop --------------------------------------------------------------------------------
    async def _run(self) -> None:
        assert self.clock is not None
        clock = self.clock
        while self._next < len(self._schedule):
            if self._stopping:
                return
            self._skip_done()
            if self._next >= len(self._schedule):
                break
            due = self._schedule[self._next].at
            if clock.now() < due:
                wait = clock.wall_seconds_until(due)
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(
                        self._wake.wait(), 0.2 if wait is None else min(0.2, max(wait, 0.0005))
                    )
                continue
            await self.release_due()
        self.finished = True
        await self._save(force=True)
        await self._emit("system_notification", {"message": "market replay ended", "clock": clock.info()})

    async def release_due(self) -> int:
        """Release every bar whose close is at or before replay time now, in order; how many."""
        assert self.clock is not None
        now = self.clock.now()
        n = 0
        while self._next < len(self._schedule) and self._schedule[self._next].at <= now:
            r = self._schedule[self._next]
            self._next += 1
            if self._done(r):
                continue
            await self._release(r)
            n += 1
        await self._save()
        return n

    async def _release(self, r: Release) -> None:
        fills = 0
        if self.broker is not None:
            try:
                fills = len(await self.broker.on_bar(r.symbol, r.bar) or [])
            except Exception as exc:  # the broker restarting: the bar is in the store's progress, not lost
                self.errors += 1
                self.last_error = f"{type(exc).__name__}: {exc}"[:300]
                log.warning("replay: broker on_bar %s %s failed: %s", r.symbol, r.bar.time, exc)
        self._released[r.symbol] = r.bar.time.isoformat()
        self.seq += 1
        update = {
            "seq": self.seq,
            "symbol": r.symbol,
            "price": r.bar.close,
            "bar_time": r.bar.time.isoformat(),
            "bar": r.bar.model_dump(mode="json"),
            "interval": self.settings.replay.interval,
            "released_at": r.at.isoformat(),
            "fills": fills,
            "clock": "replay",
            "source": self.settings.data.default_source,
            "wall": self.wall(),
        }
        self._buffer.append(update)
        assert self._cond is not None
        async with self._cond:
            self._cond.notify_all()
        await self._emit("market_update", update)  # out first: a lock-step desk's cycle never delays it
        for hook in list(self.hooks):
            try:
                await hook(r.symbol, r.bar)
            except Exception as exc:
                self.errors += 1
                self.last_error = f"hook: {type(exc).__name__}: {exc}"[:300]
                log.warning("replay hook failed: %s", exc)

    async def _emit(self, event: str, data: dict[str, Any]) -> None:
        if self.publish is None:
            return
        try:
            out = self.publish(event, data)
            if out is not None:
                await out
        except Exception as exc:  # a subscriber's trouble never stops the market
            log.warning("replay: publish %s failed: %s", event, exc)

    async def _save(self, force: bool = False) -> None:
        if self._repo is None or self.clock is None:
            return
        w = self.wall()
        if not force and w - self._saved_at < SAVE_EVERY_S:
            return
        self._saved_at = w
        progress = {"released": dict(self._released), "seq": self.seq}
        try:
            await write_replay(self._repo, self.clock.state, progress)
        except Exception as exc:
            log.warning("replay: saving progress failed: %s", exc)

    # ---- reading ---------------------------------------------------------------------------------
    async def updates_since(self, seq: int = 0, timeout: float = 0.0) -> list[dict[str, Any]]:
        """Market updates after ``seq`` (oldest first); waits up to ``timeout`` seconds for one."""
        if not isinstance(seq, int) or seq < 0:
            seq = 0
        timeout = min(max(float(timeout or 0.0), 0.0), 30.0)
        out = [u for u in self._buffer if u["seq"] > seq]
        if out or timeout <= 0 or self._cond is None:
            return out
        async with self._cond:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._cond.wait_for(lambda: self.seq > seq), timeout)
        return [u for u in self._buffer if u["seq"] > seq]

    def status(self) -> dict[str, Any]:
        if self.clock is None:
            return {"clock": "replay", "running": False}
        info = self.clock.info()
        nxt = self._schedule[self._next] if self._next < len(self._schedule) else None
        return info | {
            "running": self._task is not None and not self._task.done(),
            "finished": self.finished,
            "seq": self.seq,
            "released": dict(self._released),
            "next_release": nxt.at.isoformat() if nxt else None,
            "bars_left": len(self._schedule) - self._next,
            "symbols": sorted({r.symbol for r in self._schedule}),
            "interval": self.settings.replay.interval,
            "errors": self.errors,
            "last_error": self.last_error,
        }

    # ---- control ---------------------------------------------------------------------------------
    async def _changed(self) -> dict[str, Any]:
        await self._save(force=True)
        self._wake.set()
        st = self.status()
        await self._emit(
            "system_notification",
            {"message": "replay " + ("paused" if st["paused"] else "running"), "clock": st},
        )
        return st

    async def pause(self) -> dict[str, Any]:
        assert self.clock is not None
        self.clock.pause()
        return await self._changed()

    async def resume(self) -> dict[str, Any]:
        assert self.clock is not None
        self.clock.resume()
        return await self._changed()

    async def set_speed(self, speed: Any) -> dict[str, Any]:
        assert self.clock is not None
        self.clock.set_speed(speed)
        return await self._changed()

    async def jump(self, to: Any) -> dict[str, Any]:
        """Move replay time forward to ``to``; the bars in between are released at once, in order."""
        assert self.clock is not None
        self.clock.jump(to)
        await self.release_due()
        return await self._changed()

    async def step(self, bars: int = 1) -> dict[str, Any]:
        """Release the next ``bars`` bar closes now (replay time jumps to each; every symbol's bar that
        closes then goes out): for tests, the benchmark and stepping a paused replay by hand."""
        assert self.clock is not None
        for _ in range(max(1, int(bars))):
            self._skip_done()  # released before (the seed, or before a restart): not a step
            if self._next >= len(self._schedule):
                break
            due = self._schedule[self._next].at
            if due > self.clock.now():
                self.clock.jump(due)
            await self.release_due()
        return await self._changed()

    async def stop(self) -> None:
        """Stop releasing (at a safe point: never inside a store write) and save the progress."""
        task, self._task = self._task, None
        self._stopping = True
        self._wake.set()
        if task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(task), 5.0)
            except (TimeoutError, asyncio.CancelledError, Exception):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        await self._save(force=True)
        if self._repo is not None:
            await self._repo.close()
            self._repo = None


# ---- on Ray ------------------------------------------------------------------------------------------
def _replay_actor() -> Any:
    import ray

    @ray.remote(num_cpus=0, max_concurrency=256)  # type: ignore[call-overload]
    class ReplayActor:
        """``MarketReplay`` as the named actor ``market_replay`` (detached, restartable): a restart reads
        the state and progress from the store and goes on releasing where it stopped. Prices the
        ``paper_broker`` actor; publishes through Redis when ``cache.url`` is set (Serve replicas
        long-poll ``updates_since`` otherwise). A new replay (``prepare_replay``) may start the desk."""

        def __init__(self, settings: Any, broker_name: str, desk_name: str) -> None:
            from nq_ray.runtime.broker import RayBroker, get_or_create_broker
            from nq_ray.runtime.desk import _redis_publisher

            self.settings, self.desk_name = settings, desk_name
            broker = RayBroker(get_or_create_broker(settings, name=broker_name, feed=True))
            publish = _redis_publisher(settings.cache.url) if settings.cache.url else None
            self.svc = MarketReplay(settings, broker=broker, publish=publish)
            self._lock = asyncio.Lock()
            self._desk_ready: Any = None  # the desk actor's start-up, under way

        async def _ensure(self) -> None:
            if not self.svc.started:
                async with self._lock:
                    if not self.svc.started:
                        await self.svc.start()
                        await self._desk()

        async def _desk(self) -> None:
            """Bring the desk up when the store says its loop runs (a new replay may have said so), so
            it trades on replay time without anyone opening the UI first."""
            from nq_ray.runtime.desk import get_or_create_desk

            if await _desk_running(self.settings):  # started, not awaited: the replay does not wait on it
                self._desk_ready = get_or_create_desk(self.settings, name=self.desk_name).ready.remote()

        async def ready(self) -> dict[str, Any]:
            import os

            await self._ensure()
            return self.svc.status() | {"pid": os.getpid()}

        async def status(self) -> dict[str, Any]:
            await self._ensure()
            return self.svc.status()

        async def pause(self) -> dict[str, Any]:
            await self._ensure()
            return await self.svc.pause()

        async def resume(self) -> dict[str, Any]:
            await self._ensure()
            return await self.svc.resume()

        async def set_speed(self, speed: Any) -> dict[str, Any]:
            await self._ensure()
            return await self.svc.set_speed(speed)

        async def jump(self, to: Any) -> dict[str, Any]:
            await self._ensure()
            return await self.svc.jump(to)

        async def step(self, bars: int = 1) -> dict[str, Any]:
            await self._ensure()
            return await self.svc.step(bars)

        async def updates_since(self, seq: int = 0, timeout: float = 0.0) -> list[dict[str, Any]]:
            await self._ensure()
            return await self.svc.updates_since(seq, timeout)

    return ReplayActor


_ACTOR: Any = None


def get_or_create_market(
    settings: Any,
    *,
    name: str = ACTOR_NAME,
    broker_name: str = "paper_broker",
    desk_name: str = "trading_desk",
) -> Any:
    """The handle of the ``market_replay`` actor, created (detached, restartable) when missing."""
    from nq_ray.runtime.cluster import named_actor

    global _ACTOR
    if _ACTOR is None:
        _ACTOR = _replay_actor()
    return named_actor(_ACTOR, name, settings, broker_name, desk_name, max_task_retries=-1)


class RayMarket(RemoteMethods):
    """The ``market_replay`` actor with ``MarketReplay``'s async methods (each one actor call)."""

    async def start(self) -> dict[str, Any]:
        out: dict[str, Any] = await self._call("ready")
        return out

    async def status(self) -> dict[str, Any]:
        out: dict[str, Any] = await self._call("status")
        return out

    async def pause(self) -> dict[str, Any]:
        out: dict[str, Any] = await self._call("pause")
        return out

    async def resume(self) -> dict[str, Any]:
        out: dict[str, Any] = await self._call("resume")
        return out

    async def set_speed(self, speed: Any) -> dict[str, Any]:
        out: dict[str, Any] = await self._call("set_speed", speed)
        return out

    async def jump(self, to: Any) -> dict[str, Any]:
        out: dict[str, Any] = await self._call("jump", to)
        return out

    async def step(self, bars: int = 1) -> dict[str, Any]:
        out: dict[str, Any] = await self._call("step", bars)
        return out

    async def updates_since(self, seq: int = 0, timeout: float = 0.0) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = await self._call("updates_since", seq, timeout)
        return out


# ---- the desk on a new replay ------------------------------------------------------------------------


async def _desk_running(settings: Any) -> bool:
    from nq_ray.store.desk import DeskStore

    repo = await Repository.connect(settings.store_url)
    try:
        state = await DeskStore(repo).get_state(DESK_KEY) or {}
    finally:
        await repo.close()
    return bool(state.get("running")) and not state.get("halted")


async def mark_desk_running(settings: Any) -> bool:
    """A new replay with ``replay.start_desk``: record the desk's loop as running (unless it is halted),
    so whichever process hosts the desk starts cycling on replay time. Whether it was marked."""
    from nq_ray.store.desk import DeskStore

    repo = await Repository.connect(settings.store_url)
    try:
        store = DeskStore(repo)
        state = await store.get_state(DESK_KEY)
        if state is not None and state.get("halted"):
            return False
        state = {
            "halted": False,
            "halt_reason": None,
            "approval_mode": False,
            "symbols": ["NQ"],
            "cadence_s": 300.0,
            "windows": "globex",
            **(state or {}),
            "running": True,
        }
        await store.set_state(DESK_KEY, state, at=datetime.now(UTC))
        return True
    finally:
        await repo.close()


# ---- entry points ------------------------------------------------------------------------------------
def start_clock(
    settings: Any,
    *,
    start: Any = None,
    until: Any = None,
    speed: float | None = None,
    echo: Callable[[str], None] | None = None,
    start_desk: bool = False,
) -> tuple[Any, ReplayPlan | None]:
    """What ``nq-ray up`` / ``mcp`` / ``trade`` do first: resolve the clock (a ``--replay`` start, or
    ``until``/``speed``, asks for a replay), prepare the replay when there is one (``ConfigError`` for
    anything that cannot be replayed), let a new replay start the desk (``start_desk`` and
    ``replay.start_desk``), and say which clock runs and how to change it. The resolved settings (every
    process gets these) and the plan (``None`` on the wall clock)."""
    if start is not None or until is not None or speed is not None:
        settings = settings.merged({"replay": {"clock": "replay"}})
    settings = resolve(settings)
    say = echo or (lambda _line: None)
    if not is_replay(settings):
        say(
            f"clock: wall (live source {settings.data.default_source}); replay instead: "
            "--replay START [--until END] [--speed X] or NQ_REPLAY__CLOCK=replay"
        )
        return settings, None
    plan = prepare_replay(settings, start=start, until=until, speed=speed)
    if start_desk and settings.replay.start_desk and not plan.resumed:
        run_sync(lambda: mark_desk_running(settings))
    for line in plan.banner():
        say(line)
    return settings, plan
