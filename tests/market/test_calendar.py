"""The economic calendar: the bundled file held to its sources' shape, user files (CSV and iCalendar)
and their failures named by file, line and field, and the calendar's queries and blackout windows."""

from __future__ import annotations

import csv
from collections import Counter
from datetime import datetime, time, timedelta
from importlib import resources
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from nq_ray.errors import ConfigError, InvalidArgumentError
from nq_ray.market.calendar import (
    KIND_TIMES,
    MAX_FILE_BYTES,
    BlackoutRule,
    EconomicCalendar,
    EconomicEvent,
    blackout_for,
    bundled_calendar,
    calendar_from_settings,
    countdown,
    load_calendar,
    shared_calendar,
)
from nq_ray.settings.events import EventSettings, default_blackouts

ET = ZoneInfo("America/New_York")
FOMC_PAGE = "https://www.federalreserve.gov/monetarypolicy/fomccalendars.htm"
HEADER = "kind,time,title,source\n"


def et(*args: int) -> datetime:
    return datetime(*args, tzinfo=ET)


def bundled_rows() -> list[tuple[int, dict[str, str]]]:
    text = resources.files("nq_ray.market").joinpath("data", "events.csv").read_text(encoding="utf-8")
    lines = [(n, ln) for n, ln in enumerate(text.splitlines(), 1) if ln and not ln.startswith("#")]
    reader = csv.DictReader(ln for _, ln in lines)
    return [(n, row) for (n, _), row in zip(lines[1:], reader, strict=True)]


# ------------------------------------------------------------------------------ the bundled file
def test_every_bundled_row_parses_at_its_kinds_release_time_with_a_url_source() -> None:
    rows = bundled_rows()

    assert len(rows) == len(bundled_calendar()) > 250
    for n, row in rows:
        t = datetime.fromisoformat(row["time"])
        assert t.utcoffset() == t.astimezone(ET).utcoffset(), f"line {n}: offset is not New York's"
        assert t.astimezone(ET).time() == KIND_TIMES[row["kind"]], f"line {n}: {row}"
        assert row["source"].startswith("https://"), f"line {n}"
        assert row["title"].strip() == row["title"] and row["title"]


def test_bundled_rows_are_unique_and_sorted() -> None:
    keys = [(r["kind"], datetime.fromisoformat(r["time"])) for _, r in bundled_rows()]

    assert len(keys) == len(set(keys))
    times = [t for _, t in keys]
    assert times == sorted(times)


def test_fomc_has_the_eight_scheduled_meetings_a_year_each_with_a_press_conference() -> None:
    cal = bundled_calendar()
    fomc = cal.between(et(2024, 1, 1), et(2028, 1, 1), ["fomc"])
    pressers = cal.between(et(2024, 1, 1), et(2028, 1, 1), ["fomc_presser"])

    assert Counter(e.time.year for e in fomc) == {2024: 8, 2025: 8, 2026: 8, 2027: 8}
    assert [p.time - timedelta(minutes=30) for p in pressers] == [e.time for e in fomc]
    # statements on Wednesdays, but the November 2024 meeting ran Wednesday-Thursday (after election day)
    assert [e.time.date().isoformat() for e in fomc if e.time.weekday() != 2] == ["2024-11-07"]
    assert {e.source for e in fomc} == {FOMC_PAGE}
    # the Fed's published dates, spot-checked: 2024's first, 2026's last, 2027's June meeting
    assert {et(2024, 1, 31, 14), et(2026, 12, 9, 14), et(2027, 6, 9, 14)} <= {e.time for e in fomc}


def test_nfp_and_cpi_follow_the_bls_including_the_2025_lapse_reschedules() -> None:
    cal = bundled_calendar()
    nfp = {e.time for e in cal.between(et(2025, 9, 1), et(2026, 3, 1), ["nfp"])}
    cpi = {e.time for e in cal.between(et(2025, 9, 1), et(2026, 3, 1), ["cpi"])}

    # no October 2025 report (canceled); September's on Nov 20, November's on Dec 16; January 2026's on Feb 11
    assert nfp == {
        et(2025, 9, 5, 8, 30),
        et(2025, 11, 20, 8, 30),
        et(2025, 12, 16, 8, 30),
        et(2026, 1, 9, 8, 30),
        et(2026, 2, 11, 8, 30),
    }
    assert cpi == {
        et(2025, 9, 11, 8, 30),
        et(2025, 10, 24, 8, 30),
        et(2025, 12, 18, 8, 30),
        et(2026, 1, 13, 8, 30),
        et(2026, 2, 13, 8, 30),
    }


