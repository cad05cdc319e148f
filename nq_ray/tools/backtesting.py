"""Backtesting tools: one backtest, a performance report with Monte Carlo, strategy comparison, sweeps,
walk-forward.

One idea, the five backtest tools' thin shells (input models, call into ``nq_ray.backtest``, output
models); it is over 600 lines because each tool's typed output model lives beside it. The logic is in
``nq_ray.backtest`` (walk-forward efficiency included)."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Annotated, Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from nq_ray.config import FillCosts, Settings
from nq_ray.domain.orders import Trade
from nq_ray.errors import InvalidArgumentError
from nq_ray.tools.args import BarsQuery, DataOrigin, PackName, Params, Strategy, finite, origin
from nq_ray.tools.compute import in_thread, offload
from nq_ray.tools.context import current, progress_callback, report
from nq_ray.tools.data import load

MAX_COMBINATIONS = 5000


class CostsArgs(FillCosts):
    """How the backtest trades; each field is the ``BacktestConfig`` field of the same name. Commission
    and slippage are ``FillCosts``: when not given, the server's ``execution.*`` settings apply
    (default $2.25 per contract per side, one tick on market and stop fills)."""

    model_config = ConfigDict(extra="ignore")  # as before: unknown keys are dropped, not refused

    contracts: int = Field(default=1, ge=1, le=1000, description="contracts per entry")
    initial_capital: float = Field(default=100_000.0, gt=0, le=1e10, description="starting equity, USD")
    stop_loss_ticks: float | None = Field(default=None, gt=0, le=100_000)
    take_profit_ticks: float | None = Field(default=None, gt=0, le=100_000)
    allow_short: bool = True


def costs_of(costs: CostsArgs | None, settings: Settings) -> dict[str, Any]:
    """The ``BacktestConfig`` fields of a tool call: what the caller gave, and the settings' fill costs
    (``execution.commission_per_contract`` / ``execution.slippage_ticks``) for what they did not."""
    args = costs or CostsArgs()
    server = settings.execution.costs().model_dump()
    return args.model_dump() | {k: v for k, v in server.items() if k not in args.model_fields_set}


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


def backtest_result(report: Any, bars: pd.DataFrame, *, interval: str, source: str) -> BacktestResult:
    """The tools' summary of any ``BacktestReport`` (the agent backtest reports through it too)."""
    return _result(report, bars, {"interval": interval, "source": source})


def _run(
    settings: Settings,
    common: dict[str, Any],
    strategy: str,
    params: dict[str, Any] | None,
    costs: dict[str, Any],
) -> BacktestResult:
    report, bars = _bt(settings, common, strategy, params, costs)
    return _result(report, bars, common)


def _common(query: BarsQuery, as_of: datetime | None) -> dict[str, Any]:
    """The ``load`` arguments of a backtesting tool (``as_of``: the point-in-time cut-off, if any)."""
    return query.model_dump() | {"as_of": as_of}


Costs = Annotated[
    CostsArgs | None, Field(default=None, description="contracts, capital, commission, slippage, brackets")
]


