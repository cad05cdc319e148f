"""VaR and expected shortfall: hand-worked kernels, portfolio mapping, horizon rules, the backtest."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from nq_ray.errors import InvalidArgumentError
from nq_ray.risk import (
    backtest_var,
    cornish_fisher_var_es,
    historical_var_es,
    kupiec_pof,
    normal_var_es,
    value_at_risk,
)
from nq_ray.risk.var import cornish_fisher_is_monotone, cornish_fisher_z


def _bars(closes: np.ndarray, start: str = "2026-03-02 09:30") -> pd.DataFrame:
    idx = pd.date_range(start, periods=len(closes), freq="5min", tz="America/New_York")
    c = np.asarray(closes, dtype=np.float64)
    return pd.DataFrame({"open": c, "high": c, "low": c, "close": c, "volume": 1.0}, index=idx)


# ---- kernels -----------------------------------------------------------------------------------


def test_historical_var_is_the_order_statistic():
    """Losses 1 … 20 ($): at 95%, k = ⌈0.95 × 20⌉ = 19 → VaR $19, ES = mean(19, 20) = $19.5;
    at 90%, k = 18 → VaR $18, ES = mean(18, 19, 20) = $19."""
    pnl = -np.arange(1.0, 21.0)
    assert historical_var_es(pnl, 0.95) == (19.0, 19.5)
    assert historical_var_es(pnl, 0.90) == (18.0, 19.0)


def test_normal_var_matches_the_published_quantiles():
    """σ $1,000, μ 0: z(95%) = 1.644854 → VaR $1,644.85; ES factor φ(z) ÷ 0.05 = 2.062713 → $2,062.71.
    At 99%: 2.326348 → $2,326.35; ES factor 2.665214 → $2,665.21."""
    assert normal_var_es(0.0, 1_000.0, 0.95) == pytest.approx((1_644.854, 2_062.713), abs=1e-3)
    assert normal_var_es(0.0, 1_000.0, 0.99) == pytest.approx((2_326.348, 2_665.214), abs=1e-3)


def test_normal_var_subtracts_the_mean():
    """μ $100, σ $1,000 at 95%: VaR = −100 + 1,644.854 = $1,544.85."""
    assert normal_var_es(100.0, 1_000.0, 0.95)[0] == pytest.approx(1_544.854, abs=1e-3)


def test_cornish_fisher_quantile_by_hand():
    """S = −0.5, K = 3 at 1%: z = −2.326348; z²−1 = 4.411894, z³−3z = −5.610905, 2z³−5z = −13.548159;
    z_CF = −2.326348 + 4.411894(−0.5)/6 + (−5.610905)(3)/24 − (−13.548159)(0.25)/36
         = −2.326348 − 0.367658 − 0.701363 + 0.094084 = −3.301285."""
    assert cornish_fisher_z(0.01, -0.5, 3.0) == pytest.approx(-3.301285, abs=1e-6)
    var, _ = cornish_fisher_var_es(0.0, 1_000.0, -0.5, 3.0, 0.99)
    assert var == pytest.approx(3_301.285, abs=1e-3)


def test_cornish_fisher_without_skew_or_kurtosis_is_normal():
    """S = K = 0 reduces the expansion to z: the same VaR, and ES to within the tail grid's error."""
    cf = cornish_fisher_var_es(0.0, 1_000.0, 0.0, 0.0, 0.99)
    n = normal_var_es(0.0, 1_000.0, 0.99)
    assert cf[0] == pytest.approx(n[0], abs=1e-9)
    assert cf[1] == pytest.approx(n[1], rel=1e-3)


def test_cornish_fisher_validity_domain():
    """dz_CF/dz = a z² + b z + c, a = K/8 − S²/6, b = S/3, c = 1 − K/8 + 5S²/36. S = 0, K = 3:
    a = 0.375, c = 0.625, b² − 4ac = −0.9375 ≤ 0 → monotone. S = 0, K = 9: a = 1.125, c = −0.125,
    b² − 4ac = 0.5625 > 0 → not. S = 0, K = 8 sits on the edge (c = 0). S = K = 0 is z itself."""
    assert cornish_fisher_is_monotone(0.0, 3.0)
    assert not cornish_fisher_is_monotone(0.0, 9.0)
    assert cornish_fisher_is_monotone(0.0, 8.0)
    assert cornish_fisher_is_monotone(0.0, 0.0)
    assert not cornish_fisher_is_monotone(1.0, 0.0)  # a < 0: the cubic turns over


