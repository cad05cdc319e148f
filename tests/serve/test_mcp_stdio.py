"""``nq-ray mcp`` over real stdio (a subprocess, on the sample replay: no Ray): malformed lines are
protocol errors as over HTTP, and ``mcp.toolsets`` / ``mcp.read_only`` hide tools there too."""

from __future__ import annotations

import asyncio
import json
import queue
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastmcp import Client
from fastmcp.client.transports import StdioTransport
from mcp.shared.exceptions import MCPError

ROOT = Path(__file__).resolve().parents[2]
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "t", "version": "0"},
    },
}


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {
        "NQ_DATA__DATA_DIR": str(tmp_path / "data"),
        "RAY_USAGE_STATS_ENABLED": "0",
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": str(ROOT),
        **extra,
    }


class Server:
    """The subprocess and its answers, read on a thread (a line that is never answered fails in 60 s)."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)

    def send(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def exchange(self, line: str) -> dict[str, Any]:
        self.send(line)
        try:
            return json.loads(self.lines.get(timeout=60))
        except queue.Empty:
            raise AssertionError(f"no answer to {line!r}") from None


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "nq_ray.mcp_stdio"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=_env(tmp_path),
        text=True,
    )
    yield Server(proc)
    if proc.poll() is None:
        proc.kill()
        proc.wait(timeout=30)


BAD_LINES = [
    ('{"jsonrpc": "2.0", "id": null, "method": "tools/list"}', -32600),
    ('{"jsonrpc": "2.0", "id": {"a": 1}, "method": "tools/list"}', -32600),
    ('{"jsonrpc": "2.0", "id": 1.5, "method": "tools/list"}', -32600),
    ('{"jsonrpc": "2.0", "id": true, "method": "tools/list"}', -32600),
    ('[{"jsonrpc": "2.0", "id": 2, "method": "tools/list"}]', -32600),  # a batch: gone since 2025-06-18
    ("{not json", -32700),
]


def test_malformed_lines_are_protocol_errors_as_over_http(server: Server) -> None:
    assert server.exchange(json.dumps(INITIALIZE))["result"]["serverInfo"]["name"] == "nq-ray"
    server.send('{"jsonrpc": "2.0", "method": "notifications/initialized"}')
    for line, code in BAD_LINES:
        answer = server.exchange(line)
        assert answer["id"] is None and answer["error"]["code"] == code, (line, answer)
    unknown = {"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "nope", "arguments": {}}}
    assert server.exchange(json.dumps(unknown))["error"] == {
        "code": -32602,
        "message": "Unknown tool: 'nope'",
    }
    call = {"jsonrpc": "2.0", "id": 4, "method": "tools/call", "params": {"name": "get_contract_info"}}
    result = server.exchange("\n" + json.dumps(call))["result"]  # a blank line before is no message
    assert (
        result["isError"] is False and json.loads(result["content"][0]["text"]) == result["structuredContent"]
    )
    assert server.proc.stdin is not None
    server.proc.stdin.close()  # end of input ends the server
    assert server.proc.wait(timeout=60) == 0


def test_toolsets_and_read_only_hide_tools_over_stdio(tmp_path: Path) -> None:
    env = _env(tmp_path, NQ_MCP__TOOLSETS='["data","execution"]', NQ_MCP__READ_ONLY="true")
    transport = StdioTransport(command=sys.executable, args=["-m", "nq_ray.mcp_stdio"], env=env)

    async def go() -> tuple[set[str], MCPError, Any]:
        async with Client(transport, timeout=120) as client:
            names = {t.name for t in await client.list_tools()}
            with pytest.raises(MCPError) as err:
                await client.call_tool("place_order", {"symbol": "NQ", "side": "buy", "contracts": 1})
            ok = await client.call_tool("get_contract_info", {"symbol": "ES"})
        return names, err.value, ok

    names, err, ok = asyncio.run(go())
    assert names == {"get_nq_price", "get_historical_data", "get_contract_info", "generate_mock_data"}
    assert (err.code, err.message) == (-32602, "Unknown tool: 'place_order'")
    assert ok.structured_content["point_value_usd"] == 50.0
