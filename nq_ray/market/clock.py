"""The exchange clock: the one object that answers "what time is it" for the broker and its fills, the
risk gate's session rules, the desk's loop, budgets' "today", the tools' point-in-time guard, jobs and the
UI. The runtime owns it (``nq_ray.runtime.Runtime.clock``) and hands it to everything it builds.

- ``WallClock``: the real time (a live data source).
- ``ReplayClock``: market replay. Time starts at ``start`` (exchange time) and advances ``speed`` times
  faster than real time; a closed stretch longer than ``SKIP_CLOSED`` (a weekend, a holiday closure) is
  skipped ahead, the one-hour daily halt passes like any hour; time stops at ``until``. It can be paused,
  resumed, sped up or slowed down, and moved forward (never back: fills are final).

A replay's whole state is a small value (``ReplayState``): where time stood (``anchor_at``) at a wall-clock
instant (``anchor_wall``), the speed and whether it is paused. ``now()`` is a pure function of that state
and the wall clock, so every process holding the same state tells the same time; the runtime keeps the
state in the store (``nq_ray.store.replay``) and each process follows it
(``nq_ray.runtime.replay.StoreFollower``), so a pause or a jump made through any replica holds everywhere.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Protocol, runtime_checkable

import pandas as pd
from pydantic import BaseModel, Field

from nq_ray.errors import InvalidArgumentError
from nq_ray.market import sessions

ClockMode = Literal["wall", "replay"]
SKIP_CLOSED = timedelta(hours=2)
MAX_SPEED = 10_000.0
POLL_S = 0.2  # the longest a replay sleep waits before looking at the state again


@runtime_checkable
class ExchangeClock(Protocol):
    """``now()`` (timezone-aware UTC), the mode, ``sleep`` in exchange seconds, and what ``/health``
    and results show about it (``info``)."""

    mode: ClockMode

    def now(self) -> datetime: ...

    async def sleep(self, seconds: float) -> None: ...

    def info(self) -> dict[str, Any]: ...


class WallClock:
    """The real time; ``sleep`` is ``asyncio.sleep``."""

    mode: ClockMode = "wall"

    def now(self) -> datetime:
        return datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    def info(self) -> dict[str, Any]:
        return {"clock": "wall", "now": self.now().isoformat()}

    def __reduce__(self) -> tuple[Any, ...]:
        return (WallClock, ())


class FixedClock:
    """A wall-mode clock stopped at ``at`` (naive = New York): the wall clock's behaviour at a chosen
    moment, e.g. a weekday's session for a test that must not depend on the day it runs."""

    mode: ClockMode = "wall"

    def __init__(self, at: Any) -> None:
        self.at = parse_time(at, "at")

    def now(self) -> datetime:
        return self.at

    def __call__(self) -> datetime:
        return self.at

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(0)

    def info(self) -> dict[str, Any]:
        return {"clock": "wall", "now": self.at.isoformat(), "fixed": True}


def check_speed(speed: Any) -> float:
    """A replay speed: a number with 0 < speed ≤ ``MAX_SPEED`` (``InvalidArgumentError`` otherwise)."""
    if isinstance(speed, bool) or not isinstance(speed, int | float) or not 0 < speed <= MAX_SPEED:
        raise InvalidArgumentError(
            f"replay speed must be a number above 0 and at most {MAX_SPEED:g} (times real time), "
            f"got {speed!r}",
            speed=repr(speed)[:40],
        )
    return float(speed)


def parse_time(value: Any, name: str) -> datetime:
    """A replay time from the command line, settings or the API: ISO 8601, naive = New York (exchange)
    time; UTC out. ``InvalidArgumentError`` names the field."""
    if isinstance(value, datetime):
        ts = pd.Timestamp(value)
    else:
        try:
            ts = pd.Timestamp(str(value).strip())
        except (ValueError, TypeError):
            ts = pd.NaT
    if ts is pd.NaT or pd.isna(ts):
        raise InvalidArgumentError(
            f"{name} must be a time such as 2026-04-20T09:30 (naive = New York), got {str(value)[:40]!r}",
            field=name,
        )
    if ts.tzinfo is None:
        ts = ts.tz_localize(sessions.EXCHANGE_TZ)
    out: datetime = ts.tz_convert("UTC").to_pydatetime()
    return out


