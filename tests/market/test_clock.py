"""The exchange clock: replay time advances ``speed`` times real time, passes the daily halt, skips
weekends and holiday closures, pauses, changes speed and jumps forward only; bad input is one clear
error. A fake wall clock drives it (no sleeping)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from nq_ray.errors import InvalidArgumentError
from nq_ray.market.clock import MAX_SPEED, ReplayClock, WallClock, advance, parse_time


class FakeWall:
    def __init__(self) -> None:
        self.t = 1_000_000.0

    def __call__(self) -> float:
        return self.t


def et(s: str) -> datetime:
    out: datetime = pd.Timestamp(s, tz="America/New_York").tz_convert("UTC").to_pydatetime()
    return out


def test_replay_time_runs_speed_times_real_time_from_its_start() -> None:
    wall = FakeWall()
    clock = ReplayClock.begin("2026-04-20T09:30", speed=60, wall=wall)
    assert clock.now() == et("2026-04-20 09:30")
    wall.t += 5  # five real seconds at x60: five market minutes
    assert clock.now() == et("2026-04-20 09:35")
    assert clock.info()["clock"] == "replay" and clock.mode == "replay"


def test_the_daily_halt_passes_and_the_weekend_is_skipped() -> None:
    # Wednesday 16:55 + 10 minutes: into the 17:00-18:00 halt, which passes like any hour
    assert advance(et("2026-04-22 16:55"), 600) == et("2026-04-22 17:05")
    # Friday 16:55 + 10 minutes: 5 minutes to the close, then the weekend is skipped to Sunday 18:00
    assert advance(et("2026-04-24 16:55"), 600) == et("2026-04-26 18:05")
    # a time inside the weekend moves to the next open at once
    assert advance(et("2026-04-25 12:00"), 0) == et("2026-04-26 18:00")


def test_a_holiday_closure_is_skipped() -> None:
    # Thanksgiving 2026: the session closes early at 13:00 ET and reopens at 18:00 — five closed hours,
    # skipped like a weekend; Good Friday 2026 closes early in the morning and reopens Sunday 18:00
    assert advance(et("2026-11-26 12:59"), 120) == et("2026-11-26 18:01")
    assert advance(et("2026-04-03 10:00"), 60) == et("2026-04-05 18:01")


def test_pause_resume_speed_and_jump_forward_only() -> None:
    wall = FakeWall()
    seen: list[int] = []
    clock = ReplayClock.begin("2026-04-20T09:30", speed=60, wall=wall)
    clock.on_change = lambda st: seen.append(st.version)
    wall.t += 60
    clock.pause()
    frozen = clock.now()
    wall.t += 600
    assert clock.now() == frozen == et("2026-04-20 10:30")
    clock.resume()
    clock.set_speed(600)
    wall.t += 1
    assert clock.now() == frozen + timedelta(minutes=10)
    clock.jump("2026-04-21T09:30")
    assert clock.now() == et("2026-04-21 09:30")
    with pytest.raises(InvalidArgumentError, match="fills are final"):
        clock.jump("2026-04-20T12:00")
    assert clock.now() == et("2026-04-21 09:30")
    assert seen == sorted(seen) and len(seen) == 4  # pause, resume, speed, jump: each a new version


def test_replay_stops_at_until() -> None:
    wall = FakeWall()
    clock = ReplayClock.begin("2026-04-20T09:30", until="2026-04-20T10:00", speed=60, wall=wall)
    wall.t += 3600
    assert clock.now() == et("2026-04-20 10:00") and clock.ended()
    with pytest.raises(InvalidArgumentError, match="ends at"):
        clock.jump("2026-04-20T11:00")


@pytest.mark.parametrize("speed", [0, -1, MAX_SPEED * 10, float("nan"), "fast", True])
def test_a_bad_speed_is_refused(speed: object) -> None:
    with pytest.raises(InvalidArgumentError, match="speed"):
        ReplayClock.begin("2026-04-20T09:30", speed=speed)  # type: ignore[arg-type]


def test_an_end_before_the_start_and_bad_times_are_refused() -> None:
    with pytest.raises(InvalidArgumentError, match="must be after its start"):
        ReplayClock.begin("2026-04-20T09:30", until="2026-04-20T09:00")
    for bad in ("", "yesterday-ish", "2026-13-45"):
        with pytest.raises(InvalidArgumentError, match="replay start"):
            parse_time(bad, "replay start")
    assert parse_time("2026-04-20T09:30", "x") == et("2026-04-20 09:30")  # naive = New York


def test_a_late_state_never_takes_time_back() -> None:
    wall = FakeWall()
    clock = ReplayClock.begin("2026-04-20T09:30", speed=60, wall=wall)
    wall.t += 60
    ahead = clock.now()
    older = clock.state.model_copy(update={"anchor_at": et("2026-04-20 09:30"), "version": 2, "paused": True})
    clock.adopt(older)  # e.g. a pause read from the store a moment late
    assert clock.now() == ahead


def test_sleep_waits_in_replay_time() -> None:
    clock = ReplayClock.begin("2026-04-20T09:30", speed=MAX_SPEED)

    async def go() -> None:
        t0 = clock.now()
        await asyncio.wait_for(clock.sleep(300), 5)  # five market minutes: 30 ms at x10000
        assert clock.now() >= t0 + timedelta(seconds=300)

    asyncio.run(go())


def test_the_wall_clock_is_now() -> None:
    c = WallClock()
    before = datetime.now(UTC)
    assert before <= c.now() <= datetime.now(UTC)
    assert c.info()["clock"] == "wall" and c.mode == "wall"
