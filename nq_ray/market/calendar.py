"""The economic calendar: scheduled US releases that move NQ, and the blackout windows around them.

* ``bundled_calendar()`` reads the calendar shipped with nq-ray (``nq_ray/market/data/events.csv``):
  FOMC statements and press conferences, CPI, NFP, PPI, PCE, GDP, retail sales and the weekly jobless
  claims, each row with the page it comes from (docs/calendar.md lists the sources and the gaps).
* ``load_calendar(path)`` reads a user's calendar: CSV in the same format (``kind,time,title,source``)
  or iCalendar ``.ics`` (SUMMARY → title, DTSTART → time, CATEGORIES or ``ics_kinds`` → kind). A bad
  file fails at load with the file, the line and the field named (``ConfigError``).
* Times are exchange-local: every event's ``time`` is an aware datetime in America/New_York. A time with
  no offset in a file is read as America/New_York wall time; one that does not exist (the spring-forward
  gap) or is ambiguous (the fall-back hour) is refused.
* ``EconomicCalendar.blackout_at(at, rules)`` is the window (``BlackoutRule``) in force at ``at``, if
  any; the risk gate denies new risk inside it (``check_order(..., blackout=...)``, code
  ``event_blackout``).
"""

from __future__ import annotations

import bisect
import csv
import io
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, field_validator

from nq_ray.errors import ConfigError, InvalidArgumentError
from nq_ray.settings.events import KIND_PATTERN, BlackoutRule, EventSettings

__all__ = [
    "CSV_COLUMNS",
    "KIND_LABELS",
    "KIND_TIMES",
    "MAX_FILE_BYTES",
    "Blackout",
    "BlackoutRule",
    "EconomicCalendar",
    "EconomicEvent",
    "blackout_for",
    "bundled_calendar",
    "calendar_from_settings",
    "countdown",
    "countdown_text",
    "load_calendar",
    "shared_calendar",
]

NY = ZoneInfo("America/New_York")
CSV_COLUMNS = ("kind", "time", "title", "source")
MAX_FILE_BYTES = 5 * 1024 * 1024
"""A calendar file larger than this is refused (a year of every US release is ~50 kB)."""
MAX_EVENTS = 50_000

KIND_LABELS: dict[str, str] = {
    "fomc": "FOMC statement",
    "fomc_presser": "FOMC press conference",
    "cpi": "CPI",
    "nfp": "NFP",
    "ppi": "PPI",
    "pce": "PCE",
    "gdp": "GDP",
    "retail_sales": "Retail sales",
    "jobless_claims": "Jobless claims",
}
"""Short names of the bundled kinds, for messages ("CPI in 35 minutes"); other kinds show as written."""

KIND_TIMES: dict[str, time] = {
    "fomc": time(14, 0),
    "fomc_presser": time(14, 30),
    "cpi": time(8, 30),
    "nfp": time(8, 30),
    "ppi": time(8, 30),
    "pce": time(8, 30),
    "gdp": time(8, 30),
    "retail_sales": time(8, 30),
    "jobless_claims": time(8, 30),
}
"""The America/New_York release time of each bundled kind (a test holds the bundled file to it)."""


class EconomicEvent(BaseModel):
    """One scheduled release. ``time`` is converted to America/New_York (exchange-local)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: str = Field(pattern=KIND_PATTERN, description="fomc, fomc_presser, cpi, nfp, pce, gdp, ppi, ...")
    time: AwareDatetime = Field(description="release time, ISO 8601 with the America/New_York offset")
    title: str = Field(min_length=1, max_length=200)
    source: str = Field(min_length=1, max_length=500, description="the page the date comes from (URL)")

    @field_validator("time")
    @classmethod
    def _exchange_local(cls, v: datetime) -> datetime:
        return v.astimezone(NY)

    @field_validator("title", "source")
    @classmethod
    def _stripped(cls, v: str) -> str:
        v = v.strip()
        if not v:
            raise ValueError("must not be blank")
        return v

    @property
    def label(self) -> str:
        return KIND_LABELS.get(self.kind, self.kind)


class Blackout(BaseModel):
    """The window of ``rule`` around ``event``: ``starts`` ≤ t < ``ends`` (America/New_York)."""

    model_config = ConfigDict(frozen=True)

    event: EconomicEvent
    rule: BlackoutRule
    starts: AwareDatetime
    ends: AwareDatetime

    def describe(self) -> str:
        """E.g. "fomc 'FOMC statement (March 2026 meeting)' at 2026-03-18 14:00 EDT (blackout
        13:55–14:05 ET, block)"."""
        e = self.event
        return (
            f"{e.kind} '{e.title}' at {e.time:%Y-%m-%d %H:%M %Z} (blackout {self.starts:%H:%M}–"
            f"{self.ends:%H:%M} ET, {self.rule.action})"
        )


