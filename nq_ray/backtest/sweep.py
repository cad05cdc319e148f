"""Parameter sweeps and multi-symbol runs, as Ray tasks over ``ray.put`` arrays (in-process without Ray).

``sweep`` computes each indicator once per distinct parameter, evaluates every combination inside numba
(signals, fills and metrics: no pandas per combination), and splits the combinations into chunks that
run as Ray tasks when Ray is initialised, reporting progress as each chunk finishes. Ray is imported
only when it is already running: the backtest core itself never needs it.
"""

from __future__ import annotations

import itertools
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from numba import njit

from nq_ray.analysis.scanner import cancel_refs
from nq_ray.backtest.config import BacktestConfig
from nq_ray.backtest.engine import BacktestReport, Market, prepare_market, run_backtest, run_signals
from nq_ray.backtest.kernel import simulate
from nq_ray.backtest.overfitting import selection_statistics
from nq_ray.backtest.propfirm import pack_config
from nq_ray.backtest.stats import METRIC_NAMES, N_METRICS, compute_metrics, metrics_frame
from nq_ray.backtest.strategies import BarData, SignalFunction, Strategy, get_strategy
from nq_ray.errors import InvalidArgumentError
from nq_ray.propfirm.model import RulePack

Progress = Callable[[int, int], None]
"""``progress(done, total)``: called as chunks (or symbols, or folds) finish."""

POLL_S = 0.2
"""How often a Ray fan-out waiting on its tasks calls ``progress`` (the heartbeat that lets it stop)."""
CANCEL_GRACE_S = 1.0
"""How long cancelled tasks get to stop before their workers are killed."""
IN_PROCESS_CHUNKS = 8
"""Default chunks of a sweep without Ray: progress (and a cancel) between them."""

_CROSS = {"sma_cross": "sma", "ema_cross": "ema"}
PASS_PROBABILITY = "pass_probability"
"""``rank_by`` value (and column) of a sweep under a prop-firm pack: the Monte Carlo pass probability."""
_EMPTY = np.empty(0, dtype=np.float64)


def _ray_running() -> Any:
    """The ``ray`` module when a Ray instance is initialised in this process, else None."""
    ray = sys.modules.get("ray")
    if ray is not None and ray.is_initialized():
        return ray
    return None


def map_tasks(
    fn: Callable[..., Any],
    calls: Sequence[tuple[Any, ...]],
    progress: Progress | None = None,
    workers: int | None = None,
    parallel: bool | None = None,
    poll_s: float = POLL_S,
) -> list[Any]:
    """``[fn(*args) for args in calls]``: as Ray tasks (at most ``workers`` in flight) when Ray is running
    and ``parallel`` is not False, in-process otherwise; ``progress(done, total)`` after each call
    finishes. Results keep call order.

    Stopping: ``progress`` may raise (a cancelled job's or MCP call's callback does). On Ray it is also
    called every ``poll_s`` while no task finishes (a heartbeat repeating the last ``done``), so a raise
    comes within ``poll_s``; the tasks still in flight are then cancelled (``cancel_refs``) before the
    exception goes on, so a stopped sweep leaves no task holding a CPU. In-process, it stops after the
    call that is running."""
    total = len(calls)
    ray = _ray_running() if parallel is not False else None
    if ray is None:
        out = []
        for i, args in enumerate(calls):
            out.append(fn(*args))
            if progress is not None:
                progress(i + 1, total)
        return out
    remote = ray.remote(num_cpus=1, max_retries=2)(fn)
    limit = workers or total
    results: dict[Any, int] = {}
    pending: list[Any] = []
    values: list[Any] = [None] * total
    done = 0
    nxt = 0
    try:
        while done < total:
            while nxt < total and len(pending) < limit:
                ref = remote.remote(*calls[nxt])
                results[ref] = nxt
                pending.append(ref)
                nxt += 1
            ready, pending = ray.wait(pending, num_returns=1, timeout=poll_s)
            if not ready:
                if progress is not None:
                    progress(done, total)  # heartbeat: lets a cancelled caller's callback raise
                continue
            for ref in ready:
                values[results.pop(ref)] = ray.get(ref)
                done += 1
                if progress is not None:
                    progress(done, total)
    finally:
        if pending:
            cancel_refs(ray, pending, CANCEL_GRACE_S)
    return values


