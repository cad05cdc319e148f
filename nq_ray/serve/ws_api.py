"""The WebSocket at ``/ws``: every event of the event bus (orders, jobs, agents, ...) pushed to each
connected client, after a ``system_notification`` that lists the event types."""

from __future__ import annotations

import asyncio
import contextlib

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
        except WebSocketDisconnect:
            pass
        finally:
            bus.unsubscribe(queue)
            metrics.ws_clients.labels(metrics.replica).dec()

    return router


async def _drain(socket: WebSocket) -> None:
    """Read (and ignore) client messages until the client goes away."""
    with contextlib.suppress(WebSocketDisconnect):
        while True:
            await socket.receive_text()
