"""The agents REST API over ``build_app``: in process (no Ray) on a temp SQLite store, and once on Ray."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from nq_ray.config import Settings
from nq_ray.runtime.replay import prepare_replay
from nq_ray.testing.wait import wait_until

PROBLEM = "application/problem+json"
RULES_ONLY = {"providers": [{"name": "rules", "kind": "rules", "model": "nq-rules-v1", "priority": 1000}]}


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    # The desk runs on the replay clock of the bundled bars, as `nq-ray up` runs it: its cycles and the
    # replay of a decision judge at the same (historical, open-market) time on any day the test runs.
    s = Settings(
        data={"data_dir": str(tmp_path / "data")},
        llm={**RULES_ONLY, "health_interval_s": 0},
        replay={"clock": "replay", "start": "2026-04-20T09:30", "speed": 1, "symbols": ["NQ"]},
    )
    prepare_replay(s)
    return s


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    from nq_ray.serve.app import build_app

    with TestClient(build_app(settings, use_actors=False), base_url="http://127.0.0.1") as c:
        yield c
        c.post("/api/desk/stop")


MCP_HEADERS = {
    "Accept": "application/json, text/event-stream",
    "Content-Type": "application/json",
    "MCP-Protocol-Version": "2025-06-18",
}


def mcp_call(client: TestClient, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    """A ``tools/call`` on the app's ``/mcp/`` (one JSON-RPC request) → its result."""
    body = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {"name": name, "arguments": arguments},
    }
    r = client.post("/mcp/", json=body, headers=MCP_HEADERS)
    assert r.status_code == 200, r.text
    result: dict[str, Any] = r.json()["result"]
    return result


def the_mcp_agent_tools_use_the_apis_desk(client: TestClient, agent_id: str) -> None:
    """An agent created over REST is listed and tasked over MCP; the task is in the REST decision log."""
    listed = mcp_call(client, "list_agents", {})
    assert agent_id in {a["agent_id"] for a in listed["structuredContent"]["agents"]}
    task = {"agent_id": agent_id, "type": "get_recent_memory", "parameters": {"n": 3}}
    done = mcp_call(client, "run_agent_task", task)
    assert done["isError"] is False, done
    record = client.get(f"/api/decisions/{done['structuredContent']['record_id']}").json()
    assert record["agent"] == agent_id and record["action"] == "get_recent_memory"
    missing = mcp_call(client, "run_agent_task", {"agent_id": "nobody", "type": "market_analysis"})
    assert missing["isError"] is True
    assert missing["content"][0]["text"].startswith("[not_found] no agent 'nobody'; the desk's agents are ")


def problem(r: Any, status: int, code: str | None = None) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith(PROBLEM)
    body = r.json()
    assert body["status"] == status and body["detail"]
    if code is not None:
        assert body["code"] == code, body
    return body


def test_agents_are_created_listed_tasked_and_deleted(client: TestClient) -> None:
    r = client.post("/api/agents", json={"agent_type": "analysis", "config": {"temperature": 0.1}})
    assert r.status_code == 201, r.text
    agent_id = r.json()["agent_id"]

    listed = {a["agent_id"]: a for a in client.get("/api/agents").json()}
    got = client.get(f"/api/agents/{agent_id}").json()
    task = client.post(
        f"/api/agents/{agent_id}/tasks", json={"type": "market_analysis", "parameters": {"symbol": "NQ"}}
    )
    deleted = client.delete(f"/api/agents/{agent_id}")

    assert listed[agent_id]["agent_type"] == "analysis" and listed[agent_id]["config"]["temperature"] == 0.1
    assert {"analysis_agent", "risk_agent", "execution_agent"} <= set(listed)  # the desk's own
    assert got["agent_id"] == agent_id and "memory" in got and "recent_decisions" in got
    assert task.status_code == 200, task.text
    assert task.json()["result"]["view"]["bias"] in ("long", "short", "flat")
    assert deleted.status_code == 200 and deleted.json()["deleted"] is True
    problem(client.get(f"/api/agents/{agent_id}"), 404, "not_found")