def put_shared(obj: Any, parallel: bool | None = None) -> Any:
    """``ray.put(obj)`` when Ray is running (one shared copy for many tasks), else ``obj`` itself."""
    ray = _ray_running() if parallel is not False else None
    return ray.put(obj) if ray is not None else obj


def get_shared(ref: Any) -> Any:
    """The value behind a ``put_shared`` result (Ray resolves top-level task arguments itself)."""
    ray = _ray_running()
    if ray is not None and isinstance(ref, ray.ObjectRef):
        return ray.get(ref)
    return ref


# --- the fused cross-sweep kernel -----------------------------------------------------------------


@njit(cache=True)
def _fill_cross(fast, slow, up, down):
    """``up``/``down`` ← fast crosses above / below slow (the same rule as ``strategies.cross_above``)."""
    last = 0
    for i in range(fast.shape[0]):
        up[i] = False
        down[i] = False
        f = fast[i]
        s = slow[i]
        if np.isnan(f) or np.isnan(s):
            last = 0
        elif f > s:
            up[i] = last == -1
            last = 1
        elif f < s:
            down[i] = last == 1
            last = -1


@njit(cache=True)
def sweep_cross_kernel(
    open_,
    high,
    low,
    close,
    mas,
    fast_idx,
    slow_idx,
    tradable,
    session_end,
    day_id,
    times_ns,
    opts,
    allow_short,
    n_days=0,
):
    """Metrics (pairs × metrics) of the MA-cross strategy for each (fast, slow) row pair of ``mas``;
    with ``n_days`` > 0 each row goes on with the pair's ``n_days`` daily session returns."""
    m = fast_idx.shape[0]
    n = close.shape[0]
    out = np.empty((m, N_METRICS + n_days), dtype=np.float64)
    up = np.zeros(n, dtype=np.bool_)
    down = np.zeros(n, dtype=np.bool_)
    no_short = np.zeros(n, dtype=np.bool_)
    empty = np.empty(0, dtype=np.float64)
    for j in range(m):
        _fill_cross(mas[fast_idx[j]], mas[slow_idx[j]], up, down)
        short_entry = down if allow_short else no_short
        equity, position, trades, _, _ = simulate(
            open_, high, low, close, up, down, short_entry, up, empty, empty, tradable, session_end, opts
        )
        out[j, :N_METRICS] = compute_metrics(equity, position, trades, day_id, times_ns, opts[3])
        if n_days > 0:
            daily_returns(equity, day_id, opts[3], out[j, N_METRICS:])
    return out


@njit(cache=True)
def daily_returns(equity, day_id, initial_capital, out):
    """``out`` ← daily session returns as ``compute_metrics`` takes them: equity at each session's last
    bar over the previous one's, the first over ``initial_capital`` (0 where the base is ≤ 0)."""
    n = equity.shape[0]
    prev = initial_capital
    d = 0
    for i in range(n):
        if i == n - 1 or day_id[i + 1] != day_id[i]:
            e = equity[i]
            out[d] = (e - prev) / prev if prev > 0 else 0.0
            prev = e
            d += 1


def _cross_chunk(payload_ref: Any, fast_idx: np.ndarray, slow_idx: np.ndarray) -> np.ndarray:
    p = get_shared(payload_ref)
    return sweep_cross_kernel(
        p["open"],
        p["high"],
        p["low"],
        p["close"],
        p["mas"],
        fast_idx,
        slow_idx,
        p["tradable"],
        p["session_end"],
        p["day_id"],
        p["times_ns"],
        p["opts"],
        p["allow_short"],
        p.get("n_days", 0),
    )


def _generic_chunk(payload_ref: Any, combos: list[dict[str, Any]]) -> np.ndarray:
    p = get_shared(payload_ref)
    market: Market = p["market"]
    strat: Strategy = p["strategy"]
    config: BacktestConfig = p["config"]
    opts = config.options()
    n_days = p.get("n_days", 0)
    out = np.empty((len(combos), N_METRICS + n_days), dtype=np.float64)
    data = BarData.from_frame(market.data.frame)  # a fresh indicator cache per chunk
    m = Market(data, market.tradable, market.session_end, market.day_id, market.times_ns)
    for j, params in enumerate(combos):
        sig = strat.signals(data, params)
        equity, position, trades, _ = run_signals(m, sig, config, opts)
        out[j, :N_METRICS] = compute_metrics(
            equity, position, trades, m.day_id, m.times_ns, config.initial_capital
        )
        if n_days:
            daily_returns(equity, m.day_id, config.initial_capital, out[j, N_METRICS:])
    return out


