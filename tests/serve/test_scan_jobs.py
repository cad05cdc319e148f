"""The scanner over REST: ``scan_market`` as a job (``POST /api/jobs``) with a ``job_progress`` event per
finished cell, cancelled with ``DELETE /api/jobs/{id}``, and hostile scans answered as problem details."""

from __future__ import annotations

import time
from typing import Any

from tests.serve.conftest import AUTH, TOKEN

SIX_TIMEFRAMES = ["1m", "5m", "15m", "30m", "1h", "1d"]


def _events_until(ws: Any, job_id: str, done: tuple[str, ...]) -> list[dict[str, Any]]:
    seen = []
    while True:
        msg = ws.receive_json()
        if msg["type"] != "job_progress" or msg["data"]["id"] != job_id:
            continue
        seen.append(msg["data"])
        if msg["data"]["status"] in done:
            return seen


def test_a_scan_job_publishes_progress_per_cell_and_ends_ranked(client: Any) -> None:
    with client.websocket_connect(f"/ws?token={TOKEN}") as ws:
        ws.receive_json()  # the hello
        args = {"symbols": ["NQ", "ES"], "timeframes": ["5m", "1h"]}
        r = client.post("/api/jobs", json={"tool": "scan_market", "arguments": args}, headers=AUTH)
        assert r.status_code == 202
        job_id = r.json()["id"]

        events = _events_until(ws, job_id, ("succeeded", "failed", "cancelled"))

    state = client.get(f"/api/jobs/{job_id}", headers=AUTH).json()
    assert state["status"] == "succeeded", state
    cells = [e for e in events if e["message"] and "cells;" in e["message"]]
    assert cells and all(e["total"] == 4 for e in cells)
    assert [e["progress"] for e in cells] == sorted(e["progress"] for e in cells)
    rows = state["result"]["rows"]
    assert [r["rank"] for r in rows] == [1, 2, 3, 4]
    assert [r["score"] for r in rows] == sorted((r["score"] for r in rows), reverse=True)


def test_deleting_a_scan_job_cancels_it_with_what_had_finished(client: Any) -> None:
    args = {
        "symbols": ["NQ", "MNQ", "ES", "MES", "YM", "RTY"],
        "timeframes": ["1m", "5m"],
        "source": "synthetic",
    }
    job_id = client.post("/api/jobs", json={"tool": "scan_market", "arguments": args}, headers=AUTH).json()[
        "id"
    ]
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # polling the API as a client would, until a first cell is in
        state = client.get(f"/api/jobs/{job_id}", headers=AUTH).json()
        if (state["progress"] or 0) >= 1 or (state["status"] != "running" and state["status"] != "pending"):
            break
        time.sleep(0.05)

    client.delete(f"/api/jobs/{job_id}", headers=AUTH)

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        state = client.get(f"/api/jobs/{job_id}", headers=AUTH).json()
        if state["status"] in ("succeeded", "failed", "cancelled"):
            break
        time.sleep(0.05)
    assert state["status"] == "cancelled", state
    assert 1 <= state["progress"] < state["total"] == 12
    assert state["error"]["code"] == "cancelled"


def test_hostile_scans_are_problem_details(client: Any) -> None:
    unknown = client.post("/api/tools/scan_market", json={"symbols": ["NQ", "ACME"]}, headers=AUTH)
    big = client.post(
        "/api/tools/scan_market",
        json={
            "symbols": ["NQ", "MNQ", "ES", "MES", "YM", "RTY"],
            "timeframes": ["1m", "5m", "15m", "30m", "1h", "1d"],
        },
        headers=AUTH,
    )
    empty = client.post("/api/tools/scan_backtests", json={"symbols": []}, headers=AUTH)
    bad_tf = client.post(
        "/api/jobs", json={"tool": "scan_market", "arguments": {"timeframes": 5}}, headers=AUTH
    )

    assert (unknown.status_code, unknown.json()["code"]) == (404, "unknown_symbol")
    assert unknown.headers["content-type"].startswith("application/problem+json")
    assert (big.status_code, big.json()["code"]) == (422, "invalid_argument")
    assert "36 cells; at most 32" in big.json()["detail"]
    assert (empty.status_code, empty.json()["code"]) == (422, "invalid_argument")
    assert (bad_tf.status_code, bad_tf.json()["code"]) == (422, "invalid_argument")
