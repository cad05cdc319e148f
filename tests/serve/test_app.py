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


async def test_a_blank_token_is_no_token_and_an_empty_bearer_matches_nothing() -> None:
    import httpx
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    from nq_ray.serve.auth import BearerAuth

    inner = Starlette(routes=[Route("/api/x", lambda _req: PlainTextResponse("ok"))])
    assert BearerAuth(inner, ["", "  "]).tokens == []  # blank tokens are dropped, never compared
    app = BearerAuth(inner, ["t0ken"])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        for header in ("Bearer ", "Bearer", "Bearer  ", "bearer t0ken ", "Basic t0ken", ""):
            r = await c.get("/api/x", headers={"Authorization": header})
            expected = 200 if header == "bearer t0ken " else 401
            assert r.status_code == expected, header
