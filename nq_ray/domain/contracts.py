"""CME equity-index futures contract specifications (NQ first).

Money is always points × ``point_value`` × contracts; ``tick_value`` = ``tick_size`` × ``point_value``.
Margins are indicative CME maintenance/initial levels per contract and are meant to be overridden in
settings (``risk.margins``) with the clearing firm's figures.
"""

from __future__ import annotations

import math
from decimal import ROUND_HALF_EVEN, Decimal

from pydantic import BaseModel, ConfigDict, Field

from nq_ray.errors import UnknownSymbolError

QUARTERLY_MONTHS = "HMUZ"
MONTH_CODES = "FGHJKMNQUVXZ"  # January … December


class Contract(BaseModel):
    """One futures product (root symbol), e.g. NQ: tick 0.25 pts = $5.00, so $20 a point."""

    model_config = ConfigDict(frozen=True)

    symbol: str = Field(description="root symbol, e.g. NQ")
    name: str
    exchange: str
    currency: str = "USD"
    tick_size: float = Field(gt=0, description="minimum price increment in index points")
    point_value: float = Field(gt=0, description="USD per index point per contract")
    months: str = Field(default=QUARTERLY_MONTHS, description="listed contract months (month codes)")
    yahoo_symbol: str
    initial_margin_usd: float = Field(ge=0, description="indicative initial margin per contract")
    maintenance_margin_usd: float = Field(ge=0, description="indicative maintenance margin per contract")

    @property
    def tick_value(self) -> float:
        """USD value of one tick for one contract."""
        return self.tick_size * self.point_value

    def pnl_usd(self, points: float, contracts: float = 1) -> float:
        """P&L in USD of a move of ``points`` index points on ``contracts`` contracts."""
        return points * self.point_value * contracts

    def ticks(self, points: float) -> float:
        """Number of ticks in ``points``."""
        return points / self.tick_size

    def round_price(self, price: float, mode: str = "nearest") -> float:
        """Round a price to the tick grid: ``nearest`` (half-even), ``down`` (floor) or ``up`` (ceil)."""
        q = Decimal(str(price)) / Decimal(str(self.tick_size))
        if mode == "nearest":
            n = q.to_integral_value(rounding=ROUND_HALF_EVEN)
        elif mode == "down":
            n = Decimal(math.floor(q))
        elif mode == "up":
            n = Decimal(math.ceil(q))
        else:
            raise ValueError(f"mode must be nearest, down or up, not {mode!r}")
        return float(n * Decimal(str(self.tick_size)))

    def is_on_tick(self, price: float) -> bool:
        """True when ``price`` lies on the tick grid (to 1e-9 of a tick)."""
        q = price / self.tick_size
        return abs(q - round(q)) < 1e-9


def _spec(symbol: str, name: str, exchange: str, tick: float, point: float, yahoo: str, im: float, mm: float):
    return Contract(
        symbol=symbol,
        name=name,
        exchange=exchange,
        tick_size=tick,
        point_value=point,
        yahoo_symbol=yahoo,
        initial_margin_usd=im,
        maintenance_margin_usd=mm,
    )


CONTRACTS: dict[str, Contract] = {
    c.symbol: c
    for c in (
        _spec("NQ", "E-mini Nasdaq-100", "CME", 0.25, 20.0, "NQ=F", 36_300.0, 33_000.0),
        _spec("MNQ", "Micro E-mini Nasdaq-100", "CME", 0.25, 2.0, "MNQ=F", 3_630.0, 3_300.0),
        _spec("ES", "E-mini S&P 500", "CME", 0.25, 50.0, "ES=F", 24_200.0, 22_000.0),
        _spec("MES", "Micro E-mini S&P 500", "CME", 0.25, 5.0, "MES=F", 2_420.0, 2_200.0),
        _spec("YM", "E-mini Dow ($5)", "CBOT", 1.0, 5.0, "YM=F", 14_300.0, 13_000.0),
        _spec("MYM", "Micro E-mini Dow", "CBOT", 1.0, 0.5, "MYM=F", 1_430.0, 1_300.0),
        _spec("RTY", "E-mini Russell 2000", "CME", 0.1, 50.0, "RTY=F", 9_900.0, 9_000.0),
        _spec("M2K", "Micro E-mini Russell 2000", "CME", 0.1, 5.0, "M2K=F", 990.0, 900.0),
    )
}


def normalize_symbol(symbol: str) -> str:
    """Root symbol for a user's spelling: ``nq``, ``NQ=F`` (Yahoo continuous front month) → ``NQ``."""
    s = symbol.strip().upper()
    if s.endswith("=F"):
        s = s[:-2]
    return s.lstrip("/")


def get_contract(symbol: str) -> Contract:
    """The spec of a root symbol or Yahoo alias; a dated code (``NQH26``) resolves to its root."""
    s = normalize_symbol(symbol)
    if s in CONTRACTS:
        return CONTRACTS[s]
    # a dated contract code: root + month letter + 1 or 2 year digits
    for root in sorted(CONTRACTS, key=len, reverse=True):
        rest = s[len(root) :]
        if s.startswith(root) and 2 <= len(rest) <= 3 and rest[0] in MONTH_CODES and rest[1:].isdigit():
            return CONTRACTS[root]
    raise UnknownSymbolError(
        f"unknown symbol {symbol!r}; known: {', '.join(CONTRACTS)} (Yahoo aliases like NQ=F, "
        "dated codes like NQH26 also work)",
        symbol=symbol,
        known=list(CONTRACTS),
    )
