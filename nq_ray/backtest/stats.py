"""Performance metrics, computed in one ``@njit`` pass so a sweep never touches pandas per combination.

Each metric is defined in one line below and in docs/backtesting.md ("Metrics"). Daily returns are
session returns: equity at the last bar of each CME session date over the previous one (the first day
over the initial capital); annualised with √252. Undefined ratios never come out as NaN: they are 0
when there is nothing to measure, and ``inf`` when the denominator is zero and the numerator positive.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from numba import njit
from pydantic import BaseModel, ConfigDict

from nq_ray.backtest.kernel import T_COMMISSION, T_MAE, T_MFE, T_PNL
from nq_ray.market.sessions import session_dates

METRIC_NAMES: tuple[str, ...] = (
    "net_pnl_usd",
    "total_return",
    "cagr",
    "sharpe",
    "sortino",
    "max_drawdown_usd",
    "max_drawdown_pct",
    "max_drawdown_days",
    "calmar",
    "n_trades",
    "win_rate",
    "profit_factor",
    "expectancy_usd",
    "avg_win_usd",
    "avg_loss_usd",
    "gross_profit_usd",
    "gross_loss_usd",
    "exposure",
    "trades_per_day",
    "avg_mae_usd",
    "avg_mfe_usd",
    "commission_usd",
    "final_equity_usd",
    "n_days",
)
M = {name: i for i, name in enumerate(METRIC_NAMES)}
N_METRICS = len(METRIC_NAMES)
SQRT_252 = math.sqrt(252.0)


class Metrics(BaseModel):
    """Backtest metrics; every field is defined in one line (and in docs/backtesting.md)."""

    model_config = ConfigDict(frozen=True, ser_json_inf_nan="constants")

    net_pnl_usd: float  # final equity − initial capital (= Σ trade pnl_usd, commissions included)
    total_return: float  # net P&L / initial capital (fraction)
    cagr: float  # (final / initial)^(252 / session days) − 1; −1 if equity ends ≤ 0
    sharpe: float  # mean / stdev(ddof=1) of daily session returns × √252; 0 if < 2 days or stdev 0
    sortino: float  # mean daily return / √mean(min(r, 0)²) × √252; inf if no down day and mean > 0
    max_drawdown_usd: float  # max over bars of (running peak equity − equity), peak starts at capital
    max_drawdown_pct: float  # max over bars of (peak − equity) / peak (fraction)
    max_drawdown_days: float  # longest time from a peak to the recovery of it (or the last bar), days
    calmar: float  # CAGR / max drawdown %; inf if no drawdown and CAGR > 0, 0 if CAGR ≤ 0 and no drawdown
    n_trades: int  # closed round trips (an end_of_data close counts)
    win_rate: float  # trades with pnl_usd > 0 / trades; 0 without trades
    profit_factor: float  # gross profit $ / gross loss $; inf if no losing trade and a profit, 0 if none
    expectancy_usd: float  # mean pnl_usd per trade
    avg_win_usd: float  # mean pnl_usd of trades with pnl_usd > 0
    avg_loss_usd: float  # mean pnl_usd of trades with pnl_usd < 0 (negative)
    gross_profit_usd: float  # Σ pnl_usd of winning trades
    gross_loss_usd: float  # −Σ pnl_usd of losing trades (positive)
    exposure: float  # bars that close with a position / bars
    trades_per_day: float  # trades / session days
    avg_mae_usd: float  # mean maximum adverse excursion per trade (≤ 0), bar highs/lows while open
    avg_mfe_usd: float  # mean maximum favourable excursion per trade (≥ 0)
    commission_usd: float  # Σ commission paid, both sides
    final_equity_usd: float  # equity after the last bar
    n_days: int  # session dates covered by the bars

    @classmethod
    def from_array(cls, values: np.ndarray) -> Metrics:
        d: dict[str, Any] = {name: float(values[i]) for i, name in enumerate(METRIC_NAMES)}
        d["n_trades"] = int(d["n_trades"])
        d["n_days"] = int(d["n_days"])
        return cls(**d)


def day_ids(index: pd.DatetimeIndex) -> np.ndarray:
    """Dense session-day number of each bar (0, 0, …, 1, 1, …): 18:00 ET starts the next session date."""
    d = index.to_numpy().astype("datetime64[D]") if index.tz is None else session_dates(index)
    d = d.astype(np.int64)
    out = np.zeros(d.shape[0], dtype=np.int64)
    if d.shape[0] > 1:
        out[1:] = np.cumsum(d[1:] != d[:-1])
    return out


@njit(cache=True)
def _ratio(num: float, den: float) -> float:
    if den > 0:
        return num / den
    if num > 0:
        return np.inf
    return 0.0


@njit(cache=True)
def compute_metrics(equity, position, trades, day_id, times_ns, initial_capital):
    """All metrics as one float64 vector (order: ``METRIC_NAMES``)."""
    out = np.zeros(N_METRICS, dtype=np.float64)
    n = equity.shape[0]
    final = equity[n - 1]
    out[0] = final - initial_capital
    out[1] = out[0] / initial_capital

    # daily session returns
    n_days = day_id[n - 1] - day_id[0] + 1
    rets = np.empty(n_days, dtype=np.float64)
    prev = initial_capital
    d = 0
    for i in range(n):
        if i == n - 1 or day_id[i + 1] != day_id[i]:
            e = equity[i]
            rets[d] = (e - prev) / prev if prev > 0 else 0.0
            prev = e
            d += 1
    rets = rets[:d]
    years = d / 252.0
    cagr = -1.0 if final <= 0 else (final / initial_capital) ** (1.0 / years) - 1.0
    out[2] = cagr
    mean = rets.mean()
    if d >= 2:
        sd = rets.std() * np.sqrt(d / (d - 1.0))
        out[3] = mean / sd * np.sqrt(252.0) if sd > 0 else 0.0
    down = 0.0
    for r in rets:
        if r < 0:
            down += r * r
    dd_dev = np.sqrt(down / d)
    out[4] = mean / dd_dev * np.sqrt(252.0) if dd_dev > 0 else _ratio(mean, 0.0)

    # drawdown: peak starts at the initial capital
    peak = initial_capital
    peak_t = times_ns[0]
    max_dd = 0.0
    max_pct = 0.0
    max_dur = 0.0
    under = False
    for i in range(n):
        e = equity[i]
        if e >= peak:
            if under:
                dur = (times_ns[i] - peak_t) / 86_400e9
                max_dur = max(max_dur, dur)
                under = False
            peak = e
            peak_t = times_ns[i]
        else:
            under = True
            max_dd = max(max_dd, peak - e)
            if peak > 0:
                max_pct = max(max_pct, (peak - e) / peak)
    if under:
        max_dur = max(max_dur, (times_ns[n - 1] - peak_t) / 86_400e9)
    out[5] = max_dd
    out[6] = max_pct
    out[7] = max_dur
    out[8] = cagr / max_pct if max_pct > 0 else _ratio(cagr, 0.0)

    # trades
    k = trades.shape[0]
    out[9] = k
    wins = 0
    n_loss = 0
    gp = 0.0
    gl = 0.0
    mae = 0.0
    mfe = 0.0
    comm = 0.0
    for j in range(k):
        p = trades[j, T_PNL]
        if p > 0:
            wins += 1
            gp += p
        elif p < 0:
            n_loss += 1
            gl -= p
        mae += trades[j, T_MAE]
        mfe += trades[j, T_MFE]
        comm += trades[j, T_COMMISSION]
    if k > 0:
        out[10] = wins / k
        out[12] = (gp - gl) / k
        out[19] = mae / k
        out[20] = mfe / k
    out[11] = _ratio(gp, gl)
    out[13] = gp / wins if wins > 0 else 0.0
    out[14] = -gl / n_loss if n_loss > 0 else 0.0
    out[15] = gp
    out[16] = gl
    held = 0
    for i in range(n):
        if position[i] != 0:
            held += 1
    out[17] = held / n
    out[18] = k / d
    out[21] = comm
    out[22] = final
    out[23] = d
    return out


def metrics_frame(rows: np.ndarray) -> pd.DataFrame:
    """A (combinations × metrics) array as a DataFrame with the metric names as columns."""
    df = pd.DataFrame(rows, columns=list(METRIC_NAMES))
    df["n_trades"] = df["n_trades"].astype(np.int64)
    df["n_days"] = df["n_days"].astype(np.int64)
    return df
