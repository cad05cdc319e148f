"""Risk limits for one account: the numbers the gate (``check_order``) enforces.

A plain pydantic model so the settings layer can embed it (``Settings.risk.limits``). Defaults suit a
$100,000 paper account trading NQ and its neighbours; a limit set to ``None`` is off. Contract counts
are raw contracts (one MNQ counts as one contract, like one NQ); margin and notional weigh them by size.

Defined here, below ``nq_ray.config`` (which embeds ``RiskLimits``); import it from ``nq_ray.risk.limits``.
"""

from __future__ import annotations

from datetime import time
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, model_validator


class TimeWindow(BaseModel):
    """A daily window of America/New_York wall time, ``start`` ≤ t < ``end``; wraps midnight when
    ``start`` > ``end`` (e.g. 18:00–09:30 is the overnight session)."""

    model_config = ConfigDict(frozen=True)

    start: time = Field(description="window opens (America/New_York wall time, inclusive)")
    end: time = Field(description="window closes (America/New_York wall time, exclusive)")

    @model_validator(mode="after")
    def _not_empty(self) -> Self:
        if self.start == self.end:
            raise ValueError(f"window {self.start}–{self.end} is empty; start and end must differ")
        return self

    def contains(self, t: time) -> bool:
        """True when the wall time ``t`` lies in the window."""
        if self.start < self.end:
            return self.start <= t < self.end
        return t >= self.start or t < self.end


class RiskLimits(BaseModel):
    """Every limit the pre-trade gate enforces; ``None`` turns a limit off."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_contracts_per_symbol: int | None = Field(
        default=4,
        ge=0,
        description="largest worst-case net position in one root symbol, in contracts, after the order",
    )
    max_total_contracts: int | None = Field(
        default=10,
        ge=0,
        description="largest sum over symbols of worst-case |net position| in contracts, after the order",
    )
    max_notional_usd: float | None = Field(
        default=1_500_000.0,
        gt=0,
        description="largest gross notional Σ |contracts| × price × point value, after the order",
    )
    max_margin_use_pct: float | None = Field(
        default=0.75,
        gt=0,
        le=1,
        description="largest Σ |contracts| × initial margin as a fraction of account equity, after the order",
    )
    max_daily_loss_usd: float | None = Field(
        default=2_000.0,
        gt=0,
        description="new risk is refused once today's P&L (realised + unrealised) ≤ −this; an order's "
        "loss at its stop must also fit in the room left",
    )
    trailing_drawdown_usd: float | None = Field(
        default=3_000.0,
        gt=0,
        description="prop-firm trailing drawdown: new risk is refused once equity ≤ equity high − this",
    )
    trailing_lock_at_start: bool = Field(
        default=True,
        description="the trailing floor stops rising once it reaches the starting balance",
    )
    max_orders_per_minute: int | None = Field(
        default=30, ge=1, description="orders sent in the last 60 s, this one included, may not exceed this"
    )
    max_consecutive_losses: int | None = Field(
        default=4,
        ge=1,
        description="circuit breaker: new risk is refused after this many losing trades in a row "
        "(the account state resets the count at the session start)",
    )
    require_stop_loss: bool = Field(
        default=False, description="refuse orders that open risk without a bracket stop-loss"
    )
    trade_only_when_open: bool = Field(
        default=True, description="refuse every order while CME Globex is closed (halt, weekend, holiday)"
    )
    allowed_windows: list[TimeWindow] = Field(
        default_factory=list,
        description="daily America/New_York windows in which new risk may be opened; empty = any open hour",
    )

    def trailing_floor_usd(self, equity_high_usd: float, starting_balance_usd: float) -> float | None:
        """Equity level at which the trailing drawdown is breached (``None`` when the limit is off).

        floor = equity high − trailing drawdown, capped at the starting balance when locking is on.
        """
        if self.trailing_drawdown_usd is None:
            return None
        floor = equity_high_usd - self.trailing_drawdown_usd
        if self.trailing_lock_at_start:
            floor = min(floor, starting_balance_usd)
        return floor
