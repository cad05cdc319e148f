"""The fill-price rules, once, for the backtest kernel and the paper broker: small ``@njit`` scalar
functions over one bar (open, high, low) so paper results and backtests agree.

Rules (docs/execution.md): a market order fills at the bar's open plus ``slip_ticks`` adverse ticks;
a limit fills at its price when the bar touches it, or at the open when the bar opens through it (no
slippage); a stop fills at its price when touched, or at the open when the bar gaps through it, plus
slippage in both cases; a stop-limit triggers like a stop and then works as a limit (no slippage).
For a bracket (one stop-loss, one take-profit, OCO), a gap through a leg fills that leg at the open;
when one bar touches both legs the stop fills first (``stop_first``). ``side`` is +1 buy / −1 sell for
orders and +1 long / −1 short for brackets. Every returned price is on the tick grid; NaN = no fill.
"""

from __future__ import annotations

import numpy as np
from numba import njit

NO_FILL = np.nan
EXIT_NONE, EXIT_STOP, EXIT_TARGET = 0, 1, 2


@njit(cache=True)
def tick_round(price: float, tick: float) -> float:
    """Nearest price on the tick grid."""
    return np.round(price / tick) * tick


@njit(cache=True)
def market_fill_price(open_: float, side: int, slip_ticks: float, tick: float) -> float:
    """A market order at the bar's open, ``slip_ticks`` against the order (buy higher, sell lower)."""
    return tick_round(open_ + side * slip_ticks * tick, tick)


@njit(cache=True)
def limit_fill_price(open_: float, high: float, low: float, side: int, limit_px: float, tick: float) -> float:
    """A limit order: at the open when the bar opens at or through the limit, at the limit when the bar
    touches it, else NaN. No slippage (a limit never fills worse than its price)."""
    if side > 0:
        if open_ <= limit_px:
            return tick_round(open_, tick)
        if low <= limit_px:
            return tick_round(limit_px, tick)
    else:
        if open_ >= limit_px:
            return tick_round(open_, tick)
        if high >= limit_px:
            return tick_round(limit_px, tick)
    return NO_FILL


@njit(cache=True)
def stop_fill_price(
    open_: float, high: float, low: float, side: int, stop_px: float, slip_ticks: float, tick: float
) -> float:
    """A stop order: at the open when the bar gaps through the stop, at the stop when touched, plus
    ``slip_ticks`` adverse ticks in both cases; NaN when not touched."""
    slip = slip_ticks * tick
    if side > 0:
        if open_ >= stop_px:
            return tick_round(open_ + slip, tick)
        if high >= stop_px:
            return tick_round(stop_px + slip, tick)
    else:
        if open_ <= stop_px:
            return tick_round(open_ - slip, tick)
        if low <= stop_px:
            return tick_round(stop_px - slip, tick)
    return NO_FILL


@njit(cache=True)
def stop_triggered(open_: float, high: float, low: float, side: int, stop_px: float) -> bool:
    """True when the bar trades at or through a buy stop (up) or a sell stop (down)."""
    if side > 0:
        return high >= stop_px or open_ >= stop_px
    return low <= stop_px or open_ <= stop_px


@njit(cache=True)
def stop_limit_fill_price(
    open_: float,
    high: float,
    low: float,
    side: int,
    stop_px: float,
    limit_px: float,
    already_triggered: bool,
    tick: float,
) -> float:
    """A stop-limit on one bar: once triggered (earlier, or by this bar) it is a limit at ``limit_px``.

    On the trigger bar: a gap through the stop fills at the open when the open is within the limit,
    else at the limit when the bar comes back to it; an intrabar trigger fills at the better of the
    stop and the limit (the price traded at the trigger). NaN when it does not fill on this bar (it
    may still have triggered: ask ``stop_triggered``)."""
    if already_triggered:
        return limit_fill_price(open_, high, low, side, limit_px, tick)
    if side > 0:
        if open_ >= stop_px:  # gapped through the trigger
            return limit_fill_price(open_, high, low, side, limit_px, tick)
        if high >= stop_px:
            if stop_px <= limit_px:
                return tick_round(stop_px, tick)
            return tick_round(limit_px, tick) if low <= limit_px else NO_FILL
    else:
        if open_ <= stop_px:
            return limit_fill_price(open_, high, low, side, limit_px, tick)
        if low <= stop_px:
            if stop_px >= limit_px:
                return tick_round(stop_px, tick)
            return tick_round(limit_px, tick) if high >= limit_px else NO_FILL
    return NO_FILL


@njit(cache=True)
def bracket_exit(
    open_: float,
    high: float,
    low: float,
    side: int,
    stop_px: float,
    target_px: float,
    slip_ticks: float,
    tick: float,
    stop_first: bool,
    entered_intrabar: bool,
) -> tuple[float, int]:
    """Exit of a position on ``side`` protected by a stop ``stop_px`` and a target ``target_px`` (NaN =
    no such leg) on one bar: (price, EXIT_STOP | EXIT_TARGET | EXIT_NONE).

    A gap through a leg fills at the open (the stop with slippage); when both legs are touched inside
    the bar the stop wins if ``stop_first``. On the bar of an intrabar entry (``entered_intrabar``)
    the open came before the entry, so gaps do not apply and only the stop is checked (pessimistic)."""
    slip = slip_ticks * tick
    has_sl = not np.isnan(stop_px)
    has_tp = not np.isnan(target_px)
    if not entered_intrabar and has_sl and (open_ - stop_px) * side <= 0:
        return tick_round(open_ - side * slip, tick), EXIT_STOP
    if not entered_intrabar and has_tp and (open_ - target_px) * side >= 0:
        return tick_round(open_, tick), EXIT_TARGET
    stop_hit = has_sl and ((low <= stop_px) if side > 0 else (high >= stop_px))
    tgt_hit = not entered_intrabar and has_tp and ((high >= target_px) if side > 0 else (low <= target_px))
    if stop_hit and (stop_first or not tgt_hit):
        return tick_round(stop_px - side * slip, tick), EXIT_STOP
    if tgt_hit:
        return tick_round(target_px, tick), EXIT_TARGET
    return NO_FILL, EXIT_NONE


@njit(cache=True)
def commission_usd(contracts: float, per_contract_usd: float) -> float:
    """Commission for one side of ``contracts`` contracts."""
    return contracts * per_contract_usd


@njit(cache=True)
def pnl_usd(entry_px: float, exit_px: float, side: int, contracts: float, point_value: float) -> float:
    """Gross P&L of a round trip: (exit − entry) × side × point value × contracts."""
    return (exit_px - entry_px) * side * point_value * contracts
