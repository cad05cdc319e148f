"""Fill rules of the kernel, one test each, with the expected numbers worked by hand (NQ: $20/point)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nq_ray.backtest import BacktestConfig, run_backtest
from tests.backtest.bars import NO_COSTS, fixed, make_bars

# o, h, l, c: a gentle up-move used by several tests
UP = [
    (100.0, 101.0, 99.0, 100.5),
    (101.0, 102.0, 100.0, 101.5),
    (102.0, 103.0, 101.0, 102.5),
    (103.25, 104.0, 103.0, 103.5),
    (104.0, 105.0, 103.0, 104.0),
]


def _run(rows, fn, **cfg):
    return run_backtest(make_bars(rows), fn, config=BacktestConfig(**(NO_COSTS | cfg)))


def test_signal_on_close_fills_at_next_open():
    """Long signal on bar 0, exit signal on bar 2 → buy bar 1 open 101, sell bar 3 open 103.25:
    2.25 pts × $20 = $45."""
    r = _run(UP, fixed(5, long_entry=[0], long_exit=[2]))
    t = r.trades.iloc[0]
    assert (t.entry_price, t.exit_price, t.pnl_usd, t.exit_reason) == (101.0, 103.25, 45.0, "signal")
    assert t.entry_time == r.equity.index[1] and t.exit_time == r.equity.index[3]


def test_fill_close_fills_at_the_signal_bar_close():
    """fill="close": buy bar 0 close 100.5, sell bar 2 close 102.5: 2 pts × $20 = $40."""
    r = _run(UP, fixed(5, long_entry=[0], long_exit=[2]), fill="close")
    t = r.trades.iloc[0]
    assert (t.entry_price, t.exit_price, t.pnl_usd) == (100.5, 102.5, 40.0)


def test_short_trade_pnl():
    """Short at bar 1 open 101, cover at bar 3 open 103.25: −2.25 pts × $20 = −$45."""
    r = _run(UP, fixed(5, short_entry=[0], short_exit=[2]))
    t = r.trades.iloc[0]
    assert (t.side, t.entry_price, t.exit_price, t.pnl_usd) == ("short", 101.0, 103.25, -45.0)


def test_commission_slippage_and_contracts():
    """2 contracts, $2.50/contract/side, 1 tick slippage: buy 101 + 0.25 = 101.25, sell 103.25 − 0.25 =
    103.00;
    gross 1.75 × 20 × 2 = $70, commission 2.50 × 2 sides × 2 = $10, net $60."""
    r = _run(
        UP,
        fixed(5, long_entry=[0], long_exit=[2]),
        contracts=2,
        commission_per_contract=2.5,
        slippage_ticks=1,
    )
    t = r.trades.iloc[0]
    assert (t.entry_price, t.exit_price, t.contracts) == (101.25, 103.0, 2)
    assert (t.commission_usd, t.pnl_usd) == (10.0, 60.0)
    assert r.equity.iloc[-1] == 100_060.0


def test_open_position_closes_at_last_close_as_end_of_data():
    """Long from bar 1 open 101, never exited: closed at the last close 104: 3 pts × $20 = $60."""
    r = _run(UP, fixed(5, long_entry=[0]))
    t = r.trades.iloc[0]
    assert (t.exit_price, t.exit_reason, t.pnl_usd) == (104.0, "end_of_data", 60.0)
    assert t.exit_time == r.equity.index[-1]


STOP_ROWS = [
    (100.0, 101.0, 99.5, 100.5),
    (100.0, 100.5, 99.0, 99.5),  # touches 99.00
    (99.5, 100.0, 99.5, 100.0),
]


def test_stop_touched_inside_bar_fills_at_stop_price():
    """Long at bar 1 open 100, stop 4 ticks = 1 pt below = 99.00; bar 1 low 99.00 touches it → 99.00, −$20."""
    r = _run(STOP_ROWS, fixed(3, long_entry=[0]), stop_loss_ticks=4)
    t = r.trades.iloc[0]
    assert (t.exit_price, t.exit_reason, t.pnl_usd) == (99.0, "stop_loss", -20.0)


def test_stop_fills_at_gap_open_not_stop_price():
    """Long at 100, stop 99.00; bar 2 opens at 98.00 (gap through) → fills at the open 98.00, −2 pts =
    −$40."""
    rows = [(100.0, 101.0, 99.5, 100.5), (100.0, 100.5, 99.5, 100.0), (98.0, 98.5, 97.5, 98.0)]
    r = _run(rows, fixed(3, long_entry=[0]), stop_loss_ticks=4)
    t = r.trades.iloc[0]
    assert (t.exit_price, t.exit_reason, t.pnl_usd) == (98.0, "stop_loss", -40.0)


def test_short_stop_fills_above_entry():
    """Short at bar 1 open 100, stop 4 ticks above = 101.00; bar 2 high 101.5 → covers at 101, −$20."""
    rows = [(100.0, 100.5, 99.5, 100.0), (100.0, 100.5, 99.5, 100.0), (100.5, 101.5, 100.0, 101.0)]
    r = _run(rows, fixed(3, short_entry=[0]), stop_loss_ticks=4)
    t = r.trades.iloc[0]
    assert (t.exit_price, t.exit_reason, t.pnl_usd) == (101.0, "stop_loss", -20.0)


TARGET_ROWS = [
    (100.0, 101.0, 99.5, 100.5),
    (100.0, 100.5, 99.5, 100.0),
    (101.0, 102.5, 100.5, 102.0),  # touches 102.00
]


def test_target_touched_inside_bar_fills_at_target_price():
    """Long at 100, target 8 ticks = 2 pts above = 102.00; bar 2 high 102.5 → 102.00, +$40."""
    r = _run(TARGET_ROWS, fixed(3, long_entry=[0]), take_profit_ticks=8)
    t = r.trades.iloc[0]
    assert (t.exit_price, t.exit_reason, t.pnl_usd) == (102.0, "take_profit", 40.0)


def test_target_fills_at_gap_open():
    """Long at 100, target 102.00; bar 2 opens at 103.00 → fills at the open 103.00, +3 pts = +$60."""
    rows = [*TARGET_ROWS[:2], (103.0, 103.5, 102.5, 103.0)]
    r = _run(rows, fixed(3, long_entry=[0]), take_profit_ticks=8)
    assert r.trades.iloc[0].exit_price == 103.0 and r.trades.iloc[0].pnl_usd == 60.0


BOTH_ROWS = [
    (100.0, 101.0, 99.5, 100.5),
    (100.0, 100.5, 99.5, 100.0),
    (100.5, 102.5, 98.5, 100.0),  # touches stop 99.00 and target 102.00
]


def test_bar_touching_stop_and_target_fills_stop_first():
    """Stop 99.00 and target 102.00 both inside bar 2 → conservative: the stop, −1 pt = −$20."""
    r = _run(BOTH_ROWS, fixed(3, long_entry=[0]), stop_loss_ticks=4, take_profit_ticks=8)
    assert (r.trades.iloc[0].exit_reason, r.trades.iloc[0].pnl_usd) == ("stop_loss", -20.0)


def test_bar_touching_both_fills_target_when_configured():
    """bracket_priority="target" → the target 102.00, +2 pts = +$40."""
    r = _run(
        BOTH_ROWS, fixed(3, long_entry=[0]), stop_loss_ticks=4, take_profit_ticks=8, bracket_priority="target"
    )
    assert (r.trades.iloc[0].exit_reason, r.trades.iloc[0].pnl_usd) == ("take_profit", 40.0)


def test_bracket_in_points_rounds_to_ticks():
    """stop_loss_points=1.0 on NQ = 4 ticks → the same stop 99.00 as stop_loss_ticks=4, −$20."""
    r = _run(STOP_ROWS, fixed(3, long_entry=[0]), stop_loss_points=1.0)
    assert r.trades.iloc[0].exit_price == 99.0


def test_bracket_prices_from_the_signal_function():
    """A stop price of 99.50 given with the signal → bar 1 low 99.00 touches it → exit 99.50, −0.5 pt =
    −$10."""
    r = _run(STOP_ROWS, fixed(3, long_entry=[0], stop_price={0: 99.5}))
    t = r.trades.iloc[0]
    assert (t.exit_price, t.exit_reason, t.pnl_usd) == (99.5, "stop_loss", -10.0)


LIMIT_ROWS = [
    (100.0, 101.0, 99.0, 100.5),  # signal: limit at 100.5 − 4 ticks = 99.50
    (101.0, 102.0, 100.0, 101.5),  # low 100 > 99.5: no fill
    (100.0, 100.5, 99.0, 99.75),  # low 99 ≤ 99.5: fill at 99.50
    (100.0, 100.0, 100.0, 100.0),
]


def test_limit_entry_expires_unfilled():
    """Limit 99.50 valid 1 bar; bar 1's low is 100 → cancelled, no trade."""
    r = _run(LIMIT_ROWS, fixed(4, long_entry=[0]), entry_order="limit", entry_offset_ticks=4)
    assert len(r.trades) == 0


