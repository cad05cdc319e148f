"""The typed domain model shared by the core, the store, the API, MCP and the UI."""

from nq_ray.domain.bars import BAR_COLUMNS, EXCHANGE_TZ, Bar
from nq_ray.domain.contracts import CONTRACTS, Contract, get_contract, normalize_symbol
from nq_ray.domain.orders import (
    AccountState,
    Bracket,
    Fill,
    Order,
    OrderStatus,
    OrderType,
    Position,
    Side,
    TimeInForce,
    Trade,
)

__all__ = [
    "BAR_COLUMNS",
    "CONTRACTS",
    "EXCHANGE_TZ",
    "AccountState",
    "Bar",
    "Bracket",
    "Contract",
    "Fill",
    "Order",
    "OrderStatus",
    "OrderType",
    "Position",
    "Side",
    "TimeInForce",
    "Trade",
    "get_contract",
    "normalize_symbol",
]
