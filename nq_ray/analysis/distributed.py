"""``analyze_many``: one Ray task per symbol × timeframe over shared bars, results as tasks finish.

The only module of ``nq_ray.analysis`` that imports Ray. The driver loads each symbol's bars once and
``ray.put``s them; every timeframe task of that symbol receives the same object (zero-copy numpy blocks
in the object store) and resamples session-aware inside the task. Without Ray (``backend="local"``, or
``"auto"`` when Ray is not initialised) the same task function runs in-process, in order.
A failing symbol gives a result with ``error`` set; it never sinks the rest.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Literal

import pandas as pd
import ray
from pydantic import BaseModel

from nq_ray.analysis.summary import MarketAnalysis, analyze
from nq_ray.errors import InvalidArgumentError, NQRayError


class AnalysisResult(BaseModel):
    """One symbol × timeframe: the analysis, or the typed error that stopped it."""

    symbol: str
    interval: str
    analysis: MarketAnalysis | None = None
    error: dict[str, Any] | None = None
    elapsed_s: float


def _run(
    bars: pd.DataFrame, symbol: str, interval: str, base_interval: str, options: dict[str, Any]
) -> AnalysisResult:
    """Resample (when the timeframe is coarser than the loaded bars) and analyse; errors become data."""
    t0 = time.perf_counter()
    try:
        frame = bars
        if interval != base_interval:
            from nq_ray.data.resample import resample_bars

            frame = resample_bars(bars, interval)
        out = analyze(frame, symbol, **options)
        return AnalysisResult(
            symbol=symbol, interval=interval, analysis=out, elapsed_s=time.perf_counter() - t0
        )
    except NQRayError as exc:
        return AnalysisResult(
            symbol=symbol, interval=interval, error=exc.to_dict(), elapsed_s=time.perf_counter() - t0
        )


@ray.remote(num_cpus=1, max_retries=2)
def analyze_task(
    bars: pd.DataFrame, symbol: str, interval: str, base_interval: str, options: dict[str, Any]
) -> AnalysisResult:
    """Ray task: ``bars`` arrives resolved from the object store (a top-level ObjectRef argument)."""
    return _run(bars, symbol, interval, base_interval, options)


def _load(symbol: str, interval: str, start: Any, end: Any, source: str) -> pd.DataFrame:
    from nq_ray.data import load_bars

    return load_bars(symbol, interval, start=start, end=end, source=source)


def iter_analyze_many(
    symbols: Sequence[str],
    interval: str | Sequence[str] = "5m",
    start: Any = None,
    end: Any = None,
    source: str = "sample",
    *,
    data: Mapping[str, pd.DataFrame] | None = None,
    backend: Literal["auto", "ray", "local"] = "auto",
    parallelism: int | None = None,
    options: Mapping[str, Any] | None = None,
) -> Iterator[AnalysisResult]:
    """Yield one ``AnalysisResult`` per symbol × interval, in the order the tasks finish.

    ``interval`` may be a list (e.g. ``["5m", "1h", "1d"]``): bars are loaded once per symbol at the
    first (finest) interval and resampled in each task. ``data`` supplies pre-loaded bar frames by
    symbol instead of ``load_bars``. ``parallelism`` caps the tasks in flight (default: all at once).
    """
    if not symbols:
        raise InvalidArgumentError("analyze_many: give at least one symbol")
    intervals = [interval] if isinstance(interval, str) else list(interval)
    if not intervals:
        raise InvalidArgumentError("analyze_many: give at least one interval")
    if parallelism is not None and parallelism < 1:
        raise InvalidArgumentError(f"analyze_many: parallelism must be ≥ 1, got {parallelism}")
    if backend not in ("auto", "ray", "local"):
        raise InvalidArgumentError(f"analyze_many: backend must be auto, ray or local, got {backend!r}")
    use_ray = backend == "ray" or (backend == "auto" and ray.is_initialized())
    if backend == "ray" and not ray.is_initialized():
        raise InvalidArgumentError("analyze_many: backend='ray' needs Ray started (nq_ray.runtime.connect)")
    opts = dict(options or {})
    base = intervals[0]

    def frames() -> Iterator[tuple[str, pd.DataFrame | None, dict[str, Any] | None]]:
        for sym in symbols:
            try:
                yield sym, (data[sym] if data is not None else _load(sym, base, start, end, source)), None
            except NQRayError as exc:
                yield sym, None, exc.to_dict()
            except KeyError:
                yield (
                    sym,
                    None,
                    {"code": "data_unavailable", "message": f"no bars given for {sym}", "details": {}},
                )

    if not use_ray:
        for sym, bars, err in frames():
            for iv in intervals:
                if bars is None:
                    yield AnalysisResult(symbol=sym, interval=iv, error=err, elapsed_s=0.0)
                else:
                    yield _run(bars, sym, iv, base, opts)
        return

    pending: list[tuple[Any, str, str]] = []  # (object ref of the bars, symbol, interval) not yet submitted
    for sym, bars, err in frames():
        if bars is None:
            for iv in intervals:
                yield AnalysisResult(symbol=sym, interval=iv, error=err, elapsed_s=0.0)
            continue
        ref = ray.put(bars)
        pending += [(ref, sym, iv) for iv in intervals]
    limit = parallelism or len(pending)
    in_flight: list[Any] = []
    while pending or in_flight:
        while pending and len(in_flight) < limit:
            ref, sym, iv = pending.pop(0)
            in_flight.append(analyze_task.remote(ref, sym, iv, base, opts))
        done, in_flight = ray.wait(in_flight, num_returns=1)
        yield ray.get(done[0])


def analyze_many(
    symbols: Sequence[str],
    interval: str | Sequence[str] = "5m",
    start: Any = None,
    end: Any = None,
    source: str = "sample",
    **kwargs: Any,
) -> list[AnalysisResult]:
    """All results of ``iter_analyze_many`` as a list, in completion order."""
    return list(iter_analyze_many(symbols, interval, start, end, source, **kwargs))
