"""Audit sinks for tool calls (``nq_ray.domain.audit.AuditRecord``): straight into the store's audit log,
or forwarded to the registry actor (which owns the store connection) in batches, so auditing adds no
latency to a Serve replica.

``ForwardingAuditor`` keeps records in a buffer and sends them in one actor call every ``flush_s``
(or as soon as ``batch`` are waiting): one Ray task per batch instead of one per tool call. A batch the
actor did not take (it was restarting) goes back to the front of the buffer and is sent again; only when
the buffer passes ``max_buffer`` are the oldest records dropped, and counted."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from nq_ray.domain.audit import AuditRecord
from nq_ray.ports import AuditLog

log = logging.getLogger(__name__)


class StoreAuditor:
    """Writes each call to ``audit_log`` through the store's ``Repository`` (connected on first use)."""

    def __init__(self, store_url: str) -> None:
        self.store_url = store_url
        self._repo: Any = None
        self._lock = asyncio.Lock()
        self.failures = 0

    async def _repository(self) -> Any:
        async with self._lock:
            if self._repo is None:
                from nq_ray.store.repository import Repository

                self._repo = await Repository.connect(self.store_url)
            return self._repo

    async def audit(self, record: AuditRecord) -> None:
        try:
            repo = await self._repository()
            await repo.audit(record)
        except Exception:  # an audit-store outage must not fail the trader's call; it is logged and counted
            self.failures += 1
            log.exception("could not write the audit log entry for tool %s", record.tool[:64])

    async def audit_many(self, records: list[AuditRecord]) -> int:
        """Write a batch of records in one transaction; the number written."""
        try:
            repo = await self._repository()
            return await repo.audit_many(records)
        except Exception:  # as for one record: logged and counted, never raised into a tool call
            self.failures += len(records)
            log.exception("could not write %d audit log entries", len(records))
            return 0

    async def recent(self, limit: int = 100) -> list[dict[str, Any]]:
        repo = await self._repository()
        return await repo.audit_log(limit=limit)

    async def close(self) -> None:
        if self._repo is not None:
            await self._repo.close()
            self._repo = None


class ForwardingAuditor:
    """Sends records in batches to an ``AuditLog`` — the ``tool_registry`` actor's ``audit_many`` through
    ``nq_ray.runtime.registry.RayAuditLog`` (see the module doc)."""

    def __init__(
        self, sink: AuditLog, *, flush_s: float = 0.25, batch: int = 200, max_buffer: int = 20_000
    ) -> None:
        self.sink = sink
        self.flush_s = flush_s
        self.batch = batch
        self.max_buffer = max_buffer
        self._buffer: list[AuditRecord] = []
        self._timer: asyncio.TimerHandle | None = None
        self._inflight: set[asyncio.Task[None]] = set()
        self.sent = 0
        self.dropped = 0

    async def audit(self, record: AuditRecord) -> None:
        self._buffer.append(record.bounded())
        if len(self._buffer) >= self.batch:
            self._flush()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self.flush_s, self._flush)

    def _flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._buffer:
            return
        records, self._buffer = self._buffer, []
        task = asyncio.get_running_loop().create_task(self._send(records))
        self._inflight.add(task)
        task.add_done_callback(self._inflight.discard)

    async def _send(self, records: list[AuditRecord]) -> None:
        try:
            await self.sink.audit_many(records)
            self.sent += len(records)
        except Exception as exc:  # the actor is restarting: keep the records and try again
            log.warning("audit batch of %d not delivered (%s); will retry", len(records), exc)
            self._buffer[:0] = records
            overflow = len(self._buffer) - self.max_buffer
            if overflow > 0:
                del self._buffer[:overflow]
                self.dropped += overflow
                log.error("audit buffer full: dropped the %d oldest records", overflow)
            if self._timer is None:
                self._timer = asyncio.get_running_loop().call_later(max(1.0, self.flush_s), self._flush)

    async def flush(self) -> None:
        """Send what is buffered and wait for every batch in flight (shutdown, tests)."""
        self._flush()
        if self._inflight:
            await asyncio.gather(*list(self._inflight), return_exceptions=True)
