"""The WebSocket at ``/ws``: every event of the event bus (orders, jobs, agents, ...) pushed to each
connected client, after a ``system_notification`` that lists the event types.

Clients only listen: text frames they send are read and ignored; a binary frame is answered with a close
frame, code 1003 (unsupported data, RFC 6455 section 7.4.1) and a reason, rather than a dropped
connection."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from nq_ray.serve.deps import AppDeps
from nq_ray.serve.events import EVENT_TYPES


def ws_router(deps: AppDeps) -> APIRouter:
    """``/ws`` over ``deps.bus``."""
    router = APIRouter()
    bus, metrics = deps.bus, deps.metrics

    @router.websocket("/ws")
    async def ws(socket: WebSocket) -> None:
        await socket.accept()
        queue = bus.subscribe()
        metrics.ws_clients.labels(metrics.replica).inc()
        try:
            await socket.send_json(
                {
                    "type": "system_notification",
                    "data": {"message": "connected", "events": list(EVENT_TYPES), "fan_out": bus.mode},
                }
            )
            reader = asyncio.create_task(_drain(socket))
            try:
                while not reader.done():
                    getter = asyncio.create_task(queue.get())
                    done, _ = await asyncio.wait({getter, reader}, return_when=asyncio.FIRST_COMPLETED)
                    if getter in done:
                        await socket.send_json(getter.result())
                    else:
                        getter.cancel()
            finally:
                reader.cancel()
            close = reader.result()
            if close is not None:  # sent from this task only: no event is sent after the close frame
                await socket.close(*close)
        except WebSocketDisconnect:
            pass
        finally:
            bus.unsubscribe(queue)
            metrics.ws_clients.labels(metrics.replica).dec()

    return router


UNSUPPORTED_DATA = 1003
BINARY_REASON = "binary frames are not supported: this socket only sends events (JSON text)"


async def _drain(socket: WebSocket) -> tuple[int, str] | None:
    """Read (and ignore) client text messages until the client goes away (None) or sends a binary frame
    (the close code and reason to answer it with)."""
    while True:
        message = await socket.receive()
        if message["type"] == "websocket.disconnect":
            return None
        if message.get("bytes") is not None:
            return UNSUPPORTED_DATA, BINARY_REASON
