"""The shared fill rules: hand-worked NQ examples, and agreement with the backtest kernel."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from nq_ray.backtest import config as bc
from nq_ray.backtest.kernel import T_ENTRY_PX, T_EXIT_PX, T_REASON, simulate
from nq_ray.execution import fills as fr
from tests.execution.helpers import BAR_MOVES, TICK, kernel_opts, ohlc_from_ticks


def test_market_buy_fills_at_open_plus_slippage() -> None:
    """Open 20000, 1 tick adverse on a buy → 20000.25."""
    assert fr.market_fill_price(20000.0, 1, 1.0, TICK) == 20000.25


def test_market_sell_fills_at_open_minus_slippage() -> None:
    assert fr.market_fill_price(20000.0, -1, 2.0, TICK) == 19999.5


def test_buy_limit_touched_fills_at_limit_without_slippage() -> None:
    assert fr.limit_fill_price(20010.0, 20012.0, 19995.0, 1, 20000.0, TICK) == 20000.0


def test_buy_limit_gapped_through_fills_at_the_better_open() -> None:
    assert fr.limit_fill_price(19990.0, 19995.0, 19985.0, 1, 20000.0, TICK) == 19990.0


def test_sell_limit_not_touched_does_not_fill() -> None:
    assert math.isnan(fr.limit_fill_price(20000.0, 20009.75, 19990.0, -1, 20010.0, TICK))


def test_buy_stop_touched_fills_at_stop_plus_slippage() -> None:
    assert fr.stop_fill_price(20000.0, 20012.0, 19995.0, 1, 20010.0, 1.0, TICK) == 20010.25


def test_sell_stop_fills_at_gap_open_not_stop_price() -> None:
    """Sell stop 19990, bar opens 19980 (gap down) → 19980 − 1 tick = 19979.75, not 19989.75."""
    assert fr.stop_fill_price(19980.0, 19985.0, 19970.0, -1, 19990.0, 1.0, TICK) == 19979.75


def test_stop_limit_triggered_intrabar_fills_at_stop_within_limit() -> None:
    assert fr.stop_limit_fill_price(20000.0, 20012.0, 19995.0, 1, 20010.0, 20011.0, False, TICK) == 20010.0


def test_stop_limit_gapping_past_its_limit_does_not_fill_but_triggers() -> None:
    """Buy stop 20010 limit 20011; the bar opens 20020 and never comes back to 20011."""
    px = fr.stop_limit_fill_price(20020.0, 20030.0, 20015.0, 1, 20010.0, 20011.0, False, TICK)
    assert math.isnan(px)
    assert fr.stop_triggered(20020.0, 20030.0, 20015.0, 1, 20010.0)


def test_triggered_stop_limit_works_as_a_limit() -> None:
    assert fr.stop_limit_fill_price(20020.0, 20025.0, 20008.0, 1, 20010.0, 20011.0, True, TICK) == 20011.0


def test_bracket_both_legs_touched_stop_fills_first() -> None:
    """Long, stop 19990, target 20020, bar range 19980–20030 → the stop, 19990 − 1 tick."""
    px, kind = fr.bracket_exit(20000.0, 20030.0, 19980.0, 1, 19990.0, 20020.0, 1.0, TICK, True, False)
    assert (px, kind) == (19989.75, fr.EXIT_STOP)


def test_bracket_both_legs_touched_target_first_when_configured() -> None:
    px, kind = fr.bracket_exit(20000.0, 20030.0, 19980.0, 1, 19990.0, 20020.0, 1.0, TICK, False, False)
    assert (px, kind) == (20020.0, fr.EXIT_TARGET)


def test_short_bracket_gap_through_target_fills_at_open() -> None:
    """Short, target 19950, bar opens 19940 → target at the (better) open 19940."""
    px, kind = fr.bracket_exit(19940.0, 19960.0, 19930.0, -1, 20010.0, 19950.0, 1.0, TICK, True, False)
    assert (px, kind) == (19940.0, fr.EXIT_TARGET)


def test_bracket_on_intrabar_entry_bar_checks_only_the_stop() -> None:
    px, kind = fr.bracket_exit(20000.0, 20030.0, 20000.0, 1, 19990.0, 20020.0, 1.0, TICK, True, True)
    assert kind == fr.EXIT_NONE and math.isnan(px)


def test_commission_and_pnl_in_dollars() -> None:
    """2 NQ, 20000 → 20010.25 long: 10.25 × $20 × 2 = $410; $2.25 × 2 a side."""
    assert fr.pnl_usd(20000.0, 20010.25, 1, 2.0, 20.0) == 410.0
    assert fr.commission_usd(2.0, 2.25) == 4.5


# ---- agreement with the backtest kernel -------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    moves=st.lists(BAR_MOVES, min_size=3, max_size=3),
    side=st.sampled_from([1, -1]),
    slip=st.sampled_from([0.0, 1.0, 2.0]),
    sl_ticks=st.integers(1, 60),
    tp_ticks=st.integers(1, 60),
    stop_first=st.booleans(),
)
def test_market_entry_and_bracket_exit_match_the_backtest_kernel(
    moves: list[tuple[int, int, int, int]],
    side: int,
    slip: float,
    sl_ticks: int,
    tp_ticks: int,
    stop_first: bool,
) -> None:
    """Signal on bar 0 → market entry at bar 1's open; the bracket then exits on bar 1 or 2 (or the
    kernel closes at the end of the data). The shared scalar rules give the same prices."""
    o, h, lo, c = ohlc_from_ticks(moves)
    n = len(o)
    sig = np.zeros(n, dtype=np.bool_)
    sig[0] = True
    none = np.zeros(n, dtype=np.bool_)
    le, se = (sig, none) if side > 0 else (none, sig)
    _, _, trades, k, _ = simulate(
        o,
        h,
        lo,
        c,
        le,
        none,
        se,
        none,
        np.empty(0),
        np.empty(0),
        np.ones(n, dtype=np.bool_),
        none,
        kernel_opts(slip, sl_ticks, tp_ticks, stop_first),
    )
    entry = fr.market_fill_price(o[1], side, slip, TICK)
    assert k >= 1 and trades[0, T_ENTRY_PX] == entry
    sl, tp = entry - side * sl_ticks * TICK, entry + side * tp_ticks * TICK
    for i in (1, 2):
        px, kind = fr.bracket_exit(o[i], h[i], lo[i], side, sl, tp, slip, TICK, stop_first, False)
        if kind != fr.EXIT_NONE:
            assert trades[0, T_EXIT_PX] == px
            assert int(trades[0, T_REASON]) == kind  # kernel: 1 stop_loss, 2 take_profit
            return
    assert trades[0, T_EXIT_PX] == c[-1]  # end of data


@settings(max_examples=60, deadline=None)
@given(
    moves=st.lists(BAR_MOVES, min_size=3, max_size=3),
    side=st.sampled_from([1, -1]),
    entry_type=st.sampled_from([1, 2]),
    offset=st.integers(0, 30),
    slip=st.sampled_from([0.0, 1.0]),
    sl_ticks=st.integers(1, 60),
    tp_ticks=st.integers(1, 60),
)
def test_limit_and_stop_entries_match_the_backtest_kernel(
    moves: list[tuple[int, int, int, int]],
    side: int,
    entry_type: int,
    offset: int,
    slip: float,
    sl_ticks: int,
    tp_ticks: int,
) -> None:
    """A limit (stop) entry ``offset`` ticks better (worse) than bar 0's close, working on bar 1 only;
    once filled inside bar 1 its bracket checks only the stop on that bar (the open came first)."""
    o, h, lo, c = ohlc_from_ticks(moves)
    n = len(o)
    sig = np.zeros(n, dtype=np.bool_)
    sig[0] = True
    none = np.zeros(n, dtype=np.bool_)
    le, se = (sig, none) if side > 0 else (none, sig)
    opts = kernel_opts(slip, sl_ticks, tp_ticks, True)
    opts[bc.O_ENTRY_TYPE], opts[bc.O_ENTRY_OFFSET_TICKS] = entry_type, offset
    _, _, trades, k, _ = simulate(
        o, h, lo, c, le, none, se, none, np.empty(0), np.empty(0), np.ones(n, dtype=np.bool_), none, opts
    )
    if entry_type == 1:
        px = c[0] - side * offset * TICK
        entry = fr.limit_fill_price(o[1], h[1], lo[1], side, px, TICK)
    else:
        px = c[0] + side * offset * TICK
        entry = fr.stop_fill_price(o[1], h[1], lo[1], side, px, slip, TICK)
    if math.isnan(entry):
        assert k == 0
        return
    assert k >= 1 and trades[0, T_ENTRY_PX] == entry
    sl, tp = entry - side * sl_ticks * TICK, entry + side * tp_ticks * TICK
    intrabar = entry != fr.tick_round(o[1], TICK)
    for i in (1, 2):
        x, kind = fr.bracket_exit(o[i], h[i], lo[i], side, sl, tp, slip, TICK, True, intrabar and i == 1)
        if kind != fr.EXIT_NONE:
            assert (trades[0, T_EXIT_PX], int(trades[0, T_REASON])) == (x, kind)
            return
    assert trades[0, T_EXIT_PX] == c[-1]
