"""The Origin check on the MCP endpoint (``nq_ray.serve.origin``), in the app as ``build_app`` composes it."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from nq_ray.config import Settings
from nq_ray.serve.app import build_app
from nq_ray.serve.origin import is_loopback_origin, normalize_origin
from tests.serve.conftest import AUTH, TOKEN

LIST = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
HEADERS = {**AUTH, "Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


@pytest.fixture
def client(tmp_path: Path) -> TestClient:
    settings = Settings(
        data={"data_dir": str(tmp_path / "data")},
        mcp={
            "auth_token": TOKEN,
            "allowed_origins": ["https://Desk.Example.com:443", "http://tools.example:8080"],
        },
    )
    with TestClient(build_app(settings, use_actors=False), base_url="http://127.0.0.1") as c:
        yield c


def test_no_origin_loopback_origins_and_listed_origins_reach_the_mcp_endpoint(client: TestClient) -> None:
    for origin in (
        None,
        "http://localhost:5173",
        "http://127.0.0.1:8000",
        "https://127.0.0.1",
        "http://[::1]:3000",
        "http://app.localhost",
        "https://desk.example.com",  # listed with its default port and in another case
        "http://tools.example:8080",
    ):
        headers = HEADERS | ({"Origin": origin} if origin else {})
        r = client.post("/mcp/", json=LIST, headers=headers)
        assert r.status_code == 200 and r.json()["result"]["tools"], origin


def test_any_other_origin_is_a_403_problem_before_the_token_is_looked_at(client: TestClient) -> None:
    for origin in (
        "https://evil.example",
        "http://tools.example",  # listed on another port
        "https://desk.example.com:8443",
        "http://127.0.0.1.evil.example",
        "null",
        "file://",
        "http://localhost@evil.example",
        "not an origin",
    ):
        for headers in (HEADERS, {k: v for k, v in HEADERS.items() if k != "Authorization"}):
            r = client.post("/mcp/", json=LIST, headers=headers | {"Origin": origin})
            assert r.status_code == 403, origin
            assert r.headers["content-type"] == "application/problem+json"
            problem = r.json()
            assert problem["code"] == "forbidden_origin" and problem["origin"] == origin
            assert "mcp.allowed_origins" in problem["detail"]
        assert client.get("/mcp/", headers=HEADERS | {"Origin": origin}).status_code == 403


def test_the_rest_api_is_not_checked_here(client: TestClient) -> None:
    r = client.get("/api/tools", headers=AUTH | {"Origin": "https://evil.example"})
    assert r.status_code == 200  # browsers are kept off it by CORS, not by this check


def test_a_star_allows_any_origin(tmp_path: Path) -> None:
    settings = Settings(data={"data_dir": str(tmp_path / "data")}, mcp={"allowed_origins": ["*"]})
    with TestClient(build_app(settings, use_actors=False), base_url="http://127.0.0.1") as c:
        r = c.post("/mcp/", json=LIST, headers=HEADERS | {"Origin": "https://anywhere.example"})
        assert r.status_code == 200


def test_normalize_and_loopback() -> None:
    assert normalize_origin("HTTPS://Desk.Example.COM:443") == "https://desk.example.com"
    assert normalize_origin("http://[::1]:80") == "http://[::1]"
    assert normalize_origin("http://a.example:99999") is None
    assert normalize_origin("https://a.example/path") is None
    assert normalize_origin("ftp://a.example") is None
    assert is_loopback_origin("http://127.0.0.2:9") and not is_loopback_origin("http://10.0.0.1")
    assert not is_loopback_origin("http://localhost.evil.example")