@given(s=st.floats(-2, 2), k=st.floats(-1, 12))
def test_cornish_fisher_domain_matches_a_grid_check(s, k):
    """The closed-form domain agrees with a brute-force check of z_CF on a grid of z in [−8, 8]."""
    z = np.linspace(-8, 8, 4001)
    f = z + (z * z - 1) * s / 6 + (z**3 - 3 * z) * k / 24 - (2 * z**3 - 5 * z) * s * s / 36
    if cornish_fisher_is_monotone(s, k):
        assert np.all(np.diff(f) >= -1e-9)


def test_kupiec_five_breaches_in_250_days_at_99():
    """T 250, x 5, p 0.01: LR = −2[245 ln 0.99 + 5 ln 0.01] + 2[245 ln 0.98 + 5 ln 0.02]
    = −2(−2.462333 − 23.025851) + 2(−4.949664 − 19.560115) = 1.956810; P(χ²₁ > 1.9568) = 0.16185."""
    lr, p = kupiec_pof(5, 250, 0.99)
    assert lr == pytest.approx(1.956810, abs=1e-6) and p == pytest.approx(0.161855, abs=1e-6)


def test_kupiec_with_no_breaches():
    """x 0: LR = −2 × 250 ln 0.99 = 5.025168; p = 0.024982 (0 ln 0 taken as 0)."""
    lr, p = kupiec_pof(0, 250, 0.99)
    assert lr == pytest.approx(5.025168, abs=1e-6) and p == pytest.approx(0.024982, abs=1e-6)


def test_kupiec_at_the_expected_rate_does_not_reject():
    """x = T × p exactly: LR = 0, p-value 1."""
    assert kupiec_pof(10, 1_000, 0.99) == (0.0, 1.0)


@pytest.mark.parametrize("confidence", [0.0, 1.0, 1.5, -0.1, float("nan")])
def test_confidence_outside_0_1_is_a_typed_error(confidence, sample_bars):
    with pytest.raises(InvalidArgumentError, match="confidence must lie strictly between 0 and 1"):
        value_at_risk({"NQ": 1}, sample_bars, confidence=confidence)
    with pytest.raises(InvalidArgumentError, match="confidence"):
        normal_var_es(0.0, 1.0, confidence)


@pytest.mark.parametrize("horizon", [0, -1, 2.5])
def test_bad_horizon_is_a_typed_error(horizon, sample_bars):
    with pytest.raises(InvalidArgumentError, match="horizon_bars"):
        value_at_risk({"NQ": 1}, sample_bars, horizon_bars=horizon)


def test_empty_history_is_a_typed_error():
    with pytest.raises(InvalidArgumentError, match="empty"):
        historical_var_es(np.array([]), 0.95)
    with pytest.raises(InvalidArgumentError, match="empty"):
        value_at_risk({"NQ": 1}, {"NQ": _bars(np.array([]))})


def test_missing_bars_and_empty_book_are_typed_errors(sample_bars):
    with pytest.raises(InvalidArgumentError, match="no bars for YM"):
        value_at_risk({"YM": 1}, sample_bars)
    with pytest.raises(InvalidArgumentError, match="no positions"):
        value_at_risk({}, sample_bars)


# ---- positions and portfolios ------------------------------------------------------------------


def test_single_position_historical_by_hand():
    """1 NQ at the last close 20,000 → exposure $400,000. Closes 20,000 → 20,100 (+0.5%) → 19,899
    (−1%) → 20,000: 1-bar P&L at the last price = +$2,000, −$4,000, +$2,030.30; at 50% k = ⌈1.5⌉ = 2
    of the ascending losses (−2,030.30, −2,000, 4,000) → VaR −$2,000 (a gain), ES = mean(−2,000, 4,000)
    = $1,000."""
    bars = {"NQ": _bars(np.array([20_000.0, 20_100.0, 19_899.0, 20_000.0]))}
    r = value_at_risk({"NQ": 1}, bars, confidence=0.5)
    assert r.exposures_usd == {"NQ": 400_000.0}
    assert r.var_usd == pytest.approx(-2_000.0) and r.es_usd == pytest.approx(1_000.0)
    assert r.observations == 3 and r.method == "historical"


