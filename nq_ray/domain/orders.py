"""Orders, fills, positions, trades and account state: the typed models every layer shares.

Prices are validated against the contract's tick grid where an order is made. Quantities are whole
contracts. Timestamps are timezone-aware (UTC in storage, America/New_York for sessions).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Self

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from nq_ray.domain.contracts import get_contract, normalize_symbol


class Side(StrEnum):
    BUY = "buy"
    SELL = "sell"

    @property
    def sign(self) -> int:
        """+1 for a buy, -1 for a sell."""
        return 1 if self is Side.BUY else -1

    @property
    def opposite(self) -> Side:
        return Side.SELL if self is Side.BUY else Side.BUY


class OrderType(StrEnum):
    MARKET = "market"
    LIMIT = "limit"
    STOP = "stop"
    STOP_LIMIT = "stop_limit"  # a stop that, once triggered, works as a limit at limit_price


class OrderStatus(StrEnum):
    """new (journaled, not yet acted on) → accepted (working) → partially_filled / filled, or
    cancelled, rejected (risk or validation), expired (day order at the session close)."""

    NEW = "new"
    ACCEPTED = "accepted"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELLED = "cancelled"
    REJECTED = "rejected"
    EXPIRED = "expired"

    @property
    def is_terminal(self) -> bool:
        """True once the order can change no more (filled, cancelled, rejected, expired)."""
        return self in _TERMINAL


_TERMINAL = frozenset({OrderStatus.FILLED, OrderStatus.CANCELLED, OrderStatus.REJECTED, OrderStatus.EXPIRED})


class TimeInForce(StrEnum):
    DAY = "day"
    GTC = "gtc"
    IOC = "ioc"


def new_client_order_id() -> str:
    """A unique client order id (journaled before the order is sent)."""
    return uuid.uuid4().hex


class Bracket(BaseModel):
    """Protective exits attached to an entry: in ticks from the fill, or as absolute prices."""

    model_config = ConfigDict(frozen=True)

    stop_loss_ticks: int | None = Field(default=None, gt=0)
    take_profit_ticks: int | None = Field(default=None, gt=0)
    stop_loss_price: float | None = Field(default=None, gt=0)
    take_profit_price: float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _one_form_each(self) -> Self:
        if self.stop_loss_ticks is not None and self.stop_loss_price is not None:
            raise ValueError("give stop_loss_ticks or stop_loss_price, not both")
        if self.take_profit_ticks is not None and self.take_profit_price is not None:
            raise ValueError("give take_profit_ticks or take_profit_price, not both")
        return self

    def stop_price(self, entry_price: float, side: Side, tick_size: float) -> float | None:
        """Absolute stop-loss price for an entry at ``entry_price`` on ``side``."""
        if self.stop_loss_price is not None:
            return self.stop_loss_price
        if self.stop_loss_ticks is None:
            return None
        return entry_price - side.sign * self.stop_loss_ticks * tick_size

    def target_price(self, entry_price: float, side: Side, tick_size: float) -> float | None:
        """Absolute take-profit price for an entry at ``entry_price`` on ``side``."""
        if self.take_profit_price is not None:
            return self.take_profit_price
        if self.take_profit_ticks is None:
            return None
        return entry_price + side.sign * self.take_profit_ticks * tick_size


class Order(BaseModel):
    """An order for whole contracts of one symbol; limit/stop prices must be on the tick grid."""

    model_config = ConfigDict(frozen=True)

    symbol: str = Field(default="NQ", description="root symbol or contract code, e.g. NQ, NQ=F, NQH26")
    side: Side
    quantity: int = Field(gt=0, description="number of contracts")
    order_type: OrderType = OrderType.MARKET
    limit_price: float | None = Field(default=None, gt=0)
    stop_price: float | None = Field(default=None, gt=0)
    bracket: Bracket | None = None
    time_in_force: TimeInForce = TimeInForce.DAY
    client_order_id: str = Field(
        default_factory=new_client_order_id,
        min_length=1,
        max_length=80,
        description="unique per order; the broker derives its legs' ids from it (<id>.sl, <id>.tp)",
    )
    created_at: AwareDatetime | None = None
    reduce_only: bool = False

    @model_validator(mode="after")
    def _check(self) -> Self:
        contract = get_contract(self.symbol)  # raises unknown_symbol
        object.__setattr__(self, "symbol", normalize_symbol(self.symbol))
        if self.order_type is OrderType.LIMIT and self.limit_price is None:
            raise ValueError("a limit order needs limit_price")
        if self.order_type is OrderType.STOP and self.stop_price is None:
            raise ValueError("a stop order needs stop_price")
        if self.order_type is OrderType.STOP_LIMIT and (self.stop_price is None or self.limit_price is None):
            raise ValueError("a stop-limit order needs both stop_price (trigger) and limit_price")
        if self.order_type is OrderType.MARKET and (self.limit_price or self.stop_price):
            raise ValueError("a market order takes neither limit_price nor stop_price")
        prices = {"limit_price": self.limit_price, "stop_price": self.stop_price}
        if self.bracket is not None:
            prices["bracket.stop_loss_price"] = self.bracket.stop_loss_price
            prices["bracket.take_profit_price"] = self.bracket.take_profit_price
        for name, price in prices.items():
            if price is not None and not contract.is_on_tick(price):
                raise ValueError(
                    f"{name} {price} is not on the {self.symbol} tick grid of {contract.tick_size}; "
                    f"nearest valid price is {contract.round_price(price)}"
                )
        entry = self.limit_price or self.stop_price
        b = self.bracket
        if b is not None and entry is not None:
            sl, tp = (
                b.stop_price(entry, self.side, contract.tick_size),
                b.target_price(entry, self.side, contract.tick_size),
            )
            s = self.side.sign
            if sl is not None and s * (entry - sl) <= 0:
                raise ValueError(f"stop-loss {sl} is on the wrong side of entry {entry} for a {self.side}")
            if tp is not None and s * (tp - entry) <= 0:
                raise ValueError(f"take-profit {tp} is on the wrong side of entry {entry} for a {self.side}")
        return self

    @property
    def signed_quantity(self) -> int:
        return self.side.sign * self.quantity


class Fill(BaseModel):
    """One execution of (part of) an order."""

    model_config = ConfigDict(frozen=True)

    client_order_id: str
    symbol: str
    side: Side
    quantity: int = Field(gt=0)
    price: float = Field(gt=0)
    time: AwareDatetime
    commission_usd: float = Field(default=0.0, ge=0)
    fill_id: str = Field(default_factory=new_client_order_id)

    @model_validator(mode="after")
    def _on_tick(self) -> Self:
        c = get_contract(self.symbol)
        if not c.is_on_tick(self.price):
            raise ValueError(f"fill price {self.price} is not on the {self.symbol} tick grid {c.tick_size}")
        return self


class Position(BaseModel):
    """Net position in one symbol: signed contracts (+ long, − short) at an average entry price."""

    symbol: str
    quantity: int = 0
    avg_price: float = 0.0
    realized_pnl_usd: float = 0.0

    @property
    def is_flat(self) -> bool:
        return self.quantity == 0

    def unrealized_pnl_usd(self, mark: float) -> float:
        """Open P&L at ``mark``: (mark − avg) × point value × signed contracts."""
        return get_contract(self.symbol).pnl_usd(mark - self.avg_price, self.quantity)

    def apply(self, fill: Fill) -> Position:
        """The position after ``fill``; realised P&L accrues on the closed part (commission excluded)."""
        c = get_contract(self.symbol)
        q = fill.side.sign * fill.quantity
        new_qty = self.quantity + q
        realized = self.realized_pnl_usd
        if self.quantity == 0 or (self.quantity > 0) == (q > 0):  # opening or adding
            avg = (self.avg_price * abs(self.quantity) + fill.price * abs(q)) / abs(new_qty)
        else:  # reducing, closing or flipping
            closed = min(abs(q), abs(self.quantity))
            sign = 1 if self.quantity > 0 else -1
            realized += c.pnl_usd(fill.price - self.avg_price, sign * closed)
            if new_qty == 0:
                avg = 0.0
            elif (new_qty > 0) == (self.quantity > 0):
                avg = self.avg_price
            else:
                avg = fill.price
        return Position(symbol=self.symbol, quantity=new_qty, avg_price=avg, realized_pnl_usd=realized)


class Trade(BaseModel):
    """A closed round trip, as the backtester, the broker and the UI report it."""

    symbol: str
    side: Side = Field(description="side of the entry: buy = long trade")
    contracts: int = Field(gt=0)
    entry_time: datetime
    exit_time: datetime
    entry_price: float
    exit_price: float
    pnl_usd: float = Field(description="net of commission")
    commission_usd: float = 0.0
    exit_reason: str = "signal"


class AccountState(BaseModel):
    """What the risk gate sees of an account at one moment."""

    equity_usd: float
    starting_balance_usd: float
    equity_high_usd: float
    realized_pnl_today_usd: float = 0.0
    unrealized_pnl_usd: float = 0.0
    positions: dict[str, int] = Field(default_factory=dict, description="signed contracts by root symbol")
    open_orders: dict[str, int] = Field(default_factory=dict, description="signed working contracts")
    orders_last_minute: int = Field(default=0, ge=0)
    consecutive_losses: int = Field(default=0, ge=0)
    as_of: AwareDatetime | None = None

    @property
    def daily_pnl_usd(self) -> float:
        return self.realized_pnl_today_usd + self.unrealized_pnl_usd