def _aware(at: datetime, name: str) -> datetime:
    if not isinstance(at, datetime):
        raise InvalidArgumentError(f"{name} must be a datetime, got {type(at).__name__}", **{name: str(at)})
    if at.tzinfo is None or at.utcoffset() is None:
        raise InvalidArgumentError(
            f"{name} {at.isoformat()} has no UTC offset; pass an aware time, e.g. 2026-03-18T14:00-04:00",
            **{name: at.isoformat()},
        )
    return at.astimezone(NY)


def _key(e: EconomicEvent) -> tuple[datetime, str, str]:
    return (e.time, e.kind, e.title)


class EconomicCalendar:
    """Events sorted by time; safe to read and ``add`` to from several threads."""

    def __init__(self, events: Iterable[EconomicEvent] = ()) -> None:
        self._lock = threading.Lock()
        self._events: list[EconomicEvent] = []
        self._times: list[datetime] = []
        self._seen: set[tuple[str, datetime]] = set()
        for e in sorted(events, key=_key):  # sorted: each lands at the end
            if (e.kind, e.time) not in self._seen:
                self._events.append(e)
                self._times.append(e.time)
                self._seen.add((e.kind, e.time))

    def __len__(self) -> int:
        return len(self._events)

    def __iter__(self) -> Iterator[EconomicEvent]:
        with self._lock:
            return iter(list(self._events))

    @property
    def kinds(self) -> list[str]:
        """The kinds present, sorted."""
        with self._lock:
            return sorted({e.kind for e in self._events})

    def add(self, event: EconomicEvent) -> None:
        """Add an ad-hoc event; ``InvalidArgumentError`` when one of the same kind and time is there."""
        if not isinstance(event, EconomicEvent):
            raise InvalidArgumentError(f"add takes an EconomicEvent, got {type(event).__name__}")
        k = (event.kind, event.time)
        with self._lock:
            if k in self._seen:
                raise InvalidArgumentError(
                    f"a {event.kind} event at {event.time.isoformat()} is already in the calendar",
                    kind=event.kind,
                    time=event.time.isoformat(),
                )
            i = bisect.bisect_right(self._events, _key(event), key=_key)
            self._events.insert(i, event)
            self._times.insert(i, event.time)
            self._seen.add(k)

    def merged(self, other: Iterable[EconomicEvent]) -> EconomicCalendar:
        """A new calendar with this one's events and ``other``'s; an event of the same kind and time as
        one already here is dropped (a user file that repeats the bundled FOMC dates is fine)."""
        return EconomicCalendar([*self, *other])

    def between(
        self, start: datetime, end: datetime, kinds: Sequence[str] | None = None
    ) -> list[EconomicEvent]:
        """Events with ``start`` ≤ time < ``end``, of ``kinds`` (None: all), in time order."""
        lo, hi = _aware(start, "start"), _aware(end, "end")
        wanted = None if kinds is None else set(kinds)
        with self._lock:
            i, j = bisect.bisect_left(self._times, lo), bisect.bisect_left(self._times, hi)
            window = self._events[i:j]
        return [e for e in window if wanted is None or e.kind in wanted]

    def next_events(self, at: datetime, within: timedelta) -> list[EconomicEvent]:
        """Events with ``at`` ≤ time < ``at + within``."""
        if within <= timedelta(0):
            raise InvalidArgumentError(f"within must be positive, got {within}", within=str(within))
        at = _aware(at, "at")
        return self.between(at, at + within)

    def last_time(self, kind: str) -> datetime | None:
        """The time of the last event of ``kind`` (None: the calendar has none)."""
        with self._lock:
            return next((e.time for e in reversed(self._events) if e.kind == kind), None)

    def uncovered(self, kinds: Iterable[str], until: datetime) -> dict[str, datetime | None]:
        """The ``kinds`` whose last event is before ``until`` (kind → that time, None when there is none):
        past it the calendar knows no release of that kind, so no blackout can cover one — a schedule to
        load (``events.calendar_files``), not a quiet period."""
        until = _aware(until, "until")
        last = {k: self.last_time(k) for k in dict.fromkeys(kinds)}
        return {k: t for k, t in last.items() if t is None or t < until}

    def blackouts_at(self, at: datetime, rules: Sequence[BlackoutRule]) -> list[Blackout]:
        """Every window of ``rules`` in force at ``at`` (``starts`` ≤ at < ``ends``): ``flatten`` ones
        first, then by the distance of their event from ``at``."""
        at = _aware(at, "at")
        if not rules:
            return []
        before = max(r.before_min for r in rules)
        after = max(r.after_min for r in rules)
        near = self.between(at - timedelta(minutes=after), at + timedelta(minutes=before, microseconds=1))
        out: list[Blackout] = []
        for rule in rules:
            for e in near:
                if e.kind not in rule.kinds:
                    continue
                starts = e.time - timedelta(minutes=rule.before_min)
                ends = e.time + timedelta(minutes=rule.after_min)
                if starts <= at < ends:
                    out.append(Blackout(event=e, rule=rule, starts=starts, ends=ends))
        out.sort(key=lambda b: (b.rule.action != "flatten", abs(b.event.time - at), b.event.time))
        return out

    def blackout_at(self, at: datetime, rules: Sequence[BlackoutRule]) -> Blackout | None:
        """The window in force at ``at`` (see ``blackouts_at`` for which one wins), or None."""
        found = self.blackouts_at(at, rules)
        return found[0] if found else None


