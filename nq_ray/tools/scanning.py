"""Scanner tools: ``scan_market`` (the rules analyst's view and key indicators) and ``scan_backtests`` (one
strategy) over many symbols × timeframes at once, as parallel Ray tasks, ranked.

The grid, the Ray fan-out (progress per finished cell, cancellation) and the ranking rules are the core's
(``nq_ray.analysis.scanner``); this module holds the two cell functions, their row models and the tool
shells. Each cell reads its bars through ``nq_ray.tools.data.load`` (the point-in-time choke point: with a
replay clock or ``as_of`` a cell sees only the bars closed by then), or from frames the caller passes
(``bars=``, the benchmark's; cut at ``as_of`` the same way). Run as a job (``POST /api/jobs`` with
``{"tool": "scan_market", ...}``) for ``job_progress`` events per finished cell and ``DELETE`` to cancel.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Annotated, Any, Literal

import pandas as pd
from pydantic import BaseModel, Field

from nq_ray.analysis.scanner import (
    MAX_CELLS,
    Cell,
    analysis_score,
    backtest_score,
    plan_cells,
    rank,
    run_cells,
)
from nq_ray.config import Settings
from nq_ray.errors import NQRayError
from nq_ray.tools.args import DEFAULT_SOURCE, Interval, Params, Period, Source, Strategy, Symbol, finite
from nq_ray.tools.backtesting import Costs, costs_of
from nq_ray.tools.compute import in_thread
from nq_ray.tools.context import Progress, current, progress_callback

ANALYSIS_RULE = (
    "score = confidence × alignment: the rules analyst's confidence times the share of the trend's "
    "timeframes that agree with its bias (neutral bias → 0); higher first, errors last"
)
BACKTEST_RULE = (
    "score = Sharpe ratio, only for runs with at least min_trades trades (fewer → no score, ranked after "
    "the scored ones); higher first, errors last"
)

Symbols = Annotated[
    list[Symbol], Field(min_length=1, max_length=16, description="symbols to scan, e.g. ['NQ', 'ES', 'YM']")
]
Timeframes = Annotated[
    list[Interval], Field(min_length=1, max_length=6, description="bar intervals, e.g. ['5m', '1h']")
]
Top = Annotated[int, Field(ge=1, le=MAX_CELLS, description="ranked rows to return")]


def _error(exc: NQRayError) -> dict[str, Any]:
    return exc.to_dict()


def _bars(symbol: str, interval: str, p: Mapping[str, Any]) -> pd.DataFrame:
    """A cell's bars: through ``load`` (point in time), or the caller's frame cut at ``as_of`` and
    resampled to ``interval``."""
    from nq_ray.tools.data import load

    frames = p.get("bars")
    if frames is None:
        return load(p["settings"], symbol, interval, p["source"], period=p.get("period"), as_of=p["as_of"])
    from nq_ray.data.intervals import interval_length
    from nq_ray.data.resample import resample_bars
    from nq_ray.errors import DataUnavailableError

    if symbol not in frames:
        raise DataUnavailableError(f"no bars given for {symbol}")
    frame = frames[symbol]
    if p["as_of"] is not None:  # the same cut-off as load: bars whose close is at or before as_of
        base = p.get("base_interval", "5m")
        frame = frame.loc[frame.index <= pd.Timestamp(p["as_of"]) - interval_length(base)]
    if interval != p.get("base_interval", "5m"):
        frame = resample_bars(frame, interval)
    return frame


# ------------------------------------------------------------------------------------------ analysis
class MarketScanRow(BaseModel):
    """One symbol × timeframe of a market scan: the rules analyst's view and the key indicators."""

    rank: int | None = Field(default=None, description="1 = best; null for failed cells")
    symbol: str
    interval: str
    score: float | None = Field(default=None, description="confidence × trend alignment (see rank_rule)")
    bias: Literal["bullish", "bearish", "neutral"] | None = None
    confidence: float | None = None
    rules_score: float | None = Field(default=None, description="the rules analyst's signed score, −1 … 1")
    trend: str | None = Field(default=None, description="EMA-stack direction: up, down, neutral")
    adx: float | None = None
    timeframes: dict[str, str] = Field(default_factory=dict, description="trend direction per timeframe")
    aligned: bool | None = None
    last_price: float | None = None
    atr: float | None = Field(default=None, description="ATR(14), points")
    atr_pct: float | None = None
    rsi: float | None = None
    macd_hist: float | None = None
    roc_20_pct: float | None = Field(default=None, description="rate of change over 20 bars, %")
    support: float | None = None
    resistance: float | None = None
    support_atr: float | None = Field(default=None, description="(last − support) / ATR")
    resistance_atr: float | None = Field(default=None, description="(resistance − last) / ATR")
    as_of: str | None = Field(default=None, description="start time of the last bar used")
    summary: str | None = None
    error: dict[str, Any] | None = None
    elapsed_s: float = 0.0