async def run_backtest(
    query: BarsQuery,
    strategy: Strategy = "sma_cross",
    params: Params = None,
    costs: Costs = None,
) -> BacktestResult:
    """Backtest a registered strategy (sma_cross, ema_cross, macd_cross, rsi_reversion,
    bollinger_breakout, opening_range_breakout, vwap_reversion) on futures bars with realistic fills,
    commissions, slippage and session rules. Returns metrics, the last trades and the equity curve."""
    ctx = current()
    c = costs_of(costs, ctx.settings)
    report(0, 1, "backtesting")  # one Ray task: progress is its start and its end
    out = await offload(
        _run,
        ctx.settings,
        _common(query, ctx.data_as_of),
        strategy,
        params,
        c,
    )
    report(1, 1, "done")
    return out


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
    query: BarsQuery,
    strategy: Strategy = "sma_cross",
    params: Params = None,
    costs: Costs = None,
    n_sims: Annotated[int, Field(ge=1, le=100_000, description="Monte Carlo resamples of the trades")] = 1000,
    seed: Annotated[int, Field(ge=0, le=2**32 - 1)] = 0,
) -> PerformanceReport:
    """A full performance report of one strategy: backtest metrics, monthly P&L, a Monte Carlo spread of
    final P&L and drawdown (bootstrap of the trades) and a plain-text summary to show a user."""
    ctx = current()
    c = costs_of(costs, ctx.settings)
    report(0, 1, f"backtest and {n_sims} Monte Carlo runs")  # one Ray task: its start and its end
    out = await offload(
        _report,
        ctx.settings,
        _common(query, ctx.data_as_of),
        strategy,
        params,
        c,
        n_sims,
        seed,
    )
    report(1, 1, "done")
    return out


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
    table: pd.DataFrame = core(  # type: ignore[assignment]  # a frame unless reports are asked for
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
    query: BarsQuery,
    strategies: Annotated[
        list[StrategySpec | Annotated[str, Field(max_length=64)]],
        Field(min_length=1, max_length=20, description='names or {"strategy", "params", "label"} objects'),
    ] = ["sma_cross", "ema_cross", "macd_cross"],  # noqa: B006 - pydantic copies defaults
    costs: Costs = None,
    rank_by: Annotated[
        str, Field(max_length=32, description="metric to rank by, e.g. sharpe, net_pnl_usd")
    ] = "sharpe",
) -> Comparison:
    """Compare several strategies (or parameter sets) on the same bars and costs, ranked by a metric.
    Use when asked "which strategy works best on NQ?"."""
    ctx = current()
    specs = [s.model_dump() if isinstance(s, StrategySpec) else {"strategy": s} for s in strategies]
    c = costs_of(costs, ctx.settings)
    report(0, 1, f"backtesting {len(specs)} strategies")  # one Ray task: its start and its end
    out = await offload(
        _compare,
        ctx.settings,
        _common(query, ctx.data_as_of),
        specs,
        c,
        rank_by,
    )
    report(1, 1, "done")
    return out


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
    overfitting: dict[str, Any] | None = Field(
        None,
        description="n_trials, the best-Sharpe row's daily best_sharpe, psr and deflated Sharpe ratio (dsr), "
        "and pbo (probability of backtest overfitting, CSCV) when asked; docs/overfitting.md",
    )
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
    pbo: bool = False,
    pack: str | None = None,
) -> SweepResult:
    from nq_ray.backtest import METRIC_NAMES, best_params
    from nq_ray.backtest import sweep as core
    from nq_ray.backtest.sweep import PASS_PROBABILITY
    from nq_ray.propfirm.packs import settings_pack

    if metric == PASS_PROBABILITY and pack is None:
        raise InvalidArgumentError(f"metric {PASS_PROBABILITY!r} needs a prop-firm pack (pack)")
    if metric not in (*METRIC_NAMES, PASS_PROBABILITY):
        raise InvalidArgumentError(
            f"unknown metric {metric!r}; known: {', '.join(METRIC_NAMES)}, {PASS_PROBABILITY} (with a pack)"
        )
    rules = None if pack is None else settings_pack(pack, settings)  # an unknown name lists the known ones
    n = 1
    for v in grid.values():
        n *= max(len(v), 1)
    if n > MAX_COMBINATIONS:
        raise InvalidArgumentError(f"grid has {n} combinations; at most {MAX_COMBINATIONS} per sweep")
    bars = load(settings, **common)

    def tick(done: int, total: int) -> None:
        if progress is not None:
            progress(done, total, f"{done}/{total} chunks")

    table = core(bars, strategy, grid, _config(common["symbol"], costs), progress=tick, pbo=pbo, pack=rules)
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
        overfitting=_finite_tree(table.attrs.get("overfitting")),
        origin=origin(common["source"], bars),
    )


def _finite_tree(value: Any) -> Any:
    """``value`` with every non-finite float replaced by None (JSON has no inf/NaN)."""
    if isinstance(value, dict):
        return {k: _finite_tree(v) for k, v in value.items()}
    if isinstance(value, float | np.floating):
        return finite(value)
    return value


Grid = Annotated[
    dict[str, Annotated[list[int | float], Field(min_length=1, max_length=200)]],
    Field(
        min_length=1, max_length=6, description='parameter → values, e.g. {"fast": [5, 10], "slow": [20, 50]}'
    ),
]
OptimiseMetric = Annotated[str, Field(max_length=32, description="metric to optimise, e.g. sharpe")]


async def run_sweep(
    query: BarsQuery,
    strategy: Strategy = "sma_cross",
    grid: Grid = {"fast": [5, 10, 20], "slow": [30, 50, 100]},  # noqa: B006 - pydantic copies defaults
    costs: Costs = None,
    metric: OptimiseMetric = "sharpe",
    top: Annotated[int, Field(ge=1, le=100, description="best rows to return")] = 10,
    pbo: Annotated[
        bool,
        Field(description="also the probability of backtest overfitting (CSCV over the rows' daily returns)"),
    ] = False,
    pack: Annotated[
        PackName | None,
        Field(
            description="a prop-firm rule pack: runs start at its balance with its contract cap, each row "
            "gains pass_probability (95% interval), and metric may be pass_probability"
        ),
    ] = None,
) -> SweepResult:
    """Parameter sweep (grid search) of one strategy, run as parallel Ray tasks, with progress reports.
    Long: prefer submitting it as a job (POST /api/jobs) and polling. Beware of overfitting: check the
    winner with walk-forward or on other dates. With a prop-firm ``pack``, rank by ``pass_probability``
    to choose the parameters most likely to pass the evaluation."""
    ctx = current()
    c = costs_of(costs, ctx.settings)
    n = math.prod(len(v) for v in grid.values())
    if n > MAX_COMBINATIONS:
        raise InvalidArgumentError(f"grid has {n} combinations; at most {MAX_COMBINATIONS} per sweep")
    return await in_thread(
        _sweep,
        ctx.settings,
        _common(query, ctx.data_as_of),
        strategy,
        {k: list(v) for k, v in grid.items()},
        c,
        metric,
        top,
        progress_callback(),
        pbo,
        pack,
    )


