"""Synthetic bar frames for the analysis tests: piecewise-linear paths and seeded random walks."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np
import pandas as pd


def frame(
    close: np.ndarray, wick: float = 0.25, start: str = "2026-03-02 09:30", freq: str = "5min"
) -> pd.DataFrame:
    """Bars whose open is the previous close and whose wicks stick out ``wick`` points."""
    o = np.r_[close[0], close[:-1]]
    idx = pd.date_range(start, periods=len(close), freq=freq, tz="America/New_York")
    return pd.DataFrame(
        {
            "open": o,
            "high": np.maximum(o, close) + wick,
            "low": np.minimum(o, close) - wick,
            "close": close,
            "volume": 100.0,
        },
        index=idx,
    )


def path_bars(anchors: Sequence[float], bars_per_leg: int = 10, pre: int = 20) -> pd.DataFrame:
    """Straight legs between the anchor prices, after ``pre`` flat bars (ATR warm-up)."""
    parts = [np.full(pre, float(anchors[0]))]
    for a, b in itertools.pairwise(anchors):
        parts.append(np.linspace(a, b, bars_per_leg + 1)[1:])
    return frame(np.concatenate(parts))


def random_walk(n: int, seed: int, step: float = 5.0, start: str = "2026-01-05 00:00") -> pd.DataFrame:
    """Gaussian random walk around 20,000 with random wicks and volume (no planted pattern)."""
    rng = np.random.default_rng(seed)
    c = 20_000 + np.cumsum(rng.normal(0, step, n))
    o = np.r_[c[0], c[:-1]]
    idx = pd.date_range(start, periods=n, freq="5min", tz="America/New_York")
    return pd.DataFrame(
        {
            "open": o,
            "high": np.maximum(o, c) + np.abs(rng.normal(0, step * 0.6, n)),
            "low": np.minimum(o, c) - np.abs(rng.normal(0, step * 0.6, n)),
            "close": c,
            "volume": rng.integers(1, 1000, n).astype(float),
        },
        index=idx,
    )
