"""The HTTP app in-process as ``build_app`` composes it: the bearer-token and CORS middleware in front of
every router. Each router has its own tests: test_tools_api.py, test_jobs_api.py, test_operations_api.py,
test_ws_api.py, test_problems.py, test_agents_api.py, test_config_api.py."""

from __future__ import annotations

from typing import Any

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


def test_every_response_carries_one_request_id_that_the_problem_repeats(client) -> None:
    from tests.serve.conftest import AUTH

    r = client.get("/api/market/nq-price", params={"symbol": "ZZ"}, headers=AUTH)
    assert len(r.headers.get_list("x-request-id")) == 1
    assert r.json()["request_id"] == r.headers["x-request-id"]
    r = client.get("/api/tools", headers={**AUTH, "X-Request-ID": "client-id-1"})
    assert r.headers.get_list("x-request-id") == ["client-id-1"]


def test_behind_serves_proxy_middleware_there_is_one_request_id(settings) -> None:
    """Ray Serve's proxy wraps every app in its own ``RequestIdMiddleware``: it sets ``X-Request-ID`` on
    the request when the client sent none and appends it to every response. Built the way a Serve replica
    builds it (``request_id_header=False``), the app adds none of its own and uses the proxy's id."""
    from fastapi.testclient import TestClient
    from ray.serve._private.http_util import RequestIdMiddleware as ServeRequestId

    from nq_ray.serve.app import build_app
    from tests.serve.conftest import AUTH

    app = build_app(settings, use_actors=False, request_id_header=False)
    serve_proxy = ServeRequestId(app)

    async def proxy(scope: Any, receive: Any, send: Any) -> None:  # Serve runs the lifespan by itself
        await (app if scope["type"] == "lifespan" else serve_proxy)(scope, receive, send)

    with TestClient(proxy, base_url="http://127.0.0.1") as proxied:
        r = proxied.get("/api/market/nq-price", params={"symbol": "ZZ"}, headers=AUTH)
        assert r.status_code == 404 and len(r.headers.get_list("x-request-id")) == 1
        assert r.json()["request_id"] == r.headers["x-request-id"]  # the proxy's id, in the problem too
        r = proxied.get("/api/jobs/nope", headers={**AUTH, "X-Request-ID": "from-the-client"})
        assert r.headers.get_list("x-request-id") == ["from-the-client"]
        assert r.json()["request_id"] == "from-the-client"