# ---------------------------------------------------------------------------------- run_walk_forward
MAX_FOLDS = 20


class WalkForwardFold(BaseModel):
    """One fold: the windows (bar start times, ends inclusive), the parameters chosen in-sample and how
    they did in-sample and out-of-sample."""

    fold: int
    train_start: str
    train_end: str
    test_start: str
    test_end: str
    train_bars: int
    test_bars: int
    best_params: dict[str, Any] = Field(description="the grid row with the best in-sample metric")
    params: str = Field(description="best_params as text, e.g. 'fast=10, slow=30'")
    in_sample: dict[str, float | None] = Field(description="every metric of best_params on the train window")
    in_sample_score: float | None = Field(description="in_sample[metric]")
    oos_score: float | None = Field(description="metric of best_params on the test window")
    oos_net_pnl_usd: float | None
    oos_n_trades: int
    efficiency: float | None = Field(
        description="(OOS net P&L per bar) / (in-sample net P&L per bar); null if in-sample P&L ≤ 0"
    )


class WalkForwardReport(BaseModel):
    """Walk-forward analysis: per-fold windows and choices, the stitched out-of-sample result and the
    walk-forward efficiency."""

    symbol: str
    strategy: str
    interval: str
    metric: str
    mode: str
    combinations: int = Field(description="valid parameter sets tried in each fold")
    skipped_combinations: int
    folds: list[WalkForwardFold]
    oos_metrics: dict[str, float | None] = Field(description="metrics of the stitched out-of-sample equity")
    oos_equity_curve: list[tuple[str, float]] = Field(
        description="(time, equity USD) of the stitched out-of-sample run, about 200 points"
    )
    efficiency_ratio: float | None = Field(
        description="walk-forward efficiency (Pardo): (Σ OOS net P&L / Σ test bars) ÷ (Σ in-sample net P&L "
        "/ Σ train bars); ≥ 0.5 is usually read as robust; null if the in-sample P&L is ≤ 0"
    )
    first_bar_time: str
    last_bar_time: str
    origin: DataOrigin


def _label(params: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in params.items())