def test_the_mcp_agent_tools_share_the_apis_in_process_desk(client: TestClient) -> None:
    created = client.post("/api/agents", json={"agent_type": "risk", "agent_id": "risk-mcp"})
    assert created.status_code == 201, created.text
    the_mcp_agent_tools_use_the_apis_desk(client, "risk-mcp")


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("post", "/api/agents", {"agent_type": "trader"}, 422),
        ("post", "/api/agents", {"agent_type": "risk", "config": {"bogus": 1}}, 422),
        ("post", "/api/agents", {"agent_type": "risk", "config": {"provider": "nope"}}, 422),
        ("post", "/api/agents", {"agent_type": "risk", "extra": 1}, 422),
        ("post", "/api/agents", ["not", "an", "object"], 422),
        ("get", "/api/agents/no-such-agent", None, 404),
        ("get", "/api/agents/bad%20id!", None, 422),
        ("delete", "/api/agents/no-such-agent", None, 404),
        ("delete", "/api/agents/analysis_agent", None, 422),
        ("post", "/api/agents/no-such-agent/tasks", {"type": "market_analysis"}, 404),
        ("post", "/api/agents/risk_agent/tasks", {"type": "fly"}, 422),
        (
            "post",
            "/api/agents/analysis_agent/tasks",
            {"type": "market_analysis", "parameters": {"x": 1}},
            422,
        ),
        ("post", "/api/desk/start", {"cadence_s": 0}, 422),
        ("post", "/api/desk/start", {"symbols": []}, 422),
        ("post", "/api/desk/start", {"symbols": ["ZZTOP"]}, 404),
        ("post", "/api/desk/kill", {"who": "x" * 65}, 422),
        ("put", "/api/desk/approval-mode", {"on": "yes"}, 422),
        ("put", "/api/desk/approval-mode", {}, 422),
        ("post", "/api/desk/run-once", {"symbol": "ZZTOP"}, 404),
        ("get", "/api/approvals?status=maybe", None, 422),
        ("post", "/api/approvals/999/approve", None, 404),
        ("post", "/api/approvals/abc/reject", None, 422),
        ("get", "/api/decisions?limit=0", None, 422),
        ("get", "/api/decisions/999", None, 404),
        ("get", "/api/decisions/-1", None, 422),
        ("get", "/api/decisions/1e3", None, 422),
        ("post", "/api/decisions/999/replay", None, 404),
        ("post", "/api/decisions/1/replay", {"fresh": "sometimes"}, 422),
    ],
)
def test_bad_input_is_a_problem_never_a_500(
    client: TestClient, method: str, path: str, body: Any, status: int
) -> None:
    r = getattr(client, method)(path, **({"json": body} if body is not None else {}))

    problem(r, status)


def test_run_once_records_a_decision_that_reads_and_replays(client: TestClient) -> None:
    client.put("/api/desk/approval-mode", json={"on": True})  # nothing is sent; a proposal waits

    out = client.post("/api/desk/run-once", json={"symbol": "NQ"})
    assert out.status_code == 200, out.text
    decision_id = out.json()["decision_id"]
    listed = client.get("/api/decisions", params={"limit": 5}).json()
    record = client.get(f"/api/decisions/{decision_id}").json()
    replay = client.post(f"/api/decisions/{decision_id}/replay").json()

    assert listed[0]["id"] == decision_id
    assert record["inputs"]["window"]["bars"] == 600 and len(record["inputs"]["window"]["sha256"]) == 64
    assert record["prompt"] and record["model"].startswith("rules/") and record["parsed"]["bias"]
    assert replay["window_match"] and replay["prompt_match"] and replay["same"], replay
    pending = client.get("/api/approvals").json()
    if out.json()["approval"] is not None:  # the view was tradeable: its proposal waits for a human
        approval_id = out.json()["approval"]["id"]
        assert [a["id"] for a in pending] == [approval_id]
        rejected = client.post(f"/api/approvals/{approval_id}/reject", json={"reason": "test"})
        assert rejected.status_code == 200, rejected.text
        problem(client.post(f"/api/approvals/{approval_id}/approve"), 409)
    assert client.get("/api/approvals").json() == []