def countdown_text(when: datetime, at: datetime) -> str:
    """``"in 35 minutes"``, ``"in 2 h 5 min"``, ``"in 3 days"``, ``"3 minutes ago"``, ``"now"`` (whole
    minutes, rounded down)."""
    secs = (_aware(when, "when") - _aware(at, "at")).total_seconds()
    mins = int(abs(secs) // 60)
    if mins < 1:
        return "now"
    if mins < 120:
        span = f"{mins} minute{'s' if mins != 1 else ''}"
    elif mins < 48 * 60:
        span = f"{mins // 60} h {mins % 60} min"
    else:
        span = f"{mins // (24 * 60)} days"
    return f"in {span}" if secs > 0 else f"{span} ago"


def countdown(event: EconomicEvent, at: datetime) -> str:
    """``"CPI in 35 minutes"``, ``"FOMC statement in 2 h 5 min"``, ``"NFP 3 minutes ago"``."""
    return f"{event.label} {countdown_text(event.time, at)}"


# --------------------------------------------------------------------------------------------------
# files


def _wall_time(text: str, where: str) -> datetime:
    """ISO 8601 text → aware America/New_York time; no offset = America/New_York wall time."""
    try:
        t = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ConfigError(
            f"{where}: time {text!r} is not ISO 8601; write e.g. 2026-03-18T14:00:00-04:00", time=text
        ) from None
    if t.tzinfo is None:
        return _localize(t, where)
    return t.astimezone(NY)


def _localize(t: datetime, where: str) -> datetime:
    early, late = t.replace(tzinfo=NY, fold=0), t.replace(tzinfo=NY, fold=1)
    if early.astimezone(ZoneInfo("UTC")).astimezone(NY).replace(tzinfo=None) != t:
        raise ConfigError(
            f"{where}: {t:%Y-%m-%d %H:%M} does not exist in America/New_York (the clocks go forward that "
            "night); give the offset",
            time=t.isoformat(),
        )
    if early.utcoffset() != late.utcoffset():
        raise ConfigError(
            f"{where}: {t:%Y-%m-%d %H:%M} is ambiguous in America/New_York (the clocks go back that "
            "night); give the offset, e.g. -04:00 or -05:00",
            time=t.isoformat(),
        )
    return early


def _event(where: str, **fields: Any) -> EconomicEvent:
    try:
        return EconomicEvent(**fields)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"]) or "row"
        raise ConfigError(f"{where}: field {field!r}: {err['msg']}", field=field) from None


def _read_text(path: Path) -> str:
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise ConfigError(f"calendar file {path} cannot be read: {exc.strerror}", path=str(path)) from None
    if not path.is_file():
        raise ConfigError(f"calendar file {path} is not a file", path=str(path))
    if size > MAX_FILE_BYTES:
        raise ConfigError(
            f"calendar file {path} is {size:,} bytes; the limit is {MAX_FILE_BYTES:,}", path=str(path)
        )
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start})", path=str(path)) from None


