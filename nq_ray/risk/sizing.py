"""Position sizing rules: how many whole contracts to trade. Every rule floors to whole contracts and
answers 0 when even one contract is too much; each result carries the working a trader checks by hand.

* fixed contracts: n.
* fixed-fractional: ⌊equity × risk fraction ÷ (stop ticks × tick value)⌋.
* ATR stop: ⌊equity × risk fraction ÷ (ATR multiple × ATR points × point value)⌋.
* volatility target: ⌊equity × annual vol target ÷ √periods per year ÷ (price × σ per bar × point value)⌋.
* capped fractional Kelly: f = min(cap, fraction × (p − (1 − p) ÷ b)), b = average win ÷ average loss,
  then ⌊equity × f ÷ risk per contract⌋ (risk per contract = the stop, else the average loss).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict

from nq_ray.domain.contracts import Contract
from nq_ray.errors import InvalidArgumentError

# Floor with a hair of tolerance so 2.9999999999999996 (float noise in 0.03 × 100) is 3 contracts.
_EPS = 1e-9


class PositionSize(BaseModel):
    """A sizing answer with its working: contracts = ⌊risk budget ÷ risk per contract⌋."""

    model_config = ConfigDict(frozen=True)

    rule: str
    symbol: str
    contracts: int
    risk_budget_usd: float
    risk_per_contract_usd: float
    detail: str


def _floor(x: float) -> int:
    return max(math.floor(x + _EPS), 0)


def _positive(name: str, value: float, *, allow_zero: bool = False) -> None:
    ok = value >= 0 if allow_zero else value > 0
    if not math.isfinite(value) or not ok:
        raise InvalidArgumentError(
            f"{name} must be a finite number {'≥' if allow_zero else '>'} 0, got {value}", **{name: value}
        )


def _fraction(name: str, value: float) -> None:
    if not math.isfinite(value) or not 0 < value <= 1:
        raise InvalidArgumentError(f"{name} must be in (0, 1], got {value} (0.01 means 1%)", **{name: value})


def fixed_contracts(contracts: int, contract: Contract) -> PositionSize:
    """Always ``contracts`` (≥ 0)."""
    if contracts < 0:
        raise InvalidArgumentError(f"contracts must be ≥ 0, got {contracts}", contracts=contracts)
    return PositionSize(
        rule="fixed_contracts",
        symbol=contract.symbol,
        contracts=int(contracts),
        risk_budget_usd=0.0,
        risk_per_contract_usd=0.0,
        detail=f"fixed {contracts} contracts",
    )


def fixed_fractional(
    equity_usd: float, risk_fraction: float, stop_ticks: float, contract: Contract
) -> PositionSize:
    """⌊equity × risk fraction ÷ (stop ticks × tick value)⌋ contracts."""
    _positive("equity_usd", equity_usd, allow_zero=True)
    _fraction("risk_fraction", risk_fraction)
    _positive("stop_ticks", stop_ticks)
    budget = equity_usd * risk_fraction
    per = stop_ticks * contract.tick_value
    n = _floor(budget / per)
    return PositionSize(
        rule="fixed_fractional",
        symbol=contract.symbol,
        contracts=n,
        risk_budget_usd=budget,
        risk_per_contract_usd=per,
        detail=f"⌊${budget:,.2f} ÷ ({stop_ticks:g} ticks × ${contract.tick_value:,.2f})⌋ = "
        f"⌊{budget / per:.4f}⌋ = {n}",
    )


def atr_points(bars: pd.DataFrame, period: int = 14) -> float:
    """The latest Wilder ATR of ``bars`` in index points (TA-Lib ``ATR``)."""
    import talib

    if period < 1:
        raise InvalidArgumentError(f"period must be ≥ 1, got {period}", period=period)
    if len(bars) <= period:
        raise InvalidArgumentError(f"ATR({period}) needs more than {period} bars, got {len(bars)}")
    atr = talib.ATR(
        bars["high"].to_numpy(np.float64),
        bars["low"].to_numpy(np.float64),
        bars["close"].to_numpy(np.float64),
        timeperiod=period,
    )
    return float(atr[-1])


def atr_stop(
    equity_usd: float, risk_fraction: float, atr_pts: float, contract: Contract, *, atr_multiple: float = 2.0
) -> PositionSize:
    """Fixed-fractional with the stop at ``atr_multiple`` × ATR: ⌊equity × f ÷ (k × ATR × point value)⌋."""
    _positive("equity_usd", equity_usd, allow_zero=True)
    _fraction("risk_fraction", risk_fraction)
    _positive("atr_pts", atr_pts)
    _positive("atr_multiple", atr_multiple)
    budget = equity_usd * risk_fraction
    per = atr_multiple * atr_pts * contract.point_value
    n = _floor(budget / per)
    return PositionSize(
        rule="atr_stop",
        symbol=contract.symbol,
        contracts=n,
        risk_budget_usd=budget,
        risk_per_contract_usd=per,
        detail=f"⌊${budget:,.2f} ÷ ({atr_multiple:g} × {atr_pts:g} pts × ${contract.point_value:g})⌋ = {n}",
    )


def volatility_target(
    equity_usd: float,
    annual_vol_target: float,
    price: float,
    sigma_per_bar: float,
    contract: Contract,
    *,
    periods_per_year: float = 252.0,
) -> PositionSize:
    """Contracts whose per-bar dollar volatility matches the target:
    ⌊(equity × target ÷ √periods per year) ÷ (price × σ per bar × point value)⌋.

    ``sigma_per_bar`` is the standard deviation of simple returns per bar (e.g. daily, with 252)."""
    _positive("equity_usd", equity_usd, allow_zero=True)
    _positive("annual_vol_target", annual_vol_target)
    _positive("price", price)
    _positive("sigma_per_bar", sigma_per_bar)
    _positive("periods_per_year", periods_per_year)
    budget = equity_usd * annual_vol_target / math.sqrt(periods_per_year)
    per = price * sigma_per_bar * contract.point_value
    n = _floor(budget / per)
    return PositionSize(
        rule="volatility_target",
        symbol=contract.symbol,
        contracts=n,
        risk_budget_usd=budget,
        risk_per_contract_usd=per,
        detail=f"⌊${budget:,.2f} target σ per bar ÷ ({price:g} × {sigma_per_bar:g} × "
        f"${contract.point_value:g}) = ${per:,.2f} σ per contract⌋ = {n}",
    )


class KellyEstimate(BaseModel):
    """Kelly inputs from a trade history: p = wins ÷ trades, b = average win ÷ average loss."""

    model_config = ConfigDict(frozen=True)

    trades: int
    win_rate: float
    avg_win_usd: float
    avg_loss_usd: float
    payoff_ratio: float | None
    full_kelly: float


def kelly_estimate(pnl_per_contract_usd: Sequence[float], *, min_trades: int = 20) -> KellyEstimate:
    """Full Kelly f* = p − (1 − p) ÷ b from per-contract trade P&L (a zero P&L counts as neither).

    With no losses f* = 1 (b is infinite); with no wins f* = 0 (never negative: no bet)."""
    x = np.asarray(pnl_per_contract_usd, dtype=np.float64)
    if x.size == 0:
        raise InvalidArgumentError("trade history is empty; Kelly needs closed trades")
    if not np.all(np.isfinite(x)):
        raise InvalidArgumentError("trade history holds NaN or infinite P&L")
    if x.size < min_trades:
        raise InvalidArgumentError(
            f"Kelly needs at least {min_trades} trades, got {x.size}; "
            "lower min_trades to accept a noisy estimate",
            trades=int(x.size),
            min_trades=min_trades,
        )
    wins, losses = x[x > 0], x[x < 0]
    decided = wins.size + losses.size
    p = wins.size / decided if decided else 0.0
    avg_win = float(wins.mean()) if wins.size else 0.0
    avg_loss = float(-losses.mean()) if losses.size else 0.0
    if losses.size == 0:
        b, f = None, 1.0 if wins.size else 0.0
    elif wins.size == 0:
        b, f = 0.0, 0.0
    else:
        b = avg_win / avg_loss
        f = max(p - (1 - p) / b, 0.0)
    return KellyEstimate(
        trades=int(x.size),
        win_rate=p,
        avg_win_usd=avg_win,
        avg_loss_usd=avg_loss,
        payoff_ratio=b,
        full_kelly=f,
    )


def fractional_kelly(
    equity_usd: float,
    pnl_per_contract_usd: Sequence[float],
    contract: Contract,
    *,
    fraction: float = 0.5,
    cap: float = 0.02,
    stop_ticks: float | None = None,
    min_trades: int = 20,
) -> PositionSize:
    """⌊equity × min(cap, fraction × f*) ÷ risk per contract⌋; risk per contract = stop ticks × tick
    value when given, else the history's average loss per contract."""
    _positive("equity_usd", equity_usd, allow_zero=True)
    _fraction("fraction", fraction)
    _fraction("cap", cap)
    est = kelly_estimate(pnl_per_contract_usd, min_trades=min_trades)
    f = min(cap, fraction * est.full_kelly)
    if stop_ticks is not None:
        _positive("stop_ticks", stop_ticks)
        per = stop_ticks * contract.tick_value
    elif est.avg_loss_usd > 0:
        per = est.avg_loss_usd
    else:
        raise InvalidArgumentError("the history has no losing trade to size from; pass stop_ticks")
    budget = equity_usd * f
    n = _floor(budget / per)
    return PositionSize(
        rule="fractional_kelly",
        symbol=contract.symbol,
        contracts=n,
        risk_budget_usd=budget,
        risk_per_contract_usd=per,
        detail=f"f* = {est.full_kelly:.4f} (p {est.win_rate:.4f}, b {est.payoff_ratio}); "
        f"f = min({cap:g}, {fraction:g} × f*) = {f:.4f}; ⌊${budget:,.2f} ÷ ${per:,.2f}⌋ = {n}",
    )
