"""Monte Carlo resampling of closed trades: the distribution of drawdowns and final P&L.

Each simulation draws the trades' ``pnl_usd`` again (``bootstrap``: with replacement, same count;
``shuffle``: a permutation, so the final P&L is fixed and only the path, hence the drawdown, changes)
and walks the equity from the initial capital trade by trade.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
from numba import njit

from nq_ray.backtest.engine import BacktestReport
from nq_ray.errors import InvalidArgumentError


@njit(cache=True)
def _simulate_paths(pnl, n_sims, capital, shuffle, seed):
    np.random.seed(seed)
    k = pnl.shape[0]
    out = np.empty((n_sims, 3), dtype=np.float64)  # final P&L, max drawdown $, max drawdown fraction
    path = pnl.copy()
    for s in range(n_sims):
        if shuffle:
            path = np.random.permutation(pnl)
        else:
            for j in range(k):
                path[j] = pnl[np.random.randint(0, k)]
        eq = capital
        peak = capital
        dd = 0.0
        ddp = 0.0
        for j in range(k):
            eq += path[j]
            if eq > peak:
                peak = eq
            elif peak - eq > dd:
                dd = peak - eq
            if peak > 0 and (peak - eq) / peak > ddp:
                ddp = (peak - eq) / peak
        out[s, 0] = eq - capital
        out[s, 1] = dd
        out[s, 2] = ddp
    return out


@dataclass(frozen=True)
class MonteCarloResult:
    """Per-simulation outcomes and their percentiles."""

    simulations: pd.DataFrame  # columns: final_pnl_usd, max_drawdown_usd, max_drawdown_pct
    summary: pd.DataFrame  # rows: percentiles (5, 25, 50, 75, 95); columns as above

    def drawdown_at(self, confidence: float = 0.95) -> float:
        """Max drawdown (USD) not exceeded in ``confidence`` of the simulations."""
        if not 0 < confidence < 1:
            raise InvalidArgumentError(
                f"confidence must be in (0, 1), got {confidence}", confidence=confidence
            )
        return float(np.quantile(self.simulations["max_drawdown_usd"], confidence))


def monte_carlo(
    trades: BacktestReport | pd.DataFrame | np.ndarray,
    n_sims: int = 1000,
    method: Literal["bootstrap", "shuffle"] = "bootstrap",
    initial_capital: float | None = None,
    seed: int = 0,
) -> MonteCarloResult:
    """Resample the trades ``n_sims`` times (seeded, reproducible) and report drawdown and P&L spreads."""
    if isinstance(trades, BacktestReport):
        capital = trades.config.initial_capital if initial_capital is None else initial_capital
        pnl = trades.trades["pnl_usd"].to_numpy(dtype=np.float64)
    else:
        capital = 100_000.0 if initial_capital is None else initial_capital
        pnl = (
            trades["pnl_usd"].to_numpy(dtype=np.float64)
            if isinstance(trades, pd.DataFrame)
            else np.asarray(trades, dtype=np.float64)
        )
    if n_sims < 1:
        raise InvalidArgumentError(f"n_sims must be ≥ 1, got {n_sims}", n_sims=n_sims)
    if method not in ("bootstrap", "shuffle"):
        raise InvalidArgumentError(f"method must be 'bootstrap' or 'shuffle', not {method!r}", method=method)
    if pnl.size == 0:
        raise InvalidArgumentError("no trades to resample; the backtest closed none")
    out = _simulate_paths(
        np.ascontiguousarray(pnl), int(n_sims), float(capital), method == "shuffle", int(seed)
    )
    sims = pd.DataFrame(out, columns=["final_pnl_usd", "max_drawdown_usd", "max_drawdown_pct"])
    summary = sims.quantile([0.05, 0.25, 0.5, 0.75, 0.95])
    summary.index = pd.Index([5, 25, 50, 75, 95], name="percentile")
    return MonteCarloResult(simulations=sims, summary=summary)
