"""The multi-symbol scanner's core: which cells to run, how to run them, how to rank what they found.

A scan is a grid of cells, one per symbol × timeframe. ``plan_cells`` checks the grid at the door (known
symbols, known timeframes, a bounded number of cells); ``run_cells`` runs one module-level cell function
per cell as parallel Ray tasks when Ray is initialised in this process (in-process, in order, otherwise),
reports each finished cell, and stops on request: the outstanding tasks are cancelled and the cells that
had finished are returned. ``rank`` orders the results by their ``score``.

Ranking rules (the scores are computed by the cell functions with the two functions below):

- analysis: ``confidence × alignment`` (``analysis_score``) — the rules analyst's confidence times the
  share of the analysis's trend timeframes whose direction agrees with its bias (bullish ↔ up, bearish ↔
  down); a neutral bias scores 0. Range 0 … 0.9 (the rules analyst never claims more than 0.9).
- backtest: the Sharpe ratio when the run made at least ``min_trades`` trades (``backtest_score``); fewer
  trades give no score, so a lucky single trade cannot top the table.

Higher is better; cells without a score (too few trades, or an error) come last; ties keep the order in
which the cells were asked for (symbols first, then timeframes). Like ``backtest.sweep``, Ray is used
only when it is already running (looked up in ``sys.modules``): the core never starts or imports it.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from nq_ray.data.intervals import parse_interval
from nq_ray.domain.contracts import get_contract
from nq_ray.errors import InvalidArgumentError

MAX_CELLS = 32
"""At most this many symbol × timeframe cells per scan (e.g. the 8 index contracts × 4 timeframes)."""
MAX_SYMBOLS = 16
MAX_TIMEFRAMES = 6
CANCEL_GRACE_S = 5.0
"""How long cancelled tasks get to stop before their workers are killed (``ray.cancel(force=True)``)."""


@dataclass(frozen=True)
class Cell:
    """One symbol (root symbol, e.g. ``NQ``) × one timeframe (canonical interval, e.g. ``1h``)."""

    symbol: str
    interval: str


class Scored(Protocol):
    """What ``rank`` needs of a cell's result."""

    @property
    def score(self) -> float | None: ...

    @property
    def error(self) -> Mapping[str, Any] | None: ...


R = TypeVar("R", bound=Scored)


def plan_cells(
    symbols: Sequence[str], timeframes: Sequence[str], *, max_cells: int = MAX_CELLS
) -> list[Cell]:
    """The cells of a scan, symbols × timeframes in the order given (duplicates dropped, aliases such as
    ``NQ=F`` resolved to their root). Refuses an empty list, an unknown symbol (``unknown_symbol``), an
    unknown timeframe and more than ``max_cells`` cells (``invalid_argument``), before any work starts."""
    if not symbols:
        raise InvalidArgumentError("scan: give at least one symbol, e.g. ['NQ', 'ES']")
    if not timeframes:
        raise InvalidArgumentError("scan: give at least one timeframe, e.g. ['5m', '1h']")
    if len(symbols) > MAX_SYMBOLS or len(timeframes) > MAX_TIMEFRAMES:
        raise InvalidArgumentError(
            f"scan: at most {MAX_SYMBOLS} symbols and {MAX_TIMEFRAMES} timeframes, got {len(symbols)} "
            f"and {len(timeframes)}"
        )
    roots = list(dict.fromkeys(get_contract(s).symbol for s in symbols))
    intervals = list(dict.fromkeys(parse_interval(t) for t in timeframes))
    n = len(roots) * len(intervals)
    if n > max_cells:
        raise InvalidArgumentError(
            f"scan: {len(roots)} symbols × {len(intervals)} timeframes = {n} cells; at most {max_cells} "
            "per scan (scan fewer symbols or timeframes)",
            cells=n,
            max_cells=max_cells,
        )
    return [Cell(s, iv) for s in roots for iv in intervals]


def analysis_score(bias: str, confidence: float, timeframes: Mapping[str, str]) -> float:
    """``confidence × alignment``: alignment is the share of ``timeframes`` (label → up/down/neutral)
    whose direction agrees with ``bias``; 0 for a neutral bias or no timeframes."""
    want = {"bullish": "up", "bearish": "down"}.get(bias)
    if want is None or not timeframes:
        return 0.0
    alignment = sum(d == want for d in timeframes.values()) / len(timeframes)
    return round(confidence * alignment, 6)


def backtest_score(sharpe: float | None, n_trades: int, min_trades: int) -> float | None:
    """The Sharpe ratio of a run with at least ``min_trades`` trades; None otherwise (ranked last)."""
    if sharpe is None or n_trades < min_trades or sharpe != sharpe:
        return None
    return float(sharpe)


def rank(results: Sequence[R]) -> list[R]:
    """``results`` best first: by score, descending; unscored and failed cells last; ties stable."""
    scored = [r for r in results if r.error is None and r.score is not None]
    rest = [r for r in results if r.error is None and r.score is None]
    failed = [r for r in results if r.error is not None]
    return sorted(scored, key=lambda r: -float(r.score or 0.0)) + rest + failed


