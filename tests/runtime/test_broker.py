"""``BrokerActor`` on a real Ray instance: round trips, typed errors, and kill-and-restart for real.

Each test uses its own actor name (namespace ``nq_test``) and database, and kills the detached actor
with ``no_restart=True`` in teardown.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from nq_ray.config import Settings
from nq_ray.domain.orders import Bracket, Order, OrderStatus
from nq_ray.errors import InvalidOrderError, NotFoundError
from nq_ray.execution.broker import fills_by_symbol
from nq_ray.runtime.broker import get_or_create_broker
from tests.execution.helpers import OPEN_LIMITS, bar, et


@pytest.fixture
def make_actor(ray_session: Any, db_url: str, tmp_path: Path) -> Iterator[Callable[[], Any]]:
    ray = ray_session
    handles: list[Any] = []
    name = f"paper_broker_{uuid.uuid4().hex[:8]}"
    settings = Settings(store={"url": db_url}, data={"data_dir": str(tmp_path)}, risk={"limits": OPEN_LIMITS})

    def make() -> Any:
        h = get_or_create_broker(settings, name=name, namespace="nq_test", clock="bar")
        handles.append(h)
        return h

    yield make
    for h in handles:
        ray.kill(h, no_restart=True)


def _restart(ray: Any, h: Any, timeout_s: float = 60.0) -> dict[str, Any]:
    before = ray.get(h.ready.remote())
    ray.kill(h, no_restart=False)
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            info = ray.get(h.ready.remote(), timeout=timeout_s)
            if info["pid"] != before["pid"]:
                return info
        except Exception:
            if time.monotonic() > deadline:
                raise
        time.sleep(0.2)


def _consistent(ray: Any, h: Any) -> tuple[list[Any], list[Any]]:
    orders, fills = ray.get([h.orders.remote(), h.fills.remote()])
    positions = {
        s: r["quantity"] for s, r in ray.get(h.portfolio.remote())["positions"].items() if r["quantity"]
    }
    assert len({o.client_order_id for o in orders}) == len(orders)  # every order exactly once
    assert len({f.fill.fill_id for f in fills}) == len(fills)  # no fill twice
    assert positions == {s: q for s, q in fills_by_symbol(fills).items() if q}  # positions = Σ fills
    return orders, fills


def test_actor_places_fills_and_reports_typed_errors(ray_session: Any, make_actor: Callable[[], Any]) -> None:
    ray, h = ray_session, make_actor()
    ray.get(h.on_bar.remote("NQ", bar(et(10, 0), 20000, 20002, 19998, 20000)))
    rec = ray.get(h.place_order.remote(Order(side="buy", quantity=1, bracket=Bracket(stop_loss_ticks=20))))
    (fill,) = ray.get(h.on_bar.remote("NQ", bar(et(10, 5), 20000, 20001, 19999, 20000)))
    assert rec.status is OrderStatus.ACCEPTED and fill.price == 20000.25
    with pytest.raises(NotFoundError, match="unknown order id"):
        ray.get(h.cancel_order.remote("missing"))
    with pytest.raises(InvalidOrderError, match="tick"):
        ray.get(
            h.place_order.remote({"side": "buy", "quantity": 1, "order_type": "limit", "limit_price": 1.1})
        )


def test_kill_after_journal_before_fill_keeps_the_order_and_fills_it_once(
    ray_session: Any, make_actor: Callable[[], Any]
) -> None:
    ray, h = ray_session, make_actor()
    ray.get(h.on_bar.remote("NQ", bar(et(10, 0), 20000, 20002, 19998, 20000)))
    order = Order(side="buy", quantity=2, client_order_id="k-1", bracket=Bracket(stop_loss_ticks=20))
    ray.get(h.place_order.remote(order))
    info = _restart(ray, h)
    again = ray.get(h.place_order.remote(order))  # a client retry after the restart
    ray.get(h.on_bar.remote("NQ", bar(et(10, 5), 20000, 20001, 19999, 20000)))
    ray.get(h.on_bar.remote("NQ", bar(et(10, 5), 20000, 20001, 19999, 20000)))  # replayed bar
    orders, fills = _consistent(ray, h)
    assert info["open_orders"] == 1 and again.status is OrderStatus.ACCEPTED
    assert [o.client_order_id for o in orders] == ["k-1", "k-1.sl"]
    assert len(fills) == 1


def test_crash_between_journal_and_accept_is_settled_on_restart(
    ray_session: Any, make_actor: Callable[[], Any]
) -> None:
    """The process dies right after the order row commits; Ray retries the call on the new actor."""
    ray, h = ray_session, make_actor()
    ray.get(h.on_bar.remote("NQ", bar(et(10, 0), 20000, 20002, 19998, 20000)))
    ray.get(h.crash_after_journal.remote())
    rec = ray.get(h.place_order.remote(Order(side="sell", quantity=1, client_order_id="c-1")), timeout=120)
    ray.get(h.on_bar.remote("NQ", bar(et(10, 5), 20000, 20001, 19999, 20000)))
    orders, fills = _consistent(ray, h)
    assert rec.status is OrderStatus.ACCEPTED
    assert len(orders) == 1 and len(fills) == 1


def test_kill_in_the_middle_of_a_burst_loses_and_duplicates_nothing(
    ray_session: Any, make_actor: Callable[[], Any]
) -> None:
    ray, h = ray_session, make_actor()
    ray.get(h.on_bar.remote("NQ", bar(et(10, 0), 20000, 20002, 19998, 20000)))
    pid = ray.get(h.ready.remote())["pid"]
    n_callers, per_caller = 8, 20
    done = threading.Event()
    sent = [0]

    def caller(k: int) -> list[str]:
        ids = []
        for i in range(per_caller):
            side = "buy" if (k + i) % 2 == 0 else "sell"
            o = Order(side=side, quantity=1 + i % 2, client_order_id=f"b{k}-{i}")
            ray.get(h.place_order.remote(o), timeout=120)
            ids.append(o.client_order_id)
            sent[0] += 1
        return ids

    def killer() -> None:
        while sent[0] < n_callers * per_caller // 3 and not done.is_set():
            time.sleep(0.01)
        ray.kill(h, no_restart=False)

    t = threading.Thread(target=killer)
    t.start()
    with ThreadPoolExecutor(n_callers) as pool:
        ids = [i for chunk in pool.map(caller, range(n_callers)) for i in chunk]
    done.set()
    t.join()
    ray.get(h.on_bar.remote("NQ", bar(et(10, 5), 20000, 20001, 19999, 20000)))
    orders, fills = _consistent(ray, h)
    assert ray.get(h.ready.remote())["pid"] != pid  # it really was killed and restarted
    assert sorted(o.client_order_id for o in orders) == sorted(ids)
    assert all(o.status is OrderStatus.FILLED for o in orders)
    assert len(fills) == n_callers * per_caller


# ---- live settings and halts survive a restart (issue #17) -----------------------------------------


@pytest.fixture
def live_pair(ray_session: Any, db_url: str, tmp_path: Path) -> Iterator[tuple[Any, Any]]:
    """A broker actor (bar clock, limit 5 per symbol) and a registry actor whose tools reach it."""
    from nq_ray.runtime.registry import get_or_create_registry

    ray = ray_session
    suffix = uuid.uuid4().hex[:8]
    limits = {**OPEN_LIMITS, "max_contracts_per_symbol": 5}
    settings = Settings(store={"url": db_url}, data={"data_dir": str(tmp_path)}, risk={"limits": limits})
    broker = get_or_create_broker(settings, name=f"paper_broker_{suffix}", namespace="nq", clock="bar")
    registry = get_or_create_registry(
        settings, name=f"tool_registry_{suffix}", broker_name=f"paper_broker_{suffix}"
    )
    yield broker, registry
    for h in (registry, broker):
        ray.kill(h, no_restart=True)


def test_limit_patched_live_holds_after_the_broker_restarts(
    ray_session: Any, live_pair: tuple[Any, Any]
) -> None:
    """PATCH /api/config's path (the registry's ``update_settings``) lowers the limit to 1; the broker is
    killed and Ray restarts it with the settings it was created with (limit 5). Holding 1 NQ, a buy of 3
    is refused by the limit in force (1), and the verdict names that limit and the settings version."""
    ray, (h, registry) = ray_session, live_pair
    ray.get(h.on_bar.remote("NQ", bar(et(10, 0), 20000, 20002, 19998, 20000)))
    ray.get(h.place_order.remote(Order(side="buy", quantity=1, client_order_id="l-1")))
    ray.get(h.on_bar.remote("NQ", bar(et(10, 5), 20000, 20001, 19999, 20000)))  # fills: long 1
    out = ray.get(
        registry.update_settings.remote({"risk": {"limits": {"max_contracts_per_symbol": 1}}}, "test")
    )
    _restart(ray, h)
    rec = ray.get(h.place_order.remote(Order(side="buy", quantity=3, client_order_id="l-2")))
    tool = ray.get(registry.call.remote("check_risk_limits", {"contracts": 3}, "test"))
    version, shown = ray.get(registry.settings.remote())
    assert out["version"] == version == 1 and shown.risk.limits.max_contracts_per_symbol == 1
    assert rec.status is OrderStatus.REJECTED
    assert [r.code for r in rec.reasons] == ["max_contracts_per_symbol"]
    assert rec.verdict.limits.max_contracts_per_symbol == 1 and rec.verdict.settings_version == 1
    assert tool["limits"]["max_contracts_per_symbol"] == 1 and tool["settings_version"] == 1
    assert tool["verdict"]["approved"] is False


def _set_halt(url: str, halted: bool, reason: str | None = None) -> None:
    """Write the desk's persisted halt, as ``DeskService.kill`` / ``resume`` do."""
    import asyncio
    from datetime import UTC, datetime

    from nq_ray.store.desk import DeskStore
    from nq_ray.store.repository import Repository

    async def go() -> None:
        repo = await Repository.connect(url)
        try:
            state = {"halted": halted, "halt_reason": reason, "halted_by": "test" if halted else None}
            await DeskStore(repo).set_state("desk", state, at=datetime.now(UTC))
        finally:
            await repo.close()

    asyncio.run(go())