def parse_csv(text: str, name: str) -> list[EconomicEvent]:
    """Rows of ``kind,time,title,source`` (a header row first; ``#`` lines are comments)."""
    lines = [ln for ln in text.splitlines()]
    rows = csv.reader(io.StringIO(text))
    out: list[EconomicEvent] = []
    seen: dict[tuple[str, datetime], int] = {}
    header: list[str] | None = None
    for row in rows:
        line = rows.line_num
        if not row or not "".join(row).strip() or row[0].lstrip().startswith("#"):
            continue
        if header is None:
            header = [c.strip().lower() for c in row]
            missing = [c for c in CSV_COLUMNS if c not in header]
            if missing:
                raise ConfigError(
                    f"{name}:{line}: header {lines[line - 1]!r} lacks {', '.join(missing)}; "
                    f"the columns are {','.join(CSV_COLUMNS)}",
                    path=name,
                    line=line,
                )
            continue
        if len(row) != len(header):
            raise ConfigError(
                f"{name}:{line}: {len(row)} fields, the header has {len(header)} ({','.join(header)})",
                path=name,
                line=line,
            )
        if len(out) >= MAX_EVENTS:
            raise ConfigError(f"{name}: more than {MAX_EVENTS:,} events; split the file", path=name)
        cells = dict(zip(header, row, strict=True))
        where = f"{name}:{line}"
        e = _event(
            where,
            kind=cells["kind"].strip(),
            time=_wall_time(cells["time"], f"{where}: field 'time'"),
            title=cells["title"],
            source=cells["source"] or name,
        )
        k = (e.kind, e.time)
        if k in seen:
            raise ConfigError(
                f"{where}: {e.kind} at {e.time.isoformat()} repeats line {seen[k]}", path=name, line=line
            )
        seen[k] = line
        out.append(e)
    if header is None:
        raise ConfigError(f"{name}: empty; expected a header {','.join(CSV_COLUMNS)} and rows", path=name)
    return out


def _ics_kind(event: Any, summary: str, kinds: Mapping[str, str], where: str) -> str:
    lowered = {k.lower(): v for k, v in kinds.items()}
    raw = event.get("categories")
    cats: list[str] = []
    for c in raw if isinstance(raw, list) else [raw] if raw is not None else []:
        cats.extend(str(x) for x in getattr(c, "cats", [c]))
    for c in cats:
        if c.strip().lower() in lowered:
            return lowered[c.strip().lower()]
    for text, kind in lowered.items():
        if text != "*" and text in summary.lower():
            return kind
    for c in cats:
        slug = c.strip().lower().replace(" ", "_").replace("-", "_")
        if slug:
            return slug
    if "*" in lowered:
        return lowered["*"]
    raise ConfigError(
        f"{where}: event {summary!r} has no kind: give it CATEGORIES (e.g. CATEGORIES:cpi) or map its "
        "summary in events.ics_kinds (a '*' entry is the kind of every other event)",
        field="CATEGORIES",
    )


