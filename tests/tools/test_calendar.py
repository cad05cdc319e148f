"""``get_economic_calendar`` through the registry (as MCP and REST call it) and ``nq-ray calendar``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from nq_ray.cli import app
from nq_ray.errors import InvalidArgumentError
from nq_ray.market.calendar import bundled_calendar
from nq_ray.tools.calendar import MAX_RANGE_DAYS, parse_bound

runner = CliRunner()


async def test_tool_lists_march_2026_releases_in_time_order(registry) -> None:
    out = await registry.call("get_economic_calendar", {"start": "2026-03-01", "end": "2026-03-20"})

    assert [(e["kind"], e["time"]) for e in out["events"]] == [
        ("jobless_claims", "2026-03-05T08:30:00-05:00"),
        ("nfp", "2026-03-06T08:30:00-05:00"),
        ("jobless_claims", "2026-03-12T08:30:00-04:00"),
        ("fomc", "2026-03-18T14:00:00-04:00"),
        ("fomc_presser", "2026-03-18T14:30:00-04:00"),
        ("jobless_claims", "2026-03-19T08:30:00-04:00"),
    ]
    assert out["count"] == 6 and all(e["source"].startswith("https://") for e in out["events"])
    last = {
        k: max(e.time for e in bundled_calendar() if e.kind == k).isoformat() for k in ("fomc", "cpi", "nfp")
    }
    assert out["known_until"] == last  # the default blackouts' kinds


async def test_tool_says_until_when_the_calendar_knows_each_kind(registry) -> None:
    out = await registry.call(
        "get_economic_calendar", {"start": "2027-11-01", "end": "2027-12-31", "kinds": ["fomc", "cpi"]}
    )

    last_cpi = max(e.time for e in bundled_calendar() if e.kind == "cpi")
    assert [e["kind"] for e in out["events"]] == ["fomc"]  # the Fed's December 2027 meeting
    # no CPI in the answer because none is known after early 2026, not because none is due
    assert out["known_until"] == {"fomc": "2027-12-08T14:00:00-05:00", "cpi": last_cpi.isoformat()}
    assert last_cpi.year == 2026


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        ({"start": "2026-03-10", "end": "2026-03-10T00:00"}, "is not after start"),
        ({"start": "2026-03-01", "end": "2026-04-01", "kinds": ["cpi", "Earnings"]}, "unknown event kind"),
        ({"start": "2025-01-01", "end": "2026-03-01"}, f"larger than {MAX_RANGE_DAYS}"),
        ({"start": "2026-02-30", "end": "2026-03-01"}, "not an ISO 8601"),
    ],
)
async def test_bad_arguments_are_invalid_argument_errors(registry, args: dict, needle: str) -> None:
    with pytest.raises(InvalidArgumentError, match=needle):
        await registry.call("get_economic_calendar", args)


async def test_unknown_arguments_are_refused(registry) -> None:
    with pytest.raises(InvalidArgumentError):
        await registry.call("get_economic_calendar", {"start": "2026-03-01", "end": "2026-03-02", "day": 1})


def test_bounds_naive_is_new_york_and_a_bare_end_date_takes_the_whole_day() -> None:
    assert parse_bound("2026-03-18T14:00", "start").isoformat() == "2026-03-18T14:00:00-04:00"
    assert parse_bound("2026-03-18T18:00Z", "start").isoformat() == "2026-03-18T14:00:00-04:00"
    assert parse_bound("2026-03-18", "end", end=True).isoformat() == "2026-03-19T00:00:00-04:00"


def test_cli_prints_the_events_and_the_blackout_rules() -> None:
    result = runner.invoke(
        app, ["calendar", "--start", "2026-03-18", "--end", "2026-03-18", "--kinds", "fomc,fomc_presser"]
    )

    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "Wed 2026-03-18 14:00 EDT  fomc           FOMC statement (March 2026 meeting)",
        "Wed 2026-03-18 14:30 EDT  fomc_presser   FOMC Chair press conference (March 2026 meeting)",
        "2 events from 2026-03-18 00:00 to 2026-03-19 00:00 (New York)",
        "blackout fomc, cpi, nfp: 5 min before to 5 min after (block)",
    ]


def test_cli_json_is_the_tools_answer() -> None:
    result = runner.invoke(
        app, ["calendar", "--start", "2026-02-13", "--end", "2026-02-14", "--kinds", "cpi", "--json"]
    )

    assert result.exit_code == 0, result.output
    body = json.loads(result.output)
    assert body["events"] == [
        {
            "kind": "cpi",
            "time": "2026-02-13T08:30:00-05:00",
            "title": "Consumer Price Index for January 2026",
            "source": "https://www.bls.gov/bls/2025-lapse-revised-release-dates.htm",
        }
    ]


def test_cli_bad_input_exits_2_with_the_error_code() -> None:
    result = runner.invoke(app, ["calendar", "--start", "2026-03-01", "--end", "2026-02-01"])

    assert result.exit_code == 2 and "error [invalid_argument]" in result.output


def test_cli_reads_the_users_calendar_files_and_names_a_bad_one(tmp_path: Path, monkeypatch) -> None:
    good = tmp_path / "ecb.csv"
    good.write_text("kind,time,title,source\necb,2026-03-19T08:15,ECB decision,https://www.ecb.europa.eu\n")
    monkeypatch.setenv("NQ_EVENTS__CALENDAR_FILES", json.dumps([str(good)]))

    ok = runner.invoke(app, ["calendar", "--start", "2026-03-19", "--end", "2026-03-19", "--kinds", "ecb"])

    assert ok.exit_code == 0, ok.output
    assert ok.output.startswith("Thu 2026-03-19 08:15 EDT  ecb            ECB decision")
    good.write_text("kind,time,title,source\necb,tomorrow,ECB decision,x\n")
    monkeypatch.setenv("NQ_EVENTS__CALENDAR_FILES", json.dumps([str(good), str(tmp_path / "other.csv")]))
    bad = runner.invoke(app, ["calendar", "--start", "2026-03-19", "--end", "2026-03-19"])
    assert bad.exit_code == 2 and "ecb.csv:2: field 'time'" in bad.output
