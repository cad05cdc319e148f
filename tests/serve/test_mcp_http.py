"""The MCP endpoint's response modes: plain JSON for a call, an SSE stream when the call asks for progress.

In-process through the ASGI app (TestClient and raw ASGI messages, to see content types and chunked
bodies) and with a real fastmcp ``Client`` against the app on a real uvicorn server on loopback."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from fastmcp import Client
from fastmcp.client.transports import StreamableHttpTransport

from nq_ray.config import Settings
from nq_ray.errors import ConfigError
from nq_ray.serve.app import build_app
from nq_ray.serve.deployments import app_builder
from nq_ray.testing.asgi import ThreadedUvicorn
from tests.serve.conftest import AUTH, TOKEN

SWEEP = {"grid": {"fast": [5, 10], "slow": [30, 50]}, "period": "1mo", "top": 3}
HEADERS = {
    **AUTH,
    "Accept": "application/json, text/event-stream",
    "Content-Type": "application/json",
    "MCP-Protocol-Version": "2025-06-18",
}


def _call(name: str, arguments: dict[str, Any], progress_token: str | None = None) -> dict[str, Any]:
    params: dict[str, Any] = {"name": name, "arguments": arguments}
    if progress_token is not None:
        params["_meta"] = {"progressToken": progress_token}
    return {"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": params}


def _sse_messages(text: str) -> list[dict[str, Any]]:
    data = [line[5:] for line in text.splitlines() if line.startswith("data:")]
    return [json.loads(d) for d in data if d.strip()]


@pytest.fixture
def app_client(settings: Settings, request: pytest.FixtureRequest) -> Iterator[TestClient]:
    app = build_app(settings, use_actors=False, mcp_responses=getattr(request, "param", "auto"))
    with TestClient(app, base_url="http://127.0.0.1") as c:
        yield c


def test_a_plain_call_gets_one_json_body(app_client: TestClient) -> None:
    r = app_client.post("/mcp/", json=_call("get_contract_info", {"symbol": "NQ"}), headers=HEADERS)
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert body["id"] == 7 and body["result"]["structuredContent"]["symbol"] == "NQ"


def test_a_call_asking_for_progress_gets_an_sse_stream_with_progress_first(app_client: TestClient) -> None:
    r = app_client.post("/mcp/", json=_call("run_sweep", SWEEP, progress_token="p1"), headers=HEADERS)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    messages = _sse_messages(r.text)
    progress = [m for m in messages if m.get("method") == "notifications/progress"]
    assert progress and all(m["params"]["progressToken"] == "p1" for m in progress)
    assert messages[-1]["id"] == 7 and messages[-1]["result"]["structuredContent"]["combinations"] == 4


def test_tool_errors_come_back_as_json_tool_errors(app_client: TestClient) -> None:
    r = app_client.post("/mcp/", json=_call("get_contract_info", {"symbol": "ZZ"}), headers=HEADERS)
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    result = r.json()["result"]
    assert result["isError"] is True and "[unknown_symbol]" in result["content"][0]["text"]


@pytest.mark.parametrize("app_client", ["sse"], indirect=True)
def test_sse_mode_streams_every_call(app_client: TestClient) -> None:
    r = app_client.post("/mcp/", json=_call("get_contract_info", {"symbol": "NQ"}), headers=HEADERS)
    assert r.headers["content-type"].startswith("text/event-stream")
    assert _sse_messages(r.text)[-1]["result"]["structuredContent"]["symbol"] == "NQ"


@pytest.mark.parametrize("app_client", ["json"], indirect=True)
def test_json_mode_answers_in_json_even_when_progress_is_asked(app_client: TestClient) -> None:
    r = app_client.post("/mcp/", json=_call("run_sweep", SWEEP, progress_token="p1"), headers=HEADERS)
    assert r.headers["content-type"].startswith("application/json")
    assert r.json()["result"]["structuredContent"]["combinations"] == 4


def _asgi_post(app: Any, chunks: list[bytes]) -> tuple[int, dict[str, str], bytes]:
    """POST ``chunks`` as a streamed request body straight into the ASGI app (lifespan around it)."""

    async def run() -> tuple[int, dict[str, str], bytes]:
        async with app.router.lifespan_context(app):
            incoming = [{"type": "http.request", "body": c, "more_body": True} for c in chunks]
            incoming[-1]["more_body"] = False
            out: list[dict[str, Any]] = []

            async def receive() -> dict[str, Any]:
                if incoming:
                    return incoming.pop(0)
                await asyncio.sleep(3600)
                return {"type": "http.disconnect"}

            async def send(msg: dict[str, Any]) -> None:
                out.append(msg)

            headers = [(k.lower().encode(), v.encode()) for k, v in HEADERS.items()]
            scope = {
                "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
                "scheme": "http", "path": "/mcp/", "raw_path": b"/mcp/", "root_path": "", "query_string": b"",
                "headers": [*headers, (b"host", b"127.0.0.1")],
                "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80),
            }  # fmt: skip
            await app(scope, receive, send)
        start = next(m for m in out if m["type"] == "http.response.start")
        hdrs = {k.decode(): v.decode() for k, v in start["headers"]}
        body = b"".join(m.get("body", b"") for m in out if m["type"] == "http.response.body")
        return start["status"], hdrs, body

    return asyncio.run(run())


def test_a_body_in_several_chunks_reaches_the_server_whole(settings: Settings) -> None:
    body = json.dumps(_call("get_contract_info", {"symbol": "NQ"})).encode()
    app = build_app(settings, use_actors=False)
    status, headers, raw = _asgi_post(app, [body[:10], body[10:40], body[40:]])
    assert status == 200 and headers["content-type"].startswith("application/json")
    assert json.loads(raw)["result"]["structuredContent"]["symbol"] == "NQ"


def test_a_large_body_in_many_chunks_is_read_whole_and_answered(settings: Settings) -> None:
    pad = "x" * (128 * 1024)  # many chunks, under the body limit (serve.max_body_bytes)
    body = json.dumps(_call("get_contract_info", {"symbol": "NQ", "note": pad})).encode()
    chunks = [body[i : i + 16384] for i in range(0, len(body), 16384)]
    status, headers, raw = _asgi_post(build_app(settings, use_actors=False), chunks)
    assert status == 200 and headers["content-type"].startswith("application/json")  # read whole: JSON
    result = json.loads(raw)["result"]
    assert result["isError"] is True and "note" in result["content"][0]["text"]  # the extra argument


# (JSON-RPC id, what kind of value it is): JSON-RPC 2.0 section 4 allows a string, a number or null; MCP
# narrows it to a string or an integer, never null. Each is an Invalid Request (-32600) with id null.
BAD_IDS = [
    ({"a": 1}, "an object"),
    ([1], "an array"),
    (True, "a boolean"),
    (None, "null"),
    (1.5, "a decimal number"),
    (7.0, "a decimal number"),  # the MCP SDK reads ids as int | str: 7.0 was dropped as a notification
]


@pytest.mark.parametrize(("rid", "kind"), BAD_IDS, ids=[f"{i}-{k}" for i, (_, k) in enumerate(BAD_IDS)])
@pytest.mark.parametrize("app_client", ["auto", "json", "sse"], indirect=True)
def test_an_id_that_is_not_a_string_or_integer_is_an_invalid_request(
    app_client: TestClient, rid, kind
) -> None:
    for message in (
        {"jsonrpc": "2.0", "id": rid, "method": "tools/list"},
        {**_call("get_contract_info", {"symbol": "NQ"}), "id": rid},
    ):
        r = app_client.post("/mcp/", json=message, headers=HEADERS)
        assert r.status_code == 400 and r.headers["content-type"].startswith("application/json"), r.text
        body = r.json()
        assert body["id"] is None and body["error"]["code"] == -32600, body
        assert body["error"]["message"].startswith("Invalid Request") and kind in body["error"]["message"]


@pytest.mark.parametrize("rid", ["req-1", 7, 0, -3])
def test_string_and_integer_ids_are_answered(app_client: TestClient, rid) -> None:
    r = app_client.post("/mcp/", json={"jsonrpc": "2.0", "id": rid, "method": "tools/list"}, headers=HEADERS)
    assert r.status_code == 200 and r.json()["id"] == rid and r.json()["result"]["tools"]


def test_a_notification_without_an_id_still_gets_202(app_client: TestClient) -> None:
    r = app_client.post(
        "/mcp/", json={"jsonrpc": "2.0", "method": "notifications/initialized"}, headers=HEADERS
    )
    assert r.status_code == 202


@pytest.mark.parametrize(
    "body", [b"[" * 100_000 + b"]" * 100_000, b'{"id": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", b"\xff{"]
)
def test_a_body_that_does_not_parse_is_a_client_error_not_a_crash(
    app_client: TestClient, body: bytes
) -> None:
    r = app_client.post("/mcp/", content=body, headers=HEADERS)
    assert 400 <= r.status_code < 500, r.text[:200]
    assert r.json()["error"]["code"] in (-32700, -32600, -32602)


@pytest.mark.parametrize("app_client", ["auto", "json", "sse"], indirect=True)
def test_an_unknown_tool_is_a_jsonrpc_error_not_a_tool_result(app_client: TestClient) -> None:
    r = app_client.post("/mcp/", json=_call("make_money", {}), headers=HEADERS)
    messages = (
        _sse_messages(r.text) if r.headers["content-type"].startswith("text/event-stream") else [r.json()]
    )
    answer = messages[-1]
    assert "result" not in answer and answer["id"] == 7, answer
    assert answer["error"]["code"] == -32602 and answer["error"]["message"] == "Unknown tool: 'make_money'"


def test_an_unknown_mode_is_a_config_error(settings: Settings) -> None:
    with pytest.raises(ValueError, match="auto, json, sse"):
        build_app(settings, use_actors=False, mcp_responses="xml")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="mcp_responses"):
        app_builder({"mcp_responses": "xml"})


@pytest.fixture
def served(settings: Settings) -> Iterator[str]:
    """The app on a real uvicorn server on loopback, in a thread of this process."""
    with ThreadedUvicorn(build_app(settings, use_actors=False)) as server:
        yield server.url + "/mcp/"


def test_a_real_client_gets_results_and_progress(served: str) -> None:
    seen: list[tuple[float, float | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append((progress, total))

    async def run() -> tuple[Any, Any]:
        transport = StreamableHttpTransport(served, headers={"Authorization": f"Bearer {TOKEN}"})
        async with Client(transport) as client:
            info = await client.call_tool("get_contract_info", {"symbol": "NQ"})
            sweep = await client.call_tool("run_sweep", SWEEP, progress_handler=on_progress)
        return info, sweep

    info, sweep = asyncio.run(run())
    assert info.structured_content["symbol"] == "NQ"
    assert sweep.structured_content["combinations"] == 4
    assert seen and seen[-1][0] == seen[-1][1]


def test_a_real_client_gets_a_protocol_error_for_an_unknown_tool(served: str) -> None:
    from mcp.shared.exceptions import MCPError

    async def run() -> Any:
        transport = StreamableHttpTransport(served, headers={"Authorization": f"Bearer {TOKEN}"})
        async with Client(transport) as client:
            with pytest.raises(MCPError) as err:
                await client.call_tool("make_money", {})
            ok = await client.call_tool("get_contract_info", {"symbol": "NQ"})  # the session goes on
        return err.value, ok

    err, ok = asyncio.run(run())
    assert err.code == -32602 and "Unknown tool: 'make_money'" in err.message
    assert ok.structured_content["symbol"] == "NQ"


def test_a_stateful_server_always_streams() -> None:
    from fastmcp import FastMCP

    from nq_ray.serve.mcp_http import MCPEndpoint

    assert MCPEndpoint(FastMCP("t"), stateless=False).responses == "sse"  # sessions live in one transport
    assert MCPEndpoint(FastMCP("t"), stateless=True).responses == "auto"


def test_mcp_callers_get_the_same_refusal_for_files_outside_the_data_roots(
    app_client: TestClient, settings: Settings
) -> None:
    settings.data.data_dir.mkdir(parents=True, exist_ok=True)
    (settings.data.data_dir / "escape.csv").symlink_to("/etc/passwd")
    texts = set()
    for source in ("csv:/etc/passwd", "csv:/nonexistent", "csv:../../etc/passwd", "csv:escape.csv"):
        r = app_client.post("/mcp/", json=_call("get_nq_price", {"source": source}), headers=HEADERS)
        result = r.json()["result"]
        assert result["isError"] is True, source
        texts.add(result["content"][0]["text"])
    (text,) = texts
    assert text.startswith("[path_not_allowed] csv: paths must be under one of the configured data roots")
    r = app_client.post(
        "/mcp/", json=_call("get_nq_price", {"source": "parquet:/etc/shadow"}), headers=HEADERS
    )
    assert r.json()["result"]["content"][0]["text"].startswith("[path_not_allowed] parquet: paths must")


def test_an_order_id_reused_for_a_different_order_is_a_tool_error_with_its_code(
    app_client: TestClient,
) -> None:
    order = {"symbol": "NQ", "side": "buy", "contracts": 1, "order_type": "limit", "price": 20000.0}
    order |= {"client_order_id": "mcp-1"}
    first = app_client.post("/mcp/", json=_call("place_order", order), headers=HEADERS).json()["result"]
    again = app_client.post("/mcp/", json=_call("place_order", order), headers=HEADERS).json()["result"]
    other = order | {"side": "sell", "contracts": 7}
    refused = app_client.post("/mcp/", json=_call("place_order", other), headers=HEADERS).json()["result"]
    assert first["isError"] is False and first["structuredContent"]["duplicate"] is False
    assert again["structuredContent"]["duplicate"] is True
    assert refused["isError"] is True
    assert refused["content"][0]["text"].startswith("[duplicate_client_order_id] client_order_id 'mcp-1'")


def test_the_stdio_server_answers_an_unknown_tool_the_same_way(settings: Settings) -> None:
    from mcp.shared.exceptions import MCPError

    from nq_ray.mcp_stdio import build_stdio_server

    async def run() -> Any:
        async with Client(build_stdio_server(settings)) as client:  # in memory; no Ray until a broker tool
            with pytest.raises(MCPError) as err:
                await client.call_tool("make_money", {})
            ok = await client.call_tool("get_contract_info", {"symbol": "NQ"})
        return err.value, ok

    err, ok = asyncio.run(run())
    assert (err.code, err.message) == (-32602, "Unknown tool: 'make_money'")
    assert ok.structured_content["symbol"] == "NQ"
