"""Recovery of the journaled paper broker in-process: a restart rebuilds the same book, a replayed bar
changes nothing, and an order journaled just before a crash is settled exactly once."""

from __future__ import annotations

import tempfile

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nq_ray.backtest.kernel import R_STOP, R_TARGET, T_ENTRY_PX, T_EXIT_PX, T_PNL, T_REASON, simulate
from nq_ray.domain.orders import Bracket, Order, OrderStatus
from nq_ray.execution.broker import fills_by_symbol
from nq_ray.execution.paper import PaperBroker
from nq_ray.execution.records import OrderRecord
from nq_ray.risk.limits import RiskLimits
from nq_ray.runtime.journal import open_paper_broker
from tests.execution.helpers import BAR_MOVES, OPEN_LIMITS, bar, et, kernel_opts, ohlc_from_ticks

LIMITS = RiskLimits(max_orders_per_minute=None, max_margin_use_pct=None)


class Crash(BaseException):
    """Stands in for the process dying at the fault point."""


def _open(url: str) -> PaperBroker:
    return open_paper_broker(url, limits=LIMITS)


def test_restart_rebuilds_orders_positions_and_account(db_url: str) -> None:
    pb = _open(db_url)
    pb.on_bar("NQ", bar(et(10, 0), 20000, 20002, 19998, 20000))
    o = Order(side="buy", quantity=2, bracket=Bracket(stop_loss_ticks=20, take_profit_ticks=40))
    pb.submit(o, pb.check(o))
    w = Order(side="sell", quantity=1, order_type="limit", limit_price=20050.0)
    pb.submit(w, pb.check(w))
    pb.on_bar("NQ", bar(et(10, 5), 20000, 20003, 19999, 20002))
    before = (pb.portfolio(), sorted(r.client_order_id for r in pb.orders(open_only=True)))
    pb.close()

    again = _open(db_url)
    try:
        after = (again.portfolio(), sorted(r.client_order_id for r in again.orders(open_only=True)))
        replay = again.on_bar("NQ", bar(et(10, 5), 20000, 20003, 19999, 20002))
        fills = again.fills()
    finally:
        again.close()
    assert after == before
    assert replay == [] and len(fills) == 1
    assert fills_by_symbol(fills) == {"NQ": 2}


def test_order_journaled_before_a_crash_is_accepted_on_restart_and_filled_once(db_url: str) -> None:
    pb = _open(db_url)
    pb.on_bar("NQ", bar(et(10, 0), 20000, 20002, 19998, 20000))

    def crash(_rec: OrderRecord) -> None:
        raise Crash

    pb.after_journal = crash
    order = Order(side="buy", quantity=1, client_order_id="wal-1")
    with pytest.raises(Crash):
        pb.submit(order, pb.check(order))
    pb.close()

    again = _open(db_url)
    try:
        recovered = again.order("wal-1")
        retried = again.submit(order, again.check(order))  # the caller's retry
        again.on_bar("NQ", bar(et(10, 5), 20000, 20001, 19999, 20000))
        again.on_bar("NQ", bar(et(10, 5), 20000, 20001, 19999, 20000))
        fills, orders = again.fills(), again.orders()
    finally:
        again.close()
    assert recovered.status is OrderStatus.ACCEPTED and retried.client_order_id == "wal-1"
    assert len(orders) == 1 and len(fills) == 1


def test_daily_realised_pnl_survives_a_restart(db_url: str) -> None:
    """Long 1 @ 20000.25, out @ 19989.75 (market, −1 tick): −10.5 pts × $20 = −$210, −$4.50 commission."""
    pb = _open(db_url)
    pb.on_bar("NQ", bar(et(10, 0), 20000, 20002, 19998, 20000))
    for side, t, px in (("buy", et(10, 5), 20000.0), ("sell", et(10, 10), 19990.0)):
        o = Order(side=side, quantity=1)
        pb.submit(o, pb.check(o))
        pb.on_bar("NQ", bar(t, px, px + 1, px - 1, px))
    today = pb.book.account_state(et(10, 10)).realized_pnl_today_usd
    pb.close()
    again = _open(db_url)
    try:
        state = again.book.account_state(et(10, 10))
    finally:
        again.close()
    assert today == state.realized_pnl_today_usd == -214.5
    assert state.consecutive_losses == 1


