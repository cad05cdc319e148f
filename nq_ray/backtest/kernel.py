"""The bar-by-bar futures simulation: one ``@njit`` kernel, numpy arrays in and out.

Fill rules (docs/backtesting.md, "Fill rules"): signals seen on bar i's close fill at bar i+1's open (or at
bar i's close with ``fill="close"``); a stop or limit touched inside a bar fills at its price, or at the
open when the bar gaps through it; when one bar touches both bracket legs the stop fills first unless
configured otherwise; nothing fills on a bar outside the session calendar (pending orders wait for the
next tradable bar); an open position at the end of the data closes at the last close (``end_of_data``).
Money = points × point value × contracts; commission per contract per side; slippage in ticks on
market and stop fills (limits and take-profits fill at their price). The per-bar fill prices come from
``nq_ray.execution.fills``, the one implementation the paper broker uses too.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from nq_ray.backtest.config import (
    O_CAPITAL,
    O_COMMISSION,
    O_CONTRACTS,
    O_ENTRY_EXPIRY_BARS,
    O_ENTRY_OFFSET_TICKS,
    O_ENTRY_TYPE,
    O_FILL_CLOSE,
    O_FLAT_SESSION,
    O_INITIAL_MARGIN,
    O_MAINT_MARGIN,
    O_MARGIN_CHECK,
    O_POINT_VALUE,
    O_SL_TICKS,
    O_SLIPPAGE_TICKS,
    O_STOP_FIRST,
    O_TICK,
    O_TP_TICKS,
)
from nq_ray.execution.fills import (
    EXIT_NONE,
    EXIT_STOP,
    bracket_exit,
    commission_usd,
    limit_fill_price,
    market_fill_price,
    pnl_usd,
    stop_fill_price,
)
from nq_ray.execution.fills import tick_round as _tick_round

# columns of the trades matrix
T_ENTRY_IDX = 0
T_EXIT_IDX = 1
T_SIDE = 2  # +1 long, -1 short
T_CONTRACTS = 3
T_ENTRY_PX = 4
T_EXIT_PX = 5
T_PNL = 6  # USD, net of both sides' commission
T_COMMISSION = 7
T_REASON = 8
T_MAE = 9  # USD, ≤ 0
T_MFE = 10  # USD, ≥ 0
N_TRADE_COLS = 11

EXIT_REASONS = (
    "signal",
    "stop_loss",
    "take_profit",
    "session_end",
    "margin_call",
    "end_of_data",
    "prop_rule",
)
R_SIGNAL, R_STOP, R_TARGET, R_SESSION, R_MARGIN, R_END, R_PROP = 0, 1, 2, 3, 4, 5, 6


@njit(cache=True)
def _bracket_levels(sl_px, tp_px, e_px, side, sl_ticks, tp_ticks, tick):
    """Bracket (stop, target) for an entry at ``e_px``: the signal's absolute prices when given, else
    the config's distances in ticks from the fill (NaN = no such leg)."""
    sl = sl_px if not np.isnan(sl_px) else (e_px - side * sl_ticks * tick if sl_ticks > 0 else np.nan)
    tp = tp_px if not np.isnan(tp_px) else (e_px + side * tp_ticks * tick if tp_ticks > 0 else np.nan)
    return sl, tp


@njit(cache=True)
def _book(trades, k, entry_idx, exit_idx, side, n, entry_px, exit_px, pv, commission, reason, mae, mfe):
    """Write trade ``k``; returns (gross P&L USD, exit commission USD)."""
    gross = pnl_usd(entry_px, exit_px, side, n, pv)
    comm = 2.0 * commission_usd(n, commission)
    trades[k, T_ENTRY_IDX] = entry_idx
    trades[k, T_EXIT_IDX] = exit_idx
    trades[k, T_SIDE] = side
    trades[k, T_CONTRACTS] = n
    trades[k, T_ENTRY_PX] = entry_px
    trades[k, T_EXIT_PX] = exit_px
    trades[k, T_PNL] = gross - comm
    trades[k, T_COMMISSION] = comm
    trades[k, T_REASON] = reason
    trades[k, T_MAE] = min(mae, (exit_px - entry_px) * side) * pv * n
    trades[k, T_MFE] = max(mfe, (exit_px - entry_px) * side) * pv * n
    return gross, commission_usd(n, commission)


