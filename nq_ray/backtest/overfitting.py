"""Overfitting statistics: how likely is the best of many backtests a fluke?

* Probabilistic Sharpe ratio (PSR) and minimum track record length — Bailey & López de Prado (2012),
  "The Sharpe Ratio Efficient Frontier", Journal of Risk 15(2).
* Expected maximum Sharpe of unskilled trials and deflated Sharpe ratio (DSR) — Bailey & López de Prado
  (2014), "The Deflated Sharpe Ratio", Journal of Portfolio Management 40(5).
* Probability of backtest overfitting (PBO) by combinatorially symmetric cross-validation (CSCV) —
  Bailey, Borwein, López de Prado & Zhu (2015), "The Probability of Backtest Overfitting", Journal of
  Computational Finance 20(4).

Sharpe ratios here are per period (not annualised); kurtosis is the plain (not excess) kurtosis, 3 for
a normal distribution. Formulas are written out in docs/overfitting.md.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

import numpy as np
from numba import njit

from nq_ray.errors import InvalidArgumentError

_NORMAL = NormalDist()  # Φ and Φ⁻¹ from the standard library: importing scipy.stats costs a Ray worker ~1 s
EULER_GAMMA = 0.5772156649015329
"""The Euler–Mascheroni constant γ."""

Metric = Callable[[np.ndarray], np.ndarray]
"""A CSCV metric: (rows × configurations) returns → one score per configuration (higher is better)."""


def _finite(name: str, value: float) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise InvalidArgumentError(f"{name} must be a number, got {value!r}", param=name) from None
    if not math.isfinite(v):
        raise InvalidArgumentError(f"{name} must be finite, got {value!r}", param=name)
    return v


def _n_obs(n_obs: float) -> float:
    n = _finite("n_obs", n_obs)
    if n < 2:
        raise InvalidArgumentError(
            f"n_obs must be at least 2 (number of returns), got {n_obs!r}", param="n_obs"
        )
    return n


def _sharpe_denominator(sharpe: float, skew: float, kurtosis: float) -> float:
    """1 − γ₃·SR + (γ₄ − 1)/4·SR²: (n − 1) × the variance of the Sharpe estimator (Mertens, 2002)."""
    if kurtosis < 1.0 + skew * skew:
        raise InvalidArgumentError(
            f"kurtosis must be ≥ 1 + skew² (got kurtosis={kurtosis}, skew={skew}); it is the plain "
            "kurtosis, 3 for normal returns, not the excess kurtosis",
            param="kurtosis",
        )
    d = 1.0 - skew * sharpe + (kurtosis - 1.0) / 4.0 * sharpe * sharpe
    if d <= 0:
        raise InvalidArgumentError(
            f"skew={skew} and kurtosis={kurtosis} give a non-positive Sharpe variance at sharpe={sharpe}; "
            "kurtosis is the plain (not excess) kurtosis, 3 for normal returns",
            param="kurtosis",
        )
    return d


def probabilistic_sharpe_ratio(
    sharpe: float, n_obs: float, benchmark_sharpe: float = 0.0, skew: float = 0.0, kurtosis: float = 3.0
) -> float:
    """P(true Sharpe > ``benchmark_sharpe``) given the per-period ``sharpe`` estimated from ``n_obs``
    returns with that ``skew`` and (non-excess) ``kurtosis``: Bailey & López de Prado (2012), eq. (11),
    PSR = Φ((SR − SR*)·√(n − 1) / √(1 − γ₃·SR + (γ₄ − 1)/4·SR²))."""
    sr = _finite("sharpe", sharpe)
    n = _n_obs(n_obs)
    bench = _finite("benchmark_sharpe", benchmark_sharpe)
    d = _sharpe_denominator(sr, _finite("skew", skew), _finite("kurtosis", kurtosis))
    return float(_NORMAL.cdf((sr - bench) * math.sqrt(n - 1.0) / math.sqrt(d)))


def minimum_track_record_length(
    sharpe: float,
    benchmark_sharpe: float = 0.0,
    skew: float = 0.0,
    kurtosis: float = 3.0,
    probability: float = 0.95,
) -> float:
    """Returns needed before PSR(``benchmark_sharpe``) reaches ``probability``: Bailey & López de Prado
    (2012), eq. (13), MinTRL = 1 + (1 − γ₃·SR + (γ₄ − 1)/4·SR²)·(Z_α / (SR − SR*))². ``inf`` when the
    observed Sharpe does not exceed the benchmark (no track record is long enough)."""
    sr = _finite("sharpe", sharpe)
    bench = _finite("benchmark_sharpe", benchmark_sharpe)
    p = _finite("probability", probability)
    if not 0.0 < p < 1.0:
        raise InvalidArgumentError(f"probability must be in (0, 1), got {probability!r}", param="probability")
    d = _sharpe_denominator(sr, _finite("skew", skew), _finite("kurtosis", kurtosis))
    if sr <= bench:
        return math.inf
    return 1.0 + d * (_NORMAL.inv_cdf(p) / (sr - bench)) ** 2


def expected_max_sharpe(n_trials: int, sharpe_variance: float, mean_sharpe: float = 0.0) -> float:
    """Expected maximum of ``n_trials`` Sharpe estimates of unskilled strategies (true Sharpe
    ``mean_sharpe``) whose estimates vary with ``sharpe_variance``: Bailey & López de Prado (2014), eq. (6),
    E[max SR] ≈ mean + √V·((1 − γ)·Φ⁻¹(1 − 1/N) + γ·Φ⁻¹(1 − 1/(N·e))), γ the Euler–Mascheroni
    constant. One trial: no selection, so ``mean_sharpe``."""
    n = _finite("n_trials", n_trials)
    if n < 1 or n != int(n):
        raise InvalidArgumentError(
            f"n_trials must be a whole number ≥ 1 (configurations tried), got {n_trials!r}", param="n_trials"
        )
    v = _finite("sharpe_variance", sharpe_variance)
    if v < 0:
        raise InvalidArgumentError(
            f"sharpe_variance must be ≥ 0, got {sharpe_variance!r}", param="sharpe_variance"
        )
    mean = _finite("mean_sharpe", mean_sharpe)
    if n == 1:
        return mean
    z = (1.0 - EULER_GAMMA) * _NORMAL.inv_cdf(1.0 - 1.0 / n) + EULER_GAMMA * _NORMAL.inv_cdf(
        1.0 - 1.0 / (n * math.e)
    )
    return mean + math.sqrt(v) * float(z)


def deflated_sharpe_ratio(
    sharpe: float,
    n_obs: float,
    n_trials: int,
    sharpe_variance: float,
    skew: float = 0.0,
    kurtosis: float = 3.0,
) -> float:
    """P(true Sharpe > the expected maximum Sharpe of ``n_trials`` unskilled trials): the PSR with
    benchmark ``expected_max_sharpe(n_trials, sharpe_variance)`` — Bailey & López de Prado (2014), eq. (8).
    ``sharpe`` and ``sharpe_variance`` (across the trials) are per period, e.g. daily."""
    bench = expected_max_sharpe(n_trials, sharpe_variance)
    return probabilistic_sharpe_ratio(sharpe, n_obs, bench, skew, kurtosis)


# --- CSCV / PBO -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class PBOResult:
    """CSCV outcome: one entry per combination of ``n_splits`` blocks into in-sample/out-of-sample halves.

    ``logits`` λ_c = ln(ω_c / (1 − ω_c)), ω_c the relative out-of-sample rank (in (0, 1)) of the
    configuration that was best in-sample; ``pbo`` = P(λ ≤ 0); ``is_metric``/``oos_metric`` that
    configuration's metric in each half; the degradation line ``oos ≈ slope·is + intercept`` is their
    least-squares fit; ``probability_of_loss`` = P(oos metric < 0)."""

    pbo: float
    logits: np.ndarray
    is_metric: np.ndarray
    oos_metric: np.ndarray
    chosen: np.ndarray
    degradation_slope: float
    degradation_intercept: float
    probability_of_loss: float
    n_splits: int
    n_combinations: int
    n_configurations: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly summary (no per-combination arrays, but logit quantiles)."""
        q = np.quantile(self.logits, [0.05, 0.25, 0.5, 0.75, 0.95]) if self.logits.size else np.zeros(5)
        return {
            "pbo": self.pbo,
            "probability_of_loss": self.probability_of_loss,
            "degradation_slope": self.degradation_slope,
            "degradation_intercept": self.degradation_intercept,
            "logit_quantiles": {
                k: float(v) for k, v in zip(("p05", "p25", "p50", "p75", "p95"), q, strict=True)
            },
            "n_splits": self.n_splits,
            "n_combinations": self.n_combinations,
            "n_configurations": self.n_configurations,
        }


