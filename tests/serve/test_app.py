"""The HTTP app in-process as ``build_app`` composes it: the bearer-token and CORS middleware in front of
every router. Each router has its own tests: test_tools_api.py, test_jobs_api.py, test_operations_api.py,
test_ws_api.py, test_problems.py, test_agents_api.py, test_config_api.py."""

from __future__ import annotations

PROBLEM = "application/problem+json"


def test_requests_without_a_token_get_401_problem(client) -> None:
    for method, path in (("GET", "/api/tools"), ("POST", "/mcp/"), ("GET", "/api/market/nq-price")):
        r = client.request(method, path)
        assert r.status_code == 401, path
        assert r.headers["content-type"] == PROBLEM and r.headers["www-authenticate"].startswith("Bearer")
        assert r.json()["code"] == "unauthorized"
    r = client.get("/api/tools", headers={"Authorization": "Bearer wrong"})
    assert r.status_code == 401


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