def advance(t: datetime, seconds: float) -> datetime:
    """``t`` moved ``seconds`` of market time forward: open hours and the daily halt pass as they are, a
    closed stretch longer than ``SKIP_CLOSED`` (weekend, holiday) is skipped to the next open."""
    remaining = timedelta(seconds=max(0.0, seconds))
    while True:
        if not sessions.is_open(t):
            nxt = sessions.next_open(t).to_pydatetime()
            if nxt - t > SKIP_CLOSED:
                t = nxt
                continue
            edge = nxt
        else:
            edge = sessions.next_close(t).to_pydatetime()
        if edge - t >= remaining:
            return (t + remaining).astimezone(UTC)
        remaining -= edge - t
        t = edge


def skip_closed(t: datetime) -> datetime:
    """``t``, or the next open when ``t`` is in a closed stretch the replay skips."""
    return advance(t, 0.0)


class ReplayState(BaseModel):
    """A replay's state: the value every process shares (see the module docstring)."""

    start: datetime
    until: datetime | None = None
    speed: float = Field(gt=0, le=MAX_SPEED)
    paused: bool = False
    anchor_at: datetime
    anchor_wall: float
    version: int = 1
    source: str = "sample"
    note: str = ""

    def at(self, wall: float) -> datetime:
        """The replay time at wall-clock instant ``wall`` (epoch seconds)."""
        t = self.anchor_at if self.paused else advance(self.anchor_at, (wall - self.anchor_wall) * self.speed)
        if self.until is not None and t > self.until:
            t = self.until
        return t

    def ended(self, wall: float) -> bool:
        return self.until is not None and self.at(wall) >= self.until


