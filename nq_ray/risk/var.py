"""Value at risk and expected shortfall in dollars, for one position or a portfolio, and their backtest.

Positions (signed contracts by root) map to dollar exposures w = contracts × price × point value on the
simple close-to-close returns of aligned bars; a micro uses its parent's returns (MNQ → NQ). Portfolio
P&L over a horizon is R·w. Losses are positive numbers; VaR and ES are losses at ``confidence``.

* historical: losses of the overlapping h-bar returns (C_t ÷ C_{t−h} − 1), sorted ascending
  l₁ ≤ … ≤ l_N; VaR = l_k with k = ⌈confidence × N⌉; ES = mean(l_k … l_N).
* normal: μ, σ of 1-bar portfolio P&L (σ with ddof 1), scaled μ·h and σ·√h;
  VaR = −μ_h + z σ_h, ES = −μ_h + σ_h φ(z) ÷ (1 − confidence), z = Φ⁻¹(confidence).
* cornish_fisher: the normal rule with z replaced by the Cornish–Fisher quantile using the 1-bar skew S
  and excess kurtosis K (population moments) scaled for the horizon as S ÷ √h and K ÷ h;
  ES = −μ_h − σ_h × mean of the CF quantile over the tail probabilities (0, 1 − confidence).
* monte_carlo: ``n_sims`` seeded paths of h multivariate-normal 1-bar returns (sample mean and
  covariance), compounded per symbol, priced with w; VaR and ES as for historical.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from statistics import NormalDist
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from nq_ray.domain.contracts import get_contract, normalize_symbol
from nq_ray.errors import InvalidArgumentError
from nq_ray.risk.exposure import lookup_price, underlying_root

VaRMethod = Literal["historical", "normal", "cornish_fisher", "monte_carlo"]
METHODS: tuple[str, ...] = ("historical", "normal", "cornish_fisher", "monte_carlo")
_N = NormalDist()
_CF_GRID = 20_000  # midpoints over the tail for the Cornish–Fisher ES
_MAX_MC_DRAWS = 50_000_000


# ------------------------------------------------------------------------------------------------
# validation


def check_confidence(confidence: float) -> float:
    """``confidence`` as a float in (0, 1), or an ``invalid_argument`` naming it."""
    c = float(confidence)
    if not math.isfinite(c) or not 0.0 < c < 1.0:
        raise InvalidArgumentError(
            f"confidence must lie strictly between 0 and 1 (e.g. 0.95 or 0.99), got {confidence}",
            confidence=confidence,
        )
    return c


def check_horizon(horizon_bars: int) -> int:
    """``horizon_bars`` as a whole number of bars ≥ 1."""
    if isinstance(horizon_bars, bool) or int(horizon_bars) != horizon_bars or horizon_bars < 1:
        raise InvalidArgumentError(
            f"horizon_bars must be a whole number of bars ≥ 1 (1 = the next bar), got {horizon_bars}",
            horizon_bars=horizon_bars,
        )
    return int(horizon_bars)


# ------------------------------------------------------------------------------------------------
# kernels: numpy in, numbers out


def historical_var_es(pnl: np.ndarray, confidence: float) -> tuple[float, float]:
    """VaR = l_k, k = ⌈confidence × N⌉ of the ascending losses l = −pnl; ES = mean(l_k … l_N)."""
    c = check_confidence(confidence)
    x = np.asarray(pnl, dtype=np.float64)
    if x.size == 0:
        raise InvalidArgumentError("P&L history is empty; VaR needs at least one observation")
    if not np.all(np.isfinite(x)):
        raise InvalidArgumentError("P&L history holds NaN or infinite values; clean the bars first")
    losses = np.sort(-x)
    k = _order_index(c, x.size)
    return float(losses[k - 1]), float(losses[k - 1 :].mean())


def _order_index(confidence: float, n: int) -> int:
    return min(max(math.ceil(confidence * n - 1e-9), 1), n)


def normal_var_es(mu: float, sigma: float, confidence: float) -> tuple[float, float]:
    """Gaussian VaR = −μ + zσ and ES = −μ + σ φ(z) ÷ (1 − c), z = Φ⁻¹(c)."""
    c = check_confidence(confidence)
    z = _N.inv_cdf(c)
    return -mu + z * sigma, -mu + sigma * _N.pdf(z) / (1.0 - c)


def _cf_terms(z: np.ndarray | float) -> tuple:
    """The four Cornish–Fisher polynomials of z: z, z²−1, z³−3z, 2z³−5z."""
    return z, z * z - 1.0, z**3 - 3.0 * z, 2.0 * z**3 - 5.0 * z


def cornish_fisher_z(u: float, skew: float, excess_kurtosis: float) -> float:
    """Cornish–Fisher quantile at lower-tail probability u:
    z + (z²−1)S/6 + (z³−3z)K/24 − (2z³−5z)S²/36, z = Φ⁻¹(u)."""
    a, b, c, d = _cf_terms(_N.inv_cdf(u))
    return a + b * skew / 6.0 + c * excess_kurtosis / 24.0 - d * skew * skew / 36.0


def cornish_fisher_is_monotone(skew: float, excess_kurtosis: float) -> bool:
    """True when the Cornish–Fisher quantile rises with z everywhere, so its VaR is a quantile at all.

    dz_CF/dz = a z² + b z + c with a = K/8 − S²/6, b = S/3, c = 1 − K/8 + 5S²/36 must stay ≥ 0:
    a > 0 and b² − 4ac ≤ 0 (or a = b = 0 ≤ c). With S = 0 that is 0 < K ≤ 8."""
    a = excess_kurtosis / 8.0 - skew * skew / 6.0
    b = skew / 3.0
    c = 1.0 - excess_kurtosis / 8.0 + 5.0 * skew * skew / 36.0
    if abs(a) < 1e-12 and abs(b) < 1e-12:
        return c >= 0
    return a > 0 and b * b - 4.0 * a * c <= 1e-12


@lru_cache(maxsize=32)
def _cf_tail_means(tail: float) -> tuple[float, float, float, float]:
    u = (np.arange(_CF_GRID) + 0.5) / _CF_GRID * tail
    z = np.array([_N.inv_cdf(float(v)) for v in u])
    return tuple(float(t.mean()) for t in _cf_terms(z))  # type: ignore[return-value]


def cornish_fisher_var_es(
    mu: float, sigma: float, skew: float, excess_kurtosis: float, confidence: float
) -> tuple[float, float]:
    """VaR = −(μ + σ z_CF(1 − c)); ES = −(μ + σ × mean of z_CF(u) over u in (0, 1 − c))."""
    c = check_confidence(confidence)
    z_var = cornish_fisher_z(1.0 - c, skew, excess_kurtosis)
    a, b, cc, d = _cf_tail_means(1.0 - c)
    z_es = a + b * skew / 6.0 + cc * excess_kurtosis / 24.0 - d * skew * skew / 36.0
    return -(mu + sigma * z_var), -(mu + sigma * z_es)


def kupiec_pof(breaches: int, observations: int, confidence: float) -> tuple[float, float]:
    """Kupiec proportion-of-failures test: LR = −2 ln[(1−p)^(T−x) p^x] + 2 ln[(1−x/T)^(T−x) (x/T)^x]
    with p = 1 − confidence; p-value = P(χ²₁ > LR) = erfc(√(LR ÷ 2))."""
    c = check_confidence(confidence)
    t, x = int(observations), int(breaches)
    if t < 1 or not 0 <= x <= t:
        raise InvalidArgumentError(f"need 0 ≤ breaches ≤ observations and observations ≥ 1, got {x}/{t}")
    p = 1.0 - c

    def xlogy(a: float, b: float) -> float:
        return 0.0 if a == 0 else a * math.log(b)

    null = xlogy(t - x, 1.0 - p) + xlogy(x, p)
    alt = xlogy(t - x, 1.0 - x / t) + xlogy(x, x / t)
    lr = max(-2.0 * null + 2.0 * alt, 0.0)
    return lr, math.erfc(math.sqrt(lr / 2.0))


# ------------------------------------------------------------------------------------------------
# portfolio mapping


@dataclass(frozen=True)
class _Book:
    """Aligned closes and the positions mapped onto them."""

    closes: pd.DataFrame  # aligned closes, one column per return series
    weights: np.ndarray  # contracts × point value per series (USD per index point)
    exposures_usd: dict[str, float]
    positions: dict[str, int]
    notes: list[str]


def _book(
    positions: Mapping[str, int], bars: Mapping[str, pd.DataFrame], prices: Mapping[str, float] | None
) -> _Book:
    if not positions:
        raise InvalidArgumentError("no positions given; pass signed contracts by symbol, e.g. {'NQ': 1}")
    bars_u = {normalize_symbol(k): v for k, v in bars.items()}
    pos: dict[str, int] = {}
    for sym, n in positions.items():
        s = normalize_symbol(sym)
        get_contract(s)
        if int(n) != n:
            raise InvalidArgumentError(f"contracts must be whole numbers, got {n} for {s}")
        pos[s] = pos.get(s, 0) + int(n)
    series_of: dict[str, str] = {}
    for s in pos:
        key = s if s in bars_u else underlying_root(s)
        if key not in bars_u:
            raise InvalidArgumentError(
                f"no bars for {s} (or its parent {underlying_root(s)}); pass bars keyed by root symbol",
                symbol=s,
                have=list(bars_u),
            )
        series_of[s] = key
    keys = sorted(set(series_of.values()))
    cols = {}
    for k in keys:
        b = bars_u[k]
        if b is None or len(b) == 0 or "close" not in b:
            raise InvalidArgumentError(f"bars for {k} are empty or have no 'close' column")
        cols[k] = b["close"].astype(np.float64)
    joined = pd.concat(cols, axis=1, join="inner")
    closes = joined.dropna()
    notes = []
    longest = max(len(v) for v in cols.values())
    if len(closes) < longest:
        notes.append(
            f"{len(closes)} of {longest} bars used: {longest - len(joined)} without a common timestamp "
            f"across {', '.join(keys)}, {len(joined) - len(closes)} with a missing close"
        )
    if len(closes) == 0:
        raise InvalidArgumentError(f"the bars of {', '.join(keys)} share no timestamp; align them first")
    if not np.all(np.isfinite(closes.to_numpy())) or (closes.to_numpy() <= 0).any():
        raise InvalidArgumentError("close prices must be finite and > 0")
    last = closes.iloc[-1]
    weights = np.zeros(len(keys))
    exposures: dict[str, float] = {}
    px = {normalize_symbol(k): float(v) for k, v in (prices or {}).items()}
    for s, n in pos.items():
        k = series_of[s]
        pv = get_contract(s).point_value
        weights[keys.index(k)] += n * pv
        price = lookup_price(px, s) if px else None
        exposures[s] = n * (price if price is not None else float(last[k])) * pv
    return _Book(closes=closes, weights=weights, exposures_usd=exposures, positions=pos, notes=notes)


def _exposure_vector(book: _Book) -> np.ndarray:
    """USD exposure per series: Σ contracts × price × point value of the positions on it."""
    keys = list(book.closes.columns)
    w = np.zeros(len(keys))
    for s, usd in book.exposures_usd.items():
        k = s if s in keys else underlying_root(s)
        w[keys.index(k)] += usd
    return w


class VaRResult(BaseModel):
    """VaR and ES in USD (positive = loss) with the method, horizon and sample behind them."""

    model_config = ConfigDict(frozen=True)

    method: str
    confidence: float
    horizon_bars: int
    var_usd: float
    es_usd: float
    positions: dict[str, int]
    exposures_usd: dict[str, float] = Field(description="contracts × price × point value per position")
    observations: int = Field(description="return observations the estimate used")
    sample_start: str
    sample_end: str
    bar_interval: str | None
    mean_pnl_usd: float = Field(description="mean 1-bar portfolio P&L in the sample")
    std_pnl_usd: float = Field(description="standard deviation (ddof 1) of 1-bar portfolio P&L")
    skewness: float
    excess_kurtosis: float
    simulations: int | None = None
    seed: int | None = None
    notes: list[str] = Field(default_factory=list)

    def describe(self) -> str:
        return (
            f"{self.confidence:.1%} {self.horizon_bars}-bar {self.method} VaR ${self.var_usd:,.2f}, "
            f"ES ${self.es_usd:,.2f} on {self.observations} obs ({self.sample_start} → {self.sample_end})"
        )


def _moments(x: np.ndarray) -> tuple[float, float, float, float, list[str]]:
    notes: list[str] = []
    mu = float(x.mean())
    sd = float(x.std(ddof=1)) if x.size > 1 else 0.0
    m2 = float(((x - mu) ** 2).mean())
    if m2 <= 0 or x.size < 4:
        notes.append("P&L has no variance (or < 4 observations): skewness and kurtosis set to 0")
        return mu, sd, 0.0, 0.0, notes
    skew = float(((x - mu) ** 3).mean() / m2**1.5)
    kurt = float(((x - mu) ** 4).mean() / m2**2 - 3.0)
    return mu, sd, skew, kurt, notes


def _interval(index: pd.Index) -> str | None:
    if not isinstance(index, pd.DatetimeIndex) or len(index) < 2:
        return None
    return str(pd.Series(index).diff().median())


def value_at_risk(
    positions: Mapping[str, int],
    bars: Mapping[str, pd.DataFrame],
    *,
    method: VaRMethod = "historical",
    confidence: float = 0.95,
    horizon_bars: int = 1,
    prices: Mapping[str, float] | None = None,
    simulations: int = 10_000,
    seed: int = 0,
) -> VaRResult:
    """VaR and ES in USD of ``positions`` (signed contracts by symbol) from ``bars`` (by root symbol).

    Prices default to the last aligned close; pass ``prices`` to value the book elsewhere."""
    c = check_confidence(confidence)
    h = check_horizon(horizon_bars)
    if method not in METHODS:
        raise InvalidArgumentError(
            f"method must be one of {', '.join(METHODS)}, got {method!r}", method=method
        )
    book = _book(positions, bars, prices)
    closes = book.closes.to_numpy()
    if closes.shape[0] < h + 2:
        raise InvalidArgumentError(
            f"{closes.shape[0]} aligned bars are too few for a {h}-bar horizon; need at least {h + 2}",
            bars=int(closes.shape[0]),
            horizon_bars=h,
        )
    w = _exposure_vector(book)
    r1 = closes[1:] / closes[:-1] - 1.0
    pnl1 = r1 @ w
    mu, sd, skew, kurt, notes = _moments(pnl1)
    notes = book.notes + notes
    sims: int | None = None
    used_seed: int | None = None
    if method == "historical":
        rh = closes[h:] / closes[:-h] - 1.0
        pnl = rh @ w
        var, es = historical_var_es(pnl, c)
        n_obs = int(pnl.size)
        if h > 1:
            notes.append(
                f"{h}-bar returns overlap (each bar starts one), so the {n_obs} obs are not independent"
            )
    elif method == "normal":
        var, es = normal_var_es(mu * h, sd * math.sqrt(h), c)
        n_obs = int(pnl1.size)
    elif method == "cornish_fisher":
        var, es = cornish_fisher_var_es(mu * h, sd * math.sqrt(h), skew / math.sqrt(h), kurt / h, c)
        n_obs = int(pnl1.size)
        if not cornish_fisher_is_monotone(skew / math.sqrt(h), kurt / h):
            notes.append(
                f"skew {skew / math.sqrt(h):.2f} and excess kurtosis {kurt / h:.1f} lie outside the domain "
                "where the Cornish–Fisher quantile is monotone (docs/risk.md, VaR and expected shortfall); "
                "prefer historical VaR here"
            )
    else:
        if simulations < 100:
            raise InvalidArgumentError(
                f"simulations must be ≥ 100, got {simulations}", simulations=simulations
            )
        k = r1.shape[1]
        if simulations * h * k > _MAX_MC_DRAWS:
            raise InvalidArgumentError(
                f"{simulations} simulations × {h} bars × {k} symbols exceeds {_MAX_MC_DRAWS:,} draws; "
                "use fewer simulations or a coarser bar interval",
            )
        mean = r1.mean(axis=0)
        cov = np.atleast_2d(np.cov(r1, rowvar=False, ddof=1))
        vals, vecs = np.linalg.eigh(cov)
        if (vals < -1e-18).any():
            notes.append(
                "sample covariance was not positive semi-definite; negative eigenvalues clipped to 0"
            )
        root = vecs * np.sqrt(np.clip(vals, 0.0, None))
        rng = np.random.default_rng(seed)
        z = rng.standard_normal((simulations, h, k))
        paths = np.prod(1.0 + mean + z @ root.T, axis=1) - 1.0
        var, es = historical_var_es(paths @ w, c)
        n_obs, sims, used_seed = int(pnl1.size), simulations, seed
    idx = book.closes.index
    return VaRResult(
        method=method,
        confidence=c,
        horizon_bars=h,
        var_usd=float(var),
        es_usd=float(es),
        positions=book.positions,
        exposures_usd=book.exposures_usd,
        observations=n_obs,
        sample_start=str(idx[0]),
        sample_end=str(idx[-1]),
        bar_interval=_interval(idx),
        mean_pnl_usd=mu,
        std_pnl_usd=sd,
        skewness=skew,
        excess_kurtosis=kurt,
        simulations=sims,
        seed=used_seed,
        notes=notes,
    )


# ------------------------------------------------------------------------------------------------
# backtest


class VaRBacktest(BaseModel):
    """Rolling one-bar-ahead VaR backtest: breaches (loss > VaR) against the expected (1 − c) × T."""

    model_config = ConfigDict(frozen=True)

    method: str
    confidence: float
    window: int
    positions: dict[str, int]
    observations: int
    breaches: int
    expected_breaches: float
    breach_rate: float
    kupiec_lr: float
    kupiec_p_value: float
    rejected_at_5pct: bool
    sample_start: str
    sample_end: str
    notes: list[str] = Field(default_factory=list)


def backtest_var(
    positions: Mapping[str, int],
    bars: Mapping[str, pd.DataFrame],
    *,
    method: Literal["historical", "normal", "cornish_fisher"] = "historical",
    confidence: float = 0.99,
    window: int = 1000,
    chunk: int = 1000,
) -> VaRBacktest:
    """For each bar t after the first ``window`` returns: VaR from the previous ``window`` 1-bar returns,
    priced at the exposure of bar t−1 (contracts × C_{t−1} × point value), against the realised P&L of
    holding the contracts over bar t. A breach is a loss strictly greater than the VaR."""
    c = check_confidence(confidence)
    if method not in ("historical", "normal", "cornish_fisher"):
        raise InvalidArgumentError(
            f"backtest method must be historical, normal or cornish_fisher, got {method!r}"
        )
    if window < 20:
        raise InvalidArgumentError(f"window must be ≥ 20 returns, got {window}", window=window)
    book = _book(positions, bars, None)
    closes = book.closes.to_numpy()
    r1 = closes[1:] / closes[:-1] - 1.0
    n = r1.shape[0]
    if n <= window:
        raise InvalidArgumentError(f"{n} returns leave nothing to test after a window of {window}")
    wpp = book.weights  # USD per index point per series
    k_idx = _order_index(c, window)
    z = _N.inv_cdf(c)
    tail = 1.0 - c
    windows = np.lib.stride_tricks.sliding_window_view(r1, window, axis=0)  # (n-window+1, k, window)
    breaches = 0
    total = 0
    outside = 0
    for start in range(window, n, chunk):
        stop = min(start + chunk, n)
        hist = windows[start - window : stop - window]  # returns t-window … t-1 for each t
        expo = closes[start:stop] * wpp  # exposure at C_{t-1}: r1[t] is C[t+1]/C[t]-1
        scen = np.einsum("tkw,tk->tw", hist, expo)
        realised = np.einsum("tk,tk->t", r1[start:stop], expo)
        if method == "historical":
            var = np.sort(-scen, axis=1)[:, k_idx - 1]
        else:
            mu = scen.mean(axis=1)
            sd = scen.std(axis=1, ddof=1)
            if method == "normal":
                var = -mu + z * sd
            else:
                dev = scen - mu[:, None]
                m2 = (dev**2).mean(axis=1)
                safe = np.where(m2 > 0, m2, 1.0)
                s = np.where(m2 > 0, (dev**3).mean(axis=1) / safe**1.5, 0.0)
                kx = np.where(m2 > 0, (dev**4).mean(axis=1) / safe**2 - 3.0, 0.0)
                qa, qb = kx / 8.0 - s * s / 6.0, s / 3.0
                qc = 1.0 - kx / 8.0 + 5.0 * s * s / 36.0
                outside += int((~((qa > 0) & (qb * qb - 4.0 * qa * qc <= 1e-12))).sum())
                a, b, cc, d = _cf_terms(_N.inv_cdf(tail))
                var = -(mu + sd * (a + b * s / 6.0 + cc * kx / 24.0 - d * s * s / 36.0))
        breaches += int((-realised > var).sum())
        total += stop - start
    lr, pval = kupiec_pof(breaches, total, c)
    notes = list(book.notes)
    if outside:
        notes.append(
            f"{outside} of {total} windows ({outside / total:.0%}) had skew/kurtosis outside the domain "
            "where the Cornish–Fisher quantile is monotone"
        )
    idx = book.closes.index
    return VaRBacktest(
        method=method,
        confidence=c,
        window=window,
        positions=book.positions,
        observations=total,
        breaches=breaches,
        expected_breaches=total * (1.0 - c),
        breach_rate=breaches / total,
        kupiec_lr=lr,
        kupiec_p_value=pval,
        rejected_at_5pct=pval < 0.05,
        sample_start=str(idx[window + 1]),
        sample_end=str(idx[-1]),
        notes=notes,
    )