@njit(cache=True)
def _cscv_kernel(s1, s2, cnt, combos, sharpe, is_val, oos_val, chosen, omega):
    """CSCV over block sums: for each combination (row of ``combos``: the in-sample blocks), every
    configuration's in-sample and out-of-sample metric (mean, or mean / stdev with ddof=1, 0 where the
    stdev is 0; out-of-sample sums are the totals less the in-sample ones), the in-sample best (first on
    ties) and its relative out-of-sample rank ω = rank / (N + 1), ties sharing their average rank."""
    n_blocks, n_cfg = s1.shape
    t1 = np.zeros(n_cfg)
    t2 = np.zeros(n_cfg)
    for b in range(n_blocks):
        t1 += s1[b]
        t2 += s2[b]
    n_all = cnt.sum()
    is_m = np.empty(n_cfg)
    oos_m = np.empty(n_cfg)
    for c in range(combos.shape[0]):
        n_in = 0.0
        for k in range(combos.shape[1]):
            n_in += cnt[combos[c, k]]
        n_out = n_all - n_in
        best = 0
        for j in range(n_cfg):
            a1 = 0.0
            a2 = 0.0
            for k in range(combos.shape[1]):
                a1 += s1[combos[c, k], j]
                a2 += s2[combos[c, k], j]
            is_m[j] = _block_metric(a1, a2, n_in, sharpe)
            oos_m[j] = _block_metric(t1[j] - a1, t2[j] - a2, n_out, sharpe)
            if is_m[j] > is_m[best]:
                best = j
        v = oos_m[best]
        below = 0
        equal = 0
        for j in range(n_cfg):
            if oos_m[j] < v:
                below += 1
            elif oos_m[j] == v:
                equal += 1
        chosen[c] = best
        is_val[c] = is_m[best]
        oos_val[c] = v
        omega[c] = (below + (equal + 1) / 2.0) / (n_cfg + 1.0)


