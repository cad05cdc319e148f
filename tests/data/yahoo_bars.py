"""Fake Yahoo history for the tests that load bars through ``load_bars(source="yahoo")``."""

from __future__ import annotations

import numpy as np
import pandas as pd

from nq_ray.domain.bars import EXCHANGE_TZ


class CountingDownloader:
    """Yahoo daily bars in ``Ticker.history(auto_adjust=False, actions=False)`` shape (see
    tests/data/test_yahoo.py for where each detail comes from), counting network calls."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(
        self, ticker: str, *, interval: str, start: pd.Timestamp, end: pd.Timestamp, timeout_s: float
    ) -> pd.DataFrame:
        self.calls += 1
        days = pd.bdate_range(
            start.tz_convert(EXCHANGE_TZ).date(), end.tz_convert(EXCHANGE_TZ).date(), inclusive="left"
        )
        close = 21_000 + np.arange(len(days)) * 0.25
        frame = pd.DataFrame(
            {
                "Open": close,
                "High": close + 5,
                "Low": close - 5,
                "Close": close,
                "Adj Close": close,
                "Volume": np.arange(len(days), dtype=np.int64) + 1,
            },
            index=pd.DatetimeIndex(days).tz_localize("America/New_York"),
        )
        frame.index.name = "Date"
        return frame
