"""Metrics against hand-worked numbers (a 3-session, 6-bar example) and their edge cases."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from nq_ray.backtest.kernel import N_TRADE_COLS, T_COMMISSION, T_MAE, T_MFE, T_PNL
from nq_ray.backtest.stats import METRIC_NAMES, Metrics, compute_metrics, day_ids

HOUR = 3_600_000_000_000


def _example() -> Metrics:
    equity = np.array([100_500.0, 101_000.0, 100_000.0, 99_000.0, 100_000.0, 102_000.0])
    position = np.array([0.0, 1.0, 1.0, 0.0, -1.0, 0.0])
    day = np.array([0, 0, 1, 1, 2, 2])
    times = np.arange(6, dtype=np.int64) * 12 * HOUR
    trades = np.zeros((3, N_TRADE_COLS))
    trades[:, T_PNL] = [1500.0, -500.0, 1000.0]
    trades[:, T_COMMISSION] = 10.0
    trades[:, T_MAE] = [-100.0, -600.0, -200.0]
    trades[:, T_MFE] = [1600.0, 100.0, 1200.0]
    return Metrics.from_array(compute_metrics(equity, position, trades, day, times, 100_000.0))


def test_returns_and_cagr():
    """Net 102,000 − 100,000 = $2,000; return 2%; CAGR over 3 sessions = 1.02^(252/3) − 1 = 1.02^84 − 1 ≈
    4.2773."""
    m = _example()
    assert m.net_pnl_usd == 2000.0 and m.total_return == pytest.approx(0.02)
    assert m.cagr == pytest.approx(1.02**84 - 1)
    assert m.n_days == 3


def test_sharpe_on_daily_session_returns():
    """Day-end equity 101,000 / 99,000 / 102,000 → r = 1%, −1.980198%, +3.030303%; mean 0.683368%,
    stdev (n−1) 2.520213% → Sharpe = 0.00683368 / 0.02520213 × √252 ≈ 4.3045."""
    assert _example().sharpe == pytest.approx(4.304452623714374, rel=1e-9)


def test_sortino_uses_downside_deviation():
    """Downside deviation √(0.01980198² / 3) = 0.01143268 → Sortino = 0.00683368 / 0.01143268 × √252 ≈
    9.4887."""
    assert _example().sortino == pytest.approx(9.488709007161566, rel=1e-9)


def test_max_drawdown_usd_pct_duration_and_calmar():
    """Peak 101,000 (bar 1) → trough 99,000 (bar 3): $2,000 = 1.980198%; recovered at bar 5, 48 h later =
    2 days;
    Calmar = CAGR / 0.01980198 ≈ 216.005."""
    m = _example()
    assert m.max_drawdown_usd == 2000.0
    assert m.max_drawdown_pct == pytest.approx(2000 / 101_000)
    assert m.max_drawdown_days == pytest.approx(2.0)
    assert m.calmar == pytest.approx((1.02**84 - 1) / (2000 / 101_000))


def test_trade_metrics():
    """Trades +1,500, −500, +1,000: win rate 2/3; profit factor 2,500 / 500 = 5; expectancy 2,000 / 3 =
    666.67;
    average win 1,250, average loss −500; commission 3 × 10 = $30; MAE mean −300, MFE mean 966.67."""
    m = _example()
    assert m.n_trades == 3 and m.win_rate == pytest.approx(2 / 3)
    assert m.profit_factor == 5.0 and m.expectancy_usd == pytest.approx(2000 / 3)
    assert (m.avg_win_usd, m.avg_loss_usd, m.gross_profit_usd, m.gross_loss_usd) == (
        1250.0,
        -500.0,
        2500.0,
        500.0,
    )
    assert m.commission_usd == 30.0
    assert m.avg_mae_usd == -300.0 and m.avg_mfe_usd == pytest.approx(2900 / 3)


def test_exposure_and_trades_per_day():
    """Positions at the 6 closes: 0, 1, 1, 0, −1, 0 → exposure 3/6 = 0.5; 3 trades / 3 sessions = 1 per
    day."""
    m = _example()
    assert m.exposure == 0.5 and m.trades_per_day == 1.0


def test_no_trades_gives_zeros_not_nan():
    """Flat equity, no trades: every metric is finite and 0 (Sharpe, win rate, profit factor, drawdown)."""
    eq = np.full(4, 100_000.0)
    v = compute_metrics(
        eq, np.zeros(4), np.zeros((0, N_TRADE_COLS)), np.array([0, 0, 1, 1]), np.arange(4) * HOUR, 1e5
    )
    assert not np.isnan(v).any()
    m = Metrics.from_array(v)
    assert (m.sharpe, m.sortino, m.win_rate, m.profit_factor, m.max_drawdown_usd, m.calmar) == (
        0,
        0,
        0,
        0,
        0,
        0,
    )


def test_profit_factor_without_losses_is_inf():
    """Only winning trades: gross loss 0 → profit factor = inf (documented), never NaN."""
    eq = np.array([100_000.0, 100_100.0])
    trades = np.zeros((1, N_TRADE_COLS))
    trades[0, T_PNL] = 100.0
    v = compute_metrics(eq, np.zeros(2), trades, np.array([0, 1]), np.arange(2) * HOUR, 1e5)
    assert math.isinf(v[METRIC_NAMES.index("profit_factor")])


def test_day_ids_follow_the_globex_session_date():
    """Bars at 17:55 and 18:00 ET on Monday belong to the Monday and Tuesday sessions: ids 0 then 1."""
    idx = pd.DatetimeIndex(["2026-03-02 16:55", "2026-03-02 18:00", "2026-03-02 18:05"]).tz_localize(
        "America/New_York"
    )
    assert day_ids(idx).tolist() == [0, 1, 1]
