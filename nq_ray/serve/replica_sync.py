"""``ReplicaSync``: one replica's heartbeat to the ``tool_registry`` actor (metrics snapshot out, the
effective settings in), so ``/metrics`` can total every replica and every replica runs with the same
settings after a ``PATCH /api/config``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Any

from nq_ray.config import Settings
from nq_ray.serve.metrics import Metrics

if TYPE_CHECKING:
    from nq_ray.tools.context import ToolContext

log = logging.getLogger("nq_ray.serve.app")

SYNC_S = 1.0


class ReplicaSync:
    """This replica's heartbeat to the ``tool_registry`` actor every ``SYNC_S``: pushes its metrics
    snapshot (for the cluster totals at ``/metrics``) and takes the effective settings when they changed
    (a ``PATCH /api/config`` on any replica), so every replica's tools run with the same settings.

    ``version`` is the store's live settings version (``nq_ray.store.live``), which only grows: a replica
    that starts (at 0) takes the registry's settings — the start-up settings plus the store's overlay — on
    its first heartbeat, and a restarted registry actor reads the same overlay, so no replica is ever told
    to go back to older settings."""

    def __init__(self, actor: Any, context: ToolContext, metrics: Metrics) -> None:
        self.actor, self.context, self.metrics = actor, context, metrics
        self.version = 0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self.actor is not None and self._task is None:
            self._task = asyncio.create_task(self._loop(), name="nq-replica-sync")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None

    async def push(self) -> None:
        version, settings = await self.actor.sync.remote(
            self.metrics.replica, self.metrics.snapshot(), self.version
        )
        self.take(version, settings)

    def take(self, version: int, settings: Settings | None) -> None:
        if settings is not None and version > self.version:
            self.context.settings = settings
        self.version = max(self.version, version)

    async def _loop(self) -> None:
        while True:
            try:
                await self.push()
            except Exception as exc:  # the actor is restarting: try again next period
                log.debug("replica sync failed: %s", exc)
            await asyncio.sleep(SYNC_S)