def test_limit_entry_fills_at_limit_price_when_touched():
    """Limit 99.50 valid 2 bars; bar 2 low 99 touches → buy 99.50; closed at the last close 100: +0.5 ×
    20 = $10."""
    r = _run(
        LIMIT_ROWS, fixed(4, long_entry=[0]), entry_order="limit", entry_offset_ticks=4, entry_expiry_bars=2
    )
    t = r.trades.iloc[0]
    assert (t.entry_price, t.pnl_usd) == (99.5, 10.0)


def test_limit_entry_fills_at_gap_open():
    """Limit 99.50; bar 1 opens at 99.00, below the limit → buy at the open 99.00 (better than the limit)."""
    rows = [LIMIT_ROWS[0], (99.0, 99.5, 98.5, 99.25), LIMIT_ROWS[3]]
    r = _run(rows, fixed(3, long_entry=[0]), entry_order="limit", entry_offset_ticks=4)
    assert r.trades.iloc[0].entry_price == 99.0


def test_stop_entry_fills_at_stop_price_and_at_gap_open():
    """Stop entry at 100.5 + 4 ticks = 101.50: bar 1 (open 101, high 102) → 101.50; a bar opening at 102
    → 102."""
    r = _run(LIMIT_ROWS, fixed(4, long_entry=[0]), entry_order="stop", entry_offset_ticks=4)
    assert r.trades.iloc[0].entry_price == 101.5
    rows = [LIMIT_ROWS[0], (102.0, 102.5, 101.75, 102.0), LIMIT_ROWS[3]]
    r = _run(rows, fixed(3, long_entry=[0]), entry_order="stop", entry_offset_ticks=4)
    assert r.trades.iloc[0].entry_price == 102.0


