"""compare_strategies: one row per strategy on the same bars and costs."""

from __future__ import annotations

import pytest

from nq_ray.backtest import BacktestConfig, run_backtest
from nq_ray.backtest.compare import compare_strategies
from nq_ray.errors import InvalidArgumentError


def test_table_rows_equal_individual_runs(nq_bars):
    cfg = BacktestConfig(commission_per_contract=1.0)
    table = compare_strategies(nq_bars, ["sma_cross", ("ema_cross", {"fast": 5, "slow": 20})], cfg)
    assert list(table.index) == ["sma_cross", "ema_cross"]
    assert (
        table.loc["ema_cross", "net_pnl_usd"]
        == run_backtest(nq_bars, "ema_cross", {"fast": 5, "slow": 20}, cfg).metrics.net_pnl_usd
    )


def test_same_strategy_twice_gets_distinct_labels(nq_bars):
    table, reports = compare_strategies(
        nq_bars,
        [("sma_cross", {"fast": 5, "slow": 20}), ("sma_cross", {"fast": 10, "slow": 40})],
        return_reports=True,
    )
    assert list(table.index) == ["sma_cross", "sma_cross#2"] and set(reports) == {"sma_cross", "sma_cross#2"}


def test_empty_list_is_rejected(nq_bars):
    with pytest.raises(InvalidArgumentError):
        compare_strategies(nq_bars, [])