def test_jobless_claims_are_thursdays_but_the_wednesday_before_a_thursday_holiday() -> None:
    claims = bundled_calendar().between(et(2024, 1, 1), et(2027, 1, 1), ["jobless_claims"])
    days = {e.time.date() for e in claims}

    assert {e.time.weekday() for e in claims} == {2, 3}
    assert datetime(2025, 11, 26).date() in days and datetime(2025, 11, 27).date() not in days  # Thanksgiving
    assert (
        datetime(2025, 12, 24).date() in days and datetime(2025, 12, 31).date() in days
    )  # Christmas, New Year
    assert not [d for d in days if datetime(2025, 10, 2).date() <= d <= datetime(2025, 11, 13).date()]


# ------------------------------------------------------------------------------ queries
def test_between_is_start_inclusive_end_exclusive_and_filters_kinds() -> None:
    cal = bundled_calendar()
    fomc = et(2026, 3, 18, 14)

    assert [e.kind for e in cal.between(fomc, fomc + timedelta(minutes=31))] == ["fomc", "fomc_presser"]
    assert cal.between(fomc + timedelta(seconds=1), fomc + timedelta(minutes=30)) == []
    assert [e.kind for e in cal.between(fomc, fomc + timedelta(hours=1), ["fomc_presser"])] == [
        "fomc_presser"
    ]


def test_naive_query_times_are_refused() -> None:
    with pytest.raises(InvalidArgumentError, match="no UTC offset"):
        bundled_calendar().between(datetime(2026, 3, 18), et(2026, 3, 19))


def test_next_events_and_countdown() -> None:
    cal = bundled_calendar()
    at = et(2026, 3, 18, 13, 25)

    events = cal.next_events(at, timedelta(hours=1, minutes=10))

    assert [countdown(e, at) for e in events] == [
        "FOMC statement in 35 minutes",
        "FOMC press conference in 65 minutes",
    ]
    assert countdown(events[0], at + timedelta(hours=3)) == "FOMC statement 2 h 25 min ago"
    with pytest.raises(InvalidArgumentError):
        cal.next_events(at, timedelta(0))


def test_add_inserts_in_time_order_and_refuses_a_second_event_of_the_same_kind_and_time() -> None:
    cal = bundled_calendar()
    ecb = EconomicEvent(kind="ecb", time=et(2026, 3, 18, 9, 15), title="ECB rate decision", source="manual")

    cal.add(ecb)

    assert cal.between(et(2026, 3, 18), et(2026, 3, 19))[0] == ecb
    assert len(bundled_calendar()) == len(cal) - 1  # the bundled events themselves are untouched
    with pytest.raises(InvalidArgumentError, match="already in the calendar"):
        cal.add(ecb.model_copy(update={"title": "again"}))


def test_uncovered_names_the_kinds_whose_last_release_is_before_a_time() -> None:
    cal = EconomicCalendar(
        [
            EconomicEvent(kind="cpi", time=et(2026, 2, 13, 8, 30), title="CPI", source="manual"),
            EconomicEvent(kind="fomc", time=et(2026, 12, 9, 14), title="FOMC", source="manual"),
        ]
    )

    assert cal.last_time("cpi") == et(2026, 2, 13, 8, 30) and cal.last_time("nfp") is None
    # after the last CPI the calendar knows none: a gap to fill, not a quiet period
    assert cal.uncovered(["cpi", "fomc", "nfp", "cpi"], et(2026, 12, 1)) == {
        "cpi": et(2026, 2, 13, 8, 30),
        "nfp": None,
    }
    assert cal.uncovered(["cpi", "fomc"], et(2026, 2, 1)) == {}  # both have a release after it


def test_event_times_are_converted_to_new_york() -> None:
    e = EconomicEvent(kind="cpi", time="2026-03-11T12:30:00Z", title="CPI", source="x")

    assert e.time.isoformat() == "2026-03-11T08:30:00-04:00"
    assert e.model_dump(mode="json")["time"] == "2026-03-11T08:30:00-04:00"


# ------------------------------------------------------------------------------ blackouts
def test_blackout_window_is_five_minutes_either_side_by_default() -> None:
    cal = bundled_calendar()
    rules = default_blackouts()

    b = cal.blackout_at(et(2026, 2, 13, 8, 28), rules)

    assert b is not None and b.event.kind == "cpi"
    assert (b.starts, b.ends) == (et(2026, 2, 13, 8, 25), et(2026, 2, 13, 8, 35))
    assert cal.blackout_at(et(2026, 2, 13, 8, 35), rules) is None
    assert cal.blackout_at(et(2026, 2, 13, 9, 28), rules) is None


