"""The paper broker's pure core: order book, state machine, OCO brackets, expiry, positions and P&L.

No I/O and no wall clock: every method takes "now" (or a bar's time) and returns a ``UnitOfWork`` that
the journal commits; only then does ``apply`` change the book (compute → persist → apply), so the
store and the book never disagree. Fill prices come from ``nq_ray.execution.fills`` — the same rules
as the backtest kernel.

States: new → accepted → partially_filled → filled, or cancelled / rejected / expired. A bracket's
entry, once filled, gets a stop-loss and a take-profit leg (GTC) in one OCO group: when one fills the
other is cancelled, and the legs shrink or cancel with the position they protect.

One idea at about 790 lines: the book and its state machine. Orders, brackets, positions and P&L change
together in one ``UnitOfWork`` (``_Tx``), so splitting them would spread one transaction over modules;
the fill rules already live in ``fills``.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Self

from pydantic import BaseModel, Field, ValidationError, model_validator

from nq_ray.config import COMMISSION_PER_CONTRACT_USD, SLIPPAGE_TICKS
from nq_ray.domain.bars import Bar
from nq_ray.domain.contracts import get_contract, normalize_symbol
from nq_ray.domain.orders import (
    AccountState,
    Fill,
    Order,
    OrderStatus,
    OrderType,
    Position,
    Side,
    TimeInForce,
    new_client_order_id,
)
from nq_ray.errors import InvalidOrderError, NotFoundError
from nq_ray.execution import fills as fr
from nq_ray.execution.records import (
    AccountSnapshot,
    FillRecord,
    Mark,
    OrderEvent,
    OrderRecord,
    OrderRole,
    PositionRecord,
    StoredState,
    UnitOfWork,
)
from nq_ray.market.sessions import next_close, session_date
from nq_ray.risk.gate import RiskReason, RiskVerdict, check_order
from nq_ray.risk.limits import RiskLimits

if TYPE_CHECKING:
    from nq_ray.market.calendar import Blackout
    from nq_ray.propfirm.model import RulePack
    from nq_ray.propfirm.state import PropState

LEG_ROLES = ("stop_loss", "take_profit")
_OPEN = (OrderStatus.NEW, OrderStatus.ACCEPTED, OrderStatus.PARTIALLY_FILLED)


def parse_order(data: Order | Mapping[str, Any]) -> Order:
    """An ``Order`` from a mapping; malformed input raises ``InvalidOrderError`` with pydantic's reasons
    (an unknown symbol raises ``UnknownSymbolError``)."""
    if isinstance(data, Order):
        return data
    try:
        return Order.model_validate(dict(data))
    except ValidationError as exc:
        msgs = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'order'}: {e['msg']}" for e in exc.errors())
        raise InvalidOrderError(f"invalid order: {msgs}", errors=[e["msg"] for e in exc.errors()]) from None


# What makes two orders the same request: every field but the id and the time it was made.
_NOT_THE_REQUEST = {"client_order_id", "created_at"}


def order_differences(first: Order, again: Order) -> list[str]:
    """The fields (symbol, side, quantity, type, prices, time in force, bracket, reduce_only) in which
    ``again`` differs from ``first``; empty when it is the same order (a retry)."""
    a = first.model_dump(exclude=_NOT_THE_REQUEST)
    b = again.model_dump(exclude=_NOT_THE_REQUEST)
    return [k for k in a if a[k] != b.get(k)]


class PositionAction(StrEnum):
    MOVE_STOP = "move_stop"
    MOVE_TARGET = "move_target"
    PARTIAL_CLOSE = "partial_close"
    FLATTEN = "flatten"
    FLATTEN_ALL = "flatten_all"


class ManagePosition(BaseModel):
    """A ``manage_position`` request. ``client_order_id`` makes it idempotent: build the request once,
    before sending it, and a retry of the same request does nothing twice."""

    action: PositionAction
    symbol: str | None = Field(default=None, description="required except for flatten_all")
    price: float | None = Field(default=None, gt=0, description="new stop or target price")
    quantity: int | None = Field(default=None, gt=0, description="contracts to close (partial_close)")
    client_order_id: str = Field(default_factory=new_client_order_id, min_length=1, max_length=60)

    @model_validator(mode="after")
    def _fields(self) -> Self:
        a = self.action
        if a is not PositionAction.FLATTEN_ALL and not self.symbol:
            raise ValueError(f"{a} needs a symbol")
        if a in (PositionAction.MOVE_STOP, PositionAction.MOVE_TARGET) and self.price is None:
            raise ValueError(f"{a} needs a price")
        if a is PositionAction.PARTIAL_CLOSE and self.quantity is None:
            raise ValueError("partial_close needs a quantity")
        if self.symbol:
            get_contract(self.symbol)
            self.symbol = normalize_symbol(self.symbol)
        return self


class _Tx:
    """Staged changes over the broker's state; becomes a ``UnitOfWork``."""

    def __init__(self, broker: Broker) -> None:
        self.b = broker
        self.unit = UnitOfWork()
        self.losses: int | None = None
        self.intrabar: dict[str, bool] = {}  # oco group → legs created by an intrabar entry this bar

    def order(self, coid: str) -> OrderRecord | None:
        return self.unit.orders.get(coid) or self.b._orders.get(coid)

    def put(self, rec: OrderRecord, event: str, at: datetime, **details: Any) -> OrderRecord:
        self.unit.orders[rec.client_order_id] = rec
        self.unit.events.append(OrderEvent(rec.client_order_id, event, rec.status, at, details or None))
        return rec

    def open_orders(self, symbol: str | None = None) -> list[OrderRecord]:
        coids = list(self.b._open) + [c for c in self.unit.orders if c not in self.b._open]
        out = []
        for c in coids:
            rec = self.order(c)
            if rec is not None and rec.is_open and (symbol is None or rec.symbol == symbol):
                out.append(rec)
        return out

    def position(self, symbol: str) -> PositionRecord:
        return (
            self.unit.positions.get(symbol)
            or self.b._positions.get(symbol)
            or PositionRecord(Position(symbol=symbol))
        )