def analysis_cell(symbol: str, interval: str, payload: Mapping[str, Any]) -> MarketScanRow:
    """Analyse one cell (``analyze`` once, scored by the rules analyst); a typed error becomes the row's
    ``error``."""
    from nq_ray.analysis.summary import analyze
    from nq_ray.llm.rules import assess_analysis

    t0 = time.perf_counter()
    try:
        a = analyze(_bars(symbol, interval, payload), symbol)
    except NQRayError as exc:
        return MarketScanRow(
            symbol=symbol, interval=interval, error=_error(exc), elapsed_s=time.perf_counter() - t0
        )
    view = assess_analysis(a)
    atr = finite(a.volatility.atr)
    last = a.last_price

    def dist(level: float | None, sign: float) -> float | None:
        return None if level is None or not atr else round(sign * (last - level) / atr, 3)

    return MarketScanRow(
        symbol=symbol,
        interval=interval,
        score=analysis_score(view.bias, view.confidence, a.trend.timeframes),
        bias=view.bias,
        confidence=view.confidence,
        rules_score=view.score,
        trend=a.trend.direction,
        adx=finite(a.trend.adx),
        timeframes=dict(a.trend.timeframes),
        aligned=a.trend.aligned,
        last_price=last,
        atr=atr,
        atr_pct=finite(a.volatility.atr_pct),
        rsi=a.momentum.rsi,
        macd_hist=a.momentum.macd_hist,
        roc_20_pct=a.momentum.roc_pct.get("20"),
        support=view.support,
        resistance=view.resistance,
        support_atr=dist(view.support, 1.0),
        resistance_atr=dist(view.resistance, -1.0),
        as_of=a.as_of,
        summary=view.summary,
        elapsed_s=time.perf_counter() - t0,
    )


class ScanInfo(BaseModel):
    """What every scan reports besides its rows."""

    rank_rule: str
    cells: int = Field(description="symbol × timeframe cells asked for")
    finished: int = Field(description="cells that finished (all of them unless cancelled)")
    cancelled: bool = False
    unfinished: list[str] = Field(default_factory=list, description="'SYMBOL interval' of cells not run")
    top_symbols: list[str] = Field(description="distinct symbols of the scored rows, best first")
    parallel: bool = Field(description="true when the cells ran as Ray tasks")
    elapsed_s: float
    source: str
    as_of: str | None = Field(description="the point-in-time cut-off, when there was one")


class MarketScan(ScanInfo):
    """A ranked market scan (``rank_rule`` says how)."""

    mode: Literal["analysis"] = "analysis"
    rows: list[MarketScanRow]


# ------------------------------------------------------------------------------------------ backtest
class BacktestScanRow(BaseModel):
    """One symbol × timeframe of a backtest scan: the strategy's headline metrics."""

    rank: int | None = None
    symbol: str
    interval: str
    strategy: str
    params: dict[str, Any] = Field(default_factory=dict)
    score: float | None = Field(default=None, description="Sharpe when n_trades ≥ min_trades")
    sharpe: float | None = None
    net_pnl_usd: float | None = None
    n_trades: int | None = None
    win_rate: float | None = None
    profit_factor: float | None = None
    max_drawdown_pct: float | None = None
    first_bar_time: str | None = None
    last_bar_time: str | None = None
    error: dict[str, Any] | None = None
    elapsed_s: float = 0.0