def test_flatten_rule_wins_over_block_and_claims_are_not_blacked_out_by_default() -> None:
    cal = bundled_calendar()
    at = et(2026, 3, 18, 14, 2)
    block = BlackoutRule(kinds=["fomc"], before_min=5, after_min=5)
    flatten = BlackoutRule(kinds=["fomc_presser"], before_min=60, after_min=60, action="flatten")

    found = cal.blackouts_at(at, [block, flatten])

    assert [(b.event.kind, b.rule.action) for b in found] == [("fomc_presser", "flatten"), ("fomc", "block")]
    assert cal.blackout_at(et(2026, 3, 19, 8, 30), default_blackouts()) is None  # claims: no default rule


def test_blackout_rules_are_validated() -> None:
    with pytest.raises(ValueError, match="before_min or after_min"):
        BlackoutRule(kinds=["cpi"], before_min=0, after_min=0)
    with pytest.raises(ValueError, match="slugs"):
        BlackoutRule(kinds=["CPI!"], before_min=1, after_min=1)


# ------------------------------------------------------------------------------ user files
def write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def test_user_csv_naive_times_are_new_york_wall_time(tmp_path: Path) -> None:
    p = write(tmp_path, "mine.csv", HEADER + "ecb,2026-07-23T08:15,ECB decision,https://www.ecb.europa.eu\n")

    [e] = list(load_calendar(p))

    assert e.time == et(2026, 7, 23, 8, 15) and e.kind == "ecb"


def test_user_csv_without_source_names_the_file(tmp_path: Path) -> None:
    p = write(tmp_path, "mine.csv", HEADER + "ecb,2026-07-23T08:15-04:00,ECB decision,\n")

    assert next(iter(load_calendar(p))).source == str(p)


@pytest.mark.parametrize(
    ("body", "match"),
    [
        (
            "cpi,2026-13-01T08:30,CPI,x\n",
            r"mine.csv:2: field 'time': time '2026-13-01T08:30' is not ISO 8601",
        ),
        ("cpi,yesterday,CPI,x\n", r"mine.csv:2: field 'time'"),
        ("CPI,2026-03-11T08:30,CPI,x\n", r"mine.csv:2: field 'kind'"),
        ("cpi,2026-03-11T08:30,,x\n", r"mine.csv:2: field 'title'"),
        ("cpi,2026-03-11T08:30,CPI\n", r"mine.csv:2: 3 fields, the header has 4"),
        ("cpi,2026-03-08T02:30,CPI,x\n", r"mine.csv:2: .*does not exist in America/New_York"),
        ("cpi,2026-11-01T01:30,CPI,x\n", r"mine.csv:2: .*ambiguous in America/New_York"),
        (
            "cpi,2026-03-11T08:30,CPI,x\ncpi,2026-03-11T08:30-04:00,CPI again,x\n",
            r"mine.csv:3: .*repeats line 2",
        ),
    ],
)
def test_bad_csv_rows_name_file_line_and_field(tmp_path: Path, body: str, match: str) -> None:
    p = write(tmp_path, "mine.csv", HEADER + body)

    with pytest.raises(ConfigError, match=match):
        load_calendar(p)


def test_bad_csv_headers_empty_files_and_binary_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"bad.csv:1: header .* lacks time"):
        load_calendar(write(tmp_path, "bad.csv", "kind,when,title,source\n"))
    with pytest.raises(ConfigError, match="empty"):
        load_calendar(write(tmp_path, "empty.csv", "# nothing\n"))
    blob = tmp_path / "blob.csv"
    blob.write_bytes(b"\xff\xfe\x00kind")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_calendar(blob)
    with pytest.raises(ConfigError, match="cannot be read"):
        load_calendar(tmp_path / "missing.csv")
    with pytest.raises(ConfigError, match="not a file"):
        load_calendar(tmp_path)


def test_a_huge_file_is_refused_before_it_is_read(tmp_path: Path) -> None:
    p = tmp_path / "huge.csv"
    with p.open("w") as fh:
        fh.write(HEADER)
        fh.truncate(MAX_FILE_BYTES + 1)

    with pytest.raises(ConfigError, match=r"huge.csv is 5,242,881 bytes; the limit is 5,242,880"):
        load_calendar(p)


ICS = """BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//test//EN
BEGIN:VEVENT
UID:1@test
DTSTAMP:20260101T000000Z
SUMMARY:ECB monetary policy decision
DTSTART;TZID=Europe/Berlin:20260723T141500
CATEGORIES:ecb
URL:https://www.ecb.europa.eu/press/calendars/mgcgc/html/index.en.html
END:VEVENT
BEGIN:VEVENT
UID:2@test
DTSTAMP:20260101T000000Z
SUMMARY:Consumer Price Index for June 2026
DTSTART:20260714T123000Z
END:VEVENT
BEGIN:VEVENT
UID:3@test
DTSTAMP:20260101T000000Z
SUMMARY:Fed chair testimony
DTSTART:20260715T100000
CATEGORIES:Fed Speech
END:VEVENT
END:VCALENDAR
"""


