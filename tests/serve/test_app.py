"""The HTTP app in-process as ``build_app`` composes it: the bearer-token and CORS middleware in front of
every router. Each router has its own tests: test_tools_api.py, test_jobs_api.py, test_operations_api.py,
test_ws_api.py, test_problems.py, test_agents_api.py, test_config_api.py."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest

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


def test_the_openapi_document_gives_every_error_as_a_problem(client) -> None:
    doc = client.get("/openapi.json").json()
    problem = {PROBLEM: {"schema": {"$ref": "#/components/schemas/Problem"}}}
    assert {"type", "title", "status", "detail", "code"} <= set(
        doc["components"]["schemas"]["Problem"]["required"]
    )
    assert "HTTPValidationError" not in doc["components"]["schemas"]
    operations = [(path, method, op) for path, item in doc["paths"].items() for method, op in item.items()]
    assert len(operations) > 40
    for path, method, op in operations:
        responses = op["responses"]
        assert {"4XX", "5XX"} <= set(responses), (method, path)
        if "requestBody" in op:
            assert "413" in responses and "422" in responses, (method, path)
        if path not in ("/health", "/metrics", "/openapi.json"):
            assert "401" in responses, (method, path)
        for code, response in responses.items():
            if code[0] in "45" and (path, code) != ("/health", "503"):  # /health's 503 is its report
                assert response["content"] == problem, (method, path, code)
    assert doc["paths"]["/metrics"]["get"]["responses"]["200"]["content"].keys() == {
        "text/plain; version=0.0.4; charset=utf-8"
    }


@pytest.mark.timeout(600)
def test_schemathesis_finds_every_response_content_type_documented(settings) -> None:
    """Negative and positive cases for every operation against the app on a real uvicorn server, with
    schemathesis' content-type check: each response's media type is the one the OpenAPI document gives
    for its status (problem+json for the errors)."""
    import schemathesis
    from hypothesis import HealthCheck, given
    from hypothesis import settings as hsettings
    from hypothesis.errors import Unsatisfiable
    from schemathesis.generation.modes import GenerationMode
    from schemathesis.specs.openapi.checks import content_type_conformance

    from nq_ray.serve.app import build_app
    from nq_ray.testing.asgi import ThreadedUvicorn
    from tests.serve.conftest import AUTH

    heavy = {"/api/tools/run_sweep", "/api/tools/run_walk_forward", "/api/tools/compare_strategies"}
    heavy |= {"/api/tools/scan_market", "/api/tools/scan_backtests"}  # tests/serve/test_scan_jobs.py
    heavy |= {"/api/tools/run_challenge"}  # tests/tools/test_challenge.py
    with ThreadedUvicorn(build_app(settings, use_actors=False)) as server:
        schema = schemathesis.openapi.from_url(server.url + "/openapi.json")
        failures: list[str] = []
        calls = [0]
        for result in schema.get_all_operations():
            op = result.ok()
            if op.path.startswith("/api/desk") or op.path in heavy:
                continue  # the desk loops and the heavy tools take seconds; the Serve e2e covers them
            for mode in (GenerationMode.NEGATIVE, GenerationMode.POSITIVE):

                @hsettings(
                    max_examples=3, deadline=None, database=None, suppress_health_check=list(HealthCheck)
                )
                @given(case=op.as_strategy(generation_mode=mode))
                def check(case: Any) -> None:
                    resp = case.call(base_url=server.url, headers=AUTH, timeout=60)
                    calls[0] += 1
                    try:
                        case.validate_response(resp, checks=[content_type_conformance])
                    except (Exception, BaseExceptionGroup) as exc:  # FailureGroup is a BaseExceptionGroup
                        failures.append(
                            f"{case.method} {case.formatted_path} → {resp.status_code}: {exc}"[:300]
                        )

                with contextlib.suppress(Unsatisfiable):
                    check()
    assert calls[0] > 80
    assert not failures, "\n".join(sorted(set(failures)))
