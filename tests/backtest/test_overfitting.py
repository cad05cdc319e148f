"""Overfitting statistics: PSR, MinTRL, E[max SR], DSR against the papers' numbers and an independent
implementation; PBO (CSCV) on pure noise and on a grid with a planted edge; the sweep's report."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from nq_ray.backtest import run_backtest, sweep
from nq_ray.backtest.overfitting import (
    deflated_sharpe_ratio,
    expected_max_sharpe,
    minimum_track_record_length,
    probabilistic_sharpe_ratio,
    probability_of_backtest_overfitting,
)
from nq_ray.errors import InvalidArgumentError

# --- the papers' worked example -------------------------------------------------------------------
# Bailey & López de Prado (2014), "The Deflated Sharpe Ratio", Journal of Portfolio Management 40(5),
# section "A numerical example": annualised SR 2.5 over 5 years of daily returns (T = 1250, 250 a year),
# N = 100 trials whose annualised Sharpe ratios have variance 1/2, skewness −3, kurtosis 10. The paper
# gives E[max SR] ≈ 0.1132 per day (≈ 1.79 annualised) and DSR ≈ 0.9004.
DAILY_SR = 2.5 / math.sqrt(250)
DAILY_VAR = 0.5 / 250


def test_expected_max_sharpe_matches_the_dsr_paper_example():
    assert expected_max_sharpe(100, DAILY_VAR) == pytest.approx(0.1132, abs=5e-5)


def test_deflated_sharpe_ratio_matches_the_dsr_paper_example():
    assert round(deflated_sharpe_ratio(DAILY_SR, 1250, 100, DAILY_VAR, skew=-3.0, kurtosis=10.0), 4) == 0.9004


def test_psr_against_the_expected_maximum_is_the_dsr_of_the_paper_example():
    """DSR is PSR(SR₀) with SR₀ = E[max SR] (eq. 8 of the 2014 paper): the same 0.9004."""
    psr = probabilistic_sharpe_ratio(DAILY_SR, 1250, expected_max_sharpe(100, DAILY_VAR), -3.0, 10.0)
    assert round(psr, 4) == 0.9004


# mlfinlab's examples (hudson-and-thames/mlfinlab, mlfinlab/tests/test_backtest_statistics.py): SR 1.14
# against a benchmark of 1 over 250 normal returns — PSR 0.95727 and MinTRL 228.73497 at α = 0.05. Not
# the 2012 paper's own table (not at hand), but a published implementation of its eqs. (11) and (13).
def test_psr_matches_mlfinlabs_published_example():
    assert probabilistic_sharpe_ratio(1.14, 250, 1.0, 0.0, 3.0) == pytest.approx(0.95727, abs=1e-4)


def test_min_track_record_length_matches_mlfinlabs_published_example():
    assert minimum_track_record_length(1.14, 1.0, 0.0, 3.0, probability=0.95) == pytest.approx(
        228.73497, abs=1e-4
    )


def test_psr_of_normal_returns_is_the_t_statistic_probability():
    """Hand-worked: SR = 0.1, n = 101, normal (γ₃ = 0, γ₄ = 3): z = 0.1·√100 / √(1 + 0.5·0.01) = 0.99751;
    Φ(z) = 0.84074."""
    assert probabilistic_sharpe_ratio(0.1, 101) == pytest.approx(0.84074, abs=1e-5)


def test_min_track_record_length_is_where_psr_reaches_the_probability():
    """MinTRL inverts PSR: at n = MinTRL returns, PSR(SR*) is exactly the asked probability."""
    n = minimum_track_record_length(0.08, 0.02, skew=-1.0, kurtosis=6.0, probability=0.95)
    assert probabilistic_sharpe_ratio(0.08, n, 0.02, -1.0, 6.0) == pytest.approx(0.95, abs=1e-12)


def test_min_track_record_length_is_infinite_without_an_edge_over_the_benchmark():
    assert minimum_track_record_length(0.01, benchmark_sharpe=0.02) == math.inf


def test_one_trial_deflates_nothing():
    assert deflated_sharpe_ratio(0.05, 500, 1, 0.01) == probabilistic_sharpe_ratio(0.05, 500)


# --- an independent implementation, straight from the papers' formulas -----------------------------
def _reference_dsr(sr, t, n, v, g3, g4):
    """Eq. (6)–(8) of Bailey & López de Prado (2014), written as the paper does (σ̂(SR) first)."""
    gamma = 0.57721566490153286
    sr0 = math.sqrt(v) * (
        (1 - gamma) * stats.norm.ppf(1 - 1 / n) + gamma * stats.norm.ppf(1 - 1 / (n * math.e))
    )
    sigma = math.sqrt((1 - g3 * sr + (g4 - 1) / 4 * sr**2) / (t - 1))
    return stats.norm.cdf((sr - sr0) / sigma), stats.norm.cdf(sr / sigma)


def test_dsr_and_psr_equal_an_independent_implementation_on_random_inputs():
    rng = np.random.default_rng(20140501)
    for _ in range(500):
        sr = rng.uniform(-0.3, 0.3)
        t = int(rng.integers(2, 5000))
        n = int(rng.integers(2, 10000))
        v = rng.uniform(0.0, 0.02)
        g3 = rng.uniform(-2.0, 2.0)
        g4 = 1.0 + g3 * g3 + rng.uniform(0.0, 10.0)  # kurtosis ≥ 1 + skew² for any distribution
        if 1 - g3 * sr + (g4 - 1) / 4 * sr**2 <= 0:
            continue
        dsr_ref, psr_ref = _reference_dsr(sr, t, n, v, g3, g4)
        assert deflated_sharpe_ratio(sr, t, n, v, g3, g4) == pytest.approx(dsr_ref, abs=1e-9)
        assert probabilistic_sharpe_ratio(sr, t, 0.0, g3, g4) == pytest.approx(psr_ref, abs=1e-9)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_obs": 1}, "n_obs must be at least 2"),
        ({"n_trials": 0}, "n_trials must be a whole number ≥ 1"),
        ({"n_trials": 2.5}, "n_trials must be a whole number ≥ 1"),
        ({"sharpe_variance": -0.1}, "sharpe_variance must be ≥ 0"),
        ({"sharpe": float("nan")}, "sharpe must be finite"),
        ({"kurtosis": 0.5}, "kurtosis must be ≥ 1 \\+ skew²"),
        ({"sharpe": 2.0, "skew": 1.0, "kurtosis": 2.0}, "non-positive Sharpe variance"),
    ],
)
def test_dsr_rejects_bad_input_with_a_clear_message(kwargs, match):
    args = {
        "sharpe": 0.1,
        "n_obs": 100,
        "n_trials": 10,
        "sharpe_variance": 0.01,
        "skew": 0.0,
        "kurtosis": 3.0,
    }
    with pytest.raises(InvalidArgumentError, match=match):
        deflated_sharpe_ratio(**(args | kwargs))


# --- PBO -------------------------------------------------------------------------------------------
def test_pbo_of_pure_noise_strategies_is_near_one_half_or_above():
    """200 configurations with no edge at all: the in-sample winner is a coin toss out-of-sample."""
    returns = np.random.default_rng(7).normal(0.0, 0.01, size=(1600, 200))
    result = probability_of_backtest_overfitting(returns, n_splits=16)
    assert result.n_combinations == math.comb(16, 8) == 12870
    assert result.pbo >= 0.4
    assert abs(float(np.median(result.logits))) < 1.0


def test_pbo_is_low_on_a_grid_with_a_planted_edge():
    """Column 17 has a true daily Sharpe of 0.25 amid 99 noise columns: it wins in- and out-of-sample."""
    rng = np.random.default_rng(11)
    returns = rng.normal(0.0, 0.01, size=(1600, 100))
    returns[:, 17] += 0.0025
    result = probability_of_backtest_overfitting(returns, n_splits=16)
    assert result.pbo <= 0.05
    assert result.probability_of_loss <= 0.05
    assert np.mean(result.chosen == 17) > 0.9


def test_pbo_matches_a_direct_cscv_on_a_small_case():
    """An explicit loop over the C(6, 3) = 20 combinations, ranking with scipy's average ranks."""
    rng = np.random.default_rng(3)
    returns = rng.normal(0.0005, 0.01, size=(60, 7))
    blocks = np.array_split(np.arange(60), 6)

    def sharpe(x):
        return x.mean(axis=0) / x.std(axis=0, ddof=1)

    logits, is_best, oos_best = [], [], []
    for ins in itertools.combinations(range(6), 3):
        r_is = returns[np.concatenate([blocks[i] for i in ins])]
        r_oos = returns[np.concatenate([blocks[i] for i in range(6) if i not in ins])]
        best = int(np.argmax(sharpe(r_is)))
        w = stats.rankdata(sharpe(r_oos))[best] / 8
        logits.append(math.log(w / (1 - w)))
        is_best.append(sharpe(r_is)[best])
        oos_best.append(sharpe(r_oos)[best])
    result = probability_of_backtest_overfitting(returns, n_splits=6)
    np.testing.assert_allclose(result.logits, logits, rtol=1e-12, atol=1e-12)
    assert result.pbo == pytest.approx(np.mean(np.array(logits) <= 0))
    slope, intercept = np.polyfit(is_best, oos_best, 1)
    assert result.degradation_slope == pytest.approx(slope, rel=1e-9)
    assert result.degradation_intercept == pytest.approx(intercept, rel=1e-9, abs=1e-12)
    assert result.probability_of_loss == pytest.approx(np.mean(np.array(oos_best) < 0))