def test_kill_halts_start_is_refused_until_resume(client: TestClient) -> None:
    killed = client.post("/api/desk/kill", json={"reason": "test", "who": "tester"})
    refused = client.post("/api/desk/start", json={"cadence_s": 3600})
    resumed = client.post("/api/desk/resume", json={"who": "tester"})
    started = client.post("/api/desk/start", json={"symbols": ["NQ"], "cadence_s": 3600})
    stopped = client.post("/api/desk/stop")

    assert killed.status_code == 200 and killed.json()["halted"] is True, killed.text
    assert killed.json()["flatten_error"] is None  # the in-process paper broker flattened (nothing held)
    problem(refused, 409, "desk_halted")
    assert resumed.json()["halted"] is False
    assert started.json()["running"] is True and started.json()["symbols"] == ["NQ"]
    assert stopped.json()["running"] is False
    assert client.get("/api/desk/status").json()["running"] is False


def test_llm_status_lists_the_chain(client: TestClient) -> None:
    body = client.get("/api/llm/status").json()

    assert [p["name"] for p in body["providers"]] == ["rules"] and body["all_llms_down"] is None


def test_api_actions_are_announced_on_the_websocket(client: TestClient) -> None:
    with client.websocket_connect("/ws") as ws:
        assert ws.receive_json()["type"] == "system_notification"
        client.put("/api/desk/approval-mode", json={"on": True})
        seen = []
        for _ in range(10):
            msg = ws.receive_json()
            seen.append(msg)
            if msg["type"] == "agent_update" and msg["data"].get("source") == "api":
                break

    assert seen[-1]["data"] == {"source": "api", "action": "approval_mode", "on": True}


# ----------------------------------------------------------------------------------------- on Ray
@pytest.fixture
def ray_client(ray_session: Any, settings: Settings) -> Iterator[TestClient]:
    """The app with Ray up: the desk is the ``trading_desk`` actor (its agents, registry and broker are
    actors too). Every actor this test creates is killed afterwards."""
    from nq_ray.serve.app import build_app

    def named() -> set[str]:
        return {a["name"] for a in ray_session.util.list_named_actors(all_namespaces=True)}

    for name in ("trading_desk", "tool_registry", "paper_broker"):  # left behind, with another store
        try:
            ray_session.kill(ray_session.get_actor(name, namespace="nq"), no_restart=True)
        except ValueError:
            continue
    wait_until(  # a killed actor's name is free once it is dead
        lambda: not {"trading_desk", "tool_registry", "paper_broker"} & named(),
        timeout_s=30,
        interval_s=0.2,
        message="the killed desk, registry and broker actors are gone",
    )
    before = named()
    app = build_app(settings)  # default actor names: the desk actor joins the same tool_registry
    try:
        with TestClient(app, base_url="http://127.0.0.1") as c:
            yield c
    finally:
        for name in named() - before:
            try:
                ray_session.kill(ray_session.get_actor(name, namespace="nq"), no_restart=True)
            except ValueError:
                continue


def test_on_ray_the_api_drives_the_desk_actor(ray_client: TestClient, ray_session: Any) -> None:
    created = ray_client.post("/api/agents", json={"agent_type": "risk", "agent_id": "risk-ray"})
    missing = ray_client.get("/api/agents/nobody")
    mode = ray_client.put("/api/desk/approval-mode", json={"on": True})
    out = ray_client.post("/api/desk/run-once", json={"symbol": "NQ"})

    assert created.status_code == 201, created.text
    problem(missing, 404, "not_found")  # the actor's typed error, unwrapped
    assert mode.json()["approval_mode"] is True
    assert out.status_code == 200, out.text
    record = ray_client.get(f"/api/decisions/{out.json()['decision_id']}").json()
    assert record["inputs"]["window"]["sha256"] and record["agent"] == "trading_desk"
    desk = ray_session.get_actor("trading_desk", namespace="nq")
    assert ray_session.get(desk.status.remote())["approval_mode"] is True  # state lives in the actor
    the_mcp_agent_tools_use_the_apis_desk(ray_client, "risk-ray")  # MCP tools: the same desk actor
