"""Backtesting tools: one backtest, a performance report with Monte Carlo, strategy comparison, sweeps."""

from __future__ import annotations

from typing import Annotated, Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, Field

from nq_ray.config import Settings
from nq_ray.domain.orders import Trade
from nq_ray.errors import InvalidArgumentError
from nq_ray.tools.args import (
    DataOrigin,
    Interval,
    Params,
    Period,
    Source,
    Strategy,
    Symbol,
    When,
    finite,
    origin,
)
from nq_ray.tools.compute import in_thread, offload
from nq_ray.tools.context import current, progress_callback
from nq_ray.tools.data import load

MAX_COMBINATIONS = 5000


class CostsArgs(BaseModel):
    """How the backtest trades; each field is the ``BacktestConfig`` field of the same name."""

    contracts: int = Field(default=1, ge=1, le=1000, description="contracts per entry")
    initial_capital: float = Field(default=100_000.0, gt=0, le=1e10, description="starting equity, USD")
    commission_per_contract: float = Field(
        default=2.25, ge=0, le=1000, description="USD per contract per side"
    )
    slippage_ticks: float = Field(default=1, ge=0, le=100)
    stop_loss_ticks: float | None = Field(default=None, gt=0, le=100_000)
    take_profit_ticks: float | None = Field(default=None, gt=0, le=100_000)
    allow_short: bool = True


def _config(symbol: str, costs: dict[str, Any]) -> Any:
    from nq_ray.backtest import BacktestConfig
    from nq_ray.domain.contracts import get_contract

    return BacktestConfig(symbol=get_contract(symbol).symbol, **costs)


def _metrics(m: Any) -> dict[str, float | None]:
    return {k: finite(v) for k, v in m.model_dump().items()}


def _equity_points(equity: pd.Series, n: int = 100) -> list[tuple[str, float]]:
    if len(equity) == 0:
        return []
    idx = np.unique(np.linspace(0, len(equity) - 1, min(n, len(equity))).astype(int))
    return [(equity.index[i].isoformat(), float(equity.iloc[i])) for i in idx]


class BacktestResult(BaseModel):
    """A backtest's metrics, its last trades and a down-sampled equity curve."""

    symbol: str
    strategy: str
    params: dict[str, Any]
    interval: str
    metrics: dict[str, float | None] = Field(
        description="net_pnl_usd, sharpe, max_drawdown_pct, win_rate, ..."
    )
    n_trades: int
    rejected_entries: int
    last_trades: list[Trade] = Field(description="the last 20 closed trades")
    equity_curve: list[tuple[str, float]] = Field(description="(time, equity USD), about 100 points")
    first_bar_time: str
    last_bar_time: str
    origin: DataOrigin


def _bt(
    settings: Settings,
    common: dict[str, Any],
    strategy: str,
    params: dict[str, Any] | None,
    costs: dict[str, Any],
) -> tuple[Any, pd.DataFrame]:
    from nq_ray.backtest import run_backtest as core

    bars = load(settings, **common)
    report = core(bars, strategy, params, _config(common["symbol"], costs))
    return report, bars


def _result(report: Any, bars: pd.DataFrame, common: dict[str, Any]) -> BacktestResult:
    trades = report.trade_models()
    return BacktestResult(
        symbol=report.config.symbol,
        strategy=report.strategy,
        params=dict(report.params),
        interval=common["interval"],
        metrics=_metrics(report.metrics),
        n_trades=len(trades),
        rejected_entries=report.rejected_entries,
        last_trades=trades[-20:],
        equity_curve=_equity_points(report.equity),
        first_bar_time=bars.index[0].isoformat(),
        last_bar_time=bars.index[-1].isoformat(),
        origin=origin(common["source"], bars),
    )


def _run(
    settings: Settings,
    common: dict[str, Any],
    strategy: str,
    params: dict[str, Any] | None,
    costs: dict[str, Any],
) -> BacktestResult:
    report, bars = _bt(settings, common, strategy, params, costs)
    return _result(report, bars, common)


def _common(
    symbol: str, interval: str, start: str | None, end: str | None, period: str | None, source: str
) -> dict[str, Any]:
    return {
        "symbol": symbol,
        "interval": interval,
        "start": start,
        "end": end,
        "period": period,
        "source": source,
    }


Costs = Annotated[
    CostsArgs | None, Field(default=None, description="contracts, capital, commission, slippage, brackets")
]


async def run_backtest(
    symbol: Symbol = "NQ",
    strategy: Strategy = "sma_cross",
    params: Params = None,
    interval: Interval = "5m",
    start: When = None,
    end: When = None,
    period: Period = None,
    source: Source = "sample",
    costs: Costs = None,
) -> BacktestResult:
    """Backtest a registered strategy (sma_cross, ema_cross, macd_cross, rsi_reversion,
    bollinger_breakout, opening_range_breakout, vwap_reversion) on futures bars with realistic fills,
    commissions, slippage and session rules. Returns metrics, the last trades and the equity curve."""
    ctx = current()
    c = (costs or CostsArgs()).model_dump()
    return await offload(
        _run, ctx.settings, _common(symbol, interval, start, end, period, source), strategy, params, c
    )


