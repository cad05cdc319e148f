"""``PATCH /api/agents/{agent_id}``: an agent's config fields changed in place, validated as at creation."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from nq_ray.config import Settings
from nq_ray.runtime.replay import prepare_replay

pytestmark = pytest.mark.timeout(120)
RULES_ONLY = {"providers": [{"name": "rules", "kind": "rules", "model": "nq-rules-v1", "priority": 1000}]}
PROBLEM = "application/problem+json"


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    from nq_ray.serve.app import build_app

    s = Settings(
        data={"data_dir": str(tmp_path / "data")},
        llm={**RULES_ONLY, "health_interval_s": 0},
        replay={"clock": "replay", "start": "2026-04-20T09:30", "speed": 1, "symbols": ["NQ"]},
    )
    prepare_replay(s)
    with TestClient(build_app(s, use_actors=False), base_url="http://127.0.0.1") as c:
        yield c


def test_a_patch_changes_the_given_fields_and_keeps_the_rest(client: TestClient) -> None:
    made = client.post(
        "/api/agents", json={"agent_type": "analysis", "agent_id": "a1", "config": {"memory_items": 3}}
    )
    assert made.status_code == 201, made.text

    r = client.patch("/api/agents/a1", json={"config": {"temperature": 0.4}})

    assert r.status_code == 200, r.text
    cfg = client.get("/api/agents/a1").json()["config"]
    assert cfg["temperature"] == 0.4 and cfg["memory_items"] == 3
    assert client.get("/api/agents/a1").json()["created_at"] == made.json()["created_at"]


def test_a_bad_patch_is_refused_and_changes_nothing(client: TestClient) -> None:
    before = client.get("/api/agents/analysis_agent").json()["config"]

    bad = client.patch("/api/agents/analysis_agent", json={"config": {"temperature": 9}})
    unknown = client.patch("/api/agents/nobody", json={"config": {"temperature": 0.1}})
    empty = client.patch("/api/agents/analysis_agent", json={"config": {}})

    assert bad.status_code == 422 and bad.headers["content-type"].startswith(PROBLEM)
    assert "temperature" in bad.json()["detail"]
    assert unknown.status_code == 404 and unknown.json()["code"] == "not_found"
    assert empty.status_code == 422
    assert client.get("/api/agents/analysis_agent").json()["config"] == before
