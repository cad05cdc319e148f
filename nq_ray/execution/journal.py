"""The order journal: a blocking facade over the async store, run on a private event-loop thread.

Write-ahead: ``record_new`` commits the order row (status ``new``) before the broker acts on it, and
``commit`` writes a broker unit of work in one transaction. A restart reads everything back with
``load``. Safe to call from sync code and from code that already runs an event loop; one caller at
a time (the broker actor runs its methods one by one).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from datetime import datetime
from typing import Any, TypeVar

from nq_ray.store.records import OrderEvent, OrderRecord, StoredState, UnitOfWork
from nq_ray.store.repository import Repository

T = TypeVar("T")


class Journal:
    """One store connection for one broker (``url``: a ``sqlite+aiosqlite`` or ``postgresql+asyncpg`` URL)."""

    def __init__(self, url: str, *, migrate: bool = True) -> None:
        self._loop = asyncio.new_event_loop()
        self._closed = False
        try:
            self.repo: Repository = self.run(Repository.connect(url, migrate=migrate))
        except BaseException:
            self._loop.close()
            raise

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run a repository coroutine on the journal's own loop and wait for it: in this thread, or
        on a helper thread when this thread already runs another event loop. One caller at a time."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return self._loop.run_until_complete(coro)
        box: dict[str, Any] = {}

        def target() -> None:
            try:
                box["value"] = self._loop.run_until_complete(coro)
            except BaseException as exc:
                box["error"] = exc

        t = threading.Thread(target=target, name="nq-journal")
        t.start()
        t.join()
        if "error" in box:
            raise box["error"]
        return box["value"]

    def record_new(self, rec: OrderRecord, event: OrderEvent) -> tuple[OrderRecord, bool]:
        """Commit a new order before it is acted on; (stored order, created?)."""
        return self.run(self.repo.insert_order(rec, event))

    def commit(self, unit: UnitOfWork) -> None:
        self.run(self.repo.commit(unit))

    def get_order(self, client_order_id: str) -> OrderRecord | None:
        return self.run(self.repo.get_order(client_order_id))

    def load(self, *, session_date: str | None = None, since: datetime | None = None) -> StoredState:
        return self.run(self.repo.load_state(session_date=session_date, since=since))

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self.run(self.repo.close())
        finally:
            self._loop.close()