def _halt_index() -> pd.DatetimeIndex:
    times = ["16:57", "16:58", "16:59", "17:00", "17:01", "18:00", "18:01"]
    return pd.DatetimeIndex([f"2026-03-03 {t}" for t in times]).tz_localize("America/New_York")


HALT_ROWS = [(100.0 + i, 101.0 + i, 99.0 + i, 100.5 + i) for i in range(7)]


def test_no_fill_during_daily_halt_order_waits_for_session_open():
    """Signal on the 16:59 close; 17:00 and 17:01 lie in the daily halt → the buy fills at the 18:00 open
    (105),
    and the position closes at the last close 106.5: +1.5 × 20 = $30."""
    r = run_backtest(
        make_bars(HALT_ROWS, index=_halt_index()), fixed(7, long_entry=[2]), config=BacktestConfig(**NO_COSTS)
    )
    t = r.trades.iloc[0]
    assert t.entry_time == pd.Timestamp("2026-03-03 18:00", tz="America/New_York")
    assert (t.entry_price, t.pnl_usd) == (105.0, 30.0)


def test_flat_at_session_end_closes_at_last_session_bar():
    """Buy at the 16:58 open 101; 16:59 is the session's last tradable bar → sell at its close 102.5: +$30."""
    r = run_backtest(
        make_bars(HALT_ROWS, index=_halt_index()),
        fixed(7, long_entry=[0]),
        config=BacktestConfig(flat_at_session_end=True, **NO_COSTS),
    )
    t = r.trades.iloc[0]
    assert t.exit_time == pd.Timestamp("2026-03-03 16:59", tz="America/New_York")
    assert (t.exit_price, t.exit_reason, t.pnl_usd) == (102.5, "session_end", 30.0)


def test_entry_refused_below_initial_margin():
    """$30,000 of capital < NQ initial margin $36,300 → the entry is refused, no trade."""
    r = _run(UP, fixed(5, long_entry=[0]), initial_capital=30_000)
    assert len(r.trades) == 0 and r.rejected_entries == 1


def test_maintenance_margin_call_liquidates_at_close():
    """$40,000, long 1 NQ at 20,000; bar 2 closes at 19,600: equity 40,000 − 400 × 20 = 32,000 < $33,000
    maintenance → liquidated at that close, −$8,000."""
    rows = [
        (20000.0, 20001.0, 19999.0, 20000.0),
        (20000.0, 20001.0, 19990.0, 19995.0),
        (19990.0, 19995.0, 19590.0, 19600.0),
        (19600.0, 19700.0, 19500.0, 19650.0),
    ]
    r = _run(rows, fixed(4, long_entry=[0]), initial_capital=40_000)
    t = r.trades.iloc[0]
    assert (t.exit_price, t.exit_reason, t.pnl_usd) == (19600.0, "margin_call", -8000.0)


