"""``nq_ray.serve.operations_api``: health, metrics and the docs stay open; metrics count tool calls."""

from __future__ import annotations

from tests.serve.conftest import AUTH


def test_health_metrics_and_docs_stay_open(client) -> None:
    assert client.get("/openapi.json").status_code == 200
    health = client.get("/health")
    assert health.status_code == 200
    checks = health.json()["checks"]
    assert checks["mcp"]["status"] == "ok" and checks["database"]["status"] == "ok"
    assert {"llm", "cache", "data", "registry", "broker"} <= set(checks)
    assert all("latency_ms" in c for c in checks.values())


def test_metrics_count_tool_calls_and_errors(client) -> None:
    client.post("/api/tools/get_contract_info", json={"symbol": "NQ"}, headers=AUTH)
    client.post("/api/tools/get_contract_info", json={"symbol": "ZZ"}, headers=AUTH)
    text = client.get("/metrics").text
    assert 'nq_tool_calls_total{outcome="ok",replica=' in text
    assert 'nq_tool_errors_total{code="unknown_symbol",replica=' in text
    assert "nq_tool_latency_seconds_bucket" in text
