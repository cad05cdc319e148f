"""``GET /api/calendar``: the bundled releases in a range, and bad input as 422 problems."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.serve.conftest import AUTH

FOMC_PAGE = "https://www.federalreserve.gov/monetarypolicy/fomccalendars.htm"


def test_march_2026_fomc_and_nfp_with_offsets_and_sources(client: TestClient) -> None:
    r = client.get("/api/calendar?start=2026-03-01&end=2026-03-31&kinds=fomc,nfp", headers=AUTH)

    assert r.status_code == 200, r.text
    body = r.json()
    assert [(e["kind"], e["time"]) for e in body["events"]] == [
        ("nfp", "2026-03-06T08:30:00-05:00"),
        ("fomc", "2026-03-18T14:00:00-04:00"),  # after the 03-08 switch to daylight time
    ]
    assert body["events"][1] == {
        "kind": "fomc",
        "time": "2026-03-18T14:00:00-04:00",
        "title": "FOMC statement (March 2026 meeting)",
        "source": FOMC_PAGE,
    }
    assert body["count"] == 2 and body["kinds"] == ["fomc", "nfp"]
    assert body["end"] == "2026-04-01T00:00:00-04:00"  # a bare end date includes that whole day
    assert body["blackouts"] == [
        {"kinds": ["fomc", "cpi", "nfp"], "before_min": 5, "after_min": 5, "action": "block"}
    ]


def test_repeated_kinds_and_all_kinds(client: TestClient) -> None:
    one_day = "start=2026-03-18T13:00-04:00&end=2026-03-18T15:00-04:00"

    both = client.get(f"/api/calendar?{one_day}&kinds=fomc&kinds=fomc_presser", headers=AUTH).json()
    every = client.get(f"/api/calendar?{one_day}", headers=AUTH).json()

    assert [e["kind"] for e in both["events"]] == ["fomc", "fomc_presser"]
    assert every["kinds"] is None and every["events"] == both["events"]


@pytest.mark.parametrize(
    ("query", "needle"),
    [
        ("start=2026-03-10&end=2026-03-01", "is not after start"),
        ("start=2026-03-01&end=2026-03-31&kinds=fomc,earnings", "unknown event kind(s) 'earnings'"),
        ("start=2024-01-01&end=2026-01-01", "larger than 400"),
        ("start=next%20tuesday&end=2026-03-31", "is not an ISO 8601 date or time"),
    ],
)
def test_bad_input_is_a_422_problem_naming_it(client: TestClient, query: str, needle: str) -> None:
    r = client.get(f"/api/calendar?{query}", headers=AUTH)

    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert body["code"] == "invalid_argument" and needle in body["detail"]


def test_missing_start_is_a_422_and_the_route_needs_the_token(client: TestClient) -> None:
    assert client.get("/api/calendar?end=2026-03-31", headers=AUTH).status_code == 422
    assert client.get("/api/calendar?start=2026-03-01&end=2026-03-31").status_code == 401