@settings(max_examples=25, deadline=None)
@given(
    moves=st.lists(BAR_MOVES, min_size=3, max_size=3),
    side=st.sampled_from(["buy", "sell"]),
    sl_ticks=st.integers(1, 60),
    tp_ticks=st.integers(1, 60),
)
def test_paper_trades_equal_backtest_trades(
    moves: list[tuple[int, int, int, int]], side: str, sl_ticks: int, tp_ticks: int
) -> None:
    """The same bars and bracket through the paper broker and the backtest kernel: same entry, same exit
    (price and leg), same net P&L."""
    o, h, lo, c = ohlc_from_ticks(moves)
    s = 1 if side == "buy" else -1
    sig = np.zeros(3, dtype=np.bool_)
    sig[0] = True
    none = np.zeros(3, dtype=np.bool_)
    le, se = (sig, none) if s > 0 else (none, sig)
    _, _, trades, _, _ = simulate(
        o,
        h,
        lo,
        c,
        le,
        none,
        se,
        none,
        np.empty(0),
        np.empty(0),
        np.ones(3, dtype=np.bool_),
        none,
        kernel_opts(1.0, sl_ticks, tp_ticks, True),
    )
    with tempfile.TemporaryDirectory() as tmp:
        pb = open_paper_broker(f"sqlite+aiosqlite:///{tmp}/p.db", limits=RiskLimits(**OPEN_LIMITS))
        try:
            times = [et(10, 0), et(10, 5), et(10, 10)]
            pb.on_bar("NQ", bar(times[0], o[0], h[0], lo[0], c[0]))
            order = Order(
                side=side, quantity=1, bracket=Bracket(stop_loss_ticks=sl_ticks, take_profit_ticks=tp_ticks)
            )
            pb.submit(order, pb.check(order))
            for i in (1, 2):
                pb.on_bar("NQ", bar(times[i], o[i], h[i], lo[i], c[i]))
            fills = [f.fill for f in pb.fills()]
            net = pb.portfolio()["positions"]["NQ"]["net_pnl_usd"]
        finally:
            pb.close()
    assert fills[0].price == trades[0, T_ENTRY_PX]
    if int(trades[0, T_REASON]) in (R_STOP, R_TARGET):
        leg = ".sl" if int(trades[0, T_REASON]) == R_STOP else ".tp"
        assert (fills[1].price, fills[1].client_order_id) == (
            trades[0, T_EXIT_PX],
            order.client_order_id + leg,
        )
        assert net == pytest.approx(trades[0, T_PNL])
    else:
        assert len(fills) == 1  # the kernel closes at the end of the data; the broker stays open


