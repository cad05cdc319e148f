"""Argument types shared by the tools: the core's names, with bounds an LLM can read in the schema."""

from __future__ import annotations

from typing import Annotated, Any

import pandas as pd
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from nq_ray.errors import InvalidArgumentError

Symbol = Annotated[
    str,
    Field(
        min_length=1,
        max_length=16,
        description="root symbol, Yahoo alias or contract code: NQ, MNQ, ES, MES, YM, RTY, NQ=F, NQH26",
    ),
]
Interval = Annotated[str, Field(max_length=8, description="bar interval: 1m 2m 5m 15m 30m 1h 4h 1d 1wk")]
DEFAULT_SOURCE = "default"  # the server's configured source (data.default_source), what the runtime replays
Source = Annotated[
    str,
    Field(
        max_length=512,
        description="data source: default (the server's configured source, data.default_source: the one "
        "its market replay or live feed runs on) | sample (bundled real bars, not live) | synthetic | yahoo "
        "| tradovate | csv:PATH | parquet:PATH (a file under the server's data roots, data.roots)",
    ),
]


def resolve_source(settings: Any, source: str) -> str:
    """``default`` → the configured ``data.default_source``; any other source as given."""
    return str(settings.data.default_source) if source == DEFAULT_SOURCE else source


def _parse_time(value: str) -> str:
    """A date/time pandas can read; anything else is refused here, at the door."""
    try:
        ts = pd.Timestamp(value)
    except (ValueError, TypeError, OverflowError) as exc:
        raise ValueError(f"not a date or time: {value!r} (use ISO 8601, e.g. 2026-03-09T10:00)") from exc
    if pd.isna(ts):
        raise ValueError(f"not a date or time: {value!r} (use ISO 8601, e.g. 2026-03-09T10:00)")
    return value


When = Annotated[
    Annotated[str, Field(max_length=40), AfterValidator(_parse_time)] | None,
    Field(
        default=None,
        description="date or time, ISO 8601 (naive = America/New_York), e.g. 2026-03-09 or 2026-03-09T10:00",
    ),
]
Period = Annotated[
    str | None,
    Field(
        default=None,
        max_length=8,
        description="look-back ending at the last bar: 1d 5d 1mo 3mo 6mo 1y 2y 5y ytd max (instead of start)",
    ),
]
Params = Annotated[
    dict[str, float | int | str | bool] | None,
    Field(default=None, description="strategy parameters, e.g. {fast: 10, slow: 30}; defaults otherwise"),
]
Strategy = Annotated[
    str,
    Field(
        max_length=64, description="registered strategy name (sma_cross, ema_cross, ...; see run_backtest)"
    ),
]


class FlatArgs(BaseModel):
    """A group of tool arguments defined once and shared by several tools. A tool parameter of such a
    type is flattened by ``spec_of``: its fields are the tool's own top-level arguments (MCP clients see
    ``symbol``, ``interval``, ... as before) and the tool function receives them as one model."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class BarSeries(FlatArgs):
    """Which bars a tool reads: the contract, the bar interval and the data source (the latest bars);
    the tools load them through ``nq_ray.tools.data.load``, the point-in-time choke point."""

    symbol: Symbol = "NQ"
    interval: Interval = "5m"
    source: Source = DEFAULT_SOURCE


class BarsQuery(BarSeries):
    """Which bars a tool reads, over a range: ``start``/``end``, or a ``period`` look-back ending at the
    last bar (give ``period`` or ``start``, not both)."""

    start: When = None
    end: When = None
    period: Period = None


LIVE_SOURCES = ("yahoo", "tradovate")
_PERIODS = {"d": "D", "wk": "W", "mo": "MS", "y": "YS"}


class DataOrigin(BaseModel):
    """Where the numbers came from: a result built on sample or synthetic bars says so."""

    source: str = Field(description="the data source the bars came from")
    live: bool = Field(description="true only for a live market-data source (yahoo, tradovate)")
    last_bar_time: str | None = Field(description="start time of the latest bar used (America/New_York)")
    bars: int = Field(description="number of bars used")
    note: str = ""


def origin(source: str, frame: pd.DataFrame) -> DataOrigin:
    kind = source.partition(":")[0]
    live = kind in LIVE_SOURCES
    note = {
        "sample": "bundled historical sample bars, not live market data",
        "synthetic": "synthetic bars from the seeded generator, not market data",
        "csv": "bars from a user file",
        "parquet": "bars from a user file",
    }.get(kind, "")
    last = frame.index[-1].isoformat() if len(frame) else None
    return DataOrigin(source=source, live=live, last_bar_time=last, bars=len(frame), note=note)


def period_start(last: pd.Timestamp, period: str) -> pd.Timestamp | None:
    """Start of a yfinance-style ``period`` that ends at ``last`` (None for ``max``)."""
    p = period.strip().lower()
    if p == "max":
        return None
    if p == "ytd":
        return last.normalize().replace(month=1, day=1)
    for suffix in ("mo", "wk", "d", "y"):
        if p.endswith(suffix) and p[: -len(suffix)].isdigit():
            n = int(p[: -len(suffix)])
            if not 1 <= n <= 100:
                break
            offset: Any = {
                "d": pd.Timedelta(days=n),
                "wk": pd.Timedelta(weeks=n),
                "mo": pd.DateOffset(months=n),
                "y": pd.DateOffset(years=n),
            }[suffix]
            return last - offset
    raise InvalidArgumentError(
        f"unknown period {period!r}; use 1d 5d 1mo 3mo 6mo 1y 2y 5y 10y ytd max", period=period
    )


def finite(x: Any) -> float | None:
    """A float, or None when missing / NaN / infinite (strict JSON has no NaN)."""
    if x is None:
        return None
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if v == v and v not in (float("inf"), float("-inf")) else None


PackName = Annotated[
    str,
    Field(
        min_length=1,
        max_length=64,
        pattern=r"^[a-z0-9][a-z0-9-]*$",
        description="rule pack: topstep-50k, topstep-100k, topstep-150k, topstep-express-50k, apex-50k, "
        "apex-100k, apex-pa-50k, tpt-50k, or one in propfirm.packs_dir",
    ),
]