def backtest_cell(symbol: str, interval: str, payload: Mapping[str, Any]) -> BacktestScanRow:
    """Backtest one cell with the payload's strategy, parameters and costs (priced per symbol's
    contract); a typed error becomes the row's ``error``."""
    from nq_ray.backtest import BacktestConfig, run_backtest

    t0 = time.perf_counter()
    try:
        bars = _bars(symbol, interval, payload)
        config = BacktestConfig(symbol=symbol, **payload["costs"])
        report = run_backtest(bars, payload["strategy"], payload["params"], config)
    except NQRayError as exc:
        return BacktestScanRow(
            symbol=symbol,
            interval=interval,
            strategy=str(payload["strategy"]),
            error=_error(exc),
            elapsed_s=time.perf_counter() - t0,
        )
    m = report.metrics
    sharpe = finite(m.sharpe)
    return BacktestScanRow(
        symbol=symbol,
        interval=interval,
        strategy=report.strategy,
        params={k: (v.item() if hasattr(v, "item") else v) for k, v in report.params.items()},
        score=backtest_score(sharpe, int(m.n_trades), int(payload["min_trades"])),
        sharpe=sharpe,
        net_pnl_usd=finite(m.net_pnl_usd),
        n_trades=int(m.n_trades),
        win_rate=finite(m.win_rate),
        profit_factor=finite(m.profit_factor),
        max_drawdown_pct=finite(m.max_drawdown_pct),
        first_bar_time=bars.index[0].isoformat(),
        last_bar_time=bars.index[-1].isoformat(),
        elapsed_s=time.perf_counter() - t0,
    )


class BacktestScan(ScanInfo):
    """A ranked backtest scan (``rank_rule`` says how)."""

    mode: Literal["backtest"] = "backtest"
    strategy: str
    min_trades: int
    rows: list[BacktestScanRow]


# ------------------------------------------------------------------------------------------ the scan
def _reporter(progress: Progress | None) -> Callable[[int, int, Any], None] | None:
    """The core's per-cell progress as the tools' ``progress(done, total, message)``; a heartbeat repeats
    the last message (and lets a cancelled job's callback raise)."""
    if progress is None:
        return None
    last = ["started"]

    def tick(done: int, total: int, row: Any) -> None:
        if row is not None:
            if row.error is not None:
                what = f"error {row.error.get('code')}"
            else:
                what = "no score" if row.score is None else f"score {row.score:.3f}"
            last[0] = f"{done}/{total} cells; {row.symbol} {row.interval}: {what}"
        progress(done, total, last[0])

    return tick


