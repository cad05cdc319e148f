"""``run_backtest``: validate the bars once, compute signals, run the kernel, report trades/equity/metrics."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from nq_ray.backtest.config import BacktestConfig
from nq_ray.backtest.kernel import (
    EXIT_REASONS,
    T_COMMISSION,
    T_CONTRACTS,
    T_ENTRY_IDX,
    T_ENTRY_PX,
    T_EXIT_IDX,
    T_EXIT_PX,
    T_MAE,
    T_MFE,
    T_PNL,
    T_REASON,
    T_SIDE,
    simulate_masked,
)
from nq_ray.backtest.stats import Metrics, compute_metrics, day_ids
from nq_ray.backtest.strategies import BarData, SignalFunction, Signals, Strategy, get_strategy
from nq_ray.domain.orders import Side, Trade
from nq_ray.errors import InvalidBarsError
from nq_ray.market.sessions import in_session, session_dates

TRADE_COLUMNS = (
    "entry_time",
    "exit_time",
    "side",
    "contracts",
    "entry_price",
    "exit_price",
    "pnl_usd",
    "commission_usd",
    "exit_reason",
    "mae_usd",
    "mfe_usd",
)
_EMPTY = np.empty(0, dtype=np.float64)


@dataclass(frozen=True)
class Market:
    """Everything per-bar the kernel needs besides signals: validated once, shared by many runs."""

    data: BarData
    tradable: np.ndarray
    session_end: np.ndarray
    day_id: np.ndarray
    times_ns: np.ndarray

    @property
    def index(self) -> pd.DatetimeIndex:
        return self.data.index


def validate_bars(bars: Any, min_bars: int = 2) -> pd.DataFrame:
    """The bar frame, or ``InvalidBarsError`` saying what is wrong with it."""
    if not isinstance(bars, pd.DataFrame):
        raise InvalidBarsError(f"bars must be a pandas DataFrame, got {type(bars).__name__}")
    if len(bars) == 0:
        raise InvalidBarsError("bars are empty; load some with nq_ray.data.load_bars(symbol, interval)")
    missing = [c for c in ("open", "high", "low", "close") if c not in bars.columns]
    if missing:
        raise InvalidBarsError(
            f"bars lack column(s) {', '.join(missing)}; expected open,high,low,close,volume"
        )
    if not isinstance(bars.index, pd.DatetimeIndex):
        raise InvalidBarsError("bars need a DatetimeIndex (bar start times)")
    if not bars.index.is_monotonic_increasing or bars.index.has_duplicates:
        raise InvalidBarsError("bar times must be sorted and unique")
    if len(bars) < min_bars:
        raise InvalidBarsError(
            f"{len(bars)} bars are too few: this strategy needs at least {min_bars}",
            n_bars=len(bars),
            needed=min_bars,
        )
    prices = bars[["open", "high", "low", "close"]].to_numpy(dtype=np.float64)
    if not np.isfinite(prices).all():
        raise InvalidBarsError("bars contain NaN or infinite prices; clean them first (nq_ray.data.quality)")
    return bars


def _bar_length(index: pd.DatetimeIndex) -> pd.Timedelta:
    d = np.diff(index.asi8)
    d = d[d > 0]
    return pd.Timedelta(int(d.min()) if d.size else 0, unit="ns")


def prepare_market(bars: pd.DataFrame, config: BacktestConfig, min_bars: int = 2) -> Market:
    """Validate ``bars`` and derive the session masks (tradable bars, last bar of each session)."""
    bars = validate_bars(bars, min_bars)
    data = BarData.from_frame(bars)
    index = bars.index
    n = len(bars)
    length = _bar_length(index)
    intraday = length < pd.Timedelta(days=1)
    if config.session_calendar and intraday and index.tz is not None:
        tradable = in_session(index, length)
    else:
        tradable = np.ones(n, dtype=np.bool_)
    if index.tz is not None and intraday:
        sd = session_dates(index).astype(np.int64)
    else:
        sd = np.arange(n, dtype=np.int64)
    session_end = np.zeros(n, dtype=np.bool_)
    pos = np.flatnonzero(tradable)
    if pos.size > 1:
        change = sd[pos][1:] != sd[pos][:-1]
        session_end[pos[:-1][change]] = True
    return Market(
        data=data,
        tradable=np.ascontiguousarray(tradable, dtype=np.bool_),
        session_end=session_end,
        day_id=day_ids(index),
        times_ns=index.asi8.astype(np.int64),
    )


def run_signals(
    market: Market,
    signals: Signals,
    config: BacktestConfig,
    options: np.ndarray | None = None,
    *,
    no_entry: np.ndarray | None = None,
    flatten: np.ndarray | None = None,
):
    """The kernel over prepared bars and signals: (equity, position, trades matrix, n_rejected).
    ``no_entry``/``flatten``: a prop-firm pack's bar masks (``kernel.simulate_masked``)."""
    d = market.data
    short_entry = signals.short_entry if config.allow_short else np.zeros_like(signals.short_entry)
    stop = signals.stop_price if signals.stop_price is not None else None
    target = signals.target_price if signals.target_price is not None else None
    if stop is not None or target is not None:
        n = len(d)
        stop = stop if stop is not None else np.full(n, np.nan)
        target = target if target is not None else np.full(n, np.nan)
    else:
        stop = target = _EMPTY
    opts = config.options() if options is None else options
    none = np.empty(0, dtype=np.bool_)
    equity, position, trades, _, rejected = simulate_masked(
        d.open,
        d.high,
        d.low,
        d.close,
        signals.long_entry,
        signals.long_exit,
        short_entry,
        signals.short_exit,
        stop,
        target,
        market.tradable,
        market.session_end,
        opts,
        none if no_entry is None else np.ascontiguousarray(no_entry, dtype=np.bool_),
        none if flatten is None else np.ascontiguousarray(flatten, dtype=np.bool_),
    )
    return equity, position, trades, rejected