@njit(cache=True)
def max_trades(long_entry, short_entry) -> int:
    """Upper bound on the number of trades: every trade starts with an entry signal."""
    c = 1
    for i in range(long_entry.shape[0]):
        if long_entry[i] or short_entry[i]:
            c += 1
    return c


@njit(cache=True)
def simulate(
    open_,
    high,
    low,
    close,
    long_entry,
    long_exit,
    short_entry,
    short_exit,
    stop_price,
    target_price,
    tradable,
    session_end,
    opts,
):
    """Run one backtest.

    Arrays (length n): OHLC float64; the four signal arrays (bool); ``stop_price``/``target_price``
    (float64 absolute bracket prices chosen at the signal bar, NaN = use the config's ticks; length 0 =
    none); ``tradable`` (bar inside a session); ``session_end`` (last tradable bar of its session).
    Returns (equity USD at each close, signed position at each close, trades matrix, n_trades,
    n_rejected_entries).
    """
    none = np.empty(0, dtype=np.bool_)
    return simulate_masked(
        open_,
        high,
        low,
        close,
        long_entry,
        long_exit,
        short_entry,
        short_exit,
        stop_price,
        target_price,
        tradable,
        session_end,
        opts,
        none,
        none,
    )


@njit(cache=True)
def simulate_masked(
    open_,
    high,
    low,
    close,
    long_entry,
    long_exit,
    short_entry,
    short_exit,
    stop_price,
    target_price,
    tradable,
    session_end,
    opts,
    no_entry,
    flatten,
):
    """``simulate`` with two rule masks (bool, length n, or length 0 = none), for a prop-firm pack:
    ``no_entry[i]``: no entry fills during bar i (a market entry due at its open is dropped and counted
    as rejected, a working limit/stop entry is cancelled); ``flatten[i]``: at bar i's close the position
    closes (exit reason ``prop_rule``, market fill with slippage), the pending and working orders are
    cancelled, and no signal on that close opens a position.
    """
    n = close.shape[0]
    pv = opts[O_POINT_VALUE]
    tick = opts[O_TICK]
    qty = opts[O_CONTRACTS]
    commission = opts[O_COMMISSION]
    slip_ticks = opts[O_SLIPPAGE_TICKS]
    fill_close = opts[O_FILL_CLOSE] > 0.5
    entry_type = int(opts[O_ENTRY_TYPE])
    offset = opts[O_ENTRY_OFFSET_TICKS] * tick
    expiry = int(opts[O_ENTRY_EXPIRY_BARS])
    sl_ticks = opts[O_SL_TICKS]
    tp_ticks = opts[O_TP_TICKS]
    stop_first = opts[O_STOP_FIRST] > 0.5
    flat_session = opts[O_FLAT_SESSION] > 0.5
    im = opts[O_INITIAL_MARGIN]
    mm = opts[O_MAINT_MARGIN]
    margin_check = opts[O_MARGIN_CHECK] > 0.5
    has_px = stop_price.shape[0] == n
    has_block = no_entry.shape[0] == n
    has_flat = flatten.shape[0] == n

    equity = np.empty(n, dtype=np.float64)
    position = np.zeros(n, dtype=np.float64)
    trades = np.empty((max_trades(long_entry, short_entry), N_TRADE_COLS), dtype=np.float64)
    k = 0
    rejected = 0

    cash = opts[O_CAPITAL]
    side = 0  # +1 long, -1 short, 0 flat
    e_px = 0.0
    e_idx = 0
    sl = np.nan
    tp = np.nan
    mae = 0.0
    mfe = 0.0
    # pending market action: 0 none, else the target side (+1, -1) or 2 = go flat
    pend = 0
    pend_sl = np.nan
    pend_tp = np.nan
    # working limit/stop entry order
    po_side = 0
    po_px = 0.0
    po_left = 0
    po_sl = np.nan
    po_tp = np.nan

    for i in range(n):
        o = open_[i]
        h = high[i]
        lo = low[i]
        c = close[i]
        intrabar_entry = False
        if tradable[i]:
            # 1. the market order decided on an earlier close fills at this open
            if pend != 0:
                target = 0 if pend == 2 else pend
                if side != 0 and side != target:
                    x = market_fill_price(o, -side, slip_ticks, tick)
                    mae = min(mae, (x - e_px) * side)
                    mfe = max(mfe, (x - e_px) * side)
                    g, cx = _book(trades, k, e_idx, i, side, qty, e_px, x, pv, commission, R_SIGNAL, mae, mfe)
                    k += 1
                    cash += g - cx
                    side = 0
                if target != 0 and side == 0 and has_block and no_entry[i]:
                    rejected += 1  # a prop-firm rule blocks entries on this bar
                elif target != 0 and side == 0:
                    if entry_type == 0:
                        if margin_check and cash < im * qty:
                            rejected += 1
                        else:
                            side = target
                            e_px = market_fill_price(o, side, slip_ticks, tick)
                            e_idx = i
                            cash -= commission * qty
                            mae = 0.0
                            mfe = 0.0
                            sl, tp = _bracket_levels(pend_sl, pend_tp, e_px, side, sl_ticks, tp_ticks, tick)
                    else:
                        po_side = target
                        po_left = expiry
                        po_sl = pend_sl
                        po_tp = pend_tp
                        # po_px was set when the signal was seen
                pend = 0
            # 2. a working limit / stop entry order
            if po_side != 0 and side == 0 and has_block and no_entry[i]:
                po_side = 0  # cancelled: a prop-firm rule blocks entries on this bar
            if po_side != 0 and side == 0:
                if entry_type == 1:  # limit: at the price or better, no slippage
                    px = limit_fill_price(o, h, lo, po_side, po_px, tick)
                else:  # stop: at the price or the gap open, plus slippage
                    px = stop_fill_price(o, h, lo, po_side, po_px, slip_ticks, tick)
                if not np.isnan(px):
                    if margin_check and cash < im * qty:
                        rejected += 1
                    else:
                        side = po_side
                        e_px = _tick_round(px, tick)
                        e_idx = i
                        cash -= commission * qty
                        mae = 0.0
                        mfe = 0.0
                        intrabar_entry = e_px != _tick_round(o, tick)
                        sl, tp = _bracket_levels(po_sl, po_tp, e_px, side, sl_ticks, tp_ticks, tick)
                    po_side = 0
                else:
                    po_left -= 1
                    if po_left <= 0:
                        po_side = 0
            # 3. brackets: gap through → the open; touched → the price; both touched → priority
            if side != 0 and (not np.isnan(sl) or not np.isnan(tp)):
                x, leg = bracket_exit(o, h, lo, side, sl, tp, slip_ticks, tick, stop_first, intrabar_entry)
                reason = R_STOP if leg == EXIT_STOP else R_TARGET
                if leg != EXIT_NONE:
                    g, cx = _book(trades, k, e_idx, i, side, qty, e_px, x, pv, commission, reason, mae, mfe)
                    k += 1
                    cash += g - cx
                    side = 0
            # the bar's range counts towards the open trade's excursions
            if side != 0:
                if side > 0:
                    mae = min(mae, lo - e_px)
                    mfe = max(mfe, h - e_px)
                else:
                    mae = min(mae, e_px - h)
                    mfe = max(mfe, e_px - lo)
            # 4. flat by the session's end: at this bar's close
            if flat_session and session_end[i]:
                po_side = 0
                if side != 0:
                    x = market_fill_price(c, -side, slip_ticks, tick)
                    g, cx = _book(
                        trades, k, e_idx, i, side, qty, e_px, x, pv, commission, R_SESSION, mae, mfe
                    )
                    k += 1
                    cash += g - cx
                    side = 0
            # 4b. a prop-firm rule flattens at this close
            if has_flat and flatten[i]:
                po_side = 0
                pend = 0
                if side != 0:
                    x = market_fill_price(c, -side, slip_ticks, tick)
                    g, cx = _book(trades, k, e_idx, i, side, qty, e_px, x, pv, commission, R_PROP, mae, mfe)
                    k += 1
                    cash += g - cx
                    side = 0
            # 5. maintenance margin on the close
            if margin_check and side != 0 and cash + (c - e_px) * side * pv * qty < mm * qty:
                x = market_fill_price(c, -side, slip_ticks, tick)
                g, cx = _book(trades, k, e_idx, i, side, qty, e_px, x, pv, commission, R_MARGIN, mae, mfe)
                k += 1
                cash += g - cx
                side = 0
        # 6. signals on this close → the next order (none opens on a prop-firm flatten bar)
        le = long_entry[i] and not long_exit[i]
        se = short_entry[i] and not short_exit[i]
        if has_flat and flatten[i]:
            if (le or se) and tradable[i]:
                rejected += 1  # an entry signal on a prop-firm flatten bar is refused
            le = False
            se = False
        eff = side
        if pend != 0:
            eff = 0 if pend == 2 else pend
        elif po_side != 0:
            eff = po_side
        target = eff
        if eff > 0:
            if se:
                target = -1
            elif long_exit[i]:
                target = 0
        elif eff < 0:
            if le:
                target = 1
            elif short_exit[i]:
                target = 0
        elif le and not se:
            target = 1
        elif se and not le:
            target = -1
        if target != eff and i < n - 1:
            if po_side != 0 and side == 0:
                po_side = 0  # a new decision replaces the working entry order
            pend = 2 if target == 0 else target
            if target == side:
                pend = 0
            pend_sl = np.nan
            pend_tp = np.nan
            if has_px and target != 0:
                if not np.isnan(stop_price[i]):
                    pend_sl = _tick_round(stop_price[i], tick)
                if not np.isnan(target_price[i]):
                    pend_tp = _tick_round(target_price[i], tick)
            if entry_type == 1:
                po_px = _tick_round(c - target * offset, tick)
            elif entry_type == 2:
                po_px = _tick_round(c + target * offset, tick)
            if fill_close and tradable[i] and pend != 0:
                # execute now at this close instead of the next open
                if side != 0 and side != target:
                    x = market_fill_price(c, -side, slip_ticks, tick)
                    g, cx = _book(trades, k, e_idx, i, side, qty, e_px, x, pv, commission, R_SIGNAL, mae, mfe)
                    k += 1
                    cash += g - cx
                    side = 0
                if target != 0 and entry_type == 0:
                    if (margin_check and cash < im * qty) or (has_block and no_entry[i]):
                        rejected += 1
                    else:
                        side = target
                        e_px = market_fill_price(c, side, slip_ticks, tick)
                        e_idx = i
                        cash -= commission * qty
                        mae = 0.0
                        mfe = 0.0
                        sl, tp = _bracket_levels(pend_sl, pend_tp, e_px, side, sl_ticks, tp_ticks, tick)
                    pend = 0
                elif target != 0:
                    po_side = target
                    po_left = expiry
                    po_sl = pend_sl
                    po_tp = pend_tp
                    pend = 0
                else:
                    pend = 0
        # 7. the end of the data closes what is open at the last close
        if i == n - 1 and side != 0:
            x = c
            g, cx = _book(trades, k, e_idx, i, side, qty, e_px, x, pv, commission, R_END, mae, mfe)
            k += 1
            cash += g - cx
            side = 0
        position[i] = side * qty
        equity[i] = cash + ((c - e_px) * side * pv * qty if side != 0 else 0.0)
    return equity, position, trades[:k], k, rejected