def _pass_chunk(payload_ref: Any, combos: list[dict[str, Any]]) -> np.ndarray:
    """(pass probability, 95% low, 95% high) of each combination under the payload's pack."""
    from nq_ray.backtest.challenge import event_only_blocks, pass_probability

    p = get_shared(payload_ref)
    market: Market = p["market"]
    strat: Strategy = p["strategy"]
    data = BarData.from_frame(market.data.frame)
    m = Market(data, market.tradable, market.session_end, market.day_id, market.times_ns)
    out = np.empty((len(combos), 3), dtype=np.float64)
    for j, params in enumerate(combos):
        blocks = event_only_blocks(m, strat.signals(data, params), p["config"], p["pack"])
        r = pass_probability(blocks, p["pack"], n_sims=p["n_sims"], seed=p["seed"])
        out[j] = (r.probability, r.ci_low, r.ci_high)
    return out


def _returns_chunk(payload_ref: Any, combos: list[dict[str, Any]]) -> np.ndarray:
    """Daily session returns (days × combinations) of each combination (``daily_returns``)."""
    p = get_shared(payload_ref)
    market: Market = p["market"]
    strat: Strategy = p["strategy"]
    config: BacktestConfig = p["config"]
    data = BarData.from_frame(market.data.frame)
    m = Market(data, market.tradable, market.session_end, market.day_id, market.times_ns)
    out = np.empty((len(combos), int(m.day_id[-1] - m.day_id[0]) + 1), dtype=np.float64)
    for j, params in enumerate(combos):
        equity = run_signals(m, strat.signals(data, params), config, config.options())[0]
        daily_returns(equity, m.day_id, config.initial_capital, out[j])
    return out.T


def expand_grid(strategy: Strategy, grid: Mapping[str, Sequence[Any]]) -> tuple[list[dict[str, Any]], int]:
    """Every valid combination of ``grid`` (resolved with defaults) and the number skipped as invalid
    (e.g. fast ≥ slow). Unknown parameter names raise ``InvalidArgumentError``."""
    if not grid:
        raise InvalidArgumentError("grid is empty; give a list of values for at least one parameter")
    names = list(grid)
    values = [list(grid[k]) if not np.isscalar(grid[k]) else [grid[k]] for k in names]
    for k, v in zip(names, values, strict=True):
        if not v:
            raise InvalidArgumentError(f"grid[{k!r}] has no values", param=k)
    strategy.resolve_params(
        {k: v[0] for k, v in zip(names, values, strict=True)} if strategy.defaults else {}
    )
    combos, skipped = [], 0
    for vals in itertools.product(*values):
        try:
            combos.append(strategy.resolve_params(dict(zip(names, vals, strict=True))))
        except InvalidArgumentError:
            skipped += 1
    if not combos:
        raise InvalidArgumentError(
            f"no valid parameter combination in the grid ({skipped} rejected, e.g. fast ≥ slow)"
        )
    return combos, skipped