@dataclass(frozen=True)
class BacktestReport:
    """A backtest's trades, marked-to-market equity (USD, at each bar's close) and metrics."""

    strategy: str
    params: dict[str, Any]
    config: BacktestConfig
    trades: pd.DataFrame
    equity: pd.Series
    position: pd.Series
    metrics: Metrics
    rejected_entries: int = 0

    def trade_models(self) -> list[Trade]:
        """The trades as the shared ``Trade`` domain model."""
        return [
            Trade(
                symbol=self.config.symbol,
                side=Side.BUY if r.side == "long" else Side.SELL,
                contracts=int(r.contracts),
                entry_time=r.entry_time,
                exit_time=r.exit_time,
                entry_price=float(r.entry_price),
                exit_price=float(r.exit_price),
                pnl_usd=float(r.pnl_usd),
                commission_usd=float(r.commission_usd),
                exit_reason=r.exit_reason,
            )
            for r in self.trades.itertuples(index=False)
        ]

    def summary(self) -> dict[str, Any]:
        """A JSON-friendly summary: strategy, params, config and metrics."""
        return {
            "strategy": self.strategy,
            "params": self.params,
            "config": self.config.model_dump(),
            "metrics": self.metrics.model_dump(),
            "rejected_entries": self.rejected_entries,
        }


def trades_frame(trades: np.ndarray, index: pd.DatetimeIndex) -> pd.DataFrame:
    """The kernel's trades matrix as the report's trades DataFrame."""
    ei = trades[:, T_ENTRY_IDX].astype(np.int64)
    xi = trades[:, T_EXIT_IDX].astype(np.int64)
    reasons = np.asarray(EXIT_REASONS, dtype=object)
    return pd.DataFrame(
        {
            "entry_time": index[ei],
            "exit_time": index[xi],
            "side": np.where(trades[:, T_SIDE] > 0, "long", "short"),
            "contracts": trades[:, T_CONTRACTS].astype(np.int64),
            "entry_price": trades[:, T_ENTRY_PX],
            "exit_price": trades[:, T_EXIT_PX],
            "pnl_usd": trades[:, T_PNL],
            "commission_usd": trades[:, T_COMMISSION],
            "exit_reason": reasons[trades[:, T_REASON].astype(np.int64)],
            "mae_usd": trades[:, T_MAE],
            "mfe_usd": trades[:, T_MFE],
        },
        columns=list(TRADE_COLUMNS),
    )


def run_backtest(
    bars: pd.DataFrame,
    strategy: str | Strategy | SignalFunction = "sma_cross",
    params: Mapping[str, Any] | None = None,
    config: BacktestConfig | None = None,
) -> BacktestReport:
    """Backtest ``strategy`` (a registered name or a signal function) with ``params`` on ``bars``."""
    config = config or BacktestConfig()
    strat = get_strategy(strategy)
    full = strat.resolve_params(params)
    market = prepare_market(bars, config, strat.warmup(full))
    signals = strat.signals(market.data, full)
    return report_from_signals(market, signals, config, strat.name, full)


def report_from_signals(
    market: Market, signals: Signals, config: BacktestConfig, name: str, params: dict[str, Any]
) -> BacktestReport:
    """Run the kernel on ready signals and wrap the arrays with the bars' index."""
    equity, position, trades, rejected = run_signals(market, signals, config)
    values = compute_metrics(equity, position, trades, market.day_id, market.times_ns, config.initial_capital)
    index = market.index
    return BacktestReport(
        strategy=name,
        params=params,
        config=config,
        trades=trades_frame(trades, index),
        equity=pd.Series(equity, index=index, name="equity_usd"),
        position=pd.Series(position.astype(np.int64), index=index, name="contracts"),
        metrics=Metrics.from_array(values),
        rejected_entries=int(rejected),
    )
