"""Monte Carlo resampling of trades: reproducible, shuffle keeps the total, drawdown quantiles."""

from __future__ import annotations

import numpy as np
import pytest

from nq_ray.backtest.montecarlo import monte_carlo
from nq_ray.errors import InvalidArgumentError


def test_shuffle_keeps_final_pnl_and_bounds_drawdown():
    """Trades +100, −300, +200: every order ends at $0 net, and every order draws down exactly $300 (the one
    loss, taken from whatever peak precedes it, is never partly recovered before the trough)."""
    r = monte_carlo(np.array([100.0, -300.0, 200.0]), n_sims=200, method="shuffle", seed=1)
    assert np.allclose(r.simulations.final_pnl_usd, 0.0)
    assert (r.simulations.max_drawdown_usd == 300.0).all()


def test_same_seed_same_result():
    pnl = np.random.default_rng(0).normal(0, 100, 50)
    a = monte_carlo(pnl, 100, seed=7).simulations
    b = monte_carlo(pnl, 100, seed=7).simulations
    assert a.equals(b)


def test_drawdown_at_confidence_and_bad_confidence():
    r = monte_carlo(np.array([100.0, -50.0, 20.0, -80.0]), n_sims=500)
    assert r.drawdown_at(0.95) >= r.summary.loc[50, "max_drawdown_usd"]
    for bad in (0.0, 1.0, 1.5):
        with pytest.raises(InvalidArgumentError, match="confidence"):
            r.drawdown_at(bad)


def test_no_trades_is_a_typed_error():
    with pytest.raises(InvalidArgumentError, match="no trades"):
        monte_carlo(np.array([]))
