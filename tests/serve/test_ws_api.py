"""``nq_ray.serve.ws_api``: the WebSocket needs the token and streams the bus's events."""

from __future__ import annotations

from tests.serve.conftest import AUTH, TOKEN


def test_websocket_needs_the_token_and_streams_events(client) -> None:
    import pytest
    from starlette.websockets import WebSocketDisconnect

    with pytest.raises(WebSocketDisconnect), client.websocket_connect("/ws") as ws:
        ws.receive_json()
    with client.websocket_connect(f"/ws?token={TOKEN}") as ws:
        hello = ws.receive_json()
        assert hello["type"] == "system_notification" and "job_progress" in hello["data"]["events"]
        client.get("/api/market/nq-price", headers=AUTH)
        event = ws.receive_json()
        assert event["type"] == "market_update" and event["data"]["symbol"] == "NQ"
        client.post("/api/jobs", json={"tool": "get_market_hours", "arguments": {}}, headers=AUTH)
        kinds = set()
        while "succeeded" not in kinds:
            msg = ws.receive_json()
            assert msg["type"] == "job_progress"
            kinds.add(msg["data"]["status"])