def test_pbo_with_a_metric_function_equals_the_vectorised_mean():
    returns = np.random.default_rng(5).normal(0.0, 0.01, size=(80, 9))
    fast = probability_of_backtest_overfitting(returns, n_splits=8, metric="mean")
    slow = probability_of_backtest_overfitting(returns, n_splits=8, metric=lambda x: x.mean(axis=0))
    np.testing.assert_allclose(fast.logits, slow.logits, rtol=1e-12)


@pytest.mark.parametrize(
    ("returns", "n_splits", "match"),
    [
        (np.zeros((100, 5)), 5, "n_splits must be an even"),
        (np.zeros((100, 1)), 16, "at least 2 configurations"),
        (np.zeros((20, 5)), 16, "needs at least 32"),
        (np.full((100, 5), np.nan), 4, "NaN or infinite"),
        (np.zeros(100), 4, "must be 2-D"),
    ],
)
def test_pbo_rejects_bad_input_with_a_clear_message(returns, n_splits, match):
    with pytest.raises(InvalidArgumentError, match=match):
        probability_of_backtest_overfitting(returns, n_splits=n_splits)


# --- a sweep reports its selection -----------------------------------------------------------------
GRID = {"fast": [5, 10, 20], "slow": [30, 50, 100]}


def _session_returns(report):
    """Daily session returns read off run_backtest's equity curve with pandas: the last equity of each CME
    session date (18:00 ET starts the next) over the previous one, the first over the capital."""
    eq = report.equity
    ny = eq.index.tz_convert("America/New_York")
    session = (ny + pd.Timedelta(hours=6)).date  # 18:00 ET belongs to the next session date
    last = eq.groupby(session).last().to_numpy()
    prev = np.r_[report.config.initial_capital, last[:-1]]
    return (last - prev) / prev


