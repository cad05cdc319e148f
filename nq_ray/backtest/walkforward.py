"""Walk-forward analysis: optimise in-sample, trade the best parameters out-of-sample, stitch the OOS.

The bars are cut into ``n_folds + 1`` equal blocks (or windows of ``train_bars`` / ``test_bars``).
``rolling``: fold k optimises on block k and tests on block k+1; ``anchored``: it optimises on blocks
0..k. Out-of-sample signals are computed over the training and test bars together (indicators are
causal, so the training bars only warm them up) and trading starts flat at the test window's first bar.
Folds run as Ray tasks when Ray is initialised; the stitched equity chains each fold's OOS P&L.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from nq_ray.backtest.config import BacktestConfig
from nq_ray.backtest.engine import prepare_market, run_signals, trades_frame, validate_bars
from nq_ray.backtest.stats import METRIC_NAMES, Metrics, compute_metrics, day_ids
from nq_ray.backtest.strategies import SignalFunction, Signals, Strategy, get_strategy
from nq_ray.backtest.sweep import Progress, best_params, get_shared, map_tasks, put_shared, sweep
from nq_ray.errors import InvalidArgumentError


@dataclass(frozen=True)
class WalkForwardResult:
    """Per-fold choices and OOS results, the stitched OOS equity and trades, and their metrics."""

    folds: pd.DataFrame
    equity: pd.Series
    trades: pd.DataFrame
    metrics: Metrics


def walk_forward_efficiency(
    oos_pnl_usd: float, test_bars: int, is_pnl_usd: float, train_bars: int
) -> float | None:
    """Walk-forward efficiency (Pardo, *The Evaluation and Optimization of Trading Strategies*, ch. 11)
    on P&L per bar: (OOS net P&L / test bars) ÷ (in-sample net P&L / train bars). ≥ 0.5 is usually read
    as robust. ``None`` where it is undefined: an empty window, or an in-sample P&L that is not positive.

    E.g. $500 over 100 OOS bars after $2,000 over 200 in-sample bars: (500/100) / (2000/200) = 0.5."""
    if test_bars <= 0 or train_bars <= 0 or not is_pnl_usd > 0:
        return None
    ratio = (oos_pnl_usd / test_bars) / (is_pnl_usd / train_bars)
    return ratio if math.isfinite(ratio) else None


def fold_bounds(
    n: int,
    n_folds: int,
    mode: str,
    train_bars: int | None = None,
    test_bars: int | None = None,
) -> list[tuple[int, int, int, int]]:
    """(train_start, train_end, test_start, test_end) bar positions, ends exclusive."""
    if n_folds < 1:
        raise InvalidArgumentError(f"n_folds must be ≥ 1, got {n_folds}", n_folds=n_folds)
    if mode not in ("rolling", "anchored"):
        raise InvalidArgumentError(f"mode must be 'rolling' or 'anchored', not {mode!r}", mode=mode)
    block = n // (n_folds + 1)
    train = train_bars or block
    test = test_bars or block
    if train < 2 or test < 2:
        raise InvalidArgumentError(f"{n} bars are too few for {n_folds} folds", n_bars=n, n_folds=n_folds)
    out = []
    for k in range(n_folds):
        test_start = train + k * test
        test_end = min(test_start + test, n)
        if test_start >= n:
            break
        train_start = 0 if mode == "anchored" else test_start - train
        out.append((train_start, test_start, test_start, test_end))
    return out


def _fold(
    bars_ref: Any,
    bounds: tuple[int, int, int, int],
    strategy: Strategy,
    grid: Mapping[str, Sequence[Any]],
    config: BacktestConfig,
    metric: str,
) -> dict[str, Any]:
    bars: pd.DataFrame = get_shared(bars_ref)
    tr0, tr1, te0, te1 = bounds
    table = sweep(bars.iloc[tr0:tr1], strategy, grid, config, chunks=1, parallel=False)
    names = [c for c in table.columns if c not in METRIC_NAMES]
    best = best_params(table, metric, names)
    full = strategy.resolve_params(best)
    market = prepare_market(bars.iloc[tr0:te1], config, 2)
    sig = strategy.signals(market.data, full)
    cut = te0 - tr0
    oos = prepare_market(bars.iloc[te0:te1], config, 2)
    sliced = Signals(
        long_entry=sig.long_entry[cut:],
        long_exit=sig.long_exit[cut:],
        short_entry=sig.short_entry[cut:],
        short_exit=sig.short_exit[cut:],
        stop_price=None if sig.stop_price is None else sig.stop_price[cut:],
        target_price=None if sig.target_price is None else sig.target_price[cut:],
    )
    equity, position, trades, _ = run_signals(oos, sliced, config)
    return {
        "params": best,
        "in_sample": float(table[metric].max()),
        "equity": equity,
        "position": position,
        "trades": trades,
        "index": oos.index,
    }


def walk_forward(
    bars: pd.DataFrame,
    strategy: str | Strategy | SignalFunction,
    grid: Mapping[str, Sequence[Any]],
    config: BacktestConfig | None = None,
    *,
    n_folds: int = 4,
    mode: Literal["rolling", "anchored"] = "rolling",
    train_bars: int | None = None,
    test_bars: int | None = None,
    metric: str = "sharpe",
    progress: Progress | None = None,
    parallel: bool | None = None,
) -> WalkForwardResult:
    """Optimise ``grid`` on each in-sample window by ``metric``, test out of sample, stitch the OOS.
    Folds are Ray tasks when Ray is initialised (``parallel=False`` keeps them in-process)."""
    config = config or BacktestConfig()
    strat = get_strategy(strategy)
    if metric not in METRIC_NAMES:
        raise InvalidArgumentError(
            f"unknown metric {metric!r}; known: {', '.join(METRIC_NAMES)}", metric=metric
        )
    bars = validate_bars(bars, 4)
    bounds = fold_bounds(len(bars), n_folds, mode, train_bars, test_bars)
    bars_ref = put_shared(bars, parallel)  # one copy in the object store for every fold task
    calls = [(bars_ref, b, strat, grid, config, metric) for b in bounds]
    folds = map_tasks(_fold, calls, progress, parallel=parallel)

    capital = config.initial_capital
    offset = 0.0
    eq_parts, pos_parts, idx_parts, trade_parts, rows = [], [], [], [], []
    for k, (b, f) in enumerate(zip(bounds, folds, strict=True)):
        eq = f["equity"] + offset
        fm = compute_metrics(
            f["equity"], f["position"], f["trades"], day_ids(f["index"]), f["index"].asi8, capital
        )
        rows.append(
            {
                "fold": k,
                "train_start": bars.index[b[0]],
                "train_end": bars.index[b[1] - 1],
                "test_start": bars.index[b[2]],
                "test_end": bars.index[b[3] - 1],
                "params": f["params"],
                f"in_sample_{metric}": f["in_sample"],
                f"oos_{metric}": fm[METRIC_NAMES.index(metric)],
                "oos_net_pnl_usd": fm[0],
                "oos_n_trades": int(fm[METRIC_NAMES.index("n_trades")]),
            }
        )
        offset = eq[-1] - capital
        eq_parts.append(eq)
        pos_parts.append(f["position"])
        idx_parts.append(f["index"])
        trade_parts.append(trades_frame(f["trades"], f["index"]))
        trade_parts[-1]["fold"] = k
    index = idx_parts[0].append(idx_parts[1:]) if len(idx_parts) > 1 else idx_parts[0]
    equity = np.concatenate(eq_parts)
    position = np.concatenate(pos_parts)
    all_trades = np.vstack([f["trades"] for f in folds])
    metrics = compute_metrics(equity, position, all_trades, day_ids(index), index.asi8, capital)
    return WalkForwardResult(
        folds=pd.DataFrame(rows),
        equity=pd.Series(equity, index=index, name="equity_usd"),
        trades=pd.concat(trade_parts, ignore_index=True),
        metrics=Metrics.from_array(metrics),
    )