# ------------------------------------------------------------------------- generate_performance_report
class PerformanceReport(BaseModel):
    """A backtest with its Monte Carlo spread, monthly P&L and a readable summary."""

    backtest: BacktestResult
    monthly_pnl_usd: dict[str, float] = Field(description="YYYY-MM → net P&L")
    monte_carlo: dict[str, dict[str, float | None]] = Field(
        description="percentile (5, 25, 50, 75, 95) → final_pnl_usd, max_drawdown_usd, max_drawdown_pct"
    )
    monte_carlo_sims: int
    text: str = Field(description="a short plain-text report")


def _report(
    settings: Settings,
    common: dict[str, Any],
    strategy: str,
    params: dict[str, Any] | None,
    costs: dict[str, Any],
    n_sims: int,
    seed: int,
) -> PerformanceReport:
    from nq_ray.backtest import monte_carlo

    report, bars = _bt(settings, common, strategy, params, costs)
    res = _result(report, bars, common)
    eq = report.equity
    monthly = eq.groupby(eq.index.strftime("%Y-%m")).last().diff()
    if len(monthly):
        monthly.iloc[0] = (
            eq.groupby(eq.index.strftime("%Y-%m")).last().iloc[0] - report.config.initial_capital
        )
    mc: dict[str, dict[str, float | None]] = {}
    sims = 0
    if len(report.trades):
        out = monte_carlo(report, n_sims=n_sims, seed=seed)
        sims = n_sims
        mc = {str(p): {k: finite(v) for k, v in row.items()} for p, row in out.summary.iterrows()}
    m = res.metrics
    text = (
        f"{res.strategy} {res.params} on {res.symbol} {res.interval} ({res.first_bar_time} → "
        f"{res.last_bar_time}, {res.origin.source}): net ${m['net_pnl_usd'] or 0:,.2f} over {res.n_trades} "
        f"trades, win rate {100 * (m['win_rate'] or 0):.1f}%, Sharpe {m['sharpe'] or 0:.2f}, "
        f"max drawdown {100 * (m['max_drawdown_pct'] or 0):.1f}%"
    )
    if mc:
        text += (
            f"; Monte Carlo ({sims} runs) median final P&L ${mc['50']['final_pnl_usd'] or 0:,.2f}, "
            f"95th-percentile drawdown ${mc['95']['max_drawdown_usd'] or 0:,.2f}"
        )
    return PerformanceReport(
        backtest=res,
        monthly_pnl_usd={k: float(v) for k, v in monthly.items()},
        monte_carlo=mc,
        monte_carlo_sims=sims,
        text=text,
    )


async def generate_performance_report(
    symbol: Symbol = "NQ",
    strategy: Strategy = "sma_cross",
    params: Params = None,
    interval: Interval = "5m",
    start: When = None,
    end: When = None,
    period: Period = None,
    source: Source = "sample",
    costs: Costs = None,
    n_sims: Annotated[int, Field(ge=1, le=100_000, description="Monte Carlo resamples of the trades")] = 1000,
    seed: Annotated[int, Field(ge=0, le=2**32 - 1)] = 0,
) -> PerformanceReport:
    """A full performance report of one strategy: backtest metrics, monthly P&L, a Monte Carlo spread of
    final P&L and drawdown (bootstrap of the trades) and a plain-text summary to show a user."""
    ctx = current()
    c = (costs or CostsArgs()).model_dump()
    return await offload(
        _report,
        ctx.settings,
        _common(symbol, interval, start, end, period, source),
        strategy,
        params,
        c,
        n_sims,
        seed,
    )


# ---------------------------------------------------------------------------------- compare_strategies
class StrategySpec(BaseModel):
    strategy: str = Field(max_length=64)
    params: dict[str, float | int | str | bool] | None = None
    label: str | None = Field(default=None, max_length=64)


class ComparisonRow(BaseModel):
    label: str
    metrics: dict[str, float | None]


class Comparison(BaseModel):
    """One row per strategy on the same bars and costs, ranked by ``rank_by``."""

    symbol: str
    interval: str
    rank_by: str
    rows: list[ComparisonRow]
    origin: DataOrigin


def _compare(
    settings: Settings,
    common: dict[str, Any],
    specs: list[dict[str, Any]],
    costs: dict[str, Any],
    rank_by: str,
) -> Comparison:
    from nq_ray.backtest import METRIC_NAMES
    from nq_ray.backtest import compare_strategies as core

    if rank_by not in METRIC_NAMES:
        raise InvalidArgumentError(f"unknown metric {rank_by!r}; known: {', '.join(METRIC_NAMES)}")
    bars = load(settings, **common)
    table = core(
        bars, [{k: v for k, v in s.items() if v is not None} for s in specs], _config(common["symbol"], costs)
    )
    table = table.sort_values(rank_by, ascending=False, kind="stable")
    rows = [
        ComparisonRow(label=str(label), metrics={k: finite(v) for k, v in row.items() if k in METRIC_NAMES})
        for label, row in table.iterrows()
    ]
    return Comparison(
        symbol=_config(common["symbol"], costs).symbol,
        interval=common["interval"],
        rank_by=rank_by,
        rows=rows,
        origin=origin(common["source"], bars),
    )


