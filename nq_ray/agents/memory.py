"""What an agent keeps between tasks: its memory (``MemoryManager``, the ``memories`` table) and its LLM
usage per UTC day (``UsageBook``, the ``agent_usage`` table, read against the agent's budget); both work
in process when no store is given."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from nq_ray.errors import InvalidArgumentError

if TYPE_CHECKING:
    from nq_ray.store.desk import DeskStore
    from nq_ray.store.repository import Repository


def _utc_now() -> datetime:
    return datetime.now(UTC)


class MemoryManager:
    """The seed's agent memory, store-backed (``memories`` table) or in process when no store is given.
    ``value`` may be text or JSON-able data; it comes back as ``value``."""

    def __init__(self, repo: Repository | None = None, *, clock: Callable[[], datetime] = _utc_now) -> None:
        self.repo = repo
        self.clock = clock
        self._local: list[dict[str, Any]] = []

    @staticmethod
    def _row(at: Any, mid: int, kind: str, content: str, meta: Any) -> dict[str, Any]:
        value = meta["value"] if isinstance(meta, dict) and "value" in meta else content
        return {
            "id": mid,
            "at": at.isoformat() if isinstance(at, datetime) else at,
            "kind": kind,
            "value": value,
        }

    async def store_memory(self, agent_id: str, kind: str, value: Any) -> int:
        if not isinstance(kind, str) or not kind or len(kind) > 32:
            raise InvalidArgumentError("memory kind must be a non-empty string of at most 32 characters")
        content = value if isinstance(value, str) else json.dumps(value, default=str, sort_keys=True)
        meta = None if isinstance(value, str) else {"value": value}
        at = self.clock()
        if self.repo is None:
            mid = len(self._local) + 1
            self._local.append(
                {"id": mid, "at": at, "agent": agent_id, "kind": kind, "content": content, "meta": meta}
            )
            return mid
        return await self.repo.add_memory(at=at, agent=agent_id, kind=kind, content=content, meta=meta)

    async def recent(self, agent_id: str, n: int = 10, kind: str | None = None) -> list[dict[str, Any]]:
        """The ``n`` newest memories of ``agent_id`` (optionally of one kind), newest first."""
        if not isinstance(n, int) or n < 0 or n > 1000:
            raise InvalidArgumentError("n must be an integer between 0 and 1000", n=n)
        if n == 0:
            return []
        if self.repo is None:
            rows = [r for r in self._local if r["agent"] == agent_id and kind in (None, r["kind"])]
            rows = rows[::-1][:n]
        else:
            rows = await self.repo.memories(agent_id, kind=kind, limit=n)
        return [self._row(r["at"], r["id"], r["kind"], r["content"], r["meta"]) for r in rows]

    async def get_memory(self, agent_id: str, kind: str, days: int = 7) -> list[dict[str, Any]]:
        """``agent_id``'s memories of ``kind`` from the last ``days`` days, newest first."""
        if not isinstance(days, int | float) or days <= 0:
            raise InvalidArgumentError("days must be > 0", days=days)
        since = self.clock() - timedelta(days=days)
        if self.repo is None:
            rows = [
                r for r in self._local if r["agent"] == agent_id and r["kind"] == kind and r["at"] >= since
            ][::-1]
            return [self._row(r["at"], r["id"], r["kind"], r["content"], r["meta"]) for r in rows]
        from nq_ray.store.desk import DeskStore

        rows = await DeskStore(self.repo).memories_since(agent_id, since, kind=kind)
        return [self._row(r["at"], r["id"], r["kind"], r["content"], r["meta"]) for r in rows]


class UsageBook:
    """Per-agent LLM usage per UTC day: in the store (``agent_usage``) so a restart keeps the day's count,
    or in process when no store is given."""

    def __init__(self, store: DeskStore | None = None, *, clock: Callable[[], datetime] = _utc_now) -> None:
        self.store = store
        self.clock = clock
        self._local: dict[tuple[str, str], tuple[int, float]] = {}

    def day(self) -> str:
        return self.clock().astimezone(UTC).date().isoformat()

    async def used(self, agent_id: str) -> tuple[int, float]:
        day = self.day()
        if self.store is None:
            return self._local.get((agent_id, day), (0, 0.0))
        return await self.store.usage(agent_id, day)

    async def add(self, agent_id: str, tokens: int, usd: float) -> None:
        if tokens <= 0 and usd <= 0:
            return
        day = self.day()
        if self.store is None:
            t, u = self._local.get((agent_id, day), (0, 0.0))
            self._local[(agent_id, day)] = (t + tokens, u + usd)
            return
        await self.store.add_usage(agent_id, day, tokens, usd)
