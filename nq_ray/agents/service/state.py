"""The state every part of the desk shares: settings and collaborators, the persisted desk state (halted or
not and why, approval mode, the loop's symbols/cadence/windows and whether it runs) and the event ring.

The parts (``registry``, ``loop``, ``halts``, ``approvals``, ``decisions``) each hold one ``DeskCore``;
``DeskService`` builds it and fills in the store-backed collaborators in ``ensure``."""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from nq_ray.config import Settings
from nq_ray.errors import InvalidArgumentError
from nq_ray.store.live import DESK_STATE_KEY

if TYPE_CHECKING:
    from nq_ray.agents.agents import Tools, UsageBook
    from nq_ray.agents.service.registry import AgentHost
    from nq_ray.llm.router import LLMRouter
    from nq_ray.store.desk import DeskStore
    from nq_ray.store.repository import Repository

log = logging.getLogger("nq_ray.agents.service")

Publish = Callable[[str, dict[str, Any]], Awaitable[None]]
STATE_KEY = DESK_STATE_KEY  # the paper broker reads the halt from this row (``nq_ray.store.live``)


def _utc_now() -> datetime:
    return datetime.now(UTC)


class DeskCore:
    """Collaborators, persisted state and events of one desk (one ``DeskService``)."""

    store: DeskStore
    usage: UsageBook

    def __init__(
        self,
        settings: Settings,
        *,
        repo: Repository | None,
        tools: Tools | None,
        router: LLMRouter | None,
        host: AgentHost | None,
        publish: Publish | None,
        clock: Callable[[], datetime],
        sleep: Callable[[float], Awaitable[None]],
        approval_ttl_s: float,
        defaults: dict[str, Any],
    ) -> None:
        self.settings = settings
        self.repo = repo
        self.own_repo = repo is None
        self.tools = tools
        self.router = router
        self.host = host
        self.publish = publish
        self.clock = clock
        self.sleep = sleep
        self.approval_ttl_s = approval_ttl_s
        self.defaults = defaults
        self.state: dict[str, Any] = {}
        self.events: deque[dict[str, Any]] = deque(maxlen=500)
        self.seq = 0

    async def save(self) -> None:
        await self.store.set_state(STATE_KEY, dict(self.state), at=self.clock())

    async def emit(self, kind: str, data: dict[str, Any]) -> None:
        self.seq += 1
        event = {"seq": self.seq, "kind": kind, "at": self.clock().isoformat(), **data}
        self.events.append(event)
        if self.publish is not None:
            try:
                await self.publish("agent_update", event)
            except Exception as exc:  # an event bus outage never stops the desk
                log.warning("desk: publishing %s failed: %s", kind, exc)

    async def events_since(self, seq: int = 0) -> list[dict[str, Any]]:
        """The buffered ``agent_update`` events after ``seq`` (the last 500 are kept)."""
        return [e for e in self.events if e["seq"] > seq]


def check_limit(limit: int) -> None:
    if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= 1000:
        raise InvalidArgumentError("limit must be an integer between 1 and 1000", limit=limit)