def test_a_failed_commit_changes_nothing_and_the_bar_can_be_retried(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    pb = _open(db_url)
    try:
        pb.on_bar("NQ", bar(et(10, 0), 20000, 20002, 19998, 20000))
        o = Order(side="buy", quantity=1)
        pb.submit(o, pb.check(o))
        real = pb.journal.commit

        def broken(unit: object) -> None:
            raise ConnectionError("database went away")

        monkeypatch.setattr(pb.journal, "commit", broken)
        with pytest.raises(ConnectionError):
            pb.on_bar("NQ", bar(et(10, 5), 20000, 20001, 19999, 20000))
        unchanged = (pb.book.positions(), pb.book.market_time(), pb.order(o.client_order_id).status)
        monkeypatch.setattr(pb.journal, "commit", real)
        fills = pb.on_bar("NQ", bar(et(10, 5), 20000, 20001, 19999, 20000))
    finally:
        pb.close()
    assert unchanged == ({}, et(10, 0), OrderStatus.ACCEPTED)
    assert len(fills) == 1


# ---- client order ids as a venue treats them --------------------------------------------------------

FIRST = {"side": "buy", "quantity": 1, "order_type": "limit", "limit_price": 19990.0}
DIFFERENT = {  # the first order with one thing changed → what differs
    "side": ({"side": "sell"}, "side"),
    "quantity": ({"quantity": 7}, "quantity"),
    "type": ({"order_type": "stop", "limit_price": None, "stop_price": 20010.0}, "order_type"),
    "price": ({"limit_price": 19980.0}, "limit_price"),
    "time in force": ({"time_in_force": "gtc"}, "time_in_force"),
    "bracket": ({"bracket": Bracket(stop_loss_ticks=20)}, "bracket"),
    "symbol": ({"symbol": "MNQ"}, "symbol"),
}


def _events(pb: PaperBroker, coid: str) -> list[str]:
    return [e.event for e in pb.journal.run(pb.journal.repo.order_events(coid))]


def test_the_same_order_again_is_the_first_marked_duplicate_and_not_stored_so(db_url: str) -> None:
    pb = _open(db_url)
    try:
        pb.on_bar("NQ", bar(et(10, 0), 20000, 20002, 19998, 20000))
        order = Order(**FIRST, client_order_id="same-1")
        first = pb.submit(order, pb.check(order))
        again = pb.submit(Order(**FIRST, client_order_id="same-1"), pb.check(order))
        stored, events = pb.order("same-1"), _events(pb, "same-1")
    finally:
        pb.close()
    assert not first.duplicate and again.duplicate
    assert again.model_dump() == first.model_dump()  # the same record; the mark is not in its JSON
    assert not stored.duplicate and events == ["new", "accepted"]


@pytest.mark.parametrize("change", DIFFERENT.values(), ids=DIFFERENT.keys())
def test_the_same_id_for_a_different_order_is_refused_and_changes_nothing(
    db_url: str, change: tuple[dict, str]
) -> None:
    from nq_ray.errors import DuplicateClientOrderIdError

    update, field = change
    pb = _open(db_url)
    try:
        pb.on_bar("NQ", bar(et(10, 0), 20000, 20002, 19998, 20000))
        pb.on_bar("MNQ", bar(et(10, 0), 20000, 20002, 19998, 20000))
        order = Order(**FIRST, client_order_id="id-1")
        first = pb.submit(order, pb.check(order))
        before = (pb.portfolio(), pb.orders(), _events(pb, "id-1"))
        other = Order(**(FIRST | update), client_order_id="id-1")
        with pytest.raises(DuplicateClientOrderIdError) as info:
            pb.submit(other, pb.check(other))
        after = (pb.portfolio(), pb.orders(), _events(pb, "id-1"))
    finally:
        pb.close()
    err = info.value
    assert (err.code, err.http_status) == ("duplicate_client_order_id", 409)
    assert field in err.details["differs"] and "'id-1'" in err.message
    assert after == before and pb.book.get("id-1") == first


def test_a_retry_after_a_restart_is_still_the_same_order_and_a_changed_one_still_refused(
    db_url: str,
) -> None:
    """What Ray's ``max_task_retries`` does after a broker actor restart: the call again, on a new book."""
    from nq_ray.errors import DuplicateClientOrderIdError

    pb = _open(db_url)
    pb.on_bar("NQ", bar(et(10, 0), 20000, 20002, 19998, 20000))
    order = Order(**FIRST, client_order_id="r-1")
    pb.submit(order, pb.check(order))
    pb.close()
    again = _open(db_url)
    try:
        replayed = again.submit(order, again.check(order))
        with pytest.raises(DuplicateClientOrderIdError):
            again.submit(Order(**(FIRST | {"quantity": 2}), client_order_id="r-1"), None)
        orders = again.orders()
    finally:
        again.close()
    assert replayed.duplicate and replayed.status is OrderStatus.ACCEPTED and len(orders) == 1


def test_the_brokers_own_orders_do_not_trip_the_id_check(db_url: str) -> None:
    """Bracket legs get ``<id>.sl``/``<id>.tp``; a retried flatten-all re-derives its closing orders."""
    pb = _open(db_url)
    try:
        pb.on_bar("NQ", bar(et(10, 0), 20000, 20002, 19998, 20000))
        entry = Order(side="buy", quantity=2, bracket=Bracket(stop_loss_ticks=20), client_order_id="b-1")
        pb.submit(entry, pb.check(entry))
        pb.on_bar("NQ", bar(et(10, 5), 20000, 20003, 19999, 20002))
        request = {"action": "flatten_all", "client_order_id": "k-1"}
        first = pb.manage_position(request)
        retried = pb.manage_position(request)
        pb.on_bar("NQ", bar(et(10, 10), 20002, 20004, 20000, 20003))
        position, leg = pb.portfolio()["positions"]["NQ"]["quantity"], pb.order("b-1.sl")
    finally:
        pb.close()
    assert [r.client_order_id for r in first] == [r.client_order_id for r in retried] == ["k-1.NQ"]
    assert position == 0 and leg.status is OrderStatus.CANCELLED
