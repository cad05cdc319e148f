"""Tiny hand-made bar frames and fixed-signal strategies for the backtest tests."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from nq_ray.backtest.strategies import Signals

# The hand-worked examples and the reference engines trade without costs; the defaults have some.
NO_COSTS = {"commission_per_contract": 0.0, "slippage_ticks": 0.0}


def make_bars(
    rows: Sequence[tuple[float, float, float, float]],
    start: str = "2026-03-03 10:00",
    freq: str = "1min",
    index: pd.DatetimeIndex | None = None,
) -> pd.DataFrame:
    """A bar frame from (open, high, low, close) rows, 1-minute bars from ``start`` ET by default."""
    if index is None:
        index = pd.date_range(start, periods=len(rows), freq=freq, tz="America/New_York")
    df = pd.DataFrame(list(rows), columns=["open", "high", "low", "close"], index=index, dtype=np.float64)
    df["volume"] = 100.0
    return df


def fixed(n: int, **events: Sequence[int] | dict[int, float]):
    """A signal function that fires the given events at the given bar numbers, e.g.
    ``fixed(5, long_entry=[0], long_exit=[2])``; ``stop_price={0: 99.0}`` sets bracket prices."""

    def fn(data, params):
        out = {}
        for name, where in events.items():
            if isinstance(where, dict):
                arr = np.full(n, np.nan)
                for i, v in where.items():
                    arr[i] = v
            else:
                arr = np.zeros(n, dtype=bool)
                arr[list(where)] = True
            out[name] = arr
        return Signals.coerce(out, n)

    return fn
