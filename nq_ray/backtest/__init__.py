"""Futures backtesting: a numba kernel, strategies, metrics, sweeps on Ray, walk-forward, Monte Carlo.

Importing this package never imports Ray: sweeps, ``run_many`` and walk-forward folds use Ray only when
the caller has already initialised it.
"""

from nq_ray.backtest.compare import compare_strategies
from nq_ray.backtest.config import BacktestConfig
from nq_ray.backtest.engine import BacktestReport, run_backtest
from nq_ray.backtest.montecarlo import MonteCarloResult, monte_carlo
from nq_ray.backtest.overfitting import (
    PBOResult,
    deflated_sharpe_ratio,
    probabilistic_sharpe_ratio,
    probability_of_backtest_overfitting,
)
from nq_ray.backtest.stats import METRIC_NAMES, Metrics
from nq_ray.backtest.strategies import (
    BarData,
    Signals,
    Strategy,
    get_strategy,
    list_strategies,
    register_strategy,
)
from nq_ray.backtest.sweep import best_params, run_many, sweep
from nq_ray.backtest.walkforward import WalkForwardResult, walk_forward, walk_forward_efficiency

__all__ = [
    "METRIC_NAMES",
    "BacktestConfig",
    "BacktestReport",
    "BarData",
    "Metrics",
    "MonteCarloResult",
    "PBOResult",
    "Signals",
    "Strategy",
    "WalkForwardResult",
    "best_params",
    "compare_strategies",
    "deflated_sharpe_ratio",
    "get_strategy",
    "list_strategies",
    "monte_carlo",
    "probabilistic_sharpe_ratio",
    "probability_of_backtest_overfitting",
    "register_strategy",
    "run_backtest",
    "run_many",
    "sweep",
    "walk_forward",
    "walk_forward_efficiency",
]
