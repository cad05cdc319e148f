"""run_backtest: report shape, bad input as typed errors, and a real-data sanity check."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from nq_ray.backtest import BacktestConfig, run_backtest
from nq_ray.errors import InvalidArgumentError, InvalidBarsError
from tests.backtest.bars import NO_COSTS, make_bars

COLUMNS = [
    "entry_time",
    "exit_time",
    "side",
    "contracts",
    "entry_price",
    "exit_price",
    "pnl_usd",
    "commission_usd",
    "exit_reason",
]


def test_report_has_trades_equity_and_metrics(nq_bars):
    r = run_backtest(
        nq_bars, "sma_cross", {"fast": 10, "slow": 30}, BacktestConfig(commission_per_contract=2.5)
    )
    assert list(r.trades.columns[: len(COLUMNS)]) == COLUMNS
    assert r.equity.index.equals(nq_bars.index) and r.equity.name == "equity_usd"
    assert r.metrics.net_pnl_usd == pytest.approx(r.trades.pnl_usd.sum())
    assert r.metrics.commission_usd == pytest.approx(5.0 * len(r.trades))
    assert len(r.trade_models()) == len(r.trades)
    assert r.summary()["metrics"]["n_trades"] == len(r.trades)


def test_no_fill_lands_outside_the_session_calendar(nq_bars):
    """Every entry and exit time of a real-data run lies in a tradable bar (not in the 17:00–18:00 halt)."""
    r = run_backtest(nq_bars, "sma_cross", {"fast": 5, "slow": 20})
    for col in ("entry_time", "exit_time"):
        hours = r.trades[col].dt.hour
        assert not (hours == 17).any()


def test_empty_bars_raise_invalid_bars():
    empty = make_bars([(1, 1, 1, 1)]).iloc[:0]
    with pytest.raises(InvalidBarsError, match="empty"):
        run_backtest(empty)


def test_too_few_bars_for_the_strategy_say_how_many_are_needed():
    bars = make_bars([(100, 101, 99, 100)] * 10)
    with pytest.raises(InvalidBarsError, match="at least 31"):
        run_backtest(bars, "sma_cross", {"fast": 10, "slow": 30})


def test_nan_prices_are_rejected():
    bars = make_bars([(100, 101, 99, 100)] * 3)
    bars.iloc[1, 3] = np.nan
    with pytest.raises(InvalidBarsError, match="NaN"):
        run_backtest(bars, lambda d, p: {})


def test_non_dataframe_is_rejected():
    with pytest.raises(InvalidBarsError, match="DataFrame"):
        run_backtest(np.zeros((3, 4)))  # type: ignore[arg-type]


def test_unsorted_bars_are_rejected():
    bars = make_bars([(100, 101, 99, 100)] * 3).iloc[::-1]
    with pytest.raises(InvalidBarsError, match="sorted"):
        run_backtest(bars, lambda d, p: {})


def test_fast_ge_slow_is_invalid_argument(nq_bars):
    with pytest.raises(InvalidArgumentError, match=r"fast \(30\) must be < slow \(10\)"):
        run_backtest(nq_bars, "sma_cross", {"fast": 30, "slow": 10})


def test_daily_bars_run_without_the_intraday_session_mask(nq_daily):
    r = run_backtest(nq_daily, "sma_cross", {"fast": 5, "slow": 20})
    assert r.metrics.n_trades > 0 and r.metrics.n_days == len(nq_daily)


def test_equity_is_marked_to_market_at_each_close():
    """Long 1 NQ from bar 1 open 101: equity at bar 2 close 102.5 = 100,000 + 1.5 × 20 = 100,030."""
    bars = make_bars([(100, 101, 99, 100.5), (101, 102, 100, 101.5), (102, 103, 101, 102.5)])
    le = np.array([True, False, False])
    r = run_backtest(bars, lambda d, p: {"long_entry": le}, config=BacktestConfig(**NO_COSTS))
    assert r.equity.tolist()[:2] == [100_000.0, 100_010.0]
    assert isinstance(r.equity, pd.Series)


def test_the_backtest_core_does_not_import_ray():
    """The pure core stays importable (and fast to import) without Ray."""
    import subprocess
    import sys

    code = "import sys, nq_ray.backtest; assert 'ray' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
