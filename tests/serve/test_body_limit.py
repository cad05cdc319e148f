"""``nq_ray.serve.body_limit``: a body over ``serve.max_body_bytes`` is a 413 problem before it is parsed,
on REST, MCP and the config PATCH; a declared length over the limit is never read, a chunked body is
cut off at the limit. Raw ASGI messages into the whole app (to count what was read), then a real uvicorn
server and httpx."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from nq_ray.config import Settings
from nq_ray.serve.app import build_app
from nq_ray.testing.asgi import ThreadedUvicorn
from tests.serve.conftest import AUTH, TOKEN

LIMIT = 4096
PROBLEM = "application/problem+json"
MCP_HEADERS = {"accept": "application/json, text/event-stream", "mcp-protocol-version": "2025-06-18"}


@pytest.fixture
def small(tmp_path: Path) -> Settings:
    return Settings(
        data={"data_dir": str(tmp_path / "data")},
        mcp={"auth_token": TOKEN},
        serve={"max_body_bytes": LIMIT},
    )


class Sent:
    """What the app answered, and how much of the request body it asked for."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self.chunks_read = 0

    @property
    def status(self) -> int:
        return next(m for m in self.messages if m["type"] == "http.response.start")["status"]

    @property
    def headers(self) -> dict[str, str]:
        start = next(m for m in self.messages if m["type"] == "http.response.start")
        return {k.decode(): v.decode() for k, v in start["headers"]}

    def json(self) -> Any:
        return json.loads(
            b"".join(m.get("body", b"") for m in self.messages if m["type"] == "http.response.body")
        )


def _asgi(app: Any, method: str, path: str, chunks: Iterator[bytes], headers: dict[str, str]) -> Sent:
    """``chunks`` as a streamed request body straight into ``app`` (lifespan around it)."""
    sent = Sent()

    async def run() -> None:
        async with app.router.lifespan_context(app):
            ended = False

            async def receive() -> dict[str, Any]:
                nonlocal ended
                chunk = None if ended else next(chunks, None)
                if chunk is None:
                    if not ended:
                        ended = True
                        return {"type": "http.request", "body": b"", "more_body": False}
                    await asyncio.sleep(3600)
                    return {"type": "http.disconnect"}
                sent.chunks_read += 1
                return {"type": "http.request", "body": chunk, "more_body": True}

            async def send(message: dict[str, Any]) -> None:
                sent.messages.append(message)

            hdrs = {**AUTH, "content-type": "application/json", **headers, "host": "127.0.0.1"}
            scope = {
                "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
                "scheme": "http", "path": path, "raw_path": path.encode(), "root_path": "",
                "query_string": b"",
                "headers": [(k.lower().encode(), v.encode()) for k, v in hdrs.items()],
                "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80),
            }  # fmt: skip
            await app(scope, receive, send)

    asyncio.run(run())
    return sent


def _endless(chunk_bytes: int = 1024, total_bytes: int = 8 * 1024 * 1024) -> Iterator[bytes]:
    """A JSON body far over the limit (a string that goes on for ``total_bytes``)."""
    yield b'{"symbol": "NQ", "note": "'
    for _ in range(total_bytes // chunk_bytes):
        yield b"x" * chunk_bytes
    yield b'"}'


def _assert_body_too_large(sent_status: int, headers: dict[str, str], body: dict[str, Any]) -> None:
    assert sent_status == 413 and headers["content-type"] == PROBLEM
    assert body["code"] == "body_too_large" and body["status"] == 413
    assert f"{LIMIT:,} bytes" in body["detail"] and "serve.max_body_bytes" in body["detail"]
    assert body["details"] == {"limit_bytes": LIMIT, "setting": "serve.max_body_bytes"}
    assert body["request_id"] == headers["x-request-id"]


ROUTES = [
    ("POST", "/api/tools/get_contract_info", {}),
    ("POST", "/mcp/", MCP_HEADERS),
    ("PATCH", "/api/config", {"content-type": "application/merge-patch+json"}),
]


@pytest.mark.parametrize(("method", "path", "headers"), ROUTES, ids=["rest", "mcp", "config-patch"])
def test_a_declared_length_over_the_limit_is_refused_unread(small: Settings, method, path, headers) -> None:
    sent = _asgi(
        build_app(small, use_actors=False),
        method,
        path,
        _endless(),
        {**headers, "content-length": "104857600"},
    )
    _assert_body_too_large(sent.status, sent.headers, sent.json())
    assert sent.chunks_read == 0  # not one byte of the 100 MB was asked for


@pytest.mark.parametrize(("method", "path", "headers"), ROUTES, ids=["rest", "mcp", "config-patch"])
def test_a_chunked_body_is_cut_off_at_the_limit(small: Settings, method, path, headers) -> None:
    sent = _asgi(build_app(small, use_actors=False), method, path, _endless(1024), headers)
    _assert_body_too_large(sent.status, sent.headers, sent.json())
    assert sent.chunks_read <= LIMIT // 1024 + 2  # read up to the limit, then no further


def test_a_body_under_the_limit_is_served(small: Settings) -> None:
    body = json.dumps({"symbol": "NQ"}).encode()
    sent = _asgi(build_app(small, use_actors=False), "POST", "/api/tools/get_contract_info", iter([body]), {})
    assert sent.status == 200 and sent.json()["symbol"] == "NQ"


def test_the_limit_over_real_http_with_a_length_and_chunked(small: Settings) -> None:
    with (
        ThreadedUvicorn(build_app(small, use_actors=False)) as server,
        httpx.Client(base_url=server.url, headers=AUTH, timeout=60) as http,
    ):
        ok = http.post("/api/tools/get_contract_info", json={"symbol": "NQ"})
        assert ok.status_code == 200 and ok.json()["symbol"] == "NQ"
        big = b'{"symbol": "NQ", "note": "' + b"x" * (8 * 1024 * 1024) + b'"}'
        r = http.post(
            "/api/tools/get_contract_info", content=big, headers={"content-type": "application/json"}
        )
        _assert_body_too_large(r.status_code, dict(r.headers), r.json())

        def chunked() -> Iterator[bytes]:
            yield b'{"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {"pad": "'
            for _ in range(8 * 64):
                yield b"x" * 16384

        r = http.post("/mcp/", content=chunked(), headers={**MCP_HEADERS, "content-type": "application/json"})
        _assert_body_too_large(r.status_code, dict(r.headers), r.json())
        after = http.post("/api/tools/get_contract_info", json={"symbol": "ES"})  # the server goes on
        assert after.status_code == 200 and after.json()["symbol"] == "ES"


def test_the_setting_has_a_floor() -> None:
    from nq_ray.errors import ConfigError

    with pytest.raises((ConfigError, ValueError), match="max_body_bytes"):
        Settings(serve={"max_body_bytes": 10})
