"""walk_forward: fold windows, in-sample choice, stitched OOS equity that conserves P&L."""

from __future__ import annotations

import itertools

import pytest

from nq_ray.backtest.walkforward import fold_bounds, walk_forward, walk_forward_efficiency
from nq_ray.errors import InvalidArgumentError


def test_rolling_and_anchored_fold_bounds():
    """100 bars, 4 folds → blocks of 20: rolling trains [20k, 20k+20) and tests the next 20; anchored
    from 0."""
    assert fold_bounds(100, 4, "rolling") == [
        (0, 20, 20, 40),
        (20, 40, 40, 60),
        (40, 60, 60, 80),
        (60, 80, 80, 100),
    ]
    assert fold_bounds(100, 4, "anchored")[2] == (0, 60, 60, 80)


def test_stitched_equity_conserves_oos_pnl(nq_bars):
    """Stitched final equity − capital = Σ OOS trade P&L = Σ per-fold OOS net P&L."""
    r = walk_forward(nq_bars, "sma_cross", {"fast": [5, 10], "slow": [20, 40]}, n_folds=3)
    assert len(r.folds) == 3
    assert r.equity.iloc[-1] - 100_000 == pytest.approx(r.trades.pnl_usd.sum())
    assert r.folds.oos_net_pnl_usd.sum() == pytest.approx(r.metrics.net_pnl_usd)
    assert r.equity.index[0] == r.folds.test_start.iloc[0]
    for _, f in r.folds.iterrows():
        assert f.params["fast"] in (5, 10) and f.params["slow"] in (20, 40)


def test_oos_trades_start_inside_their_test_window(nq_bars):
    r = walk_forward(nq_bars, "sma_cross", {"fast": [5], "slow": [20]}, n_folds=2, mode="anchored")
    for k, f in r.folds.iterrows():
        t = r.trades[r.trades.fold == k]
        assert (t.entry_time >= f.test_start).all() and (t.exit_time <= f.test_end).all()


def test_folds_on_ray_match_in_process(nq_bars, ray_session):
    grid = {"fast": [5, 10], "slow": [20]}
    seen = []
    on_ray = walk_forward(nq_bars, "sma_cross", grid, n_folds=2, progress=lambda d, t: seen.append(d))
    local = walk_forward(nq_bars, "sma_cross", grid, n_folds=2, parallel=False)
    assert on_ray.equity.equals(local.equity) and on_ray.metrics == local.metrics
    # one advance per fold; on Ray a heartbeat repeats the last count while no fold finishes (map_tasks)
    assert seen == sorted(seen) and [k for k, _ in itertools.groupby(seen) if k] == [1, 2]


def test_bad_mode_and_metric_are_rejected(nq_bars):
    with pytest.raises(InvalidArgumentError, match="mode"):
        walk_forward(nq_bars, "sma_cross", {"fast": [5], "slow": [20]}, mode="sideways")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match="metric"):
        walk_forward(nq_bars, "sma_cross", {"fast": [5], "slow": [20]}, metric="luck")


def test_walk_forward_efficiency_is_pnl_per_bar_oos_over_in_sample():
    """Pardo's example shape: $500 over 100 OOS bars after $2,000 over 200 in-sample bars → 5 / 10 = 0.5;
    a losing OOS window gives a negative efficiency."""
    assert walk_forward_efficiency(500.0, 100, 2000.0, 200) == 0.5
    assert walk_forward_efficiency(-250.0, 50, 1000.0, 100) == -0.5


@pytest.mark.parametrize(("is_pnl", "test_bars", "train_bars"), [(0.0, 10, 10), (-5.0, 10, 10), (9.0, 0, 10)])
def test_walk_forward_efficiency_is_undefined_without_in_sample_profit_or_bars(is_pnl, test_bars, train_bars):
    assert walk_forward_efficiency(100.0, test_bars, is_pnl, train_bars) is None