# ----------------------------------------------------------------------------------------- running
CellFn = Callable[[str, str, Any], Any]
"""``fn(symbol, interval, payload) -> result``: module-level (Ray pickles it by reference); returns
expected failures as a result with ``error`` set rather than raising."""
Progress = Callable[[int, int, Any], None]
"""``progress(done, total, result)``: after each finished cell (``result``), and with ``result=None``
while waiting (a heartbeat, so a caller can raise to cancel)."""


@dataclass
class ScanRun:
    """What ``run_cells`` gives back: the finished cells' results (in finishing order), whether the scan
    was cancelled, and the cells that did not finish."""

    results: list[Any]
    cancelled: bool = False
    unfinished: list[Cell] = field(default_factory=list)
    elapsed_s: float = 0.0
    parallel: bool = False


def _ray() -> Any:
    ray = sys.modules.get("ray")
    return ray if ray is not None and ray.is_initialized() else None


_remotes: dict[Any, Any] = {}


def _remote(ray: Any, fn: CellFn) -> Any:
    remote = _remotes.get(fn)
    if remote is None:
        # no retries: a cell that crashed its worker is reported, not run twice
        remote = ray.remote(num_cpus=1, max_retries=0)(fn)
        _remotes[fn] = remote
    return remote


def run_cells(
    fn: CellFn,
    cells: Sequence[Cell],
    payload: Any = None,
    *,
    progress: Progress | None = None,
    stop: Callable[[], bool] | None = None,
    workers: int | None = None,
    parallel: bool | None = None,
    poll_s: float = 0.2,
) -> ScanRun:
    """Run ``fn(cell.symbol, cell.interval, payload)`` for every cell.

    With Ray running (and ``parallel`` not False) each cell is a Ray task (one CPU; at most ``workers``
    in flight, default all) over one ``ray.put`` copy of ``payload``; results come back as tasks finish.
    ``stop()`` is checked between cells and every ``poll_s`` while waiting: once it is true (or when
    ``progress`` raises), the tasks not finished are cancelled — and awaited, so none is left running —
    and the run returns (or re-raises ``progress``'s exception) with what had finished."""
    if workers is not None and workers < 1:
        raise InvalidArgumentError(f"scan: workers must be ≥ 1, got {workers}")
    t0 = time.perf_counter()
    total = len(cells)
    ray = _ray() if parallel is not False else None
    results: list[Any] = []
    if ray is None:
        for i, cell in enumerate(cells):
            if stop is not None and stop():
                return ScanRun(results, True, list(cells[i:]), time.perf_counter() - t0)
            results.append(fn(cell.symbol, cell.interval, payload))
            if progress is not None:
                progress(len(results), total, results[-1])
        return ScanRun(results, False, [], time.perf_counter() - t0)

    remote = _remote(ray, fn)
    shared = ray.put(payload)
    limit = workers or total
    queue = list(cells)
    in_flight: dict[Any, Cell] = {}
    cancelled = False
    try:
        while queue or in_flight:
            if stop is not None and stop():
                cancelled = True
                break
            while queue and len(in_flight) < limit:
                cell = queue.pop(0)
                in_flight[remote.remote(cell.symbol, cell.interval, shared)] = cell
            ready, _ = ray.wait(list(in_flight), num_returns=1, timeout=poll_s)
            if not ready:
                if progress is not None:
                    progress(len(results), total, None)
                continue
            for ref in ready:
                cell = in_flight.pop(ref)
                results.append(ray.get(ref))
                if progress is not None:
                    progress(len(results), total, results[-1])
    finally:
        if in_flight:  # stopped early: keep what finished meanwhile, cancel the rest
            ready, _ = ray.wait(list(in_flight), num_returns=len(in_flight), timeout=0)
            for ref in ready:
                with contextlib.suppress(Exception):  # a cell that failed is not a result
                    results.append(ray.get(ref))
                del in_flight[ref]
            cancel_refs(ray, list(in_flight))
        unfinished = list(in_flight.values()) + queue
    return ScanRun(results, cancelled, unfinished, time.perf_counter() - t0, parallel=True)


def cancel_refs(ray: Any, refs: list[Any], grace_s: float = CANCEL_GRACE_S) -> None:
    """Cancel ``refs`` and wait until each has ended: a task still running after ``grace_s`` (numba code
    does not see Ray's interrupt until it returns) has its worker killed (``force=True``). The sweep's
    fan-out (``nq_ray.backtest.sweep.map_tasks``) stops its tasks with it too."""
    for ref in refs:
        ray.cancel(ref, force=False)
    _, left = ray.wait(refs, num_returns=len(refs), timeout=grace_s)
    for ref in left:
        ray.cancel(ref, force=True)
    if left:
        ray.wait(left, num_returns=len(left), timeout=grace_s)
