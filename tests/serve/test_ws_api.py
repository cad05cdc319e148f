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


def test_a_binary_frame_is_answered_with_a_close_frame_1003(client) -> None:
    with client.websocket_connect(f"/ws?token={TOKEN}") as ws:
        assert ws.receive_json()["type"] == "system_notification"
        ws.send_bytes(b"\x00\x01binary")
        message = ws.receive()  # before: no answer at all, the connection just went away
        assert message["type"] == "websocket.close" and message["code"] == 1003
        assert "binary frames are not supported" in message["reason"]


def test_text_frames_are_ignored_and_the_socket_stays_open(client) -> None:
    with client.websocket_connect(f"/ws?token={TOKEN}") as ws:
        assert ws.receive_json()["type"] == "system_notification"
        ws.send_text("hello")
        client.get("/api/market/nq-price", headers=AUTH)
        assert ws.receive_json()["type"] == "market_update"
