"""The order journal: a blocking facade over the async store, run on a private event-loop thread — the SQL
implementation of ``nq_ray.execution.paper.OrderJournal`` that the runtime gives the paper broker.

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

from nq_ray.execution.paper import Clock, PaperBroker
from nq_ray.execution.records import FillRecord, OrderEvent, OrderRecord, StoredState, UnitOfWork
from nq_ray.risk.limits import RiskLimits
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

    def list_orders(self, symbol: str | None = None) -> list[OrderRecord]:
        return self.run(self.repo.list_orders(symbol=symbol))

    def fills(self, *, symbol: str | None = None, session_date: str | None = None) -> list[FillRecord]:
        return self.run(self.repo.fills(symbol=symbol, session_date=session_date))

    def recent_order_times(self, since: datetime) -> list[datetime]:
        return self.run(self.repo.recent_order_times(since))

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self.run(self.repo.close())
        finally:
            self._loop.close()


def open_paper_broker(
    url: str,
    *,
    limits: RiskLimits | None = None,
    starting_balance_usd: float = 100_000.0,
    slippage_ticks: float = 1,
    commission_per_contract: float = 2.25,
    clock: Clock | None = None,
    **broker_kwargs: Any,
) -> PaperBroker:
    """A ``PaperBroker`` journaled to the store at ``url`` (migrated), its book rebuilt from it and the
    orders journaled but not yet accepted when the last process stopped settled."""
    return PaperBroker.open(
        Journal(url),
        limits=limits,
        starting_balance_usd=starting_balance_usd,
        slippage_ticks=slippage_ticks,
        commission_per_contract=commission_per_contract,
        clock=clock,
        **broker_kwargs,
    )
