"""The HTTP app in-process: auth, RFC 9457 problem details, market endpoints, tools, jobs, WebSocket,
metrics, CORS and the OpenAPI document."""

from __future__ import annotations

import time

from tests.serve.conftest import AUTH, TOKEN

PROBLEM = "application/problem+json"


def test_requests_without_a_token_get_401_problem(client) -> None:
    for method, path in (("GET", "/api/tools"), ("POST", "/mcp/"), ("GET", "/api/market/nq-price")):
        r = client.request(method, path)
        assert r.status_code == 401, path
        assert r.headers["content-type"] == PROBLEM and r.headers["www-authenticate"].startswith("Bearer")
        assert r.json()["code"] == "unauthorized"
    r = client.get("/api/tools", headers={"Authorization": "Bearer wrong"})
    assert r.status_code == 401


def test_health_metrics_and_docs_stay_open(client) -> None:
    assert client.get("/openapi.json").status_code == 200
    health = client.get("/health")
    assert health.status_code == 200
    checks = health.json()["checks"]
    assert checks["mcp"]["status"] == "ok" and checks["database"]["status"] == "ok"
    assert {"llm", "cache", "data", "registry", "broker"} <= set(checks)
    assert all("latency_ms" in c for c in checks.values())


def test_nq_price_says_where_the_data_came_from(client) -> None:
    r = client.get("/api/market/nq-price", headers=AUTH)
    assert r.status_code == 200
    body = r.json()
    assert body["symbol"] == "NQ" and body["origin"]["live"] is False and body["origin"]["source"] == "sample"


def test_historical_by_period_and_interval(client) -> None:
    r = client.get(
        "/api/market/historical", params={"symbol": "NQ=F", "period": "5d", "interval": "1h"}, headers=AUTH
    )
    assert r.status_code == 200
    body = r.json()
    assert body["interval"] == "1h" and 0 < body["count"] <= 5 * 24


def test_errors_are_problem_details_with_the_typed_code(client) -> None:
    r = client.get("/api/market/nq-price", params={"symbol": "ZZ"}, headers=AUTH)
    assert (r.status_code, r.headers["content-type"], r.json()["code"]) == (404, PROBLEM, "unknown_symbol")
    assert r.json()["type"].endswith("/unknown_symbol") and "ZZ" in r.json()["detail"]
    r = client.get("/api/market/historical", params={"limit": "lots"}, headers=AUTH)
    assert (r.status_code, r.json()["code"]) == (422, "invalid_argument")
    r = client.post("/api/tools/make_money", json={}, headers=AUTH)
    assert (r.status_code, r.json()["code"]) == (404, "unknown_tool")
    r = client.get("/no/such/route", headers=AUTH)
    assert r.status_code == 404 and r.headers["content-type"] == PROBLEM


def test_tools_are_listed_and_callable_by_name_with_their_own_schema(client) -> None:
    tools = client.get("/api/tools", headers=AUTH).json()
    assert len(tools) == 20 and all("input_schema" in t for t in tools)
    r = client.post("/api/tools/get_contract_info", json={"symbol": "MES"}, headers=AUTH)
    assert r.status_code == 200 and r.json()["point_value_usd"] == 5.0
    r = client.post("/api/tools/get_contract_info", json={"symbol": "NQ", "bogus": 1}, headers=AUTH)
    assert (r.status_code, r.json()["code"]) == (422, "invalid_argument")
    spec = client.get("/openapi.json").json()
    assert "/api/tools/run_backtest" in spec["paths"]
    body = spec["paths"]["/api/tools/place_order"]["post"]["requestBody"]["content"]["application/json"]
    assert body["schema"]


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


def test_websocket_needs_the_token_and_streams_events(client) -> None:
    import pytest
    from starlette.websockets import WebSocketDisconnect

    with pytest.raises(WebSocketDisconnect), client.websocket_connect("/ws") as ws:
        ws.receive_json()
    with client.websocket_connect(f"/ws?token={TOKEN}") as ws:
        hello = ws.receive_json()
        assert hello["type"] == "system_notification" and "job_progress" in hello["data"]["events"]
        client.get("/api/market/nq-price", headers=AUTH)
        event = ws.receive_json()
        assert event["type"] == "market_update" and event["data"]["symbol"] == "NQ"
        client.post("/api/jobs", json={"tool": "get_market_hours", "arguments": {}}, headers=AUTH)
        kinds = set()
        while "succeeded" not in kinds:
            msg = ws.receive_json()
            assert msg["type"] == "job_progress"
            kinds.add(msg["data"]["status"])


def test_metrics_count_tool_calls_and_errors(client) -> None:
    client.post("/api/tools/get_contract_info", json={"symbol": "NQ"}, headers=AUTH)
    client.post("/api/tools/get_contract_info", json={"symbol": "ZZ"}, headers=AUTH)
    text = client.get("/metrics").text
    assert 'nq_tool_calls_total{outcome="ok",replica=' in text
    assert 'nq_tool_errors_total{code="unknown_symbol",replica=' in text
    assert "nq_tool_latency_seconds_bucket" in text


def test_cors_allows_the_configured_origin_only(client) -> None:
    ok = client.options(
        "/api/tools",
        headers={"Origin": "https://ui.example", "Access-Control-Request-Method": "GET"},
    )
    assert ok.headers.get("access-control-allow-origin") == "https://ui.example"
    other = client.options(
        "/api/tools", headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"}
    )
    assert other.headers.get("access-control-allow-origin") is None
