"""``nq_ray.serve.jobs_api``: a job submitted, polled and its result read."""

from __future__ import annotations

import time

from tests.serve.conftest import AUTH


def test_job_submit_poll_result(client) -> None:
    r = client.post(
        "/api/jobs",
        json={"tool": "run_sweep", "arguments": {"grid": {"fast": [5, 10], "slow": [30]}, "period": "5d"}},
        headers=AUTH,
    )
    assert r.status_code == 202
    job_id = r.json()["id"]
    deadline = time.monotonic() + 120  # the first sweep compiles the numba kernel: slow on a busy box
    while time.monotonic() < deadline:
        state = client.get(f"/api/jobs/{job_id}", headers=AUTH).json()
        if state["status"] in ("succeeded", "failed"):
            break
        time.sleep(0.05)
    assert state["status"] == "succeeded" and state["result"]["combinations"] == 2
    assert client.get("/api/jobs/doesnotexist", headers=AUTH).json()["code"] == "unknown_job"
    bad = client.post("/api/jobs", json={"tool": "run_sweep", "arguments": {"grid": 7}}, headers=AUTH)
    assert (bad.status_code, bad.json()["code"]) == (422, "invalid_argument")