def sweep(
    bars: pd.DataFrame,
    strategy: str | Strategy | SignalFunction,
    grid: Mapping[str, Sequence[Any]],
    config: BacktestConfig | None = None,
    *,
    chunks: int | None = None,
    workers: int | None = None,
    progress: Progress | None = None,
    parallel: bool | None = None,
    pack: RulePack | None = None,
    rank_by: str | None = None,
    n_sims: int = 500,
    seed: int = 0,
    pbo: bool = False,
    pbo_splits: int = 16,
) -> pd.DataFrame:
    """One row of metrics per valid parameter combination (grid order), parameters first.

    With a prop-firm ``pack`` the runs start at the pack's balance with its contract cap, and each row
    gains ``pass_probability`` (with ``pass_ci_low``/``pass_ci_high``): the challenge simulator's Monte
    Carlo estimate (``nq_ray.backtest.challenge``, ``n_sims`` resampled day paths, the same ``seed`` for
    every row, so rows are compared on the same draws). ``rank_by`` (a metric, or ``pass_probability``
    with a pack) sorts the rows best first instead of grid order.

    ``table.attrs["overfitting"]`` reports the selection (``overfitting.selection_statistics``): the
    number of trials, the best-Sharpe row's parameters, PSR and deflated Sharpe ratio (its daily returns
    from one more run), and with ``pbo`` the CSCV probability of backtest overfitting over every row's
    daily returns in ``pbo_splits`` blocks (the returns come out of the sweep's own pass).

    Combinations are split into ``chunks`` Ray tasks (default 4 per CPU, at most ``workers`` in flight)
    over one ``ray.put`` copy of the arrays when Ray is initialised (and ``parallel`` is not False);
    in-process otherwise (default ``IN_PROCESS_CHUNKS`` chunks). ``progress`` is ``map_tasks``'s: it may
    raise to stop the sweep, which cancels the chunks in flight.
    """
    config = config or BacktestConfig()
    if rank_by == PASS_PROBABILITY and pack is None:
        raise InvalidArgumentError("rank_by='pass_probability' needs a prop-firm pack (pack=load_pack(...))")
    if rank_by is not None and rank_by not in (*METRIC_NAMES, PASS_PROBABILITY):
        raise InvalidArgumentError(
            f"unknown rank_by {rank_by!r}; known: {', '.join(METRIC_NAMES)}, {PASS_PROBABILITY}"
        )
    if pack is not None:
        config = pack_config(pack, config)
    strat = get_strategy(strategy)
    combos, skipped = expand_grid(strat, grid)
    warm = max(strat.warmup(c) for c in combos)
    market = prepare_market(bars, config, warm)
    ray = _ray_running() if parallel is not False else None
    if chunks is None:
        cpus = int(ray.cluster_resources().get("CPU", 1)) if ray is not None else 1
        chunks = max(1, min(len(combos), 4 * cpus if ray is not None else IN_PROCESS_CHUNKS))
    parts = np.array_split(np.arange(len(combos)), chunks)
    parts = [p for p in parts if p.size]
    # with pbo, each row also carries its daily returns (CSCV's input) from the same pass
    n_days = int(market.day_id[-1] - market.day_id[0]) + 1 if pbo else 0
    if pbo and (len(combos) < 2 or n_days < 2 * pbo_splits):
        raise InvalidArgumentError(
            f"pbo needs at least 2 parameter combinations and 2 × pbo_splits = {2 * pbo_splits} session "
            f"days; this sweep has {len(combos)} and {n_days}: widen the grid or dates, or lower pbo_splits",
            param="pbo_splits",
        )

    if strat.name in _CROSS and strat.signal_fn is get_strategy(strat.name).signal_fn:
        kind = _CROSS[strat.name]
        windows = sorted({c["fast"] for c in combos} | {c["slow"] for c in combos})
        row = {w: i for i, w in enumerate(windows)}
        data = market.data
        mas = np.vstack([data.sma(w) if kind == "sma" else data.ema(w) for w in windows])
        fast_idx = np.array([row[c["fast"]] for c in combos], dtype=np.int64)
        slow_idx = np.array([row[c["slow"]] for c in combos], dtype=np.int64)
        payload = put_shared(
            {
                "open": data.open,
                "high": data.high,
                "low": data.low,
                "close": data.close,
                "mas": mas,
                "tradable": market.tradable,
                "session_end": market.session_end,
                "day_id": market.day_id,
                "times_ns": market.times_ns,
                "opts": config.options(),
                "allow_short": config.allow_short,
                "n_days": n_days,
            },
            parallel,
        )
        calls: list[tuple[Any, ...]] = [(payload, fast_idx[p], slow_idx[p]) for p in parts]
        results = map_tasks(_cross_chunk, calls, progress, workers, parallel)
    else:
        payload = put_shared(
            {"market": market, "strategy": strat, "config": config, "n_days": n_days}, parallel
        )
        calls = [(payload, [combos[i] for i in p]) for p in parts]
        results = map_tasks(_generic_chunk, calls, progress, workers, parallel)

    rows = np.vstack(results)
    metrics = metrics_frame(rows[:, :N_METRICS])
    params = pd.DataFrame(combos)
    out = pd.concat([params, metrics], axis=1)
    if pack is not None:
        payload = put_shared(
            {
                "market": market,
                "strategy": strat,
                "config": config,
                "pack": pack,
                "n_sims": n_sims,
                "seed": seed,
            },
            parallel,
        )
        calls = [(payload, [combos[i] for i in p]) for p in parts]
        probs = np.vstack(map_tasks(_pass_chunk, calls, progress, workers, parallel))
        out[PASS_PROBABILITY], out["pass_ci_low"], out["pass_ci_high"] = probs[:, 0], probs[:, 1], probs[:, 2]
    daily = rows[:, N_METRICS:].T if pbo else None
    out.attrs["overfitting"] = _selection(market, strat, config, combos, out, daily, pbo_splits)
    if rank_by is not None:
        out = out.sort_values(rank_by, ascending=False, kind="stable").reset_index(drop=True)
    out.attrs["skipped_combinations"] = skipped
    out.attrs["strategy"] = strat.name
    return out