def test_historical_horizon_uses_overlapping_returns():
    """h = 2 on closes 100, 110, 99, 99: 2-bar returns 99/100 − 1 = −1%, 99/110 − 1 = −10%;
    1 NQ at 99 = $1,980 exposure → P&L −$19.80, −$198; at 99%, k = ⌈1.98⌉ = 2 → VaR $198."""
    bars = {"NQ": _bars(np.array([100.0, 110.0, 99.0, 99.0]))}
    r = value_at_risk({"NQ": 1}, bars, confidence=0.99, horizon_bars=2)
    assert r.var_usd == pytest.approx(198.0) and r.observations == 2


def test_micro_maps_to_its_parents_returns(sample_bars):
    """10 MNQ × $2 = 1 NQ × $20 per point: the same VaR; long NQ + short 10 MNQ is flat → VaR 0."""
    one = value_at_risk({"NQ": 1}, sample_bars)
    micros = value_at_risk({"MNQ": 10}, sample_bars)
    hedged = value_at_risk({"NQ": 1, "MNQ": -10}, sample_bars, method="normal")
    assert micros.var_usd == pytest.approx(one.var_usd)
    assert hedged.var_usd == pytest.approx(0.0, abs=1e-9)


def test_portfolio_normal_var_uses_the_correlation(sample_bars):
    """σ_p² = (w₁s₁)² + (w₂s₂)² + 2ρ(w₁s₁)(w₂s₂) with w the dollar exposures (1 NQ, −4 MES), s the
    return standard deviations and ρ the NQ/ES return correlation on the aligned bars (computed here
    with numpy.corrcoef); VaR = −μ_p + 1.644854 σ_p, less than the sum of the two legs' VaRs."""
    port = value_at_risk({"NQ": 1, "MES": -4}, sample_bars, method="normal")
    closes = pd.concat({k: b["close"] for k, b in sample_bars.items()}, axis=1, join="inner")
    rets = closes.pct_change().dropna().to_numpy()
    rho = np.corrcoef(rets, rowvar=False)[0, 1]
    a = port.exposures_usd["NQ"] * rets[:, 0].std(ddof=1)
    b = port.exposures_usd["MES"] * rets[:, 1].std(ddof=1)

    sigma = math.sqrt(a * a + b * b + 2 * rho * a * b)

    assert rho > 0.9 and b < 0  # NQ and ES move together: a short MES hedges a long NQ
    assert port.std_pnl_usd == pytest.approx(sigma, rel=1e-9)
    assert port.var_usd == pytest.approx(-port.mean_pnl_usd + 1.6448536269514715 * sigma, rel=1e-9)
    assert port.var_usd < abs(a) * 1.6448536269514715 + abs(b) * 1.6448536269514715


def test_parametric_horizon_scales_by_root_h(sample_bars):
    """h = 4: VaR = −4μ + z × 2σ from the 1-bar moments."""
    r = value_at_risk({"ES": 2}, sample_bars, method="normal", horizon_bars=4, confidence=0.99)
    assert r.var_usd == pytest.approx(-4 * r.mean_pnl_usd + 2.3263478740408408 * 2 * r.std_pnl_usd, rel=1e-9)


def test_monte_carlo_is_seeded_and_close_to_normal(sample_bars):
    """Same seed → the same numbers; with 20,000 normal draws the 1-bar VaR lies within 3% of the
    parametric normal VaR it simulates."""
    a = value_at_risk({"NQ": 1, "ES": -1}, sample_bars, method="monte_carlo", simulations=20_000, seed=7)
    b = value_at_risk({"NQ": 1, "ES": -1}, sample_bars, method="monte_carlo", simulations=20_000, seed=7)
    n = value_at_risk({"NQ": 1, "ES": -1}, sample_bars, method="normal")
    assert a == b and a.seed == 7 and a.simulations == 20_000
    assert a.var_usd == pytest.approx(n.var_usd, rel=0.03)