def scan(
    mode: Literal["analysis", "backtest"],
    settings: Settings,
    symbols: list[str],
    timeframes: list[str],
    *,
    source: str = "sample",
    period: str | None = None,
    as_of: datetime | None = None,
    bars: Mapping[str, pd.DataFrame] | None = None,
    base_interval: str = "5m",
    strategy: str = "sma_cross",
    params: Mapping[str, Any] | None = None,
    costs: Mapping[str, Any] | None = None,
    min_trades: int = 10,
    top: int = MAX_CELLS,
    progress: Progress | None = None,
    stop: Callable[[], bool] | None = None,
    workers: int | None = None,
    parallel: bool | None = None,
) -> MarketScan | BacktestScan:
    """Run a scan (synchronously; the tools call it on a thread) and rank it. ``bars`` (symbol → frame
    at ``base_interval``) replaces loading; ``workers`` caps the Ray tasks in flight (1 = one worker)."""
    from nq_ray.tools.args import resolve_source

    cells = plan_cells(symbols, timeframes)
    if mode == "backtest":
        from nq_ray.backtest import get_strategy

        get_strategy(strategy).resolve_params(dict(params or {}))  # unknown strategy/params: refused now
    source = resolve_source(settings, source)
    payload: dict[str, Any] = {
        "settings": settings,
        "source": source,
        "period": period,
        "as_of": as_of,
        "bars": dict(bars) if bars is not None else None,
        "base_interval": base_interval,
        "strategy": strategy,
        "params": dict(params) if params else None,
        "costs": dict(costs or {}),
        "min_trades": min_trades,
    }
    fn = analysis_cell if mode == "analysis" else backtest_cell
    run = run_cells(
        fn, cells, payload, progress=_reporter(progress), stop=stop, workers=workers, parallel=parallel
    )
    order = {c: i for i, c in enumerate(cells)}
    done = sorted(run.results, key=lambda r: order[Cell(r.symbol, r.interval)])  # stable ties: asked order
    ranked = rank(done)
    for i, row in enumerate(ranked):
        row.rank = i + 1 if row.error is None else None
    top_symbols = list(dict.fromkeys(r.symbol for r in ranked if r.score is not None and r.score > 0))
    info: dict[str, Any] = {
        "cells": len(cells),
        "finished": len(run.results),
        "cancelled": run.cancelled,
        "unfinished": [f"{c.symbol} {c.interval}" for c in run.unfinished],
        "top_symbols": top_symbols,
        "parallel": run.parallel,
        "elapsed_s": round(run.elapsed_s, 4),
        "source": source if bars is None else "given bars",
        "as_of": as_of.isoformat() if as_of is not None else None,
    }
    if mode == "analysis":
        return MarketScan(rank_rule=ANALYSIS_RULE, rows=ranked[:top], **info)
    return BacktestScan(
        rank_rule=BACKTEST_RULE,
        strategy=strategy,
        min_trades=min_trades,
        rows=ranked[:top],
        **info,
    )


# ------------------------------------------------------------------------------------------ the tools
async def scan_market(
    symbols: Symbols = ["NQ", "ES"],  # noqa: B006 - pydantic copies defaults
    timeframes: Timeframes = ["5m", "1h"],  # noqa: B006
    source: Source = DEFAULT_SOURCE,
    period: Period = None,
    top: Top = 20,
) -> MarketScan:
    """Scan many symbols × timeframes at once (parallel Ray tasks) with the rules analyst's view — bias,
    confidence, trend, ATR, momentum, distance to support/resistance in ATRs — ranked by confidence ×
    trend alignment. Use for "which index future has the cleanest trend right now?". At most 32 cells.
    Long: prefer a job (POST /api/jobs) for progress per cell and cancellation."""
    ctx = current()
    out = await in_thread(
        scan,
        "analysis",
        ctx.settings,
        list(symbols),
        list(timeframes),
        source=source,
        period=period,
        as_of=ctx.data_as_of,
        top=top,
        progress=progress_callback(),
    )
    assert isinstance(out, MarketScan)
    return out


async def scan_backtests(
    symbols: Symbols = ["NQ", "ES"],  # noqa: B006 - pydantic copies defaults
    timeframes: Timeframes = ["5m", "1h"],  # noqa: B006
    strategy: Strategy = "sma_cross",
    params: Params = None,
    costs: Costs = None,
    min_trades: Annotated[
        int, Field(ge=0, le=100_000, description="runs with fewer trades get no score (ranked last)")
    ] = 10,
    source: Source = DEFAULT_SOURCE,
    period: Period = None,
    top: Top = 20,
) -> BacktestScan:
    """Backtest one strategy over many symbols × timeframes at once (parallel Ray tasks), each priced with
    its own contract, ranked by Sharpe among runs with at least min_trades trades. At most 32 cells.
    Long: prefer a job (POST /api/jobs) for progress per cell and cancellation."""
    ctx = current()
    c = costs_of(costs, ctx.settings)
    out = await in_thread(
        scan,
        "backtest",
        ctx.settings,
        list(symbols),
        list(timeframes),
        source=source,
        period=period,
        as_of=ctx.data_as_of,
        strategy=strategy,
        params=params,
        costs=c,
        min_trades=min_trades,
        top=top,
        progress=progress_callback(),
    )
    assert isinstance(out, BacktestScan)
    return out
