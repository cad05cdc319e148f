"""Approval mode over MCP on the HTTP app (stateless, as on Serve), with a real fastmcp ``Client`` on a real
uvicorn server on loopback: the desk's switch set through ``PUT /api/desk/approval-mode``; a 2026-07-28
client confirms by elicitation (an ``input_required`` round trip over HTTP); a handshake-era client on
stateless HTTP has no back-channel, so its order waits in the approvals queue until
``POST /api/approvals/{id}/approve`` sends it, once."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastmcp import Client
from fastmcp.client.transports import StreamableHttpTransport

from nq_ray.config import Settings
from nq_ray.runtime.replay import prepare_replay
from nq_ray.testing.asgi import ThreadedUvicorn
from tests.serve.conftest import AUTH, TOKEN

RULES_ONLY = {"providers": [{"name": "rules", "kind": "rules", "model": "nq-rules-v1", "priority": 1000}]}
ORDER = {"symbol": "NQ", "side": "buy", "contracts": 1, "order_type": "limit", "price": 20000.0}


@pytest.fixture
def served(tmp_path: Path) -> Iterator[str]:
    """The app (no Ray) on a replay of the sample from Monday 2026-04-20 09:30 ET, approval mode on."""
    from nq_ray.serve.app import build_app

    s = Settings(
        data={"data_dir": str(tmp_path / "data")},
        mcp={"auth_token": TOKEN},
        llm={**RULES_ONLY, "health_interval_s": 0},
        replay={"clock": "replay", "start": "2026-04-20T09:30", "speed": 1, "symbols": ["NQ"]},
    )
    prepare_replay(s)
    with ThreadedUvicorn(build_app(s, use_actors=False)) as server:
        r = httpx.put(server.url + "/api/desk/approval-mode", json={"on": True}, headers=AUTH, timeout=60)
        assert r.status_code == 200 and r.json()["approval_mode"] is True, r.text
        yield server.url


def mcp_client(base: str, mode: str, handler: Any) -> Client[Any]:
    transport = StreamableHttpTransport(base + "/mcp/", headers=AUTH)
    return Client(transport, mode=mode, elicitation_handler=handler, timeout=60)  # type: ignore[arg-type]


def test_confirmed_over_http_or_queued_and_approved_each_order_is_placed_once(served: str) -> None:
    asked: list[str] = []

    async def person(message: str, response_type: Any, params: Any, context: Any) -> dict[str, bool]:
        asked.append(message)
        return {"confirm": True}

    async def run() -> dict[str, Any]:
        out: dict[str, Any] = {}
        async with mcp_client(served, "auto", person) as c:
            out["modern"] = c.protocol_version
            out["placed"] = await c.call_tool("place_order", {**ORDER, "client_order_id": "http-yes"})
            out["again"] = await c.call_tool("place_order", {**ORDER, "client_order_id": "http-yes"})
        async with mcp_client(served, "legacy", person) as c:
            out["legacy"] = c.protocol_version
            out["queued"] = await c.call_tool(
                "place_order", {**ORDER, "client_order_id": "http-queued"}, raise_on_error=False
            )
            aid = out["queued"].structured_content["approval_id"]
            async with httpx.AsyncClient(base_url=served, headers=AUTH, timeout=60) as http:
                out["approve"] = await http.post(f"/api/approvals/{aid}/approve", json={"who": "tester"})
                out["approve_again"] = await http.post(
                    f"/api/approvals/{aid}/approve", json={"who": "tester"}
                )
            # the approved order is in the book: the same id is now a retry (no queue, no question)
            out["retry"] = await c.call_tool("place_order", {**ORDER, "client_order_id": "http-queued"})
        return out

    out = asyncio.run(run())

    assert out["modern"] == "2026-07-28" and len(asked) == 1 and "BUY 1 NQ limit @ 20000.00" in asked[0]
    assert out["placed"].structured_content["accepted"] and not out["placed"].structured_content["duplicate"]
    assert out["again"].structured_content["duplicate"] is True
    assert out["legacy"] in ("2025-06-18", "2025-11-25")
    queued = out["queued"]
    assert queued.is_error and queued.content[0].text.startswith("[approval_pending]")
    assert len(asked) == 1  # stateless handshake-era HTTP: nobody could be asked
    assert out["approve"].status_code == 200, out["approve"].text
    execution = out["approve"].json()["approval"]["execution"]
    assert execution["placed"] is True and execution["client_order_ids"] == ["http-queued"]
    assert out["approve_again"].json()["already"] is True
    assert out["retry"].structured_content["duplicate"] is True
    assert out["retry"].structured_content["order"]["client_order_id"] == "http-queued"
