"""What the paper broker keeps, as plain typed records (no database code here; ``nq_ray.store``
persists them and re-exports them from ``nq_ray.store.records``).

The broker core computes a ``UnitOfWork`` — the orders it changed, their events, fills, positions, the
account snapshot and the market marks — and the repository commits it in one transaction, so a fill,
its position and its account update land together or not at all.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    GetJsonSchemaHandler,
    SerializerFunctionWrapHandler,
    model_serializer,
    model_validator,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

from nq_ray.domain.orders import Bracket, Fill, Order, OrderStatus, OrderType, Position, Side, TimeInForce
from nq_ray.risk.gate import RiskReason, RiskVerdict


class OrderRole(StrEnum):
    """An order's place in a bracket: the entry, one of its protective legs, or a closing order."""

    ENTRY = "entry"
    STOP_LOSS = "stop_loss"
    TAKE_PROFIT = "take_profit"
    CLOSE = "close"


# The flat shape of a record (the store's columns, the JSON users see): the domain order's fields, with
# its quantity as ``requested_quantity``, around the record's own state.
_ORDER_KEYS = (
    "client_order_id",
    "symbol",
    "side",
    "order_type",
    "limit_price",
    "stop_price",
    "time_in_force",
    "reduce_only",
    "bracket",
)
FLAT_FIELDS = (
    "client_order_id",
    "symbol",
    "side",
    "order_type",
    "quantity",
    "requested_quantity",
    "limit_price",
    "stop_price",
    "time_in_force",
    "status",
    "filled_quantity",
    "avg_fill_price",
    "triggered",
    "reduce_only",
    "role",
    "parent_client_order_id",
    "oco_group",
    "bracket",
    "reasons",
    "verdict",
    "source",
    "created_at",
    "updated_at",
    "expires_at",
)

_ALWAYS_SET = frozenset(  # keys a record always carries a value for (the schema's "required")
    {
        "client_order_id",
        "symbol",
        "side",
        "order_type",
        "quantity",
        "requested_quantity",
        "created_at",
        "updated_at",
    }
)


class OrderRecord(BaseModel):
    """An order as the broker holds it: the domain ``Order`` (as requested; a protective leg's price as
    it is worked now), its state, its place in a bracket and the risk verdict it came with.

    Serialised flat (``FLAT_FIELDS``: the order's fields at the top level, its quantity as
    ``requested_quantity``), which is the store's row and the JSON the tools return; that flat shape is
    also accepted as input. The order's fields read through: ``rec.symbol``, ``rec.side``, ...
    """

    model_config = ConfigDict(frozen=True)

    order: Order = Field(description="the order as requested: quantity = contracts requested")
    quantity: int = Field(ge=0, description="contracts to work (after any risk reduction)")
    status: OrderStatus = OrderStatus.NEW
    filled_quantity: int = 0
    avg_fill_price: float | None = None
    triggered: bool = False
    role: OrderRole = Field(default=OrderRole.ENTRY, description="entry | stop_loss | take_profit | close")
    parent_client_order_id: str | None = None
    oco_group: str | None = None
    reasons: list[RiskReason] | None = None
    verdict: RiskVerdict | None = None
    source: str | None = None
    created_at: AwareDatetime
    updated_at: AwareDatetime
    expires_at: AwareDatetime | None = None
    duplicate: bool = Field(
        default=False,
        exclude=True,
        description="set on the answer to a repeated submit (same client_order_id, same order); never stored",
    )

    @model_validator(mode="before")
    @classmethod
    def _nest(cls, data: Any) -> Any:
        """Accept the flat shape (a stored row, JSON): the order's fields become ``order``."""
        if isinstance(data, Mapping) and "order" not in data:
            data = dict(data)
            order = {k: data.pop(k) for k in _ORDER_KEYS if k in data}
            if "requested_quantity" in data:
                order["quantity"] = data.pop("requested_quantity")
            order["created_at"] = data.get("created_at")
            data["order"] = order
        return data

    @model_serializer(mode="wrap")  # no return type, so the JSON schema is built from the fields (below)
    def _flat(self, handler: SerializerFunctionWrapHandler):  # type: ignore[no-untyped-def]
        data = handler(self)
        order = data.pop("order")
        flat = {k: order[k] for k in _ORDER_KEYS} | {"requested_quantity": order["quantity"]} | data
        return {k: flat[k] for k in FLAT_FIELDS}

    @classmethod
    def __get_pydantic_json_schema__(
        cls, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        """The flat shape's schema (what ``model_dump`` gives), built from ``Order``'s own fields."""
        schema = handler.resolve_ref_schema(handler(core_schema))
        props = schema["properties"]
        order = handler.resolve_ref_schema(props.pop("order"))
        ours = {k: v for k, v in order["properties"].items() if k in _ORDER_KEYS}
        ours["requested_quantity"] = order["properties"]["quantity"] | {"title": "Requested Quantity"}
        merged = props | ours
        schema["properties"] = {k: merged[k] for k in FLAT_FIELDS}
        schema["required"] = [k for k in FLAT_FIELDS if k in _ALWAYS_SET]
        return schema

    # the order's fields, read through
    @property
    def client_order_id(self) -> str:
        return self.order.client_order_id

    @property
    def symbol(self) -> str:
        return self.order.symbol

    @property
    def side(self) -> Side:
        return self.order.side

    @property
    def order_type(self) -> OrderType:
        return self.order.order_type

    @property
    def requested_quantity(self) -> int:
        return self.order.quantity

    @property
    def limit_price(self) -> float | None:
        return self.order.limit_price

    @property
    def stop_price(self) -> float | None:
        return self.order.stop_price

    @property
    def time_in_force(self) -> TimeInForce:
        return self.order.time_in_force

    @property
    def reduce_only(self) -> bool:
        return self.order.reduce_only

    @property
    def bracket(self) -> Bracket | None:
        return self.order.bracket

    @property
    def remaining(self) -> int:
        return max(self.quantity - self.filled_quantity, 0)

    @property
    def is_open(self) -> bool:
        return not self.status.is_terminal

    def repriced(self, now: datetime, **prices: float) -> OrderRecord:
        """This record with the order's ``limit_price`` / ``stop_price`` moved (a leg being modified)."""
        return self.model_copy(update={"order": self.order.model_copy(update=prices), "updated_at": now})


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
