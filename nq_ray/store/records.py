"""What the store keeps of the paper broker, as plain typed records (no database code here).

The broker core computes a ``UnitOfWork`` — the orders it changed, their events, fills, positions, the
account snapshot and the market marks — and the repository commits it in one transaction, so a fill,
its position and its account update land together or not at all.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from nq_ray.domain.orders import Fill, OrderStatus, OrderType, Position, Side, TimeInForce


class OrderRecord(BaseModel):
    """An order as the broker holds it: the request, its state and its place in a bracket."""

    model_config = ConfigDict(frozen=True)

    client_order_id: str
    symbol: str
    side: Side
    order_type: OrderType
    quantity: int = Field(ge=0, description="contracts to work (after any risk reduction)")
    requested_quantity: int = Field(gt=0)
    limit_price: float | None = None
    stop_price: float | None = None
    time_in_force: TimeInForce = TimeInForce.DAY
    status: OrderStatus = OrderStatus.NEW
    filled_quantity: int = 0
    avg_fill_price: float | None = None
    triggered: bool = False
    reduce_only: bool = False
    role: str = Field(default="entry", description="entry | stop_loss | take_profit | close")
    parent_client_order_id: str | None = None
    oco_group: str | None = None
    bracket: dict[str, Any] | None = None
    reasons: list[dict[str, Any]] | None = None
    verdict: dict[str, Any] | None = None
    source: str | None = None
    created_at: AwareDatetime
    updated_at: AwareDatetime
    expires_at: AwareDatetime | None = None

    @property
    def remaining(self) -> int:
        return max(self.quantity - self.filled_quantity, 0)

    @property
    def is_open(self) -> bool:
        return not self.status.is_terminal


@dataclass(frozen=True)
class OrderEvent:
    """One state transition of an order."""

    client_order_id: str
    event: str
    status: OrderStatus
    at: datetime
    details: dict[str, Any] | None = None


@dataclass(frozen=True)
class FillRecord:
    """A fill with what it realised (gross, USD) and the session it belongs to."""

    fill: Fill
    realized_pnl_usd: float = 0.0
    session_date: str = ""


@dataclass(frozen=True)
class PositionRecord:
    """A net position and the commission paid in that symbol."""

    position: Position
    commission_usd: float = 0.0
    updated_at: datetime | None = None


@dataclass(frozen=True)
class AccountSnapshot:
    at: datetime
    starting_balance_usd: float
    balance_usd: float
    realized_pnl_usd: float
    commission_usd: float
    unrealized_pnl_usd: float
    equity_usd: float
    equity_high_usd: float
    consecutive_losses: int = 0
    reason: str = "fill"


@dataclass(frozen=True)
class Mark:
    """The last bar processed for a symbol."""

    symbol: str
    bar_time: datetime
    close: float


@dataclass
class UnitOfWork:
    """Changes that commit together: order upserts (final state), their events, new fills, position
    upserts, one account snapshot and market marks."""

    orders: dict[str, OrderRecord] = field(default_factory=dict)
    events: list[OrderEvent] = field(default_factory=list)
    fills: list[FillRecord] = field(default_factory=list)
    positions: dict[str, PositionRecord] = field(default_factory=dict)
    account: AccountSnapshot | None = None
    marks: dict[str, Mark] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.orders or self.events or self.fills or self.positions or self.account or self.marks)


@dataclass
class StoredState:
    """What a restarting broker reads back: open orders (in submission order), positions, the latest
    account snapshot, marks, fills of the current session and recent order times (for the rate limit)."""

    open_orders: list[OrderRecord] = field(default_factory=list)
    positions: dict[str, PositionRecord] = field(default_factory=dict)
    account: AccountSnapshot | None = None
    marks: dict[str, Mark] = field(default_factory=dict)
    session_fills: list[FillRecord] = field(default_factory=list)
    recent_order_times: list[datetime] = field(default_factory=list)