def test_sweep_reports_trials_and_the_dsr_of_its_best_sharpe_row(nq_bars):
    table = sweep(nq_bars, "sma_cross", GRID)
    stats_ = table.attrs["overfitting"]

    best = table.iloc[int(np.argmax(table["sharpe"].to_numpy()))]
    report = run_backtest(nq_bars, "sma_cross", {"fast": int(best.fast), "slow": int(best.slow)})
    r = _session_returns(report)
    sr = r.mean() / r.std(ddof=1)
    v = np.var(table["sharpe"].to_numpy() / math.sqrt(252), ddof=1)
    g3, g4 = stats.skew(r), stats.kurtosis(r, fisher=False)
    assert stats_["n_trials"] == len(table) == 9 and stats_["n_obs"] == len(r) == best.n_days
    assert stats_["best_params"] == {"fast": int(best.fast), "slow": int(best.slow)}
    assert stats_["best_sharpe"] * math.sqrt(252) == pytest.approx(best.sharpe, rel=1e-9)
    assert stats_["best_sharpe"] == pytest.approx(sr, rel=1e-9)
    assert stats_["dsr"] == pytest.approx(_reference_dsr(sr, len(r), 9, v, g3, g4)[0], abs=1e-9)
    assert stats_["pbo"] is None


def test_sweep_with_pbo_runs_cscv_over_every_rows_daily_returns(nq_bars):
    table = sweep(nq_bars, "sma_cross", GRID, pbo=True, pbo_splits=8)

    columns = []
    for _, row in table.iterrows():
        rep = run_backtest(nq_bars, "sma_cross", {"fast": int(row.fast), "slow": int(row.slow)})
        columns.append(_session_returns(rep))
    expected = probability_of_backtest_overfitting(np.column_stack(columns), n_splits=8)
    pbo = table.attrs["overfitting"]["pbo"]
    assert pbo["n_configurations"] == 9 and pbo["n_combinations"] == math.comb(8, 4)
    assert pbo["pbo"] == pytest.approx(expected.pbo)
    assert pbo["probability_of_loss"] == pytest.approx(expected.probability_of_loss)


def test_generic_sweep_with_pbo_carries_the_same_daily_returns(nq_bars):
    """rsi_reversion runs through the generic chunks (not the fused kernel): the same CSCV input."""
    grid = {"period": [7, 14], "lower": [25.0, 30.0]}
    table = sweep(nq_bars, "rsi_reversion", grid, pbo=True, pbo_splits=8)

    columns = [
        _session_returns(run_backtest(nq_bars, "rsi_reversion", {"period": int(r.period), "lower": r.lower}))
        for _, r in table.iterrows()
    ]
    expected = probability_of_backtest_overfitting(np.column_stack(columns), n_splits=8)
    assert table.attrs["overfitting"]["pbo"]["pbo"] == pytest.approx(expected.pbo)
    assert table.attrs["overfitting"]["pbo"]["degradation_slope"] == pytest.approx(expected.degradation_slope)
    assert table.attrs["overfitting"]["n_trials"] == 4


@pytest.mark.parametrize(
    ("grid", "splits"), [({"fast": [5], "slow": [30]}, 2), ({"fast": [5, 10], "slow": [30]}, 64)]
)
def test_sweep_refuses_pbo_it_cannot_compute_before_running(nq_bars, grid, splits):
    """One combination, or fewer than 2 × pbo_splits session days (the sample has 52): refused up front."""
    with pytest.raises(InvalidArgumentError, match="pbo needs at least 2 parameter combinations"):
        sweep(nq_bars, "sma_cross", grid, pbo=True, pbo_splits=splits)