def parse_ics(text: str, name: str, kinds: Mapping[str, str] | None = None) -> list[EconomicEvent]:
    """VEVENTs of an iCalendar file: SUMMARY → title, DTSTART → time, CATEGORIES or ``kinds`` → kind,
    URL → source (else the file)."""
    import icalendar

    try:
        cal = icalendar.Calendar.from_ical(text)
    except (ValueError, IndexError, KeyError) as exc:
        raise ConfigError(f"{name}: not an iCalendar file: {exc}", path=name) from None
    starts = [i + 1 for i, ln in enumerate(text.splitlines()) if ln.strip().upper() == "BEGIN:VEVENT"]
    vevents = list(cal.walk("VEVENT"))
    if len(vevents) > MAX_EVENTS:
        raise ConfigError(f"{name}: more than {MAX_EVENTS:,} events; split the file", path=name)
    out: list[EconomicEvent] = []
    seen: dict[tuple[str, datetime], str] = {}
    for n, ev in enumerate(vevents):
        where = f"{name}:{starts[n]}" if len(starts) == len(vevents) else f"{name}: event {n + 1}"
        summary = str(ev.get("summary") or "").strip()
        if not summary:
            raise ConfigError(f"{where}: field 'SUMMARY' is missing", path=name, field="SUMMARY")
        prop = ev.get("dtstart")
        if prop is None:
            raise ConfigError(f"{where}: field 'DTSTART' is missing", path=name, field="DTSTART")
        try:
            start = prop.dt
        except (ValueError, AttributeError) as exc:
            raise ConfigError(f"{where}: field 'DTSTART': {exc}", path=name, field="DTSTART") from None
        if not isinstance(start, datetime):
            if isinstance(start, date):
                raise ConfigError(
                    f"{where}: field 'DTSTART' is the all-day date {start}; an event needs a time",
                    path=name,
                    field="DTSTART",
                )
            raise ConfigError(f"{where}: field 'DTSTART' is not a date-time", path=name, field="DTSTART")
        at = _localize(start, f"{where}: field 'DTSTART'") if start.tzinfo is None else start.astimezone(NY)
        url = str(ev.get("url") or "").strip()
        e = _event(
            where,
            kind=_ics_kind(ev, summary, kinds or {}, where),
            time=at,
            title=summary,
            source=url or name,
        )
        k = (e.kind, e.time)
        if k in seen:
            raise ConfigError(f"{where}: {e.kind} at {e.time.isoformat()} repeats {seen[k]}", path=name)
        seen[k] = where
        out.append(e)
    return out


def load_calendar(path: str | Path, *, ics_kinds: Mapping[str, str] | None = None) -> EconomicCalendar:
    """A calendar from a CSV (``kind,time,title,source``) or iCalendar (``.ics``) file."""
    p = Path(path).expanduser()
    text = _read_text(p)
    if p.suffix.lower() in (".ics", ".ical", ".ifb"):
        return EconomicCalendar(parse_ics(text, str(p), ics_kinds))
    return EconomicCalendar(parse_csv(text, str(p)))


@lru_cache(maxsize=1)
def _bundled_events() -> tuple[EconomicEvent, ...]:
    ref = resources.files("nq_ray.market").joinpath("data", "events.csv")
    return tuple(parse_csv(ref.read_text(encoding="utf-8"), "nq_ray/market/data/events.csv"))


def bundled_calendar() -> EconomicCalendar:
    """A fresh calendar of the bundled US releases (adding to it leaves the next call's untouched)."""
    return EconomicCalendar(_bundled_events())


def calendar_from_settings(events: EventSettings) -> EconomicCalendar:
    """The bundled calendar (unless ``events.bundled`` is off) with ``events.calendar_files`` merged in."""
    cal = bundled_calendar() if events.bundled else EconomicCalendar()
    for f in events.calendar_files:
        cal = cal.merged(load_calendar(f, ics_kinds=events.ics_kinds))
    return cal


_SHARED: dict[str, EconomicCalendar] = {}
_SHARED_LOCK = threading.Lock()


def shared_calendar(events: EventSettings) -> EconomicCalendar:
    """This process's calendar for ``events`` (built once per distinct settings): the tools, the REST
    API, the gate's callers and the agents' context read the same one, so an event ``add``-ed at run
    time is seen by all of them in this process. Events added at run time are not persisted: put
    lasting ones in ``events.calendar_files``. Files are read once: a changed file is read again when the
    settings change or the process restarts."""
    key = events.model_dump_json()
    with _SHARED_LOCK:
        cal = _SHARED.get(key)
        if cal is None:
            if len(_SHARED) >= 8:  # settings changed many times (tests, live config): keep the newest
                _SHARED.pop(next(iter(_SHARED)))
            cal = _SHARED[key] = calendar_from_settings(events)
        return cal


def blackout_for(
    events: EventSettings, at: datetime, extra_rules: Sequence[BlackoutRule] = ()
) -> Blackout | None:
    """The window in force at ``at`` under ``events.blackouts`` plus ``extra_rules`` (a pack's news
    rules), on the process's calendar: what a desk, broker or backtester passes to ``check_order``."""
    return shared_calendar(events).blackout_at(at, [*events.blackouts, *extra_rules])
