"""The economic-calendar tool: ``get_economic_calendar(start, end, kinds=None)``.

It reads the process's calendar (``nq_ray.market.calendar.shared_calendar``: the bundled US releases
plus ``events.calendar_files``) and answers each event with its kind, its time (ISO 8601 with the
America/New_York offset), title and source, and the blackout windows configured around them.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Annotated

from pydantic import BaseModel, Field

from nq_ray.errors import InvalidArgumentError
from nq_ray.market.calendar import (
    KIND_LABELS,
    NY,
    BlackoutRule,
    EconomicCalendar,
    EconomicEvent,
    shared_calendar,
)
from nq_ray.settings.events import EventSettings
from nq_ray.tools.context import current

MAX_RANGE_DAYS = 400
"""The widest range one call may ask for (a year and a bit: ~52 jobless-claims rows and the rest)."""


class EconomicCalendarOut(BaseModel):
    """The scheduled releases in ``[start, end)``, in time order."""

    start: datetime = Field(description="range start (inclusive), New York time")
    end: datetime = Field(description="range end (exclusive), New York time")
    kinds: list[str] | None = Field(description="the kinds asked for; null = all")
    count: int
    events: list[EconomicEvent]
    blackouts: list[BlackoutRule] = Field(description="the blackout windows in force (events.blackouts)")
    known_until: dict[str, datetime | None] = Field(
        description="for each kind asked for (default: the blackouts' kinds), the time of its last release "
        "in the calendar (null: none): the calendar knows no later one, so none gets a blackout; a date "
        "that is near or past means the agency's next schedule is to be loaded (events.calendar_files)"
    )


def parse_bound(text: str | date | datetime, name: str, *, end: bool = False) -> datetime:
    """An ISO 8601 date or time → aware New York time. A naive time is New York wall time; a bare date
    is that day's midnight, or, for ``end``, the next midnight (the whole day is included)."""
    if isinstance(text, datetime):
        t = text
    elif isinstance(text, date):
        t = datetime.combine(text + timedelta(days=1 if end else 0), datetime.min.time())
    else:
        raw = str(text).strip()
        try:
            if len(raw) == 10:
                d = date.fromisoformat(raw)
                t = datetime.combine(d + timedelta(days=1 if end else 0), datetime.min.time())
            else:
                t = datetime.fromisoformat(raw)
        except ValueError:
            raise InvalidArgumentError(
                f"{name} {raw[:64]!r} is not an ISO 8601 date or time; use e.g. 2026-03-18 or "
                "2026-03-18T14:00-04:00",
                **{name: raw[:64]},
            ) from None
    return t.replace(tzinfo=NY) if t.tzinfo is None else t.astimezone(NY)


def check_kinds(kinds: list[str] | None, calendar: EconomicCalendar) -> list[str] | None:
    """``kinds`` de-duplicated; ``InvalidArgumentError`` naming the known kinds for one that is not."""
    if kinds is None:
        return None
    known = set(calendar.kinds) | set(KIND_LABELS)
    wanted = list(dict.fromkeys(k.strip() for k in kinds if k.strip()))
    unknown = [k for k in wanted if k not in known]
    if unknown:
        raise InvalidArgumentError(
            f"unknown event kind(s) {', '.join(repr(k[:40]) for k in unknown)}; "
            f"known: {', '.join(sorted(known))}",
            kinds=unknown,
        )
    return wanted or None


def economic_calendar(
    events: EventSettings, start: str | date | datetime, end: str | date | datetime, kinds: list[str] | None
) -> EconomicCalendarOut:
    """The tool's work, without a tool context (the CLI calls it)."""
    lo, hi = parse_bound(start, "start"), parse_bound(end, "end", end=True)
    if hi <= lo:
        raise InvalidArgumentError(
            f"end {hi.isoformat()} is not after start {lo.isoformat()}",
            start=lo.isoformat(),
            end=hi.isoformat(),
        )
    if hi - lo > timedelta(days=MAX_RANGE_DAYS):
        raise InvalidArgumentError(
            f"range of {(hi - lo).days} days is larger than {MAX_RANGE_DAYS}; ask for less",
            days=(hi - lo).days,
            max_days=MAX_RANGE_DAYS,
        )
    cal = shared_calendar(events)
    wanted = check_kinds(kinds, cal)
    found = cal.between(lo, hi, wanted)
    blackout_kinds = [k for rule in events.blackouts for k in rule.kinds]
    return EconomicCalendarOut(
        start=lo,
        end=hi,
        kinds=wanted,
        count=len(found),
        events=found,
        blackouts=list(events.blackouts),
        known_until={k: cal.last_time(k) for k in dict.fromkeys(wanted or blackout_kinds)},
    )


async def get_economic_calendar(
    start: Annotated[str, Field(max_length=40, description="ISO 8601 date or time; naive = New York")],
    end: Annotated[
        str, Field(max_length=40, description="ISO 8601 date or time, exclusive (a bare date: the whole day)")
    ],
    kinds: Annotated[
        list[str] | None,
        Field(default=None, max_length=20, description="event kinds, e.g. [fomc, cpi, nfp]; default all"),
    ] = None,
) -> EconomicCalendarOut:
    """Scheduled US economic releases that move NQ (FOMC statements and press conferences, CPI, NFP,
    jobless claims, and your own calendars) between ``start`` and ``end``: each with ``kind``, ``time``
    (ISO 8601 with the New York offset), ``title`` and ``source``, and the blackout windows in force."""
    return economic_calendar(current().settings.events, start, end, kinds)
