"""The event bus behind ``/ws``: ``market_update``, ``agent_update``, ``system_notification``,
``job_progress``, ``order_update``. Fanned out through Redis pub/sub when ``cache.url`` is set (every
replica and process sees every event), in-process otherwise (subscribers of this replica only)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from datetime import UTC, datetime
from typing import Any

log = logging.getLogger(__name__)

EVENT_TYPES = ("market_update", "agent_update", "system_notification", "job_progress", "order_update")
# per subscriber; larger than the market replay's update buffer (2,000), so a jump that releases a burst of
# bars reaches a client whole, as long as it reads at all
QUEUE_SIZE = 4096


def envelope(event: str, data: dict[str, Any]) -> dict[str, Any]:
    return {"type": event, "at": datetime.now(UTC).isoformat(), "data": data}


class EventBus:
    """Publish/subscribe of JSON events; slow subscribers lose their oldest events, never block others."""

    def __init__(self, redis_url: str | None = None, channel: str = "nq:events") -> None:
        self.redis_url = redis_url
        self.channel = channel
        self._subs: set[asyncio.Queue[dict[str, Any]]] = set()
        self._redis: Any = None
        self._listener: asyncio.Task[None] | None = None
        self.published = 0

    @property
    def mode(self) -> str:
        return "redis" if self.redis_url else "in-process"

    async def start(self) -> None:
        if self.redis_url and self._listener is None:
            import redis.asyncio as aioredis

            self._redis = aioredis.from_url(self.redis_url)
            self._listener = asyncio.create_task(self._listen(), name="nq-events-redis")

    async def stop(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._listener
            self._listener = None
        if self._redis is not None:
            await self._redis.aclose()
            self._redis = None

    async def publish(self, event: str, data: dict[str, Any]) -> None:
        msg = envelope(event, data)
        self.published += 1
        if self._redis is not None:
            try:
                await self._redis.publish(self.channel, json.dumps(msg, default=str))
                return
            except Exception as exc:  # Redis down: deliver locally rather than lose the event
                log.warning("event bus: Redis publish failed (%s); delivering in-process", exc)
        self._deliver(msg)

    def _deliver(self, msg: dict[str, Any]) -> None:
        for q in list(self._subs):
            if q.full():
                with contextlib.suppress(asyncio.QueueEmpty):
                    q.get_nowait()
            q.put_nowait(msg)

    def subscribe(self) -> asyncio.Queue[dict[str, Any]]:
        q: asyncio.Queue[dict[str, Any]] = asyncio.Queue(QUEUE_SIZE)
        self._subs.add(q)
        return q

    def unsubscribe(self, q: asyncio.Queue[dict[str, Any]]) -> None:
        self._subs.discard(q)

    @property
    def subscribers(self) -> int:
        return len(self._subs)

    async def _listen(self) -> None:
        while True:
            try:
                pubsub = self._redis.pubsub()
                await pubsub.subscribe(self.channel)
                async for m in pubsub.listen():
                    if m.get("type") == "message":
                        self._deliver(json.loads(m["data"]))
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("event bus: Redis subscription lost (%s); retrying in 1 s", exc)
                await asyncio.sleep(1.0)