@njit(cache=True)
def _block_metric(x1, x2, n, sharpe):
    mean = x1 / n
    if not sharpe:
        return mean
    var = (x2 - n * mean * mean) / (n - 1.0)
    if var <= 0.0:
        return 0.0
    return mean / np.sqrt(var)


def probability_of_backtest_overfitting(
    returns: Any, n_splits: int = 16, metric: str | Metric = "sharpe"
) -> PBOResult:
    """PBO of choosing the in-sample best of N configurations, by CSCV (Bailey, Borwein, López de Prado
    & Zhu, 2015) on ``returns``: a T × N array (or DataFrame) of per-period returns, one column per
    configuration. Rows are cut into ``n_splits`` (even) contiguous blocks; for each of the
    C(S, S/2) ways to pick half of them as in-sample, the in-sample best configuration's out-of-sample
    rank gives one logit. ``metric`` is ``"sharpe"`` (per period) or ``"mean"`` — both vectorised over
    the combinations — or a function (rows × N → N) evaluated once per half per combination."""
    m = np.asarray(returns, dtype=np.float64)
    if m.ndim != 2:
        raise InvalidArgumentError(f"returns must be 2-D (periods × configurations), got shape {m.shape}")
    t, n_cfg = m.shape
    s = int(n_splits)
    if s != n_splits or s < 2 or s % 2:
        raise InvalidArgumentError(
            f"n_splits must be an even whole number ≥ 2, got {n_splits!r}", param="n_splits"
        )
    if n_cfg < 2:
        raise InvalidArgumentError(f"returns needs at least 2 configurations (columns), got {n_cfg}")
    if t < 2 * s:
        raise InvalidArgumentError(
            f"returns has {t} rows; CSCV with n_splits={s} needs at least {2 * s} (2 per block)",
            param="n_splits",
        )
    if not np.isfinite(m).all():
        raise InvalidArgumentError("returns has NaN or infinite values; fill or drop them first")
    if not (metric in ("sharpe", "mean") or callable(metric)):
        raise InvalidArgumentError(
            f"metric must be 'sharpe', 'mean' or a function, got {metric!r}", param="metric"
        )

    bounds = np.linspace(0, t, s + 1).round().astype(np.int64)
    combos = np.array(list(itertools.combinations(range(s), s // 2)), dtype=np.int64)
    n_comb = combos.shape[0]
    mask = np.zeros((n_comb, s), dtype=np.float64)
    mask[np.arange(n_comb)[:, None], combos] = 1.0

    is_val = np.empty(n_comb)
    oos_val = np.empty(n_comb)
    chosen = np.empty(n_comb, dtype=np.int64)
    omega = np.empty(n_comb)

    if callable(metric):
        blocks = [np.arange(bounds[i], bounds[i + 1]) for i in range(s)]
        for c in range(n_comb):
            ins = np.concatenate([blocks[i] for i in range(s) if mask[c, i]])
            outs = np.concatenate([blocks[i] for i in range(s) if not mask[c, i]])
            is_m = np.asarray(metric(m[ins]), dtype=np.float64).reshape(1, -1)
            oos_m = np.asarray(metric(m[outs]), dtype=np.float64).reshape(1, -1)
            _score(is_m, oos_m, np.array([c]), is_val, oos_val, chosen, omega)
    else:
        s1 = np.add.reduceat(m, bounds[:-1], axis=0)  # S × N block sums
        s2 = np.add.reduceat(m * m, bounds[:-1], axis=0)
        cnt = np.diff(bounds).astype(np.float64)  # S
        _cscv_kernel(s1, s2, cnt, combos, metric == "sharpe", is_val, oos_val, chosen, omega)

    logits = np.log(omega / (1.0 - omega))
    if np.ptp(is_val) > 0:
        slope, intercept = np.polyfit(is_val, oos_val, 1)
    else:
        slope, intercept = 0.0, float(oos_val.mean())
    return PBOResult(
        pbo=float(np.mean(logits <= 0.0)),
        logits=logits,
        is_metric=is_val,
        oos_metric=oos_val,
        chosen=chosen,
        degradation_slope=float(slope),
        degradation_intercept=float(intercept),
        probability_of_loss=float(np.mean(oos_val < 0.0)),
        n_splits=s,
        n_combinations=n_comb,
        n_configurations=n_cfg,
    )


def _score(
    is_m: np.ndarray,
    oos_m: np.ndarray,
    sl: slice | np.ndarray,
    is_val: np.ndarray,
    oos_val: np.ndarray,
    chosen: np.ndarray,
    omega: np.ndarray,
) -> None:
    """For combinations ``sl``: the in-sample best column, its metrics, and its relative OOS rank ω =
    rank / (N + 1), ranks 1..N ascending, ties sharing their average rank."""
    n_cfg = is_m.shape[1]
    best = np.argmax(is_m, axis=1)
    rows = np.arange(is_m.shape[0])
    v = oos_m[rows, best]
    below = (oos_m < v[:, None]).sum(axis=1)
    equal = (oos_m == v[:, None]).sum(axis=1)
    rank = below + (equal + 1) / 2.0
    chosen[sl] = best
    is_val[sl] = is_m[rows, best]
    oos_val[sl] = v
    omega[sl] = rank / (n_cfg + 1.0)


# --- a sweep's selection --------------------------------------------------------------------------


def selection_statistics(
    trial_sharpes: Any,
    best_returns: Any,
    *,
    periods_per_year: float = 252.0,
    pbo_returns: Any = None,
    n_splits: int = 16,
) -> dict[str, Any]:
    """What a careful quant asks of a sweep's winner: the number of trials, the winner's per-period
    Sharpe, skew and kurtosis from ``best_returns`` (its per-period returns), the variance of the
    trials' Sharpe ratios (``trial_sharpes`` are annualised with ``periods_per_year``, as the sweep's
    ``sharpe`` column is, and converted to per period), E[max SR] of that many unskilled trials, the
    winner's PSR (benchmark 0) and DSR, and — given ``pbo_returns`` (periods × trials) — the CSCV PBO.
    Fewer than 2 returns leave PSR and DSR as None."""
    sr_all = np.asarray(trial_sharpes, dtype=np.float64).ravel() / math.sqrt(periods_per_year)
    sr_all = sr_all[np.isfinite(sr_all)]
    n_trials = int(sr_all.size)
    if n_trials < 1:
        raise InvalidArgumentError("no finite Sharpe ratio among the trials; nothing to deflate")
    var = float(np.var(sr_all, ddof=1)) if n_trials > 1 else 0.0
    r = np.asarray(best_returns, dtype=np.float64).ravel()
    r = r[np.isfinite(r)]
    out: dict[str, Any] = {
        "n_trials": n_trials,
        "n_obs": int(r.size),
        "sharpe_variance": var,
        "expected_max_sharpe": expected_max_sharpe(n_trials, var),
        "best_sharpe": None,
        "skew": None,
        "kurtosis": None,
        "psr": None,
        "dsr": None,
        "pbo": None,
    }
    if r.size >= 2:
        sd = float(r.std(ddof=1))
        sr = float(r.mean()) / sd if sd > 0 else 0.0
        skew = float(_skew(r)) if sd > 0 else 0.0
        kurt = max(float(_kurtosis(r)), 1.0 + skew * skew) if sd > 0 else 3.0  # ≥ 1 + γ₃², rounding
        out.update(
            best_sharpe=sr,
            skew=skew,
            kurtosis=kurt,
            psr=probabilistic_sharpe_ratio(sr, r.size, 0.0, skew, kurt),
            dsr=deflated_sharpe_ratio(sr, r.size, n_trials, var, skew, kurt),
        )
    if pbo_returns is not None:
        out["pbo"] = probability_of_backtest_overfitting(pbo_returns, n_splits).to_dict()
    return out


def _skew(r: np.ndarray) -> float:
    """Sample skewness m₃ / m₂^1.5 (moments about the mean, as the papers estimate γ₃)."""
    d = r - r.mean()
    m2 = float(np.mean(d * d))
    return float(np.mean(d**3)) / m2**1.5


def _kurtosis(r: np.ndarray) -> float:
    """Sample (plain, not excess) kurtosis m₄ / m₂², 3 for normal returns."""
    d = r - r.mean()
    m2 = float(np.mean(d * d))
    return float(np.mean(d**4)) / (m2 * m2)