def test_ics_maps_summary_dtstart_and_categories_or_the_configured_kinds(tmp_path: Path) -> None:
    p = write(tmp_path, "mine.ics", ICS)

    events = list(load_calendar(p, ics_kinds={"Consumer Price Index": "cpi"}))

    assert [(e.kind, e.time, e.title) for e in events] == [  # in time order
        ("cpi", et(2026, 7, 14, 8, 30), "Consumer Price Index for June 2026"),  # 12:30Z
        ("fed_speech", et(2026, 7, 15, 10, 0), "Fed chair testimony"),  # floating time: New York
        ("ecb", et(2026, 7, 23, 8, 15), "ECB monetary policy decision"),  # 14:15 Berlin = 08:15 New York
    ]
    assert events[2].source.startswith("https://www.ecb.europa.eu") and events[0].source == str(p)


def test_ics_event_without_a_kind_names_its_line_unless_a_default_kind_is_configured(tmp_path: Path) -> None:
    p = write(tmp_path, "mine.ics", ICS)

    with pytest.raises(
        ConfigError, match=r"mine.ics:12: event 'Consumer Price Index for June 2026' has no kind"
    ):
        load_calendar(p)
    assert [e.kind for e in load_calendar(p, ics_kinds={"*": "other"})] == ["other", "fed_speech", "ecb"]


def test_ics_all_day_events_and_garbage_are_refused(tmp_path: Path) -> None:
    all_day = ICS.replace("DTSTART:20260714T123000Z", "DTSTART;VALUE=DATE:20260714")
    with pytest.raises(ConfigError, match=r"mine.ics:12: field 'DTSTART' is the all-day date 2026-07-14"):
        load_calendar(write(tmp_path, "mine.ics", all_day), ics_kinds={"*": "other"})
    with pytest.raises(ConfigError, match="not an iCalendar file"):
        load_calendar(write(tmp_path, "junk.ics", "this is not a calendar"))
    no_start = ICS.replace("DTSTART:20260714T123000Z\n", "")
    with pytest.raises(ConfigError, match=r"mine.ics:12: field 'DTSTART' is missing"):
        load_calendar(write(tmp_path, "mine.ics", no_start), ics_kinds={"*": "other"})


def test_settings_merge_user_files_into_the_bundled_calendar(tmp_path: Path) -> None:
    # a user file may repeat a bundled event (same kind and time): it is kept once
    mine = write(
        tmp_path,
        "mine.csv",
        HEADER
        + f"fomc,2026-03-18T14:00-04:00,FOMC,{FOMC_PAGE}\necb,2026-03-19T08:15,ECB,https://ecb.europa.eu\n",
    )
    events = EventSettings(calendar_files=[mine])

    cal = calendar_from_settings(events)

    assert len(cal) == len(bundled_calendar()) + 1
    assert "ecb" in cal.kinds
    assert (
        next(iter(calendar_from_settings(EventSettings(bundled=False, calendar_files=[mine])))).kind == "fomc"
    )
    assert shared_calendar(events) is shared_calendar(EventSettings(calendar_files=[mine]))


def test_a_bad_user_file_fails_at_load_naming_it(tmp_path: Path) -> None:
    bad = write(tmp_path, "bad.csv", HEADER + "cpi,soon,CPI,x\n")

    with pytest.raises(ConfigError, match=r"bad.csv:2: field 'time'"):
        calendar_from_settings(EventSettings(calendar_files=[bad]))


def test_an_empty_calendar_answers_nothing() -> None:
    cal = EconomicCalendar()

    assert cal.between(et(2026, 1, 1), et(2027, 1, 1)) == [] and cal.kinds == []
    assert cal.blackout_at(et(2026, 3, 18, 14), default_blackouts()) is None
    assert KIND_TIMES["fomc"] == time(14, 0)


def test_blackout_for_adds_a_packs_rules_to_the_settings_ones() -> None:
    events = EventSettings()
    pack_news = BlackoutRule(kinds=["jobless_claims"], before_min=2, after_min=2, action="flatten")
    at = et(2026, 3, 19, 8, 29)  # jobless claims 08:30 Thursday

    assert blackout_for(events, at) is None
    b = blackout_for(events, at, [pack_news])
    assert b is not None and b.rule == pack_news and b.event.kind == "jobless_claims"
    assert blackout_for(events, et(2026, 3, 18, 13, 56)).event.kind == "fomc"
