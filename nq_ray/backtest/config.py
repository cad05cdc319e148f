"""``BacktestConfig``: contract terms, costs, fill mode, entry orders, brackets, session and margin rules.

The costs (commission per side, slippage ticks) and their defaults are ``nq_ray.config.FillCosts``, the
one definition shared with the tools, the agent backtest, the paper broker and the settings.

Validated once, at the door: a bad value raises ``InvalidArgumentError`` naming the field, so the kernel
can trust every number it is given. ``terms()`` resolves the contract (point value, tick size, margins),
with overrides so the same engine runs a plain equity series (point value 1, tick 0.01).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from pydantic import ConfigDict, Field, ValidationError, model_validator

from nq_ray.config import FillCosts
from nq_ray.domain.contracts import get_contract
from nq_ray.errors import InvalidArgumentError, UnknownSymbolError

# Layout of the float64 options vector the kernel reads (one array instead of 17 scalar arguments).
O_POINT_VALUE = 0
O_TICK = 1
O_CONTRACTS = 2
O_CAPITAL = 3
O_COMMISSION = 4
O_SLIPPAGE_TICKS = 5
O_FILL_CLOSE = 6
O_ENTRY_TYPE = 7  # 0 market, 1 limit, 2 stop
O_ENTRY_OFFSET_TICKS = 8
O_ENTRY_EXPIRY_BARS = 9
O_SL_TICKS = 10  # ≤ 0: none
O_TP_TICKS = 11  # ≤ 0: none
O_STOP_FIRST = 12
O_FLAT_SESSION = 13
O_INITIAL_MARGIN = 14
O_MAINT_MARGIN = 15
O_MARGIN_CHECK = 16
N_OPTIONS = 17

ENTRY_TYPES = {"market": 0, "limit": 1, "stop": 2}


@dataclass(frozen=True)
class ContractTerms:
    """What the kernel needs from the contract: $ per point, tick, margins per contract."""

    point_value: float
    tick_size: float
    initial_margin_usd: float
    maintenance_margin_usd: float


class BacktestConfig(FillCosts):
    """How a backtest trades: contract, size, costs, fills, entry orders, brackets, sessions, margin.

    Costs default to ``FillCosts`` ($2.25 per contract per side, one tick of slippage on market and stop
    fills); ``BacktestConfig(**settings.execution.costs().model_dump(), ...)`` takes a deployment's."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    symbol: str = Field(default="NQ", description="root symbol whose contract spec prices the P&L")
    contracts: int = Field(default=1, gt=0, description="contracts per entry")
    initial_capital: float = Field(default=100_000.0, gt=0, description="starting equity, USD")
    fill: Literal["next_open", "close"] = Field(
        default="next_open", description="signals on a bar's close fill at the next open, or at that close"
    )
    allow_short: bool = True
    point_value: float | None = Field(default=None, gt=0, description="override the contract's USD/point")
    tick_size: float | None = Field(default=None, gt=0, description="override the contract's tick")
    entry_order: Literal["market", "limit", "stop"] = "market"
    entry_offset_ticks: int = Field(
        default=0, ge=0, description="limit: this many ticks better than the signal close; stop: worse"
    )
    entry_expiry_bars: int = Field(default=1, ge=1, description="a limit/stop entry lives this many bars")
    stop_loss_ticks: float | None = Field(default=None, gt=0)
    take_profit_ticks: float | None = Field(default=None, gt=0)
    stop_loss_points: float | None = Field(
        default=None, gt=0, description="distance in points, rounded to ticks"
    )
    take_profit_points: float | None = Field(default=None, gt=0)
    bracket_priority: Literal["stop", "target"] = Field(
        default="stop", description="which bracket leg fills when one bar touches both (stop: conservative)"
    )
    flat_at_session_end: bool = False
    session_calendar: bool = Field(
        default=True, description="no fills outside CME Globex sessions (intraday bars only)"
    )
    margin_check: bool = True
    initial_margin_usd: float | None = Field(default=None, ge=0, description="override, per contract")
    maintenance_margin_usd: float | None = Field(default=None, ge=0, description="override, per contract")

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'config'}: {e['msg']} (got {e.get('input')!r})"
                for e in exc.errors()
            )
            raise InvalidArgumentError(
                f"invalid backtest config: {problems}", errors=[e["msg"] for e in exc.errors()]
            ) from None

    @model_validator(mode="after")
    def _one_form_each(self) -> BacktestConfig:
        if self.stop_loss_ticks is not None and self.stop_loss_points is not None:
            raise ValueError("give stop_loss_ticks or stop_loss_points, not both")
        if self.take_profit_ticks is not None and self.take_profit_points is not None:
            raise ValueError("give take_profit_ticks or take_profit_points, not both")
        return self

    def terms(self) -> ContractTerms:
        """Point value, tick and margins: the contract's, with this config's overrides on top."""
        try:
            c = get_contract(self.symbol)
        except UnknownSymbolError:
            if self.point_value is None or self.tick_size is None:
                raise InvalidArgumentError(
                    f"symbol {self.symbol!r} is not a known contract; give point_value and tick_size "
                    "to backtest it as a plain series",
                    symbol=self.symbol,
                ) from None
            return ContractTerms(
                self.point_value,
                self.tick_size,
                self.initial_margin_usd or 0.0,
                self.maintenance_margin_usd or 0.0,
            )
        return ContractTerms(
            point_value=self.point_value if self.point_value is not None else c.point_value,
            tick_size=self.tick_size if self.tick_size is not None else c.tick_size,
            initial_margin_usd=(
                self.initial_margin_usd if self.initial_margin_usd is not None else c.initial_margin_usd
            ),
            maintenance_margin_usd=(
                self.maintenance_margin_usd
                if self.maintenance_margin_usd is not None
                else c.maintenance_margin_usd
            ),
        )

    def options(self) -> np.ndarray:
        """The float64 options vector the numba kernel reads (layout: the ``O_*`` constants)."""
        t = self.terms()
        sl = self.stop_loss_ticks
        if self.stop_loss_points is not None:
            sl = round(self.stop_loss_points / t.tick_size)
        tp = self.take_profit_ticks
        if self.take_profit_points is not None:
            tp = round(self.take_profit_points / t.tick_size)
        o = np.zeros(N_OPTIONS, dtype=np.float64)
        o[O_POINT_VALUE] = t.point_value
        o[O_TICK] = t.tick_size
        o[O_CONTRACTS] = self.contracts
        o[O_CAPITAL] = self.initial_capital
        o[O_COMMISSION] = self.commission_per_contract
        o[O_SLIPPAGE_TICKS] = self.slippage_ticks
        o[O_FILL_CLOSE] = 1.0 if self.fill == "close" else 0.0
        o[O_ENTRY_TYPE] = ENTRY_TYPES[self.entry_order]
        o[O_ENTRY_OFFSET_TICKS] = self.entry_offset_ticks
        o[O_ENTRY_EXPIRY_BARS] = self.entry_expiry_bars
        o[O_SL_TICKS] = sl if sl is not None else 0.0
        o[O_TP_TICKS] = tp if tp is not None else 0.0
        o[O_STOP_FIRST] = 1.0 if self.bracket_priority == "stop" else 0.0
        o[O_FLAT_SESSION] = 1.0 if self.flat_at_session_end else 0.0
        o[O_INITIAL_MARGIN] = t.initial_margin_usd
        o[O_MAINT_MARGIN] = t.maintenance_margin_usd
        o[O_MARGIN_CHECK] = 1.0 if self.margin_check else 0.0
        return o