def _selection(
    market: Market,
    strat: Strategy,
    config: BacktestConfig,
    combos: list[dict[str, Any]],
    table: pd.DataFrame,
    daily: np.ndarray | None,
    n_splits: int,
) -> dict[str, Any]:
    """``selection_statistics`` of a sweep in grid order: the best-Sharpe row's daily returns (re-run
    unless ``daily``, days × rows, came with the sweep), and CSCV's PBO over ``daily`` when given."""
    sharpes = table["sharpe"].to_numpy()
    best = int(np.argmax(np.where(np.isfinite(sharpes), sharpes, -np.inf)))
    if daily is not None:
        best_returns = daily[:, best]
    else:
        payload = {"market": market, "strategy": strat, "config": config}
        best_returns = _returns_chunk(payload, [combos[best]])[:, 0]
    stats = selection_statistics(sharpes, best_returns, pbo_returns=daily, n_splits=n_splits)
    stats["best_params"] = {k: (v.item() if hasattr(v, "item") else v) for k, v in combos[best].items()}
    return stats


def best_params(
    table: pd.DataFrame, metric: str = "sharpe", params: Sequence[str] | None = None
) -> dict[str, Any]:
    """The parameters of the row with the highest ``metric`` (first row on ties)."""
    if metric not in METRIC_NAMES and not (metric == PASS_PROBABILITY and metric in table.columns):
        raise InvalidArgumentError(
            f"unknown metric {metric!r}; known: {', '.join(METRIC_NAMES)}", metric=metric
        )
    extra = (PASS_PROBABILITY, "pass_ci_low", "pass_ci_high")
    names = (
        list(params)
        if params is not None
        else [c for c in table.columns if c not in METRIC_NAMES and c not in extra]
    )
    row = table.iloc[int(np.argmax(table[metric].to_numpy()))]
    return {k: (row[k].item() if hasattr(row[k], "item") else row[k]) for k in names}


def _one_symbol(
    symbol: str, bars: pd.DataFrame, strategy: Any, params: Mapping[str, Any] | None, config: BacktestConfig
) -> BacktestReport:
    return run_backtest(bars, strategy, params, config.model_copy(update={"symbol": symbol}))


def run_many(
    symbols: Sequence[str],
    strategy: str | Strategy | SignalFunction = "sma_cross",
    params: Mapping[str, Any] | None = None,
    config: BacktestConfig | None = None,
    *,
    bars: Mapping[str, pd.DataFrame] | None = None,
    interval: str = "5m",
    source: str = "sample",
    progress: Progress | None = None,
    parallel: bool | None = None,
) -> dict[str, BacktestReport]:
    """The same backtest on several symbols, one Ray task each (in-process without Ray).

    ``bars`` maps symbol → bar frame; missing symbols are loaded with ``load_bars(symbol, interval,
    source=source)``. Each symbol is priced with its own contract (``config.symbol`` is replaced)."""
    if not symbols:
        raise InvalidArgumentError("symbols is empty; give at least one, e.g. ['NQ', 'ES']")
    config = config or BacktestConfig()
    strat = get_strategy(strategy)
    strat.resolve_params(params)
    frames = dict(bars or {})
    for s in symbols:
        if s not in frames:
            from nq_ray.data import load_bars

            frames[s] = load_bars(s, interval, source=source)
    calls = [(s, put_shared(frames[s], parallel), strat, params, config) for s in symbols]
    reports = map_tasks(_remote_one_symbol, calls, progress, parallel=parallel)
    return dict(zip(symbols, reports, strict=True))


def _remote_one_symbol(
    symbol: str, bars_ref: Any, strategy: Any, params: Any, config: BacktestConfig
) -> BacktestReport:
    return _one_symbol(symbol, get_shared(bars_ref), strategy, params, config)
