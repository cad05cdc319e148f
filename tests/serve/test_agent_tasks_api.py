"""``POST /api/agents/{agent_id}/tasks``: the seed's tasks over REST (the REST twin of
tests/agents/test_seed_api.py), in process (no Ray) on a temp SQLite store, with hostile input."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from nq_ray.config import Settings
from nq_ray.runtime.replay import prepare_replay
from nq_ray.serve.agents_api import MAX_TASK_PARAMETERS_BYTES

PROBLEM = "application/problem+json"
RULES_ONLY = {"providers": [{"name": "rules", "kind": "rules", "model": "nq-rules-v1", "priority": 1000}]}


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    from nq_ray.serve.app import build_app

    tmp = tmp_path_factory.mktemp("tasks")
    s = Settings(
        data={"data_dir": str(Path(tmp) / "data")},
        llm={**RULES_ONLY, "health_interval_s": 0},
        replay={"clock": "replay", "start": "2026-04-20T09:30", "speed": 1, "symbols": ["NQ"]},
    )
    prepare_replay(s)
    with TestClient(build_app(s, use_actors=False), base_url="http://127.0.0.1") as c:
        yield c


def task(client: TestClient, agent_id: str, type_: str, **parameters: Any) -> Any:
    return client.post(f"/api/agents/{agent_id}/tasks", json={"type": type_, "parameters": parameters})


def ok(r: Any) -> dict[str, Any]:
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def problem(r: Any, status: int, code: str | None = None) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith(PROBLEM)
    body: dict[str, Any] = r.json()
    assert body["status"] == status and body["detail"]
    if code is not None:
        assert body["code"] == code, body
    return body


def test_market_analysis_with_the_seeds_parameters(client: TestClient) -> None:
    body = ok(
        task(
            client,
            "analysis_agent",
            "market_analysis",
            symbol="NQ=F",
            timeframe="1h",
            analysis_depth="comprehensive",
        )
    )

    assert body["agent_id"] == "analysis_agent" and body["type"] == "market_analysis"
    result = body["result"]
    assert result["symbol"] == "NQ" and result["inputs"]["timeframe"] == "1h"
    assert (
        result["inputs"]["window"]["interval"] == "1h"
        and result["inputs"]["analysis_depth"] == "comprehensive"
    )
    assert result["inputs"]["higher_timeframe"]["interval"] == "4h"
    recorded = ok(client.get(f"/api/decisions/{body['record_id']}"))
    assert recorded["action"] == "market_analysis" and recorded["agent"] == "analysis_agent"


def test_each_depth_does_more_than_the_one_before(client: TestClient) -> None:
    keys = {
        depth: set(
            ok(task(client, "analysis_agent", "market_analysis", analysis_depth=depth))["result"]["inputs"]
        )
        for depth in ("quick", "standard", "comprehensive")
    }

    assert keys["quick"] < keys["standard"] < keys["comprehensive"]
    assert {"patterns"} <= keys["standard"] - keys["quick"]
    assert {"momentum", "higher_timeframe"} <= keys["comprehensive"] - keys["standard"]


def test_pattern_counts_are_the_tools_and_the_summary_reads(client: TestClient) -> None:
    body = ok(task(client, "analysis_agent", "pattern_recognition", symbol="ES=F", timeframe="15m"))
    summary = ok(task(client, "analysis_agent", "market_summary", symbol="NQ", timeframe="30m"))["result"]

    result = body["result"]
    report = result["data"]["report"]
    n_candles, n_charts = len(report["candlesticks"]), len(report["chart_patterns"])
    assert n_candles + n_charts > 0  # the sample's recent 15-minute ES bars have patterns
    assert result["summary"].startswith(f"ES 15m: {n_candles} candlestick and {n_charts} chart patterns")
    assert all(p["kind"] in result["summary"] for p in report["chart_patterns"])
    assert summary["data"]["timeframe"] == "30m" and summary["summary"].startswith("NQ on 30m bars")
    assert not any(c in summary["summary"] for c in "{}[]")  # prose, no Python reprs


def test_update_context_then_memory_tasks(client: TestClient) -> None:
    created = client.post("/api/agents", json={"agent_type": "risk", "agent_id": "ctx-risk"})
    assert created.status_code == 201, created.text

    updated = ok(task(client, "ctx-risk", "update_context", last_analysis={"symbol": "NQ", "bias": "long"}))
    recent = ok(task(client, "ctx-risk", "get_recent_memory", n=10))["result"]["data"]["memories"]
    by_type = ok(task(client, "ctx-risk", "get_memory_by_type", type="context", n=5))["result"]["data"][
        "memories"
    ]
    reused = client.post("/api/agents", json={"agent_type": "risk", "agent_id": "ctx-risk"})

    assert updated["result"]["data"]["context"] == {"last_analysis": {"symbol": "NQ", "bias": "long"}}
    assert [m["kind"] for m in recent] == ["context"] and by_type == recent
    problem(reused, 422, "invalid_argument")  # an agent id is not reused


@pytest.mark.parametrize(
    ("agent_id", "body", "status"),
    [
        ("no-such-agent", {"type": "market_analysis"}, 404),
        ("analysis_agent", {"type": "fly"}, 422),
        ("analysis_agent", {"type": "Market Analysis!"}, 422),
        ("analysis_agent", {"type": ""}, 422),
        ("analysis_agent", {}, 422),
        ("analysis_agent", [], 422),
        ("analysis_agent", "market_analysis", 422),
        ("analysis_agent", {"type": "market_analysis", "parameters": []}, 422),
        ("analysis_agent", {"type": "market_analysis", "parameters": {"x": 1}}, 422),
        ("analysis_agent", {"type": "market_analysis", "extra": 1}, 422),
        ("analysis_agent", {"type": "market_analysis", "parameters": {"symbol": "ZZTOP"}}, 422),
        ("analysis_agent", {"type": "market_analysis", "parameters": {"symbol": 5}}, 422),
        ("analysis_agent", {"type": "market_analysis", "parameters": {"timeframe": "7m"}}, 422),
        ("analysis_agent", {"type": "market_analysis", "parameters": {"timeframe": ["1h"]}}, 422),
        ("analysis_agent", {"type": "market_analysis", "parameters": {"analysis_depth": "extreme"}}, 422),
        ("analysis_agent", {"type": "pattern_recognition", "parameters": {"min_confidence": 2}}, 422),
        ("analysis_agent", {"type": "get_recent_memory", "parameters": {"n": "10"}}, 422),
        ("analysis_agent", {"type": "get_recent_memory", "parameters": {"n": 10**6}}, 422),
        ("analysis_agent", {"type": "get_memory_by_type", "parameters": {}}, 422),
        ("analysis_agent", {"type": "update_context", "parameters": {}}, 422),
        ("risk_agent", {"type": "update_context", "parameters": {"k" * 65: 1}}, 422),
        ("bad id!", {"type": "market_analysis"}, 422),
    ],
)
def test_hostile_task_requests_are_problems(
    client: TestClient, agent_id: str, body: Any, status: int
) -> None:
    problem(client.post(f"/api/agents/{agent_id}/tasks", json=body), status)


def test_bodies_that_are_empty_huge_deep_or_not_json(client: TestClient) -> None:
    url = "/api/agents/analysis_agent/tasks"
    big = {"type": "update_context", "parameters": {"blob": "x" * (MAX_TASK_PARAMETERS_BYTES + 10)}}
    deep: Any = 1
    for _ in range(40):
        deep = {"d": deep}

    problem(client.post(url, content=b"", headers={"content-type": "application/json"}), 422)
    problem(client.post(url, content=b"{not json", headers={"content-type": "application/json"}), 422)
    problem(client.post(url, json=big), 422)
    problem(client.post(url, json={"type": "update_context", "parameters": {"deep": deep}}), 422)
    problem(
        client.post(url, content=b"x" * (2 * 1024 * 1024), headers={"content-type": "application/json"}), 413
    )
    nan = b'{"type": "update_context", "parameters": {"x": NaN}}'  # Python's JSON reads NaN; it is not JSON
    problem(client.post(url, content=nan, headers={"content-type": "application/json"}), 422)
    assert json.dumps(ok(task(client, "analysis_agent", "get_recent_memory", n=3))["result"])  # still serving