async def compare_strategies(
    strategies: Annotated[
        list[StrategySpec | Annotated[str, Field(max_length=64)]],
        Field(min_length=1, max_length=20, description='names or {"strategy", "params", "label"} objects'),
    ] = ["sma_cross", "ema_cross", "macd_cross"],  # noqa: B006 - pydantic copies defaults
    symbol: Symbol = "NQ",
    interval: Interval = "5m",
    start: When = None,
    end: When = None,
    period: Period = None,
    source: Source = "sample",
    costs: Costs = None,
    rank_by: Annotated[
        str, Field(max_length=32, description="metric to rank by, e.g. sharpe, net_pnl_usd")
    ] = "sharpe",
) -> Comparison:
    """Compare several strategies (or parameter sets) on the same bars and costs, ranked by a metric.
    Use when asked "which strategy works best on NQ?"."""
    ctx = current()
    specs = [s.model_dump() if isinstance(s, StrategySpec) else {"strategy": s} for s in strategies]
    c = (costs or CostsArgs()).model_dump()
    return await offload(
        _compare, ctx.settings, _common(symbol, interval, start, end, period, source), specs, c, rank_by
    )


# ----------------------------------------------------------------------------------------- run_sweep
class SweepResult(BaseModel):
    """The best parameter sets of a grid search, ranked by ``metric``."""

    symbol: str
    strategy: str
    metric: str
    combinations: int
    skipped_combinations: int
    best_params: dict[str, Any]
    top: list[dict[str, float | int | str | None]] = Field(description="best rows: parameters and metrics")
    origin: DataOrigin


def _sweep(
    settings: Settings,
    common: dict[str, Any],
    strategy: str,
    grid: dict[str, list[Any]],
    costs: dict[str, Any],
    metric: str,
    top: int,
    progress: Any,
) -> SweepResult:
    from nq_ray.backtest import METRIC_NAMES, best_params
    from nq_ray.backtest import sweep as core

    if metric not in METRIC_NAMES:
        raise InvalidArgumentError(f"unknown metric {metric!r}; known: {', '.join(METRIC_NAMES)}")
    n = 1
    for v in grid.values():
        n *= max(len(v), 1)
    if n > MAX_COMBINATIONS:
        raise InvalidArgumentError(f"grid has {n} combinations; at most {MAX_COMBINATIONS} per sweep")
    bars = load(settings, **common)

    def tick(done: int, total: int) -> None:
        if progress is not None:
            progress(done, total, f"{done}/{total} chunks")

    table = core(bars, strategy, grid, _config(common["symbol"], costs), progress=tick)
    best = best_params(table, metric)
    ranked = table.sort_values(metric, ascending=False, kind="stable").head(top)
    rows = [
        {
            k: (finite(v) if isinstance(v, float | np.floating) else (v.item() if hasattr(v, "item") else v))
            for k, v in row.items()
        }
        for _, row in ranked.iterrows()
    ]
    return SweepResult(
        symbol=_config(common["symbol"], costs).symbol,
        strategy=str(table.attrs.get("strategy", strategy)),
        metric=metric,
        combinations=len(table),
        skipped_combinations=int(table.attrs.get("skipped_combinations", 0)),
        best_params={k: (v.item() if hasattr(v, "item") else v) for k, v in best.items()},
        top=rows,
        origin=origin(common["source"], bars),
    )


async def run_sweep(
    strategy: Strategy = "sma_cross",
    grid: Annotated[
        dict[str, Annotated[list[int | float], Field(min_length=1, max_length=200)]],
        Field(
            min_length=1,
            max_length=6,
            description='parameter → values, e.g. {"fast": [5, 10], "slow": [20, 50]}',
        ),
    ] = {"fast": [5, 10, 20], "slow": [30, 50, 100]},  # noqa: B006 - pydantic copies defaults
    symbol: Symbol = "NQ",
    interval: Interval = "5m",
    start: When = None,
    end: When = None,
    period: Period = None,
    source: Source = "sample",
    costs: Costs = None,
    metric: Annotated[str, Field(max_length=32, description="metric to optimise, e.g. sharpe")] = "sharpe",
    top: Annotated[int, Field(ge=1, le=100, description="best rows to return")] = 10,
) -> SweepResult:
    """Parameter sweep (grid search) of one strategy, run as parallel Ray tasks, with progress reports.
    Long: prefer submitting it as a job (POST /api/jobs) and polling. Beware of overfitting: check the
    winner with walk-forward or on other dates."""
    ctx = current()
    c = (costs or CostsArgs()).model_dump()
    n = 1
    for v in grid.values():
        n *= len(v)
    if n > MAX_COMBINATIONS:
        raise InvalidArgumentError(f"grid has {n} combinations; at most {MAX_COMBINATIONS} per sweep")
    return await in_thread(
        _sweep,
        ctx.settings,
        _common(symbol, interval, start, end, period, source),
        strategy,
        {k: list(v) for k, v in grid.items()},
        c,
        metric,
        top,
        progress_callback(),
    )
