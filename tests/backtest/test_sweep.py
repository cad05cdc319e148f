"""sweep and run_many: every combination's row equals a single run_backtest; Ray and in-process agree."""

from __future__ import annotations

import numpy as np
import pytest

from nq_ray.backtest import BacktestConfig, run_backtest
from nq_ray.backtest.stats import METRIC_NAMES
from nq_ray.backtest.strategies import get_strategy
from nq_ray.backtest.sweep import best_params, expand_grid, run_many, sweep
from nq_ray.errors import InvalidArgumentError
from tests.backtest.bars import NO_COSTS

COSTS = BacktestConfig(commission_per_contract=2.5, slippage_ticks=1)


def _same(row, report):
    for name in METRIC_NAMES:
        assert row[name] == pytest.approx(getattr(report.metrics, name), rel=1e-12, abs=1e-9), name


def test_grid_drops_fast_ge_slow_combinations():
    """fast ∈ {5, 10, 20}, slow ∈ {10, 20}: valid pairs (5,10), (5,20), (10,20); 3 skipped."""
    combos, skipped = expand_grid(get_strategy("sma_cross"), {"fast": [5, 10, 20], "slow": [10, 20]})
    assert [(c["fast"], c["slow"]) for c in combos] == [(5, 10), (5, 20), (10, 20)] and skipped == 3


def test_unknown_grid_parameter_is_rejected(nq_bars):
    with pytest.raises(InvalidArgumentError, match="unknown parameter"):
        sweep(nq_bars, "sma_cross", {"fats": [2, 3]})


def test_cross_sweep_rows_equal_single_backtests(nq_bars):
    table = sweep(nq_bars, "sma_cross", {"fast": [4, 9], "slow": [21, 40]}, COSTS)
    assert len(table) == 4
    for _, row in table.iterrows():
        _same(row, run_backtest(nq_bars, "sma_cross", {"fast": row.fast, "slow": row.slow}, COSTS))


def test_generic_sweep_rows_equal_single_backtests(nq_bars):
    table = sweep(nq_bars, "rsi_reversion", {"period": [7, 14], "lower": [25.0, 30.0]}, COSTS)
    for _, row in table.iterrows():
        p = {"period": int(row.period), "lower": row.lower}
        _same(row, run_backtest(nq_bars, "rsi_reversion", p, COSTS))


def test_ema_sweep_uses_the_fused_kernel_and_agrees(nq_bars):
    table = sweep(nq_bars, "ema_cross", {"fast": [5], "slow": [30]}, BacktestConfig(allow_short=False))
    _same(
        table.iloc[0],
        run_backtest(nq_bars, "ema_cross", {"fast": 5, "slow": 30}, BacktestConfig(allow_short=False)),
    )


def test_progress_is_reported_per_chunk(nq_bars):
    seen = []
    sweep(
        nq_bars,
        "sma_cross",
        {"fast": [3, 4, 5], "slow": [20, 30]},
        chunks=3,
        progress=lambda d, t: seen.append((d, t)),
    )
    assert seen == [(1, 3), (2, 3), (3, 3)]


def test_best_params_picks_the_highest_metric(nq_bars):
    table = sweep(nq_bars, "sma_cross", {"fast": [4, 9], "slow": [21, 40]})
    best = best_params(table, "net_pnl_usd")
    assert (
        table.loc[(table.fast == best["fast"]) & (table.slow == best["slow"]), "net_pnl_usd"].iloc[0]
        == table.net_pnl_usd.max()
    )


def test_sweep_on_ray_matches_in_process(nq_bars, ray_session):
    grid = {"fast": [3, 5, 8], "slow": [13, 21]}
    seen = []
    on_ray = sweep(nq_bars, "sma_cross", grid, COSTS, chunks=3, progress=lambda d, t: seen.append(d))
    local = sweep(nq_bars, "sma_cross", grid, COSTS, parallel=False)
    np.testing.assert_allclose(on_ray[list(METRIC_NAMES)].to_numpy(), local[list(METRIC_NAMES)].to_numpy())
    assert list(dict.fromkeys(seen)) in ([1, 2, 3], [0, 1, 2, 3])  # heartbeats repeat the last count
    assert seen == sorted(seen)


def test_generic_sweep_on_ray(nq_bars, ray_session):
    grid = {"period": [10, 20], "num_std": [2.0]}
    on_ray = sweep(nq_bars, "bollinger_breakout", grid, chunks=2)
    local = sweep(nq_bars, "bollinger_breakout", grid, parallel=False)
    np.testing.assert_allclose(on_ray.net_pnl_usd, local.net_pnl_usd)


def test_run_many_prices_each_symbol_with_its_contract(nq_bars, es_5m, ray_session):
    """ES is $50 a point: its trades' P&L uses 50, NQ's 20."""
    free = BacktestConfig(**NO_COSTS)
    out = run_many(
        ["NQ", "ES"], "sma_cross", {"fast": 10, "slow": 30}, free, bars={"NQ": nq_bars, "ES": es_5m}
    )
    local = run_many(["ES"], "sma_cross", {"fast": 10, "slow": 30}, free, bars={"ES": es_5m}, parallel=False)
    assert out["ES"].trades.equals(local["ES"].trades)
    es = out["ES"].trades
    side = np.where(es.side == "long", 1, -1)
    np.testing.assert_allclose(es.pnl_usd, (es.exit_price - es.entry_price) * side * 50.0)
    assert out["NQ"].config.symbol == "NQ" and out["ES"].config.symbol == "ES"


def test_run_many_needs_symbols():
    with pytest.raises(InvalidArgumentError, match="symbols"):
        run_many([])
