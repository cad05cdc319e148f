"""The paper broker service: the pure ``Broker`` book plus its ``OrderJournal``, in write-ahead order.

Every change goes: compute (``Broker``) → commit (``Journal``) → apply (``Broker``), so a crash at any
point leaves the store consistent and a restart (``PaperBroker.open``) rebuilds the same book. Methods
are idempotent: a repeated order (same client order id, same order) returns the first one marked
``duplicate``, a replayed bar is ignored, a repeated cancel returns the cancelled order. A client order id
reused for a different order is refused (``duplicate_client_order_id``), as a venue refuses it. Not
thread-safe: one caller at a time (the actor).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any, Protocol

import pandas as pd

from nq_ray.config import COMMISSION_PER_CONTRACT_USD, SLIPPAGE_TICKS
from nq_ray.domain.bars import Bar
from nq_ray.domain.contracts import get_contract, normalize_symbol
from nq_ray.domain.orders import Fill, Order, OrderStatus
from nq_ray.errors import DuplicateClientOrderIdError, InvalidArgumentError, InvalidOrderError, NotFoundError
from nq_ray.execution.broker import (
    Broker,
    ManagePosition,
    PositionAction,
    order_differences,
    parse_order,
)
from nq_ray.execution.records import FillRecord, OrderEvent, OrderRecord, OrderRole, StoredState, UnitOfWork
from nq_ray.market.sessions import session_date
from nq_ray.risk.gate import RiskVerdict
from nq_ray.risk.limits import RiskLimits

Clock = Callable[[], datetime]


class OrderJournal(Protocol):
    """Where the paper broker writes ahead: the runtime gives it the store's (``nq_ray.runtime.journal``).
    Blocking calls, one caller at a time."""

    def record_new(self, rec: OrderRecord, event: OrderEvent) -> tuple[OrderRecord, bool]:
        """Commit a new order before it is acted on; (stored order, created?)."""
        ...

    def commit(self, unit: UnitOfWork) -> None: ...

    def get_order(self, client_order_id: str) -> OrderRecord | None: ...

    def load(self, *, session_date: str | None = None, since: datetime | None = None) -> StoredState: ...

    def list_orders(self, symbol: str | None = None) -> list[OrderRecord]: ...

    def fills(self, *, symbol: str | None = None, session_date: str | None = None) -> list[FillRecord]: ...

    def recent_order_times(self, since: datetime) -> list[datetime]: ...

    def close(self) -> None: ...


class PaperBroker:
    """Paper execution of one account against pushed market data, journaled to the store."""

    def __init__(self, journal: OrderJournal, broker: Broker, *, clock: Clock | None = None) -> None:
        self.journal = journal
        self.book = broker
        self.clock = clock
        self.after_journal: Callable[[OrderRecord], None] | None = None  # fault-injection point (tests)

    @classmethod
    def open(
        cls,
        journal: OrderJournal,
        *,
        limits: RiskLimits | None = None,
        starting_balance_usd: float = 100_000.0,
        slippage_ticks: float = SLIPPAGE_TICKS,
        commission_per_contract: float = COMMISSION_PER_CONTRACT_USD,
        clock: Clock | None = None,
        **broker_kwargs: Any,
    ) -> PaperBroker:
        """A broker over ``journal``: the book rebuilt from it and the orders that were journaled but
        not yet accepted when the last process stopped settled (the journal is closed on failure).
        ``nq_ray.runtime.journal.open_paper_broker`` opens one on a store URL."""
        book = Broker(
            limits=limits,
            starting_balance_usd=starting_balance_usd,
            slippage_ticks=slippage_ticks,
            commission_per_contract=commission_per_contract,
            **broker_kwargs,
        )
        svc = cls(journal, book, clock=clock)
        try:
            svc.recover()
        except BaseException:
            journal.close()
            raise
        return svc

    def close(self) -> None:
        self.journal.close()

    # ---- recovery ---------------------------------------------------------------------------------

    def recover(self) -> None:
        state = self.journal.load()
        self.book.restore(state)
        now = self._now_or_none()
        if now is not None:
            self.book.restore_session(
                self.journal.fills(session_date=session_date(now).isoformat()),
                self.journal.recent_order_times(now - timedelta(seconds=60)),
            )
        for rec in [r for r in self.book.open_orders() if r.status is OrderStatus.NEW]:
            self._decide(rec.client_order_id, now or rec.created_at)

    # ---- time -------------------------------------------------------------------------------------

    def _now_or_none(self) -> datetime | None:
        return self.clock() if self.clock is not None else self.book.market_time()

    def now(self, order: Order | None = None) -> datetime:
        """The clock's time, else the latest bar's time, else the order's ``created_at``."""
        t = self._now_or_none()
        if t is None and order is not None:
            t = order.created_at
        if t is None:
            raise InvalidArgumentError(
                "no market time yet: push a bar (on_bar / on_price) or give the broker a clock"
            )
        return t

    # ---- orders -----------------------------------------------------------------------------------

    def check(self, order: Order | Mapping[str, Any]) -> RiskVerdict:
        """The risk gate on the broker's current account state (the verdict ``submit`` needs)."""
        o = parse_order(order)
        return self.book.check(o, self.now(o))

    def submit(
        self,
        order: Order | Mapping[str, Any],
        verdict: RiskVerdict | Mapping[str, Any] | None,
        *,
        source: str | None = None,
        role: str = "entry",
        strict_id: bool = True,
    ) -> OrderRecord:
        """Journal, risk-check and accept (or reject) an order; idempotent on ``client_order_id``.

        The same id with the same order (a retry, or Ray replaying the call after an actor restart)
        returns the stored order with ``duplicate`` set; the same id with a different order raises
        ``DuplicateClientOrderIdError`` and changes nothing (``strict_id=False``, for the closing orders
        the broker makes itself, returns the stored one instead). Bad input raises a typed error and
        stores nothing; a risk denial is stored as ``rejected`` with its reasons and never fills. Fills
        happen on the next bar (``on_bar`` / ``on_price``)."""
        o = parse_order(order)
        existing = self.book.get(o.client_order_id)
        if existing is not None:
            return _repeated(existing, o, strict_id)
        if verdict is not None and not isinstance(verdict, RiskVerdict):
            verdict = RiskVerdict.model_validate(dict(verdict))
        try:
            self.book.validate(o)
        except InvalidOrderError:  # a retry of an order stored before the market moved returns it
            stored_before = self.journal.get_order(o.client_order_id)
            if stored_before is not None:
                return _repeated(stored_before, o, strict_id)
            raise
        now = self.now(o)
        rec, event = self.book.new_record(o, now, verdict=verdict, source=source, role=role)
        # write-ahead: committed before acting; a stored id comes back unchanged (never twice)
        stored, created = self.journal.record_new(rec, event)
        if not created:
            return _repeated(stored, o, strict_id)
        if self.after_journal is not None:
            self.after_journal(rec)
        self.book.apply(UnitOfWork(orders={rec.client_order_id: rec}))
        return self._decide(rec.client_order_id, now)

    def _decide(self, coid: str, now: datetime) -> OrderRecord:
        unit = self.book.decide(coid, now)
        self._commit(unit)
        rec = self.book.get(coid)
        assert rec is not None
        self.book.note_accepted(rec)
        return rec

    def cancel(self, client_order_id: str) -> OrderRecord:
        """Cancel an open order (a second cancel returns the cancelled order)."""
        rec = self.book.get(client_order_id) or self.journal.get_order(client_order_id)
        if rec is None:
            raise NotFoundError(
                f"unknown order id {client_order_id!r}; list orders to see the ids",
                client_order_id=client_order_id,
            )
        if rec.status is OrderStatus.CANCELLED:
            return rec
        if rec.status.is_terminal:
            raise InvalidOrderError(
                f"order {client_order_id} is already {rec.status}; only open orders can be cancelled",
                status=str(rec.status),
            )
        self._commit(self.book.cancel(client_order_id, self.now()))
        out = self.book.get(client_order_id)
        assert out is not None
        return out

    def manage_position(self, request: ManagePosition | Mapping[str, Any]) -> list[OrderRecord]:
        """Move stop / target, partial close, flatten, flatten all; returns the orders it touched."""
        req = request if isinstance(request, ManagePosition) else _parse_manage(request)
        if req.action in (PositionAction.PARTIAL_CLOSE, PositionAction.FLATTEN):
            done = self.book.get(req.client_order_id) or self.journal.get_order(req.client_order_id)
            if done is not None and done.role is not OrderRole.CLOSE:  # the id of an order of another kind
                raise _conflict(done, ["role"])
            if done is not None:  # a retry of this request
                return [done.model_copy(update={"duplicate": True})]
        now = self.now()
        unit, closing = self.book.manage(req, now)
        self._commit(unit)
        out = [self.book.get(c) for c in unit.orders]
        for o in closing:
            verdict = self.book.check(o, now)
            out.append(self.submit(o, verdict, source="manage_position", role="close", strict_id=False))
        return [r for r in out if r is not None]

    # ---- market data ------------------------------------------------------------------------------

    def on_bar(self, symbol: str, bar: Bar | Mapping[str, Any]) -> list[Fill]:
        """Work one bar; returns its fills (none for a bar at or before the last one seen)."""
        b = bar if isinstance(bar, Bar) else Bar.model_validate(dict(bar))
        sym = normalize_symbol(symbol)
        get_contract(sym)
        unit = self.book.on_bar(sym, b)
        self._commit(unit)
        return [f.fill for f in unit.fills]

    def on_price(self, symbol: str, price: float, time: datetime) -> list[Fill]:
        """A trade price as a one-price bar (open = high = low = close)."""
        return self.on_bar(symbol, Bar(time=time, open=price, high=price, low=price, close=price, volume=0))

    def process_bars(self, symbol: str, frame: pd.DataFrame) -> list[Fill]:
        """Work a bar frame (tz-aware index, open/high/low/close/volume) in time order."""
        out: list[Fill] = []
        cols = [frame[c].to_numpy(dtype=float) for c in ("open", "high", "low", "close")]
        vol = frame["volume"].to_numpy(dtype=float) if "volume" in frame else [0.0] * len(frame)
        for i, t in enumerate(frame.index):
            bar = Bar(
                time=t.to_pydatetime(),
                open=cols[0][i],
                high=cols[1][i],
                low=cols[2][i],
                close=cols[3][i],
                volume=vol[i],
            )
            out.extend(self.on_bar(symbol, bar))
        return out

    def _commit(self, unit: UnitOfWork) -> None:
        if unit:
            self.journal.commit(unit)
            self.book.apply(unit)

    # ---- queries ----------------------------------------------------------------------------------

    def order(self, client_order_id: str) -> OrderRecord:
        rec = self.book.get(client_order_id) or self.journal.get_order(client_order_id)
        if rec is None:
            raise NotFoundError(f"unknown order id {client_order_id!r}", client_order_id=client_order_id)
        return rec

    def orders(self, *, open_only: bool = False, symbol: str | None = None) -> list[OrderRecord]:
        if open_only:
            return self.book.open_orders(normalize_symbol(symbol) if symbol else None)
        return self.journal.list_orders(normalize_symbol(symbol) if symbol else None)

    def fills(self, symbol: str | None = None) -> list[FillRecord]:
        return self.journal.fills(symbol=normalize_symbol(symbol) if symbol else None)

    def portfolio(self) -> dict[str, Any]:
        """Positions with average price, realised and unrealised P&L (USD) per symbol and in total."""
        marks = self.book.mark_prices()
        rows: dict[str, dict[str, Any]] = {}
        for sym, pr in sorted(self.book.positions().items()):
            p = pr.position
            unreal = p.unrealized_pnl_usd(marks[sym]) if p.quantity and sym in marks else 0.0
            rows[sym] = {
                "quantity": p.quantity,
                "avg_price": p.avg_price,
                "mark": marks.get(sym),
                "realized_pnl_usd": p.realized_pnl_usd,
                "unrealized_pnl_usd": unreal,
                "commission_usd": pr.commission_usd,
                "net_pnl_usd": p.realized_pnl_usd + unreal - pr.commission_usd,
            }
        t = self._now_or_none()
        acct = self.book.account(t) if t is not None else None
        return {
            "positions": rows,
            "total": {
                k: sum(r[k] for r in rows.values())
                for k in ("realized_pnl_usd", "unrealized_pnl_usd", "commission_usd", "net_pnl_usd")
            },
            "equity_usd": acct.equity_usd if acct else self.book.starting_balance_usd,
            "balance_usd": acct.balance_usd if acct else self.book.starting_balance_usd,
        }