class ReplayClock:
    """Replay time from a ``ReplayState`` (see the module docstring). ``wall`` is the real clock (epoch
    seconds; tests pass their own). Control (``pause``, ``resume``, ``set_speed``, ``jump``) returns the
    new state; ``on_change`` (the owner's store writer) is called with it. ``now()`` never goes back."""

    mode: ClockMode = "replay"

    def __init__(
        self,
        state: ReplayState,
        *,
        wall: Callable[[], float] = time.time,
        on_change: Callable[[ReplayState], None] | None = None,
    ) -> None:
        self.state = state
        self.wall = wall
        self.on_change = on_change
        self._last: datetime | None = None
        self._lock = threading.RLock()  # a follower thread adopts while this thread may change the state
        self.follower: Any = None  # what keeps this clock on the shared state (the runtime sets it)
        self.changed: asyncio.Event | None = asyncio.Event()

    @classmethod
    def begin(
        cls,
        start: Any,
        *,
        until: Any = None,
        speed: float = 60.0,
        source: str = "sample",
        paused: bool = False,
        wall: Callable[[], float] = time.time,
    ) -> ReplayClock:
        """A new replay from ``start`` (checked: speed in range, ``until`` after ``start``)."""
        t0 = parse_time(start, "replay start")
        end = None if until is None else parse_time(until, "replay until")
        if end is not None and end <= t0:
            raise InvalidArgumentError(
                f"replay until ({end.isoformat()}) must be after its start ({t0.isoformat()})",
                field="until",
            )
        state = ReplayState(
            start=t0,
            until=end,
            speed=check_speed(speed),
            paused=paused,
            anchor_at=t0,
            anchor_wall=wall(),
            source=source,
        )
        return cls(state, wall=wall)

    # ---- reading ---------------------------------------------------------------------------------
    def adopt(self, state: ReplayState, *, notify: bool = True) -> None:
        """Take a newer state (from the store); an older one is ignored. ``notify=False`` from another
        thread (an ``asyncio.Event`` is not thread-safe; sleepers look again within ``POLL_S``)."""
        with self._lock:
            if state.version < self.state.version:
                return
            self.state = state
        if notify and self.changed is not None:
            self.changed.set()

    def now(self) -> datetime:
        t = self.state.at(self.wall())
        if self._last is not None and t < self._last:
            t = self._last  # a state read late never takes time back
        self._last = t
        return t

    def __call__(self) -> datetime:
        return self.now()

    @property
    def paused(self) -> bool:
        return self.state.paused

    def ended(self) -> bool:
        return self.state.until is not None and self.now() >= self.state.until

    def info(self) -> dict[str, Any]:
        s = self.state
        now = self.now()
        return {
            "clock": "replay",
            "now": now.isoformat(),
            "start": s.start.isoformat(),
            "until": s.until.isoformat() if s.until else None,
            "speed": s.speed,
            "paused": s.paused,
            "ended": s.until is not None and now >= s.until,
            "source": s.source,
            "version": s.version,
        }

    # ---- waiting ---------------------------------------------------------------------------------
    def wall_seconds_until(self, t: datetime) -> float | None:
        """About how many real seconds until replay time reaches ``t``: ``None`` while paused, an upper
        bound when a skipped closure lies between (callers wait at most ``POLL_S`` and look again)."""
        now = self.now()
        if now >= t:
            return 0.0
        if self.state.paused:
            return None
        return (t - now).total_seconds() / self.state.speed

    async def sleep_until(self, t: datetime) -> None:
        """Wait until replay time reaches ``t`` (or the replay ends before it)."""
        while True:
            if self.now() >= t or self.ended():
                return
            wait = self.wall_seconds_until(t)
            await self._wait(POLL_S if wait is None else min(POLL_S, max(wait, 0.001)))

    async def _wait(self, seconds: float) -> None:
        ev = self.changed
        if ev is None:
            await asyncio.sleep(seconds)
            return
        ev.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(ev.wait(), seconds)

    async def sleep(self, seconds: float) -> None:
        """Sleep ``seconds`` of exchange time."""
        await self.sleep_until(self.now() + timedelta(seconds=seconds))

    # ---- control ---------------------------------------------------------------------------------
    def _set(self, **changes: Any) -> ReplayState:
        with self._lock:
            w = self.wall()
            here = self.now()
            base = {"anchor_at": here, "anchor_wall": w, "version": self.state.version + 1}
            self.state = self.state.model_copy(update=base | changes)
            self._last = self.state.at(w)
        if self.on_change is not None:
            self.on_change(self.state)
        if self.changed is not None:
            self.changed.set()
        return self.state

    def pause(self) -> ReplayState:
        return self.state if self.state.paused else self._set(paused=True)

    def resume(self) -> ReplayState:
        return self._set(paused=False) if self.state.paused else self.state

    def set_speed(self, speed: Any) -> ReplayState:
        return self._set(speed=check_speed(speed))

    def jump(self, to: Any) -> ReplayState:
        """Move replay time forward to ``to`` (refused when it is earlier than now: fills are final)."""
        t = parse_time(to, "jump to")
        now = self.now()
        if t < now:
            raise InvalidArgumentError(
                f"cannot jump back to {t.isoformat()}: replay time is already {now.isoformat()} and fills "
                "are final; jump forward or start a new replay on a new store",
                to=t.isoformat(),
                now=now.isoformat(),
            )
        if self.state.until is not None and t > self.state.until:
            raise InvalidArgumentError(
                f"cannot jump to {t.isoformat()}: the replay ends at {self.state.until.isoformat()}",
                to=t.isoformat(),
            )
        return self._set(anchor_at=t)


def clock_info(clock: Any) -> dict[str, Any]:
    """``info()`` of an ``ExchangeClock``; a bare function (a test's fixed time) counts as wall."""
    info = getattr(clock, "info", None)
    if callable(info):
        out: dict[str, Any] = info()
        return out
    return {"clock": "wall", "now": clock().isoformat()}