class Broker:
    """The paper order book of one account (pure; see the module docstring)."""

    def __init__(
        self,
        *,
        limits: RiskLimits | None = None,
        starting_balance_usd: float = 100_000.0,
        slippage_ticks: float = SLIPPAGE_TICKS,
        commission_per_contract: float = COMMISSION_PER_CONTRACT_USD,
        stop_first: bool = True,
        max_volume_participation: float | None = None,
    ) -> None:
        self.limits = limits or RiskLimits()
        self.starting_balance_usd = starting_balance_usd
        self.slippage_ticks = float(slippage_ticks)
        self.commission_per_contract = commission_per_contract
        self.stop_first = stop_first
        self.max_volume_participation = max_volume_participation
        # set by the host that knows the live state (the runtime's broker): a halt refuses new entries
        # (code ``halted``), and every verdict names the settings version its limits come from
        self.halt_reason: str | None = None
        self.settings_version: int | None = None
        # also set by the host: the prop-firm pack the account trades under with the account's state
        # under it, and the economic-event blackout in force at a time (``nq_ray.runtime.propfirm``)
        self.prop: tuple[RulePack, PropState] | None = None
        self.blackout_at: Callable[[datetime], Blackout | None] | None = None
        self._orders: dict[str, OrderRecord] = {}  # every order this book has seen
        self._open: dict[str, None] = {}  # open orders, in submission order
        self._positions: dict[str, PositionRecord] = {}
        self._marks: dict[str, Mark] = {}
        self._equity_high = starting_balance_usd
        self._losses = 0
        self._session: tuple[str, float] = ("", 0.0)  # (session date, net realised that session)
        self._recent: deque[datetime] = deque()
        self._window: tuple[datetime, datetime, str] | None = None  # (open, close, date) of a session

    def _session_of(self, t: datetime) -> tuple[str, datetime]:
        """(session date, session close) of ``t``, cached per session: the calendar lookups are slow."""
        w = self._window
        if w is None or not (w[0] <= t < w[1]):
            # every time in [t, close) has the same session date and the same next close
            w = (t, next_close(t).to_pydatetime(), session_date(t).isoformat())
            self._window = w
        return w[2], w[1]

    # ---- state ------------------------------------------------------------------------------------

    def restore(self, state: StoredState, now: datetime | None = None) -> None:
        """Rebuild the book from the store (a restart)."""
        for rec in state.open_orders:
            self._orders[rec.client_order_id] = rec
            self._open[rec.client_order_id] = None
        self._positions = dict(state.positions)
        self._marks = dict(state.marks)
        if state.account is not None:
            self._equity_high = state.account.equity_high_usd
            self._losses = state.account.consecutive_losses
        if state.session_fills:
            sd = state.session_fills[0].session_date
            net = sum(f.realized_pnl_usd - f.fill.commission_usd for f in state.session_fills)
            self._session = (sd, net)
        self._recent = deque(sorted(state.recent_order_times))

    def restore_session(self, session_fills: list[FillRecord], recent_order_times: list[datetime]) -> None:
        """Today's realised P&L and the last minute's orders (the gate's daily-loss and rate limits)."""
        if session_fills:
            sd = session_fills[0].session_date
            self._session = (sd, sum(f.realized_pnl_usd - f.fill.commission_usd for f in session_fills))
        self._recent = deque(sorted(recent_order_times))

    def apply(self, unit: UnitOfWork) -> None:
        """Make committed changes part of the book."""
        for coid, rec in unit.orders.items():
            self._orders[coid] = rec
            if rec.is_open:
                self._open[coid] = None
            else:
                self._open.pop(coid, None)
        self._positions.update(unit.positions)
        self._marks.update(unit.marks)
        if unit.account is not None:
            self._equity_high = unit.account.equity_high_usd
            self._losses = unit.account.consecutive_losses
        for f in unit.fills:
            sd, net = f.session_date, f.realized_pnl_usd - f.fill.commission_usd
            base = self._session[1] if self._session[0] == sd else 0.0
            self._session = (sd, base + net)

    def get(self, client_order_id: str) -> OrderRecord | None:
        return self._orders.get(client_order_id)

    def open_orders(self, symbol: str | None = None) -> list[OrderRecord]:
        recs = (self._orders[c] for c in self._open)
        return [r for r in recs if symbol is None or r.symbol == symbol]

    def positions(self) -> dict[str, PositionRecord]:
        return dict(self._positions)

    def marks(self) -> dict[str, Mark]:
        return dict(self._marks)

    def market_time(self) -> datetime | None:
        """The latest bar time seen: the broker's "now" when no clock is given."""
        return max((m.bar_time for m in self._marks.values()), default=None)

    def mark_prices(self) -> dict[str, float]:
        return {k: m.close for k, m in self._marks.items()}

    def _snapshot(self, tx: _Tx, at: datetime, reason: str) -> AccountSnapshot:
        positions = {**self._positions, **tx.unit.positions}
        marks = {**self._marks, **tx.unit.marks}
        realized = sum(p.position.realized_pnl_usd for p in positions.values())
        commission = sum(p.commission_usd for p in positions.values())
        unrealized = sum(
            p.position.unrealized_pnl_usd(marks[s].close)
            for s, p in positions.items()
            if p.position.quantity and s in marks
        )
        balance = self.starting_balance_usd + realized - commission
        equity = balance + unrealized
        return AccountSnapshot(
            at=at,
            starting_balance_usd=self.starting_balance_usd,
            balance_usd=balance,
            realized_pnl_usd=realized,
            commission_usd=commission,
            unrealized_pnl_usd=unrealized,
            equity_usd=equity,
            equity_high_usd=max(self._equity_high, equity),
            consecutive_losses=self._losses if tx.losses is None else tx.losses,
            reason=reason,
        )

    def account(self, now: datetime) -> AccountSnapshot:
        return self._snapshot(_Tx(self), now, "query")

    def account_state(self, now: datetime) -> AccountState:
        """What the risk gate sees: equity, today's P&L, positions, working entry orders, order rate."""
        snap = self.account(now)
        sd, _ = self._session_of(now)
        today = self._session[1] if self._session[0] == sd else 0.0
        working: dict[str, int] = {}
        for r in self.open_orders():
            if r.role not in LEG_ROLES and r.status is not OrderStatus.NEW:
                working[r.symbol] = working.get(r.symbol, 0) + r.side.sign * r.remaining
        return AccountState(
            equity_usd=snap.equity_usd,
            starting_balance_usd=self.starting_balance_usd,
            equity_high_usd=snap.equity_high_usd,
            realized_pnl_today_usd=today,
            unrealized_pnl_usd=snap.unrealized_pnl_usd,
            positions={s: p.position.quantity for s, p in self._positions.items() if p.position.quantity},
            open_orders=working,
            orders_last_minute=sum(1 for t in self._recent if now - timedelta(seconds=60) < t <= now),
            consecutive_losses=self._losses,
            as_of=now,
        )

    # ---- submission -------------------------------------------------------------------------------

    def check(self, order: Order, now: datetime) -> RiskVerdict:
        """The risk gate on this book's own state (and its halt, settings version, prop-firm pack and
        event blackout, when set)."""
        return check_order(
            order,
            self.account_state(now),
            self.limits,
            mark_price=self.mark_prices() or None,
            clock=lambda: now,
            halt_reason=self.halt_reason,
            settings_version=self.settings_version,
            prop=self.prop,
            blackout=self.blackout_at(now) if self.blackout_at is not None else None,
        )

    def validate(self, order: Order) -> None:
        """Refuse what no market would take: a stop on the wrong side of the last price, a market
        order's bracket on the wrong side. Raises ``InvalidOrderError``; changes nothing."""
        mark = self._marks.get(order.symbol)
        if mark is None:
            return
        px, s = mark.close, order.side.sign
        is_stop = order.order_type in (OrderType.STOP, OrderType.STOP_LIMIT) and order.stop_price is not None
        if is_stop and (float(order.stop_price or 0.0) - px) * s <= 0:
            where = "above" if s > 0 else "below"
            raise InvalidOrderError(
                f"a {order.side} stop at {order.stop_price} must be {where} the market ({px}); "
                f"use a limit order to {order.side} at or {'below' if s > 0 else 'above'} the market",
                stop_price=order.stop_price,
                market=px,
            )
        b = order.bracket
        if b is not None and order.order_type is OrderType.MARKET:
            if b.stop_loss_price is not None and (px - b.stop_loss_price) * s <= 0:
                raise InvalidOrderError(
                    f"stop-loss {b.stop_loss_price} is on the wrong side of the market ({px}) "
                    f"for a {order.side}"
                )
            if b.take_profit_price is not None and (b.take_profit_price - px) * s <= 0:
                raise InvalidOrderError(
                    f"take-profit {b.take_profit_price} is on the wrong side of the market ({px}) "
                    f"for a {order.side}"
                )

    def new_record(
        self,
        order: Order,
        now: datetime,
        *,
        verdict: RiskVerdict | None,
        source: str | None = None,
        role: str = "entry",
    ) -> tuple[OrderRecord, OrderEvent]:
        """The journal row of a new order (status ``new``) and its first event."""
        rec = OrderRecord(
            order=order.model_copy(update={"created_at": now}),
            quantity=order.quantity,
            status=OrderStatus.NEW,
            role=OrderRole(role),
            verdict=verdict,
            source=source,
            created_at=now,
            updated_at=now,
        )
        return rec, OrderEvent(rec.client_order_id, "new", OrderStatus.NEW, now, {"source": source})

    @staticmethod
    def to_order(rec: OrderRecord) -> Order:
        return rec.order

    def decide(self, client_order_id: str, now: datetime) -> UnitOfWork:
        """Accept or reject a journaled ``new`` order: the caller's verdict must approve this order and
        the broker's own check of the limits must approve it too (its size reduction applies)."""
        tx = _Tx(self)
        rec = self._orders[client_order_id]
        if rec.status is not OrderStatus.NEW:
            return tx.unit
        order = self.to_order(rec)
        reasons: list[RiskReason] = []
        given = rec.verdict
        if given is None:
            reasons.append(
                RiskReason(code="risk_verdict_missing", message="no RiskVerdict: run check_order and pass it")
            )
        elif not given.approved:
            reasons.extend(given.reasons or [RiskReason(code="risk_denied", message="the verdict denies it")])
        elif given.requested_contracts != order.quantity:
            reasons.append(
                RiskReason(
                    code="verdict_mismatch",
                    message=f"the verdict was for {given.requested_contracts} contracts, the order is for "
                    f"{order.quantity}: check this exact order",
                )
            )
        own = self.check(order, now)
        if not reasons and not own.approved:
            reasons.extend(own.reasons)
        if reasons:
            out = rec.model_copy(
                update={
                    "status": OrderStatus.REJECTED,
                    "quantity": 0,
                    "reasons": reasons,
                    "updated_at": now,
                }
            )
            tx.put(out, "rejected", now, reasons=[r.code for r in reasons])
            return tx.unit
        qty = min(own.adjusted_contracts, given.adjusted_contracts if given else own.adjusted_contracts)
        expires = None
        if rec.time_in_force is TimeInForce.DAY:
            expires = self._session_of(now)[1]
        out = rec.model_copy(
            update={
                "status": OrderStatus.ACCEPTED,
                "quantity": qty,
                "reasons": list(own.reasons) or None,
                "expires_at": expires,
                "updated_at": now,
            }
        )
        tx.put(out, "accepted", now, quantity=qty)
        return tx.unit

    def note_accepted(self, rec: OrderRecord) -> None:
        """Count an accepted order for the order-rate limit."""
        if rec.status is not OrderStatus.REJECTED and rec.role not in LEG_ROLES:
            self._recent.append(rec.created_at)
            while len(self._recent) > 10_000:
                self._recent.popleft()

    # ---- cancel / modify --------------------------------------------------------------------------

    def cancel(self, client_order_id: str, now: datetime, reason: str = "requested") -> UnitOfWork:
        tx = _Tx(self)
        rec = self._orders.get(client_order_id)
        if rec is None:
            raise NotFoundError(
                f"unknown order id {client_order_id!r}; list orders to see the ids",
                client_order_id=client_order_id,
            )
        if rec.status is OrderStatus.CANCELLED:
            return tx.unit
        if rec.status.is_terminal:
            raise InvalidOrderError(
                f"order {client_order_id} is already {rec.status}; only open orders can be cancelled",
                status=str(rec.status),
            )
        self._cancel(tx, rec, now, reason)
        return tx.unit

    def _cancel(
        self, tx: _Tx, rec: OrderRecord, now: datetime, reason: str, status=OrderStatus.CANCELLED
    ) -> None:
        out = rec.model_copy(update={"status": status, "updated_at": now})
        tx.put(out, str(status), now, reason=reason)

    def manage(self, req: ManagePosition, now: datetime) -> tuple[UnitOfWork, list[Order]]:
        """Move the stop / target legs (a unit of work), or build the closing orders of a partial close,
        a flatten or a flatten-all (reduce-only market orders the caller submits like any other)."""
        tx = _Tx(self)
        a = req.action
        if a is PositionAction.FLATTEN_ALL:
            symbols = sorted(
                {s for s, p in self._positions.items() if p.position.quantity}
                | {r.symbol for r in self.open_orders()}
            )
            orders: list[Order] = []
            for s in symbols:
                sub = req.model_copy(
                    update={
                        "action": PositionAction.FLATTEN,
                        "symbol": s,
                        "client_order_id": f"{req.client_order_id}.{s}",
                    }
                )
                _, o = self._flatten(tx, sub, now)
                orders.extend(o)
            return tx.unit, orders
        sym = req.symbol or ""
        pos = self._positions.get(sym)
        qty = pos.position.quantity if pos else 0
        if a is PositionAction.FLATTEN:
            return self._flatten(tx, req, now)
        if qty == 0:
            raise InvalidOrderError(f"no open {sym} position to {a.value.replace('_', ' ')}", symbol=sym)
        side = Side.BUY if qty > 0 else Side.SELL
        if a is PositionAction.PARTIAL_CLOSE:
            n = req.quantity or 0
            if n > abs(qty):
                raise InvalidOrderError(
                    f"partial close of {n} exceeds the {sym} position of {abs(qty)}; use flatten to close all"
                )
            return tx.unit, [self._closing_order(sym, side.opposite, n, req.client_order_id)]
        price = float(req.price or 0.0)
        c = get_contract(sym)
        if not c.is_on_tick(price):
            raise InvalidOrderError(
                f"price {price} is not on the {sym} tick grid of {c.tick_size}; nearest valid price is "
                f"{c.round_price(price)}"
            )
        role = "stop_loss" if a is PositionAction.MOVE_STOP else "take_profit"
        mark = self._marks.get(sym)
        if mark is not None:
            sgn = side.sign
            wrong = (
                (mark.close - price) * sgn <= 0 if role == "stop_loss" else (price - mark.close) * sgn <= 0
            )
            if wrong:
                raise InvalidOrderError(
                    f"a {'stop' if role == 'stop_loss' else 'target'} at {price} is on the wrong side of the "
                    f"market ({mark.close}) for a {'long' if qty > 0 else 'short'} {sym} position"
                )
        legs = [r for r in self.open_orders(sym) if r.role == role]
        field = "stop_price" if role == "stop_loss" else "limit_price"
        if legs:
            for leg in legs:
                if getattr(leg, field) != price:
                    out = leg.repriced(now, **{field: price})
                    tx.put(out, "modified", now, **{field: price, "was": getattr(leg, field)})
            return tx.unit, []
        coid = f"{req.client_order_id}.{'sl' if role == 'stop_loss' else 'tp'}"
        if self._orders.get(coid) is None:
            leg = self._leg(
                sym,
                side.opposite,
                abs(qty),
                role,
                price,
                group=req.client_order_id,
                parent=None,
                now=now,
                coid=coid,
            )
            tx.put(leg.model_copy(update={"status": OrderStatus.NEW}), "new", now, source="manage_position")
            tx.put(leg, "accepted", now)
        return tx.unit, []

    def _flatten(self, tx: _Tx, req: ManagePosition, now: datetime) -> tuple[UnitOfWork, list[Order]]:
        sym = req.symbol or ""
        for r in tx.open_orders(sym):
            if r.role not in LEG_ROLES and not r.reduce_only:
                self._cancel(tx, r, now, "flatten")
        pos = self._positions.get(sym)
        qty = pos.position.quantity if pos else 0
        if qty == 0:
            for r in tx.open_orders(sym):
                self._cancel(tx, r, now, "flatten")
            return tx.unit, []
        side = Side.SELL if qty > 0 else Side.BUY
        return tx.unit, [self._closing_order(sym, side, abs(qty), req.client_order_id)]

    @staticmethod
    def _closing_order(symbol: str, side: Side, quantity: int, coid: str) -> Order:
        return Order(
            symbol=symbol,
            side=side,
            quantity=quantity,
            reduce_only=True,
            client_order_id=coid,
            time_in_force=TimeInForce.GTC,
        )

    def _leg(
        self,
        symbol: str,
        side: Side,
        quantity: int,
        role: str,
        price: float,
        *,
        group: str,
        parent: str | None,
        now: datetime,
        coid: str,
    ) -> OrderRecord:
        order = Order(
            client_order_id=coid,
            symbol=symbol,
            side=side,
            order_type=OrderType.STOP if role == "stop_loss" else OrderType.LIMIT,
            quantity=quantity,
            stop_price=price if role == "stop_loss" else None,
            limit_price=price if role == "take_profit" else None,
            time_in_force=TimeInForce.GTC,
            reduce_only=True,
            created_at=now,
        )
        return OrderRecord(
            order=order,
            quantity=quantity,
            status=OrderStatus.ACCEPTED,
            role=OrderRole(role),
            parent_client_order_id=parent,
            oco_group=group,
            created_at=now,
            updated_at=now,
        )

    # ---- market data ------------------------------------------------------------------------------

    def on_bar(self, symbol: str, bar: Bar) -> UnitOfWork:
        """Work one bar of ``symbol``: expire, fill market orders at the open, then limit / stop /
        stop-limit orders, then the bracket legs (OCO); a bar at or before the last one is ignored."""
        sym = normalize_symbol(symbol)
        c = get_contract(sym)
        tx = _Tx(self)
        t = bar.time
        last = self._marks.get(sym)
        if last is not None and t <= last.bar_time:
            return tx.unit
        for r in tx.open_orders():
            if r.expires_at is not None and r.expires_at <= t:
                self._cancel(tx, r, t, "day order at the session close", OrderStatus.EXPIRED)
        o, h, lo, tick = bar.open, bar.high, bar.low, c.tick_size
        working = [r for r in tx.open_orders(sym) if r.status is not OrderStatus.NEW]
        for r in working:
            r = tx.order(r.client_order_id) or r
            if r.is_open and r.order_type is OrderType.MARKET and r.role not in LEG_ROLES:
                px = fr.market_fill_price(o, r.side.sign, self.slippage_ticks, tick)
                self._fill(tx, r, px, bar, intrabar=False)
        for r in working:
            r = tx.order(r.client_order_id) or r
            if not r.is_open or r.role in LEG_ROLES or r.order_type is OrderType.MARKET:
                continue
            s = r.side.sign
            if r.order_type is OrderType.LIMIT:
                px = fr.limit_fill_price(o, h, lo, s, float(r.limit_price or 0.0), tick)
            elif r.order_type is OrderType.STOP:
                px = fr.stop_fill_price(o, h, lo, s, float(r.stop_price or 0.0), self.slippage_ticks, tick)
            else:
                stop_px, limit_px = float(r.stop_price or 0.0), float(r.limit_price or 0.0)
                px = fr.stop_limit_fill_price(o, h, lo, s, stop_px, limit_px, r.triggered, tick)
                if not r.triggered and fr.stop_triggered(o, h, lo, s, stop_px):
                    r = tx.put(r.model_copy(update={"triggered": True, "updated_at": t}), "triggered", t)
            if not math.isnan(px):
                self._fill(tx, r, px, bar, intrabar=px != fr.tick_round(o, tick))
        self._work_brackets(tx, sym, bar)
        for r in tx.open_orders(sym):
            if r.time_in_force is TimeInForce.IOC and r.status is not OrderStatus.NEW:
                self._cancel(
                    tx, r, t, "immediate-or-cancel: not filled on its first bar", OrderStatus.EXPIRED
                )
        tx.unit.marks[sym] = Mark(sym, t, bar.close)
        has_position = any(p.position.quantity for p in {**self._positions, **tx.unit.positions}.values())
        if tx.unit.fills or has_position:
            tx.unit.account = self._snapshot(tx, t, "fill" if tx.unit.fills else "mark")
        return tx.unit

    def _work_brackets(self, tx: _Tx, sym: str, bar: Bar) -> None:
        c = get_contract(sym)
        groups: dict[str, list[str]] = {}
        for r in tx.open_orders(sym):
            if r.role in LEG_ROLES and r.status is not OrderStatus.NEW:
                groups.setdefault(r.oco_group or r.client_order_id, []).append(r.client_order_id)
        for group, coids in groups.items():
            legs = [x for x in (tx.order(cid) for cid in coids) if x is not None and x.is_open]
            if not legs:
                continue
            sl = next((x for x in legs if x.role == "stop_loss"), None)
            tp = next((x for x in legs if x.role == "take_profit"), None)
            pos_side = -legs[0].side.sign
            price, kind = fr.bracket_exit(
                bar.open,
                bar.high,
                bar.low,
                pos_side,
                float(sl.stop_price) if sl and sl.stop_price else math.nan,
                float(tp.limit_price) if tp and tp.limit_price else math.nan,
                self.slippage_ticks,
                c.tick_size,
                self.stop_first,
                tx.intrabar.get(group, False),
            )
            if kind == fr.EXIT_NONE:
                continue
            leg, other = (sl, tp) if kind == fr.EXIT_STOP else (tp, sl)
            if other is not None and (cur := tx.order(other.client_order_id)) is not None and cur.is_open:
                self._cancel(tx, cur, bar.time, "oco: the other leg filled")
            assert leg is not None
            self._fill(tx, leg, price, bar, intrabar=False)

    def _fill(self, tx: _Tx, rec: OrderRecord, price: float, bar: Bar, *, intrabar: bool) -> None:
        """Fill what the bar allows of ``rec`` at ``price``: fill, order, position, legs, in ``tx``."""
        sym, t = rec.symbol, bar.time
        pos_before = tx.position(sym)
        qty = rec.remaining
        if rec.reduce_only:
            pq = pos_before.position.quantity
            reducible = abs(pq) if pq * rec.side.sign < 0 else 0
            if reducible == 0:
                self._cancel(tx, rec, t, "reduce-only: no position left to reduce")
                return
            qty = min(qty, reducible)
        p = self.max_volume_participation
        if p is not None and rec.role not in LEG_ROLES and bar.volume > 0:
            qty = min(qty, int(bar.volume * p))
            if qty <= 0:
                return
        comm = float(fr.commission_usd(qty, self.commission_per_contract))
        filled = rec.filled_quantity + qty
        fill = Fill(
            client_order_id=rec.client_order_id,
            symbol=sym,
            side=rec.side,
            quantity=qty,
            price=price,
            time=t,
            commission_usd=comm,
            fill_id=f"{rec.client_order_id}#{filled}",
        )
        before = pos_before.position
        after = before.apply(fill)
        realized = after.realized_pnl_usd - before.realized_pnl_usd
        tx.unit.positions[sym] = PositionRecord(after, pos_before.commission_usd + comm, t)
        sd, _ = self._session_of(t)
        tx.unit.fills.append(FillRecord(fill, realized, sd))
        closed = min(qty, abs(before.quantity)) if before.quantity * rec.side.sign < 0 else 0
        if closed:
            net = realized - 2 * self.commission_per_contract * closed
            prev = self._losses if tx.losses is None else tx.losses
            tx.losses = prev + 1 if net < 0 else 0
        avg = ((rec.avg_fill_price or 0.0) * rec.filled_quantity + price * qty) / filled
        status = OrderStatus.FILLED if filled >= rec.quantity else OrderStatus.PARTIALLY_FILLED
        out = rec.model_copy(
            update={"filled_quantity": filled, "avg_fill_price": avg, "status": status, "updated_at": t}
        )
        tx.put(out, str(status), t, fill_id=fill.fill_id, quantity=qty, price=price)
        if rec.bracket and rec.role == "entry" and not rec.reduce_only:
            self._add_legs(tx, out, qty, t, intrabar)
        self._sync_legs(tx, sym, t)

    def _add_legs(self, tx: _Tx, entry: OrderRecord, qty: int, t: datetime, intrabar: bool) -> None:
        c = get_contract(entry.symbol)
        b = entry.bracket
        assert b is not None  # only an entry with a bracket gets legs
        base = entry.avg_fill_price or 0.0
        group = entry.client_order_id
        tx.intrabar[group] = intrabar
        for role, price in (
            ("stop_loss", b.stop_price(base, entry.side, c.tick_size)),
            ("take_profit", b.target_price(base, entry.side, c.tick_size)),
        ):
            if price is None:
                continue
            coid = f"{group}.{'sl' if role == 'stop_loss' else 'tp'}"
            cur = tx.order(coid)
            if cur is None:
                leg = self._leg(
                    entry.symbol,
                    entry.side.opposite,
                    qty,
                    role,
                    c.round_price(price),
                    group=group,
                    parent=group,
                    now=t,
                    coid=coid,
                )
                tx.put(leg.model_copy(update={"status": OrderStatus.NEW}), "new", t, source="bracket")
                tx.put(leg, "accepted", t)
            elif cur.is_open:
                tx.put(
                    cur.model_copy(update={"quantity": cur.quantity + qty, "updated_at": t}),
                    "modified",
                    t,
                    quantity=cur.quantity + qty,
                )

    def _sync_legs(self, tx: _Tx, sym: str, t: datetime) -> None:
        """Protective legs never exceed the position they protect: shrink them, or cancel when flat."""
        pq = tx.position(sym).position.quantity
        for leg in tx.open_orders(sym):
            if leg.role not in LEG_ROLES:
                continue
            allowed = abs(pq) if pq * leg.side.sign < 0 else 0
            if allowed == 0:
                self._cancel(tx, leg, t, "position closed")
            elif leg.remaining > allowed:
                q = leg.filled_quantity + allowed
                tx.put(leg.model_copy(update={"quantity": q, "updated_at": t}), "modified", t, quantity=q)


def fills_by_symbol(fills: Iterable[FillRecord]) -> dict[str, int]:
    """Signed contracts per symbol: the sum of the fills (what the positions must equal)."""
    out: dict[str, int] = {}
    for f in fills:
        out[f.fill.symbol] = out.get(f.fill.symbol, 0) + f.fill.side.sign * f.fill.quantity
    return out
