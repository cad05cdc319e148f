"""Technical analysis core: indicators, candlestick and chart patterns, momentum, levels, summaries.

Pure functions over bar frames (numpy/pandas/TA-Lib/numba); nothing here imports Ray except
``nq_ray.analysis.distributed``, which is imported only on request.
"""

from nq_ray.analysis.indicators import (
    IndicatorSet,
    adx,
    atr,
    bollinger,
    cci,
    compute_indicators,
    donchian,
    ema,
    keltner,
    macd,
    mfi,
    obv,
    rsi,
    sma,
    stochastic,
    supertrend,
    vwap,
    vwap_bands,
    williams_r,
)
from nq_ray.analysis.summary import MarketAnalysis, analyze

_LAZY = {"analyze_many", "iter_analyze_many", "AnalysisResult"}


def __getattr__(name: str) -> object:
    """``analyze_many`` and friends import Ray, so they load only when asked for."""
    if name in _LAZY:
        from nq_ray.analysis import distributed

        return getattr(distributed, name)
    raise AttributeError(f"module 'nq_ray.analysis' has no attribute {name!r}")


__all__ = [  # noqa: RUF022 - grouped: models first, then functions
    "AnalysisResult",
    "IndicatorSet",
    "MarketAnalysis",
    "analyze",
    "analyze_many",
    "iter_analyze_many",
    "adx",
    "atr",
    "bollinger",
    "cci",
    "compute_indicators",
    "donchian",
    "ema",
    "keltner",
    "macd",
    "mfi",
    "obv",
    "rsi",
    "sma",
    "stochastic",
    "supertrend",
    "vwap",
    "vwap_bands",
    "williams_r",
]
