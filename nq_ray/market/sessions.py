"""CME Globex sessions for the equity-index futures, on the maintained ``CME_Equity`` calendar.

A Globex session opens at 18:00 America/New_York and closes at 17:00 the next day (Sun–Fri), with the
17:00–18:00 daily halt between sessions; holidays and early closes come from pandas-market-calendars,
never from a hand-written list. A session is labelled by its *session date*: the day it closes, so the
session that opens Sunday 18:00 belongs to Monday. Naive timestamps are rejected, never guessed.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from enum import StrEnum
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd
import pandas_market_calendars as mcal
from pydantic import BaseModel

from nq_ray.domain.bars import EXCHANGE_TZ
from nq_ray.errors import InvalidArgumentError

CALENDAR_NAME = "CME_Equity"
RTH_OPEN = time(9, 30)
RTH_CLOSE = time(16, 0)
GLOBEX_OPEN = time(18, 0)
GLOBEX_CLOSE = time(17, 0)
# An ET wall time shifted by this lands on its session date (18:00 → 00:00 of the next day).
SESSION_SHIFT = pd.Timedelta(hours=6)


def parse_timestamp(ts: Any, name: str = "timestamp") -> pd.Timestamp:
    """``pd.Timestamp(ts)``, with ``invalid_argument`` (naming ``name``) for text that is no time."""
    try:
        t = pd.Timestamp(ts)
    except (ValueError, TypeError, OverflowError) as exc:
        raise InvalidArgumentError(
            f"{name} {ts!r} is not a date or time; use ISO 8601, e.g. 2026-03-09 or 2026-03-09T10:00-04:00",
            **{name: str(ts)},
        ) from exc
    if t is pd.NaT:
        raise InvalidArgumentError(f"{name} is empty; give a date or time", **{name: str(ts)})
    return t


def to_exchange_time(ts: Any, assume_tz: str | None = None) -> pd.Timestamp:
    """``ts`` as a tz-aware America/New_York Timestamp; a naive one needs ``assume_tz`` said out loud."""
    t = parse_timestamp(ts)
    if t.tzinfo is None:
        if assume_tz is None:
            raise InvalidArgumentError(
                f"timestamp {t} has no timezone; pass a tz-aware time or say which zone it is in "
                "(e.g. assume_tz='America/New_York')",
                timestamp=str(t),
            )
        t = t.tz_localize(assume_tz)
    return t.tz_convert(EXCHANGE_TZ)


def to_exchange_index(index: pd.DatetimeIndex, assume_tz: str | None = None) -> pd.DatetimeIndex:
    """Vectorised ``to_exchange_time`` for a whole index."""
    if index.tz is None:
        if assume_tz is None:
            raise InvalidArgumentError("index has no timezone; pass assume_tz explicitly")
        index = index.tz_localize(assume_tz, ambiguous="infer", nonexistent="raise")
    return index.tz_convert(EXCHANGE_TZ)


@lru_cache(maxsize=1)
def _calendar() -> Any:
    return mcal.get_calendar(CALENDAR_NAME)


@lru_cache(maxsize=64)
def _year_schedule(year: int) -> pd.DataFrame:
    # one year plus a margin on each side, so a lookup near Jan 1 still finds its neighbours
    sched = _calendar().schedule(f"{year - 1}-12-15", f"{year + 1}-01-15", tz=EXCHANGE_TZ)
    return sched[["market_open", "market_close"]].rename(
        columns={"market_open": "open", "market_close": "close"}
    )


def schedule(start: Any, end: Any) -> pd.DataFrame:
    """Sessions whose session date lies in [start, end]: index = session date, columns ``open, close``
    (tz-aware, America/New_York). Early closes show as an earlier ``close``; holidays are absent."""
    s, e = pd.Timestamp(start).date(), pd.Timestamp(end).date()
    if e < s:
        raise InvalidArgumentError(f"end {e} is before start {s}")
    frames = [_year_schedule(y) for y in range(s.year, e.year + 1)]
    out = pd.concat(frames)
    out = out[~out.index.duplicated()].sort_index()
    return out.loc[(out.index >= pd.Timestamp(s)) & (out.index <= pd.Timestamp(e))]


def _around(ts: pd.Timestamp) -> pd.DataFrame:
    return schedule(ts - pd.Timedelta(days=10), ts + pd.Timedelta(days=10))


@lru_cache(maxsize=64)
def _year_arrays(year: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(session dates, opens, closes as UTC int64 ns) for ``year`` and its margins, for fast scalar
    look-ups (the risk gate and the broker ask for every order)."""
    sched = _year_schedule(year)
    return sched.index.to_numpy().astype("datetime64[D]"), _ns(sched["open"]), _ns(sched["close"])


