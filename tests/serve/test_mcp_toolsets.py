"""The app's MCP endpoint over HTTP (in process, no Ray): tools described on the wire, ``mcp.toolsets`` /
``mcp.read_only`` applied there, and JSON-text arguments accepted by MCP and REST alike."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from nq_ray.config import Settings
from nq_ray.serve.app import build_app
from tests.serve.conftest import AUTH, TOKEN
from tests.tools.conftest import EXPECTED_TOOLS

HEADERS = {
    **AUTH,
    "Accept": "application/json, text/event-stream",
    "Content-Type": "application/json",
    "MCP-Protocol-Version": "2025-06-18",
}


def _app(tmp_path: Path, **mcp: Any) -> TestClient:
    settings = Settings(data={"data_dir": str(tmp_path / "data")}, mcp={"auth_token": TOKEN, **mcp})
    return TestClient(build_app(settings, use_actors=False), base_url="http://127.0.0.1")


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    with _app(tmp_path) as c:
        yield c


def _rpc(client: TestClient, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"jsonrpc": "2.0", "id": 1, "method": method}
    if params is not None:
        body["params"] = params
    r = client.post("/mcp/", json=body, headers=HEADERS)
    assert r.status_code == 200, r.text
    return r.json()


def test_tools_list_carries_titles_annotations_and_output_schemas_on_the_wire(client: TestClient) -> None:
    tools = {t["name"]: t for t in _rpc(client, "tools/list")["result"]["tools"]}
    assert set(tools) == EXPECTED_TOOLS
    order = tools["place_order"]
    assert order["title"] == "Place a paper order" and order["outputSchema"]["type"] == "object"
    assert order["annotations"] == {
        "title": "Place a paper order",
        "readOnlyHint": False,
        "destructiveHint": True,
        "idempotentHint": True,
        "openWorldHint": False,
    }
    assert tools["get_contract_info"]["annotations"]["readOnlyHint"] is True


def test_a_result_is_structured_content_and_the_same_json_as_text(client: TestClient) -> None:
    result = _rpc(client, "tools/call", {"name": "get_contract_info", "arguments": {"symbol": "MNQ"}})[
        "result"
    ]
    assert result["isError"] is False and result["structuredContent"]["point_value_usd"] == 2.0
    assert [c["type"] for c in result["content"]] == ["text"]
    assert json.loads(result["content"][0]["text"]) == result["structuredContent"]


def test_a_read_only_server_neither_lists_nor_runs_the_order_tools(tmp_path: Path) -> None:
    with _app(tmp_path, read_only=True) as client:
        names = {t["name"] for t in _rpc(client, "tools/list")["result"]["tools"]}
        order = {"symbol": "NQ", "side": "buy", "contracts": 1}
        answer = _rpc(client, "tools/call", {"name": "place_order", "arguments": order})
        rest = client.get("/api/tools", headers=AUTH).json()
    assert names == EXPECTED_TOOLS - {"place_order", "manage_position", "run_agent_task"}
    assert "result" not in answer
    assert answer["error"] == {"code": -32602, "message": "Unknown tool: 'place_order'"}
    assert len(rest) == len(EXPECTED_TOOLS)  # the settings choose what MCP serves; REST is unchanged


def test_json_text_for_an_object_is_accepted_over_mcp_and_rest(client: TestClient) -> None:
    grid = {"fast": [5, 10], "slow": [30, 50]}
    args = {"grid": json.dumps(grid), "period": "1mo", "top": 2}
    over_mcp = _rpc(client, "tools/call", {"name": "run_sweep", "arguments": args})["result"]
    r = client.post("/api/tools/run_sweep", json=args, headers=AUTH)
    assert over_mcp["isError"] is False and over_mcp["structuredContent"]["combinations"] == 4
    assert r.status_code == 200 and r.json()["best_params"] == over_mcp["structuredContent"]["best_params"]
    bad = client.post("/api/tools/run_sweep", json={"grid": "{fast: [5]}"}, headers=AUTH)
    assert bad.status_code == 422 and "grid" in bad.json()["detail"]  # text that does not parse: refused
