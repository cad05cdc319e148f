"""``BrokerActor``: the paper broker as a named, detached, restartable Ray actor (a thin shell).

Named ``paper_broker`` in namespace ``nq``, ``lifetime="detached"``, ``max_restarts=-1``: a restart
re-runs ``__init__``, which rebuilds open orders, positions and the account from the store. Every
method is idempotent (client order ids, bar times, cancel of a cancelled order), so ``max_task_retries``
can replay a call that was in flight when the actor died without doing anything twice. Methods run
one at a time (a sync actor), which serialises the book.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import pandas as pd
import ray

from nq_ray.domain.bars import Bar
from nq_ray.domain.orders import Fill, Order
from nq_ray.execution.broker import ManagePosition
from nq_ray.execution.paper import PaperBroker
from nq_ray.risk.gate import RiskVerdict
from nq_ray.store.records import FillRecord, OrderRecord

ACTOR_NAME = "paper_broker"
NAMESPACE = "nq"
MAX_TASK_RETRIES = 5


def _wall_clock() -> datetime:
    return datetime.now(UTC)


@ray.remote(num_cpus=0)
class BrokerActor:
    """Remote face of ``PaperBroker``; ``clock="wall"`` (default) or ``"bar"`` (the latest bar's time,
    for replays and tests)."""

    def __init__(
        self, settings: Any, clock: str = "wall", broker_kwargs: dict[str, Any] | None = None
    ) -> None:
        self._svc = PaperBroker.from_settings(
            settings, clock=_wall_clock if clock == "wall" else None, **(broker_kwargs or {})
        )

    def ready(self) -> dict[str, Any]:
        """Liveness plus what was recovered: open orders and the process id (changes on a restart)."""
        return {"pid": os.getpid(), "open_orders": len(self._svc.book.open_orders())}

    def check_order(self, order: Order | Mapping[str, Any]) -> RiskVerdict:
        return self._svc.check(order)

    def submit_order(
        self,
        order: Order | Mapping[str, Any],
        verdict: RiskVerdict | Mapping[str, Any] | None,
        source: str | None = None,
    ) -> OrderRecord:
        return self._svc.submit(order, verdict, source=source)

    def place_order(self, order: Order | Mapping[str, Any], source: str | None = None) -> OrderRecord:
        """Check with the gate, then submit with that verdict (one round trip for callers)."""
        return self._svc.submit(order, self._svc.check(order), source=source)

    def cancel_order(self, client_order_id: str) -> OrderRecord:
        return self._svc.cancel(client_order_id)

    def manage_position(self, request: ManagePosition | Mapping[str, Any]) -> list[OrderRecord]:
        return self._svc.manage_position(request)

    def on_bar(self, symbol: str, bar: Bar | Mapping[str, Any]) -> list[Fill]:
        return self._svc.on_bar(symbol, bar)

    def on_price(self, symbol: str, price: float, time: datetime) -> list[Fill]:
        return self._svc.on_price(symbol, price, time)

    def process_bars(self, symbol: str, frame: pd.DataFrame) -> list[Fill]:
        return self._svc.process_bars(symbol, frame)

    def order(self, client_order_id: str) -> OrderRecord:
        return self._svc.order(client_order_id)

    def orders(self, open_only: bool = False, symbol: str | None = None) -> list[OrderRecord]:
        return self._svc.orders(open_only=open_only, symbol=symbol)

    def fills(self, symbol: str | None = None) -> list[FillRecord]:
        return self._svc.fills(symbol)

    def portfolio(self) -> dict[str, Any]:
        return self._svc.portfolio()

    def crash_after_journal(self) -> None:
        """Fault injection for tests: the next new order kills this process right after its journal
        row is committed and before the broker acts on it."""

        def die(_rec: OrderRecord) -> None:
            os._exit(1)

        self._svc.after_journal = die


def get_or_create_broker(
    settings: Any,
    *,
    name: str = ACTOR_NAME,
    namespace: str = NAMESPACE,
    clock: str = "wall",
    max_task_retries: int = MAX_TASK_RETRIES,
    broker_kwargs: dict[str, Any] | None = None,
) -> Any:
    """The handle of the named broker actor, created (detached, restartable) when it does not exist."""
    return BrokerActor.options(  # type: ignore[attr-defined]
        name=name,
        namespace=namespace,
        lifetime="detached",
        get_if_exists=True,
        max_restarts=-1,
        max_task_retries=max_task_retries,
    ).remote(settings, clock, broker_kwargs)
