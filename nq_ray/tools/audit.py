"""Audit sinks for tool calls: straight into the store's audit log, or forwarded to the registry actor
(which owns the store connection) without waiting, so auditing adds no latency to a Serve replica."""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import datetime
from typing import Any

log = logging.getLogger(__name__)

MAX_ARGUMENTS_BYTES = 8192


def _bounded(arguments: dict[str, Any] | None) -> dict[str, Any] | None:
    """The arguments, or a stub naming their keys when they are too large to store."""
    if arguments is None:
        return None
    try:
        text = json.dumps(arguments, default=str)
    except (TypeError, ValueError):
        return {"_unserialisable": True, "keys": [str(k)[:64] for k in list(arguments)[:50]]}
    if len(text) > MAX_ARGUMENTS_BYTES:
        return {"_truncated": True, "bytes": len(text), "keys": [str(k)[:64] for k in list(arguments)[:50]]}
    return arguments


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

    async def audit(
        self,
        *,
        at: datetime,
        who: str,
        tool: str,
        arguments: dict[str, Any] | None,
        outcome: str,
        error_code: str | None,
        duration_ms: float,
    ) -> None:
        try:
            repo = await self._repository()
            await repo.audit(
                at=at,
                who=who[:64],
                tool=tool[:64],
                arguments=_bounded(arguments),
                outcome=outcome[:16],
                error_code=error_code[:64] if error_code else None,
                duration_ms=duration_ms,
            )
        except Exception:  # an audit-store outage must not fail the trader's call; it is logged and counted
            self.failures += 1
            log.exception("could not write the audit log entry for tool %s", tool[:64])

    async def recent(self, limit: int = 100) -> list[dict[str, Any]]:
        repo = await self._repository()
        return await repo.audit_log(limit=limit)

    async def close(self) -> None:
        if self._repo is not None:
            await self._repo.close()
            self._repo = None


class ForwardingAuditor:
    """Sends each record to the ``tool_registry`` actor's ``audit`` method (fire and forget)."""

    def __init__(self, actor: Any) -> None:
        self.actor = actor

    async def audit(self, **record: Any) -> None:
        record["arguments"] = _bounded(record.get("arguments"))
        self.actor.audit.remote(**record)