def test_plain_equity_series_with_overridden_point_value_and_tick():
    """symbol SPY with point_value 1, tick 0.01, 100 shares: 101 → 103.25 = 2.25 × 1 × 100 = $225."""
    r = _run(
        UP,
        fixed(5, long_entry=[0], long_exit=[2]),
        symbol="SPY",
        point_value=1.0,
        tick_size=0.01,
        contracts=100,
        session_calendar=False,
    )
    assert r.trades.iloc[0].pnl_usd == pytest.approx(225.0)


def test_short_entry_while_long_reverses_at_one_price():
    """Long at bar 1 open 101; short signal on bar 2 → sell 2 at bar 3 open 103.25: close long (+$45),
    open short;
    the short closes at the last close 104 (−0.75 × 20 = −$15)."""
    r = _run(UP, fixed(5, long_entry=[0], short_entry=[2]))
    assert list(r.trades.side) == ["long", "short"]
    assert list(r.trades.pnl_usd) == [45.0, -15.0]


def test_shorts_ignored_when_not_allowed():
    """allow_short=False: a short entry signal on a flat book does nothing."""
    r = _run(UP, fixed(5, short_entry=[0]), allow_short=False)
    assert len(r.trades) == 0


# --- properties -------------------------------------------------------------------------------------


@st.composite
def scenario(draw):
    n = draw(st.integers(min_value=5, max_value=80))
    seed = draw(st.integers(min_value=0, max_value=2**31 - 1))
    rng = np.random.default_rng(seed)
    ticks = 20000 * 4 + np.cumsum(rng.integers(-8, 9, size=n))
    close = ticks / 4.0
    open_ = np.r_[close[0], close[:-1]] + rng.integers(-2, 3, size=n) / 4.0
    high = np.maximum(open_, close) + rng.integers(0, 6, size=n) / 4.0
    low = np.minimum(open_, close) - rng.integers(0, 6, size=n) / 4.0
    rows = list(zip(open_, high, low, close, strict=True))
    ev = {
        k: np.flatnonzero(rng.random(n) < 0.15).tolist()
        for k in ("long_entry", "long_exit", "short_entry", "short_exit")
    }
    cfg = {
        "contracts": draw(st.integers(1, 3)),
        "commission_per_contract": draw(st.sampled_from([0.0, 0.62, 2.5])),
        "slippage_ticks": draw(st.integers(0, 2)),
        "fill": draw(st.sampled_from(["next_open", "close"])),
        "entry_order": draw(st.sampled_from(["market", "limit", "stop"])),
        "entry_offset_ticks": draw(st.integers(0, 4)),
        "stop_loss_ticks": draw(st.sampled_from([None, 4, 12])),
        "take_profit_ticks": draw(st.sampled_from([None, 6, 20])),
        "initial_capital": 1_000_000.0,
    }
    return rows, ev, cfg


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenario())
def test_property_pnl_conservation(sc):
    """Final equity − initial capital = Σ trade pnl_usd, and each trade's pnl = points × $20 × contracts
    − commission."""
    rows, ev, cfg = sc
    r = _run(rows, fixed(len(rows), **ev), **cfg)
    assert r.equity.iloc[-1] - cfg["initial_capital"] == pytest.approx(r.trades.pnl_usd.sum(), abs=1e-6)
    t = r.trades
    side = np.where(t.side == "long", 1, -1)
    expected = (t.exit_price - t.entry_price) * side * 20.0 * t.contracts - t.commission_usd
    np.testing.assert_allclose(t.pnl_usd, expected, atol=1e-6)
    np.testing.assert_allclose(t.commission_usd, 2 * cfg["commission_per_contract"] * t.contracts, atol=1e-9)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenario())
def test_property_fills_on_tick_grid(sc):
    """Every entry and exit price is a whole number of 0.25 ticks; positions never exceed the configured
    size."""
    rows, ev, cfg = sc
    r = _run(rows, fixed(len(rows), **ev), **cfg)
    for col in ("entry_price", "exit_price"):
        q = r.trades[col].to_numpy() / 0.25
        np.testing.assert_allclose(q, np.round(q), atol=1e-9)
    assert r.position.abs().max() <= cfg["contracts"]


def test_mae_and_mfe_from_bar_extremes_while_open():
    """Long from bar 1 open 101 to bar 3 open 103.25. Held through bar 1 (low 100, high 102) and bar 2
    (low 101, high 103), then the exit price: MAE = 100 − 101 = −1 pt = −$20; MFE = 103.25 − 101 = $45."""
    r = _run(UP, fixed(5, long_entry=[0], long_exit=[2]))
    t = r.trades.iloc[0]
    assert (t.mae_usd, t.mfe_usd) == (-20.0, 45.0)
