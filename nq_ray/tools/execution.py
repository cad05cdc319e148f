"""Execution tools: paper orders and position management through the ``paper_broker`` actor.

Every order passes the risk gate inside the broker (code, not a model, decides) and is journaled
before it is acted on; a retry with the same ``client_order_id`` and the same order returns the stored
order (``duplicate: true``); the same id with a different order is refused (``duplicate_client_order_id``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

from nq_ray.domain.orders import new_client_order_id
from nq_ray.execution.records import OrderRecord
from nq_ray.tools.args import Symbol
from nq_ray.tools.context import current

RECENT_FILLS = 50
Price = Annotated[float | None, Field(default=None, gt=0, le=1e7)]
ClientOrderId = Annotated[
    str | None,
    Field(
        default=None,
        min_length=1,
        max_length=60,
        pattern=r"^[A-Za-z0-9_.:-]+$",
        description="your id for the order; a retry with the same id and order returns the first "
        "(duplicate: true); the same id with a different order is refused (duplicate_client_order_id)",
    ),
]


def order_payload(
    symbol: str,
    side: str,
    contracts: int,
    order_type: str,
    price: float | None,
    stop_loss: float | None,
    take_profit: float | None,
    client_order_id: str | None,
) -> dict[str, Any]:
    """The ``Order`` mapping the broker validates: ``price`` is the limit or the stop trigger."""
    order: dict[str, Any] = {
        "symbol": symbol,
        "side": side,
        "quantity": contracts,
        "order_type": order_type,
        "client_order_id": client_order_id or new_client_order_id(),
    }
    if order_type == "limit":
        order["limit_price"] = price
    elif order_type == "stop":
        order["stop_price"] = price
    elif price is not None:
        from nq_ray.errors import InvalidOrderError

        raise InvalidOrderError("a market order takes no price; use order_type limit or stop")
    if stop_loss is not None or take_profit is not None:
        order["bracket"] = {"stop_loss_price": stop_loss, "take_profit_price": take_profit}
    return order


class OrderResult(BaseModel):
    """The order as the paper broker stored it: accepted (working), rejected (with reasons) or filled."""

    order: OrderRecord
    accepted: bool
    duplicate: bool = Field(
        default=False,
        description="true when this client_order_id was already placed with this same order: the stored "
        "order is returned and nothing new is placed (the same id with a different order is refused, "
        "409 duplicate_client_order_id)",
    )
    mode: str = Field(description="paper (simulated fills) unless live routing is configured")
    note: str = "paper order: fills are simulated on the next bar of market data"


async def place_order(
    symbol: Symbol,
    side: Literal["buy", "sell"],
    contracts: Annotated[int, Field(ge=1, le=10_000, description="number of contracts")],
    order_type: Literal["market", "limit", "stop"] = "market",
    price: Price = None,
    stop_loss: Annotated[
        float | None, Field(default=None, gt=0, le=1e7, description="bracket stop price")
    ] = None,
    take_profit: Annotated[
        float | None, Field(default=None, gt=0, le=1e7, description="bracket target price")
    ] = None,
    client_order_id: ClientOrderId = None,
) -> OrderResult:
    """Place a paper order (market, limit or stop, with an optional stop-loss / take-profit bracket).
    The risk gate may reduce or reject it; the result says which and why. Prices must be on the tick
    grid (NQ: 0.25). Check risk first with check_risk_limits when unsure. Idempotent by client_order_id:
    give one, and a retry with the same id and order returns the stored order (duplicate: true) and
    places nothing; without one, every call is a new order."""
    ctx = current()
    payload = order_payload(
        symbol, side, contracts, order_type, price, stop_loss, take_profit, client_order_id
    )
    rec: OrderRecord = await ctx.broker().place_order(payload, source="tool")
    out = OrderResult(
        order=rec,
        accepted=rec.status.value not in ("rejected",),
        duplicate=rec.duplicate,
        mode=ctx.settings.execution.mode,
    )
    await ctx.emit("order_update", out.model_dump(mode="json"))
    return out


class FillOut(BaseModel):
    """One fill of the paper book and the P&L it realised (gross USD; commission apart)."""

    time: datetime
    symbol: str
    side: str
    quantity: int
    price: float
    commission_usd: float
    realized_pnl_usd: float
    session_date: str
    client_order_id: str

    @classmethod
    def of(cls, record: Any) -> FillOut:
        """From the broker's fill record (``fill``, ``realized_pnl_usd``, ``session_date``)."""
        f = record.fill
        return cls(
            time=f.time,
            symbol=f.symbol,
            side=str(f.side),
            quantity=f.quantity,
            price=f.price,
            commission_usd=f.commission_usd,
            realized_pnl_usd=record.realized_pnl_usd,
            session_date=record.session_date,
            client_order_id=f.client_order_id,
        )


class PositionResult(BaseModel):
    """The orders a position action touched, and the portfolio after it; ``status`` also lists the
    working orders and the most recent fills (when the broker keeps them: a point-in-time book has none)."""

    action: str
    orders: list[OrderRecord]
    portfolio: dict[str, Any]
    working_orders: list[OrderRecord] = Field(default_factory=list, description="status: open orders")
    recent_fills: list[FillOut] = Field(
        default_factory=list, description=f"status: the last {RECENT_FILLS} fills, oldest first"
    )


async def manage_position(
    action: Annotated[
        Literal["move_stop", "move_target", "partial_close", "flatten", "flatten_all", "status"],
        Field(description="status only reports; the others change the position"),
    ] = "status",
    symbol: Annotated[
        str | None, Field(default=None, max_length=16, description="needed except for flatten_all")
    ] = None,
    price: Price = None,
    quantity: Annotated[
        int | None, Field(default=None, ge=1, le=10_000, description="partial_close only")
    ] = None,
    client_order_id: ClientOrderId = None,
) -> PositionResult:
    """Manage an open paper position: report it (status), move its stop or target, close part of it, flatten
    it, or flatten everything. Use status to see positions and P&L."""
    ctx = current()
    broker = ctx.broker()
    orders: list[OrderRecord] = []
    if action != "status":
        req: dict[str, Any] = {"action": action, "client_order_id": client_order_id or new_client_order_id()}
        for k, v in (("symbol", symbol), ("price", price), ("quantity", quantity)):
            if v is not None:
                req[k] = v
        orders = await broker.manage_position(req)
    portfolio = await broker.portfolio()
    working, fills = await _book_of(broker, symbol) if action == "status" else ([], [])
    out = PositionResult(
        action=action, orders=orders, portfolio=portfolio, working_orders=working, recent_fills=fills
    )
    if orders:
        await ctx.emit("order_update", out.model_dump(mode="json"))
    return out


async def _book_of(broker: Any, symbol: str | None) -> tuple[list[OrderRecord], list[FillOut]]:
    """The broker's working orders and last fills, when it keeps them (``PaperBrokerPort``)."""
    orders_of, fills_of = getattr(broker, "orders", None), getattr(broker, "fills", None)
    working = list(await orders_of(open_only=True, symbol=symbol)) if callable(orders_of) else []
    fills = list(await fills_of(symbol)) if callable(fills_of) else []
    last = sorted(fills, key=lambda r: r.fill.time)[-RECENT_FILLS:]
    return working, [FillOut.of(r) for r in last]
