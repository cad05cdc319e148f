"""Analysis tools: indicators, candlestick/chart patterns, momentum, support/resistance."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, Field

from nq_ray.analysis.levels import SupportResistance
from nq_ray.analysis.momentum import MomentumReport
from nq_ray.analysis.patterns import PatternReport
from nq_ray.config import Settings
from nq_ray.tools.args import BarSeries, BarsQuery, DataOrigin, finite, origin
from nq_ray.tools.compute import offload
from nq_ray.tools.context import current
from nq_ray.tools.data import load

IndicatorParams = dict[str, dict[str, float | int | str]]


def _series(query: BarSeries) -> tuple[str, str, str]:
    return query.symbol, query.interval, query.source


class IndicatorsResult(BaseModel):
    """Latest value of each indicator output (None while warming up) and the last ``tail`` values."""

    symbol: str
    interval: str
    as_of: str
    latest: dict[str, float | None]
    params: dict[str, dict[str, float | int | str]]
    recent: dict[str, list[float | None]] = Field(description="output → last `tail` values, oldest first")
    origin: DataOrigin


def _indicators(
    settings: Settings,
    symbol: str,
    interval: str,
    indicators: list[str] | None,
    params: IndicatorParams | None,
    start: str | None,
    end: str | None,
    period: str | None,
    source: str,
    tail: int,
    as_of: datetime | None,
) -> IndicatorsResult:
    from nq_ray.analysis import compute_indicators
    from nq_ray.domain.contracts import get_contract

    bars = load(settings, symbol, interval, source, start, end, period, as_of=as_of)
    spec: object = None
    if params:
        spec = {name: dict(params.get(name, {})) for name in (indicators or [])} | dict(params)
    elif indicators:
        spec = list(indicators)
    result = compute_indicators(bars, spec)
    recent = {
        col: [finite(v) for v in result.series[col].to_numpy()[-tail:]] for col in result.series.columns
    }
    return IndicatorsResult(
        symbol=get_contract(symbol).symbol,
        interval=interval,
        as_of=bars.index[-1].isoformat(),
        latest={k: finite(v) for k, v in result.latest.items()},
        params={
            k: {p: x for p, x in v.items() if isinstance(x, int | float | str)}
            for k, v in result.params.items()
        },
        recent=recent,
        origin=origin(source, bars),
    )


async def calculate_technical_indicators(
    query: BarsQuery,
    indicators: Annotated[
        list[Annotated[str, Field(max_length=32)]] | None,
        Field(
            default=None,
            max_length=32,
            description="names: sma ema rsi macd bollinger atr adx stochastic cci williams_r mfi obv keltner "
            "donchian supertrend vwap vwap_bands; default RSI 14, MACD 12/26/9, Bollinger 20/2, ATR 14",
        ),
    ] = None,
    params: Annotated[
        IndicatorParams | None,
        Field(
            default=None,
            description="per-indicator parameters, e.g. "
            '{"ema_50": {"kind": "ema", "period": 50}, "rsi": {"period": 7}}',
        ),
    ] = None,
    tail: Annotated[int, Field(ge=1, le=500, description="recent values to return per output")] = 5,
) -> IndicatorsResult:
    """Technical indicators (RSI, MACD, Bollinger, ATR, ADX, EMA/SMA, VWAP, ...) on the latest bars, with
    their current values. Use for "is NQ overbought?", "where is the 50 EMA?" and similar questions."""
    ctx = current()
    return await offload(
        _indicators,
        ctx.settings,
        query.symbol,
        query.interval,
        indicators,
        params,
        query.start,
        query.end,
        query.period,
        query.source,
        tail,
        ctx.data_as_of,
    )


class PatternsResult(BaseModel):
    symbol: str
    interval: str
    report: PatternReport
    origin: DataOrigin


def _patterns(
    settings: Settings,
    symbol: str,
    interval: str,
    source: str,
    candle_bars: int,
    chart_bars: int,
    min_confidence: float,
    as_of: datetime | None,
) -> PatternsResult:
    from nq_ray.analysis.patterns import detect_patterns as core
    from nq_ray.domain.contracts import get_contract

    root = get_contract(symbol).symbol
    bars = load(settings, root, interval, source, as_of=as_of)
    report = core(bars, root, candle_bars=candle_bars, chart_bars=chart_bars, min_confidence=min_confidence)
    return PatternsResult(symbol=root, interval=interval, report=report, origin=origin(source, bars))


async def detect_patterns(
    query: BarSeries,
    candle_bars: Annotated[
        int, Field(ge=1, le=500, description="candlestick patterns in the last N bars")
    ] = 5,
    chart_bars: Annotated[
        int, Field(ge=30, le=20_000, description="chart patterns ending in the last N bars")
    ] = 300,
    min_confidence: Annotated[float, Field(ge=0, le=1)] = 0.0,
) -> PatternsResult:
    """Candlestick patterns (engulfing, doji, hammer, ...) of the last bars and chart patterns (double
    top/bottom, head and shoulders, triangles, flags) with their confidence and key prices."""
    ctx = current()
    return await offload(
        _patterns, ctx.settings, *_series(query), candle_bars, chart_bars, min_confidence, ctx.data_as_of
    )


class MomentumResult(BaseModel):
    symbol: str
    interval: str
    report: MomentumReport
    origin: DataOrigin


def _momentum(
    settings: Settings, symbol: str, interval: str, source: str, periods: list[int], as_of: datetime | None
) -> MomentumResult:
    from nq_ray.analysis.momentum import analyze_momentum as core
    from nq_ray.domain.contracts import get_contract

    root = get_contract(symbol).symbol
    bars = load(settings, root, interval, source, as_of=as_of)
    return MomentumResult(
        symbol=root, interval=interval, report=core(bars, periods=periods), origin=origin(source, bars)
    )


async def analyze_momentum(
    query: BarSeries,
    periods: Annotated[
        list[Annotated[int, Field(ge=1, le=5000)]],
        Field(min_length=1, max_length=8, description="rate-of-change horizons in bars"),
    ] = [1, 5, 20, 60],  # noqa: B006 - pydantic copies defaults
) -> MomentumResult:
    """Momentum: rate of change over several horizons, RSI, MACD histogram, relative volume, ADX trend
    strength, multi-timeframe alignment and RSI/MACD divergences. Use for "is the move losing steam?"."""
    ctx = current()
    return await offload(_momentum, ctx.settings, *_series(query), list(periods), ctx.data_as_of)


class LevelsResult(BaseModel):
    symbol: str
    interval: str
    levels: SupportResistance
    origin: DataOrigin


def _levels(
    settings: Settings, symbol: str, interval: str, source: str, max_zones: int, as_of: datetime | None
) -> LevelsResult:
    from nq_ray.analysis.levels import find_support_resistance as core
    from nq_ray.domain.contracts import get_contract

    root = get_contract(symbol).symbol
    bars = load(settings, root, interval, source, as_of=as_of)
    return LevelsResult(
        symbol=root,
        interval=interval,
        levels=core(bars, root, max_zones=max_zones),
        origin=origin(source, bars),
    )


async def find_support_resistance(
    query: BarSeries,
    max_zones: Annotated[int, Field(ge=1, le=50)] = 8,
) -> LevelsResult:
    """Support and resistance around the last price: floor-trader pivots, prior-day high/low/close,
    overnight range, volume-profile POC/value area and swing zones, plus the nearest support and
    resistance. Use to place stops and targets."""
    ctx = current()
    return await offload(_levels, ctx.settings, *_series(query), max_zones, ctx.data_as_of)