def _locate(t: pd.Timestamp) -> tuple[int, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Index of the first session whose close is after ``t``, in its year's arrays."""
    arrays = _year_arrays(t.year)
    i = int(np.searchsorted(arrays[2], t.value, side="right"))
    if i >= len(arrays[2]):
        raise InvalidArgumentError(f"no CME session found after {t}")
    return i, arrays


def _ts(ns: int) -> pd.Timestamp:
    return pd.Timestamp(int(ns), tz="UTC").tz_convert(EXCHANGE_TZ)


def session_date(ts: Any) -> date:
    """The session date ``ts`` belongs to: Sunday 18:00 ET → Monday. Outside trading hours (halt,
    weekend, holiday), the date of the next session to open."""
    i, (dates, _, _) = _locate(to_exchange_time(ts))
    return pd.Timestamp(dates[i]).date()


def is_open(ts: Any) -> bool:
    """True while Globex trades the equity-index futures at ``ts`` (open ≤ ts < close)."""
    t = to_exchange_time(ts)
    i, (_, opens, _) = _locate(t)
    return bool(opens[i] <= t.value)


def next_open(ts: Any) -> pd.Timestamp:
    """The first session open strictly after ``ts``."""
    t = to_exchange_time(ts)
    i, (_, opens, _) = _locate(t)
    return _ts(opens[i] if opens[i] > t.value else opens[i + 1])


def next_close(ts: Any) -> pd.Timestamp:
    """The first session close strictly after ``ts`` (the current session's close while open)."""
    i, (_, _, closes) = _locate(to_exchange_time(ts))
    return _ts(closes[i])


def is_rth(ts: Any) -> bool:
    """Regular trading hours: 09:30–16:00 ET (to the early close on shortened days) while open."""
    t = to_exchange_time(ts)
    i, (_, opens, closes) = _locate(t)
    if opens[i] > t.value or t.time() < RTH_OPEN:
        return False
    return t.time() < RTH_CLOSE and t.value < closes[i]


def session_dates(index: pd.DatetimeIndex) -> np.ndarray:
    """Vectorised session date of each timestamp (datetime64[D]); 18:00 ET starts the next date.

    Exact for any timestamp inside a session because every Globex session opens at 18:00 ET; use
    ``in_session`` to tell whether a timestamp is inside one at all."""
    et = to_exchange_index(index)
    wall = et.tz_localize(None) + SESSION_SHIFT
    return wall.to_numpy().astype("datetime64[D]")


def in_session(index: pd.DatetimeIndex, bar_length: pd.Timedelta | None = None) -> np.ndarray:
    """Boolean mask: the bar starting at each timestamp lies inside a session (open ≤ t and
    t + bar_length ≤ close). ``bar_length`` defaults to zero (a point in time)."""
    et = to_exchange_index(index)
    if len(et) == 0:
        return np.zeros(0, dtype=bool)
    sched = schedule(et.min() - pd.Timedelta(days=1), et.max() + pd.Timedelta(days=1))
    opens = _ns(sched["open"])
    closes = _ns(sched["close"])
    t = et.as_unit("ns").asi8
    i = np.searchsorted(closes, t, side="right")
    ok = i < len(closes)
    i = np.minimum(i, len(closes) - 1)
    end = t + (0 if bar_length is None else bar_length.value)
    return ok & (opens[i] <= t) & (end <= closes[i])


def _ns(col: pd.Series) -> np.ndarray:
    """A tz-aware datetime column as int64 UTC nanoseconds (for searchsorted)."""
    return pd.DatetimeIndex(col).as_unit("ns").asi8


def rth_mask(index: pd.DatetimeIndex) -> np.ndarray:
    """Vectorised: each timestamp lies in 09:30 ≤ t < 16:00 ET on an open session."""
    et = to_exchange_index(index)
    minutes = et.hour * 60 + et.minute
    return in_session(et) & (minutes >= 9 * 60 + 30) & (minutes < 16 * 60)


def expected_bar_starts(start: Any, end: Any, freq: str) -> pd.DatetimeIndex:
    """Every bar start of length ``freq`` that fits inside a session between ``start`` and ``end``."""
    s, e = to_exchange_time(start), to_exchange_time(end)
    step = pd.Timedelta(freq)
    parts = []
    for _, row in schedule(s.date() - timedelta(days=1), e.date() + timedelta(days=1)).iterrows():
        lo, hi = max(row["open"], s), min(row["close"], e + step)
        if lo >= hi:
            continue
        first = row["open"] + ((lo - row["open"]) // step) * step
        if first < lo:
            first += step
        rng = pd.date_range(first, hi - step, freq=step)
        parts.append(rng[rng <= e])
    if not parts:
        return pd.DatetimeIndex([], tz=EXCHANGE_TZ)
    return parts[0].append(parts[1:]) if len(parts) > 1 else parts[0]


class MarketState(StrEnum):
    OPEN = "open"
    HALT = "daily_halt"
    WEEKEND = "weekend"
    HOLIDAY = "holiday"
    EARLY_CLOSE = "closed_early"


class SessionStatus(BaseModel):
    """What a trader wants to know about the clock right now."""

    as_of: datetime
    state: MarketState
    is_open: bool
    is_rth: bool
    session_date: date
    next_open: datetime
    next_close: datetime
    early_close: bool

    def describe(self) -> str:
        if self.is_open:
            part = "RTH" if self.is_rth else "Globex (overnight)"
            extra = " — early close today" if self.early_close else ""
            return (
                f"open ({part}) for session {self.session_date}, closes {self.next_close:%a %H:%M %Z}{extra}"
            )
        return f"closed ({self.state.value}); next open {self.next_open:%a %Y-%m-%d %H:%M %Z}"


def session_status(ts: Any) -> SessionStatus:
    """The market state at ``ts``: open/halt/weekend/holiday, the session date and the next edges."""
    t = to_exchange_time(ts)
    sd = session_date(t)
    sched = _around(t)
    nclose = next_close(t)
    early = nclose.time() != GLOBEX_CLOSE
    open_now = is_open(t)
    if open_now:
        state = MarketState.OPEN
    else:
        prev_close = sched["close"][sched["close"] <= t]
        last = prev_close.iloc[-1] if len(prev_close) else None
        if last is not None and last.time() != GLOBEX_CLOSE and t - last < pd.Timedelta(hours=12):
            state = MarketState.EARLY_CLOSE
        elif (
            t.weekday() in (4, 5, 6)
            and (t.weekday() != 4 or t.time() >= GLOBEX_CLOSE)
            and (t.weekday() != 6 or t.time() < GLOBEX_OPEN)
        ):
            state = MarketState.WEEKEND
        elif (GLOBEX_CLOSE <= t.time() < GLOBEX_OPEN and t.weekday() < 4) or t.weekday() == 6:
            state = MarketState.HALT
        else:
            state = MarketState.HOLIDAY
    return SessionStatus(
        as_of=t.to_pydatetime(),
        state=state,
        is_open=open_now,
        is_rth=is_rth(t),
        session_date=sd,
        next_open=next_open(t).to_pydatetime(),
        next_close=nclose.to_pydatetime(),
        early_close=bool(early),
    )