def _walk_forward(
    settings: Settings,
    common: dict[str, Any],
    strategy: str,
    grid: dict[str, list[Any]],
    costs: dict[str, Any],
    metric: str,
    n_folds: int,
    mode: str,
    train_bars: int | None,
    test_bars: int | None,
    progress: Any,
) -> WalkForwardReport:
    from nq_ray.backtest import METRIC_NAMES, get_strategy, walk_forward
    from nq_ray.backtest import run_backtest as backtest
    from nq_ray.backtest.sweep import expand_grid
    from nq_ray.backtest.walkforward import fold_bounds, walk_forward_efficiency

    if metric not in METRIC_NAMES:
        raise InvalidArgumentError(f"unknown metric {metric!r}; known: {', '.join(METRIC_NAMES)}")
    strat = get_strategy(strategy)
    combos, skipped = expand_grid(strat, grid)  # unknown or invalid parameters refused before loading
    if len(combos) * n_folds > MAX_COMBINATIONS:
        raise InvalidArgumentError(
            f"{len(combos)} combinations × {n_folds} folds = {len(combos) * n_folds} backtests; at most "
            f"{MAX_COMBINATIONS} per walk-forward (shrink the grid or the folds)"
        )
    bars = load(settings, **common)
    bounds = fold_bounds(len(bars), n_folds, mode, train_bars, test_bars)
    if not bounds:
        raise InvalidArgumentError(
            f"{len(bars)} bars leave no test window after {train_bars} training bars; load more bars "
            "or shrink train_bars",
            n_bars=len(bars),
        )
    warm = max(strat.warmup(c) for c in combos)
    shortest = min(b[1] - b[0] for b in bounds)
    if shortest < warm:
        raise InvalidArgumentError(
            f"a training window has {shortest} bars but the grid needs {warm} to warm up; load more bars, "
            "use fewer folds or shorter indicator windows",
            n_bars=len(bars),
            n_folds=n_folds,
        )
    config = _config(common["symbol"], costs)

    def tick(done: int, total: int) -> None:
        if progress is not None:
            progress(done, total, f"{done}/{total} folds")

    res = walk_forward(
        bars,
        strat,
        grid,
        config,
        n_folds=n_folds,
        mode=mode,  # type: ignore[arg-type]
        train_bars=train_bars,
        test_bars=test_bars,
        metric=metric,
        progress=tick,
    )
    folds: list[WalkForwardFold] = []
    sum_is = sum_oos = 0.0
    n_train = n_test = 0
    for row, (tr0, tr1, te0, te1) in zip(res.folds.to_dict("records"), bounds, strict=True):
        resolved = strat.resolve_params(row["params"])  # 10.0 → 10 where the parameter is an integer
        best = {k: (v.item() if hasattr(v, "item") else v) for k, v in resolved.items() if k in row["params"]}
        in_sample = _metrics(backtest(bars.iloc[tr0:tr1], strat, best, config).metrics)
        is_pnl = in_sample["net_pnl_usd"] or 0.0
        oos_pnl = float(row["oos_net_pnl_usd"])
        sum_is += is_pnl
        sum_oos += oos_pnl
        n_train += tr1 - tr0
        n_test += te1 - te0
        folds.append(
            WalkForwardFold(
                fold=int(row["fold"]),
                train_start=row["train_start"].isoformat(),
                train_end=row["train_end"].isoformat(),
                test_start=row["test_start"].isoformat(),
                test_end=row["test_end"].isoformat(),
                train_bars=tr1 - tr0,
                test_bars=te1 - te0,
                best_params=best,
                params=_label(best),
                in_sample=in_sample,
                in_sample_score=in_sample[metric],
                oos_score=finite(row[f"oos_{metric}"]),
                oos_net_pnl_usd=finite(oos_pnl),
                oos_n_trades=int(row["oos_n_trades"]),
                efficiency=walk_forward_efficiency(oos_pnl, te1 - te0, is_pnl, tr1 - tr0),
            )
        )
    return WalkForwardReport(
        symbol=config.symbol,
        strategy=strat.name,
        interval=common["interval"],
        metric=metric,
        mode=mode,
        combinations=len(combos),
        skipped_combinations=skipped,
        folds=folds,
        oos_metrics=_metrics(res.metrics),
        oos_equity_curve=_equity_points(res.equity, 200),
        efficiency_ratio=walk_forward_efficiency(sum_oos, n_test, sum_is, n_train),
        first_bar_time=bars.index[0].isoformat(),
        last_bar_time=bars.index[-1].isoformat(),
        origin=origin(common["source"], bars),
    )


async def run_walk_forward(
    query: BarsQuery,
    strategy: Strategy = "sma_cross",
    grid: Grid = {"fast": [5, 10, 20], "slow": [30, 50, 100]},  # noqa: B006 - pydantic copies defaults
    costs: Costs = None,
    metric: OptimiseMetric = "sharpe",
    n_folds: Annotated[int, Field(ge=1, le=MAX_FOLDS, description="number of out-of-sample windows")] = 4,
    mode: Annotated[
        Literal["rolling", "anchored"],
        Field(description="rolling: train on the previous window only; anchored: on everything before"),
    ] = "rolling",
    train_bars: Annotated[
        int | None, Field(default=None, ge=2, le=10_000_000, description="bars per training window")
    ] = None,
    test_bars: Annotated[
        int | None, Field(default=None, ge=2, le=10_000_000, description="bars per test window")
    ] = None,
) -> WalkForwardReport:
    """Walk-forward analysis: for each fold, grid-search ``grid`` on a training window, trade the winner on
    the next (unseen) window, then stitch the out-of-sample results. Use it to check whether a sweep's
    best parameters hold up out of sample (efficiency_ratio near or above 0.5) rather than being overfit.
    Windows default to n_folds + 1 equal blocks. Long: prefer a job (POST /api/jobs); reports progress."""
    ctx = current()
    c = costs_of(costs, ctx.settings)
    n = math.prod(len(v) for v in grid.values())
    if n * n_folds > MAX_COMBINATIONS:
        raise InvalidArgumentError(
            f"grid has {n} combinations × {n_folds} folds = {n * n_folds} backtests; at most "
            f"{MAX_COMBINATIONS} per walk-forward"
        )
    return await in_thread(
        _walk_forward,
        ctx.settings,
        _common(query, ctx.data_as_of),
        strategy,
        {k: list(v) for k, v in grid.items()},
        c,
        metric,
        n_folds,
        mode,
        train_bars,
        test_bars,
        progress_callback(),
    )