def _repeated(stored: OrderRecord, again: Order, strict: bool) -> OrderRecord:
    """The answer to a second submit of ``stored``'s id: the stored order marked ``duplicate`` when
    ``again`` is the same order (or ``strict`` is off), else ``DuplicateClientOrderIdError``."""
    differs = order_differences(stored.order, again)
    if differs and strict:
        raise _conflict(stored, differs)
    return stored.model_copy(update={"duplicate": True})


def _conflict(stored: OrderRecord, differs: list[str]) -> DuplicateClientOrderIdError:
    o = stored.order
    what = f"{o.side} {o.quantity} {o.symbol} {o.order_type}"
    return DuplicateClientOrderIdError(
        f"client_order_id {o.client_order_id!r} is already used for a different order ({what}, "
        f"{stored.status}); it differs in {', '.join(differs)}. Nothing was placed: send a new order with "
        "a new id (resending the same order with the same id returns the stored one)",
        client_order_id=o.client_order_id,
        differs=differs,
        status=str(stored.status),
    )


def _parse_manage(data: Mapping[str, Any]) -> ManagePosition:
    from pydantic import ValidationError

    try:
        return ManagePosition.model_validate(dict(data))
    except ValidationError as exc:
        msgs = "; ".join(e["msg"] for e in exc.errors())
        raise InvalidArgumentError(f"invalid manage_position request: {msgs}") from None
