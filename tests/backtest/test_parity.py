"""Parity with the reference engines (the ``[bench]`` extra): SMA-cross, next-open fills, no costs.

The same TA-Lib SMA(10)/SMA(30) cross events drive nq-ray, vectorbt and backtesting.py on the bundled
NQ bars (the reference engines have no session calendar or margin, so both are off here); trades —
entry/exit bars, prices, side — and P&L (points × $20) must be identical. Skipped without the extra.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from nq_ray.backtest import BacktestConfig, BarData, get_strategy, run_backtest

CFG = BacktestConfig(
    session_calendar=False,
    margin_check=False,
    initial_capital=1e9,
    commission_per_contract=0,
    slippage_ticks=0,
)
PARAMS = {"fast": 10, "slow": 30}
N_BARS = 4000


@pytest.fixture(scope="module")
def case(nq_bars):
    bars = nq_bars.iloc[:N_BARS]
    sig = get_strategy("sma_cross").signals(BarData.from_frame(bars), PARAMS)
    ours = run_backtest(bars, "sma_cross", PARAMS, CFG).trades
    return bars, sig, ours


def test_trades_identical_to_vectorbt(case):
    vbt = pytest.importorskip("vectorbt")
    bars, sig, ours = case
    idx = bars.index.tz_localize(None)

    def shifted(a):  # a signal on bar i's close acts at bar i+1's open
        return pd.Series(np.r_[False, a[:-1]], index=idx)

    pf = vbt.Portfolio.from_signals(
        close=pd.Series(bars.close.to_numpy(), index=idx),
        entries=shifted(sig.long_entry),
        exits=shifted(sig.long_exit),
        short_entries=shifted(sig.short_entry),
        short_exits=shifted(sig.short_exit),
        price=pd.Series(bars.open.to_numpy(), index=idx),
        size=1.0,
        init_cash=1e12,
        fees=0.0,
        freq="5min",
    )
    ref = pf.trades.records_readable
    assert len(ref) == len(ours)
    assert (ref["Entry Timestamp"].to_numpy() == ours.entry_time.dt.tz_localize(None).to_numpy()).all()
    assert (ref["Exit Timestamp"].to_numpy() == ours.exit_time.dt.tz_localize(None).to_numpy()).all()
    np.testing.assert_array_equal(ref["Avg Entry Price"].to_numpy(), ours.entry_price.to_numpy())
    np.testing.assert_array_equal(ref["Avg Exit Price"].to_numpy(), ours.exit_price.to_numpy())
    assert (np.where(ref["Direction"] == "Long", "long", "short") == ours.side.to_numpy()).all()
    np.testing.assert_allclose(ref["PnL"].to_numpy() * 20.0, ours.pnl_usd.to_numpy(), rtol=0, atol=1e-6)


def test_trades_identical_to_backtesting_py(case):
    bt = pytest.importorskip("backtesting")
    bars, sig, ours = case
    df = bars.rename(columns=str.capitalize)
    df.index = df.index.tz_localize(None)
    le, se = sig.long_entry, sig.short_entry

    class SmaCross(bt.Strategy):
        def init(self):
            pass

        def next(self):
            i = len(self.data) - 1
            if le[i]:
                self.buy(size=1)
            elif se[i]:
                self.sell(size=1)

    # backtesting.py's finalize_trades closes the last trade at the last bar's *open*; we (and vectorbt)
    # close it at the last close, so compare the closed round trips and check ours separately.
    with pytest.warns(UserWarning, match="remain open"):
        stats = bt.Backtest(df, SmaCross, cash=1e9, commission=0.0, exclusive_orders=True).run()
    ref = stats._trades.sort_values("EntryBar", kind="stable").reset_index(drop=True)
    last = ours.iloc[-1]
    assert last.exit_reason == "end_of_data" and last.exit_price == bars.close.iloc[-1]
    ours = ours.iloc[:-1]
    assert len(ref) == len(ours)
    assert (ref.EntryTime.to_numpy() == ours.entry_time.dt.tz_localize(None).to_numpy()).all()
    assert (ref.ExitTime.to_numpy() == ours.exit_time.dt.tz_localize(None).to_numpy()).all()
    np.testing.assert_array_equal(ref.EntryPrice.to_numpy(), ours.entry_price.to_numpy())
    np.testing.assert_array_equal(ref.ExitPrice.to_numpy(), ours.exit_price.to_numpy())
    np.testing.assert_allclose(ref.PnL.to_numpy() * 20.0, ours.pnl_usd.to_numpy(), rtol=0, atol=1e-6)