def test_a_halt_in_the_store_refuses_entries_before_and_after_a_restart(
    ray_session: Any, make_actor: Callable[[], Any], db_url: str
) -> None:
    """The desk's kill switch is its persisted state: the running broker refuses the next entry (no push
    needed), a restarted broker still does, exits pass, and ``resume`` lets entries through again."""
    ray, h = ray_session, make_actor()
    ray.get(h.on_bar.remote("NQ", bar(et(10, 0), 20000, 20002, 19998, 20000)))
    ray.get(h.place_order.remote(Order(side="buy", quantity=2, client_order_id="h-1")))
    ray.get(h.on_bar.remote("NQ", bar(et(10, 5), 20000, 20001, 19999, 20000)))  # long 2
    _set_halt(db_url, True, "kill switch: test")
    entry = ray.get(h.place_order.remote(Order(side="buy", quantity=1, client_order_id="h-2")))
    _restart(ray, h)
    again = ray.get(h.place_order.remote(Order(side="buy", quantity=1, client_order_id="h-3")))
    exit_ = ray.get(h.place_order.remote(Order(side="sell", quantity=1, client_order_id="h-4")))
    _set_halt(db_url, False)
    resumed = ray.get(h.place_order.remote(Order(side="buy", quantity=1, client_order_id="h-5")))
    assert entry.status is again.status is OrderStatus.REJECTED
    assert [r.code for r in entry.reasons] == [r.code for r in again.reasons] == ["halted"]
    assert exit_.status is OrderStatus.ACCEPTED and resumed.status is OrderStatus.ACCEPTED
    assert ray.get(h.live.remote())["halt"]["halted"] is False