@pytest.mark.parametrize("method", ["historical", "normal", "cornish_fisher", "monte_carlo"])
def test_every_method_states_its_sample_and_gives_finite_numbers(method, sample_bars):
    r = value_at_risk({"NQ": 2, "MES": -3}, sample_bars, method=method, confidence=0.99, horizon_bars=3)
    assert r.method == method and r.horizon_bars == 3 and r.confidence == 0.99
    assert r.observations > 13_000 and r.sample_start.startswith("2026-02-17")
    assert r.bar_interval == "0 days 00:05:00"
    assert all(math.isfinite(x) for x in (r.var_usd, r.es_usd, r.skewness, r.excess_kurtosis))
    assert r.es_usd >= r.var_usd


def test_flat_book_has_zero_var_and_explains_its_moments():
    bars = {"NQ": _bars(np.full(10, 20_000.0))}
    r = value_at_risk({"NQ": 1}, bars, method="cornish_fisher")
    assert r.var_usd == 0.0 and r.skewness == 0.0 and r.notes


def test_dropped_bars_are_reported(sample_bars):
    """A NaN close is dropped and the note says so, rather than a NaN VaR."""
    nq = sample_bars["NQ"].copy()
    nq.iloc[5, nq.columns.get_loc("close")] = float("nan")
    r = value_at_risk({"NQ": 1}, {"NQ": nq})
    assert math.isfinite(r.var_usd) and "1 with a missing close" in r.notes[0]


@given(
    pnl=st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=200),
    c=st.floats(0.5, 0.999),
)
def test_historical_es_is_at_least_var(pnl, c):
    var, es = historical_var_es(np.array(pnl), c)
    assert es >= var - 1e-6 * max(1.0, abs(var))


@given(
    pnl=st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=200),
    c1=st.floats(0.5, 0.999),
    c2=st.floats(0.5, 0.999),
)
def test_historical_var_never_falls_as_confidence_rises(pnl, c1, c2):
    lo, hi = sorted((c1, c2))
    assert historical_var_es(np.array(pnl), lo)[0] <= historical_var_es(np.array(pnl), hi)[0]


# ---- backtest ----------------------------------------------------------------------------------


def test_backtest_of_normal_var_on_normal_returns_is_not_rejected():
    """i.i.d. normal returns (seed 1), 99% normal VaR, window 250: breaches near 1% and Kupiec passes."""
    rng = np.random.default_rng(1)
    closes = 20_000.0 * np.cumprod(1 + rng.normal(0, 0.001, 5_001))
    bt = backtest_var({"NQ": 1}, {"NQ": _bars(closes)}, method="normal", confidence=0.99, window=250)
    assert bt.observations == 5_000 - 250
    assert bt.expected_breaches == pytest.approx(47.5)
    assert not bt.rejected_at_5pct


def test_backtest_counts_a_breach_by_hand():
    """Window 20 of alternating ±1 pt moves on 1 NQ, then a −10 pt bar: the historical 95% VaR of the
    window is about one point (k = 19 of 20 losses: ten ≈ −$20 gains, ten ≈ +$20 losses → ≈ $20);
    the −10 pt bar loses 10 × $20 = $200 > $20 → 1 breach in 1 observation."""
    moves = [1.0, -1.0] * 10 + [-10.0]
    closes = 20_000.0 + np.concatenate([[0.0], np.cumsum(moves)])
    bt = backtest_var({"NQ": 1}, {"NQ": _bars(closes)}, method="historical", confidence=0.95, window=20)
    assert (bt.observations, bt.breaches) == (1, 1)


def test_cornish_fisher_backtest_reports_windows_outside_its_domain(sample_bars):
    """5-minute NQ returns have excess kurtosis far above 8: most windows are outside the CF domain,
    and the backtest says so rather than reporting a bare breach count."""
    bt = backtest_var({"NQ": 1}, sample_bars, method="cornish_fisher", confidence=0.99, window=1_000)
    assert bt.notes and "outside the domain" in bt.notes[0]


def test_backtest_on_the_sample_bars(sample_bars):
    """Historical 99% VaR of 1 NQ on 5-minute bars, 1,000-bar window: the documented result
    (docs/risk.md, VaR backtest) — breaches within Kupiec's 5% band."""
    bt = backtest_var({"NQ": 1}, sample_bars, method="historical", confidence=0.99, window=1_000)
    assert bt.observations == 12_766
    assert bt.breaches == 143 and bt.expected_breaches == pytest.approx(127.66)
    assert not bt.rejected_at_5pct
