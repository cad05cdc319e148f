"""``load_bars``: the one entry point to market data, whatever the source.

Sources: ``sample`` (bundled real bars), ``csv:<path>``, ``parquet:<path>``, ``synthetic`` (seeded
generator), ``yahoo`` (yfinance), ``tradovate`` (demo REST API). Every source returns the bar frame
schema (``nq_ray.domain.bars``); coarser intervals than a source's native one are resampled session-aware.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from nq_ray.config import Settings, confine_file, load_settings
from nq_ray.data.cache import BarCache, bars_key, default_cache
from nq_ray.data.intervals import interval_length, parse_interval
from nq_ray.data.resample import resample_bars
from nq_ray.data.sources import files
from nq_ray.domain.bars import EXCHANGE_TZ
from nq_ray.domain.contracts import get_contract
from nq_ray.errors import DataUnavailableError, InvalidArgumentError
from nq_ray.market.sessions import parse_timestamp

SOURCES = ("sample", "synthetic", "yahoo", "tradovate", "csv:<path>", "parquet:<path>")
HISTORICAL_KINDS = ("sample", "synthetic", "csv", "parquet")  # sources of past bars (a replay runs on them)


def _bound(ts: Any, name: str) -> pd.Timestamp | None:
    if ts is None:
        return None
    t = parse_timestamp(ts, name)
    if t.tzinfo is None:
        t = t.tz_localize(EXCHANGE_TZ)  # a date or naive time means exchange wall time; documented
    return t.tz_convert(EXCHANGE_TZ)


def load_bars(
    symbol: str = "NQ",
    interval: str = "5m",
    start: Any = None,
    end: Any = None,
    source: str = "sample",
    *,
    settings: Settings | None = None,
    cache: BarCache | None = None,
    roots: list[Path] | None = None,
) -> pd.DataFrame:
    """Bars for ``symbol`` at ``interval`` in [start, end] from ``source``, as a bar frame.

    ``start``/``end`` may be dates or timestamps; naive ones are read as America/New_York wall time.
    Remote sources (``yahoo``, ``tradovate``) are cached in ``cache``; without one, in the process default
    (``nq_ray.data.cache.default_cache``: the store's Redis cache once ``nq_ray.store.cache`` is imported
    and ``cache.url`` is set, else the shared in-process cache).
    With ``roots`` (what the tools pass for API and MCP callers: ``settings.data.file_roots()``), a
    ``csv:``/``parquet:`` file must lie inside one of them (``path_not_allowed`` otherwise, the same
    whether it exists or not) and errors name it only as the caller did; without, any path is read (the
    operator's CLI and config).
    Raises ``unknown_symbol``, ``invalid_argument`` (interval, range), ``path_not_allowed``,
    ``invalid_bars`` (bad file) or ``data_unavailable`` (nothing for the request).
    """
    root = get_contract(symbol).symbol
    interval = parse_interval(interval)
    s, e = _bound(start, "start"), _bound(end, "end")
    if s is not None and e is not None and e < s:
        raise InvalidArgumentError(f"end {e} is before start {s}", start=str(s), end=str(e))
    settings = settings or load_settings()
    kind, _, arg = source.partition(":")
    if kind in ("csv", "parquet"):
        if not arg:
            raise InvalidArgumentError(f"source {source!r} needs a path, e.g. {kind}:/data/nq.{kind}")
        if roots is None:
            bars = files.read_file(kind, arg)
        else:
            bars = files.read_file(kind, confine_file(kind, arg, roots), shown=arg)
        bars = _to_interval(bars, interval, source)
    elif kind == "sample":
        bars = _sample(root, interval)
    elif kind == "synthetic":
        from nq_ray.data.sources import synthetic

        bars = synthetic.fetch(root, interval, s, e, seed=settings.data.synthetic_seed)
    elif kind in ("yahoo", "tradovate"):
        bars = _remote(kind, root, interval, s, e, settings, cache)
    else:
        raise InvalidArgumentError(
            f"unknown source {source!r}; use one of {', '.join(SOURCES)}", source=source
        )
    return _clip(bars, s, e, symbol, source)


def _sample(root: str, interval: str) -> pd.DataFrame:
    if (root, interval) in files.SAMPLE_FILES:
        return files.read_sample(root, interval)
    native = [iv for (sym, iv) in files.SAMPLE_FILES if sym == root]
    finer = [iv for iv in native if interval_length(iv) <= interval_length(interval)]
    if not finer:
        have = ", ".join(f"{s} {i}" for s, i in files.SAMPLE_FILES)
        raise DataUnavailableError(
            f"no sample bars for {root} at {interval}; the bundled samples are {have} "
            "(coarser intervals are resampled); try source='synthetic' or 'yahoo'",
            symbol=root,
            interval=interval,
        )
    base = max(finer, key=interval_length)
    return resample_bars(files.read_sample(root, base), interval)


def _to_interval(bars: pd.DataFrame, interval: str, source: str) -> pd.DataFrame:
    if len(bars) < 2:
        return bars
    native = pd.Series(bars.index[1:] - bars.index[:-1]).min()
    step = interval_length(interval)
    if native == step or (step >= pd.Timedelta(days=1) and native >= pd.Timedelta(days=1)):
        return bars
    if native > step:
        raise DataUnavailableError(
            f"{source} holds {native} bars; cannot make finer {interval} bars from them", interval=interval
        )
    return resample_bars(bars, interval)


def _remote(
    kind: str, root: str, interval: str, s: Any, e: Any, settings: Settings, cache: BarCache | None
) -> pd.DataFrame:
    from nq_ray.data.sources import tradovate, yahoo

    cache = cache if cache is not None else default_cache(settings.cache)
    key = bars_key(kind, root, interval, s, e)
    hit = cache.get_frame(key)
    if hit is not None:
        return hit
    module = yahoo if kind == "yahoo" else tradovate
    bars = module.fetch(root, interval, s, e, settings=settings)
    cache.set_frame(key, bars, ttl_s=settings.cache.ttl_s.get(interval, 300))
    return bars


def _clip(
    bars: pd.DataFrame, s: pd.Timestamp | None, e: pd.Timestamp | None, symbol: str, source: str
) -> pd.DataFrame:
    if s is not None:
        bars = bars.loc[bars.index >= s]
    if e is not None:
        bars = bars.loc[bars.index <= e]
    if bars.empty:
        raise DataUnavailableError(
            f"no {symbol} bars from {source} between {s} and {e}",
            symbol=symbol,
            source=source,
            start=str(s),
            end=str(e),
        )
    return bars
