"""Bar intervals nq-ray understands, in one place: ``1m 2m 5m 15m 30m 1h 4h 1d 1wk``."""

from __future__ import annotations

import pandas as pd

from nq_ray.errors import InvalidArgumentError

INTERVALS: dict[str, pd.Timedelta] = {
    "1m": pd.Timedelta(minutes=1),
    "2m": pd.Timedelta(minutes=2),
    "5m": pd.Timedelta(minutes=5),
    "15m": pd.Timedelta(minutes=15),
    "30m": pd.Timedelta(minutes=30),
    "1h": pd.Timedelta(hours=1),
    "4h": pd.Timedelta(hours=4),
    "1d": pd.Timedelta(days=1),
    "1wk": pd.Timedelta(weeks=1),
}
_ALIASES = {"60m": "1h", "1min": "1m", "5min": "5m", "15min": "15m", "30min": "30m", "d": "1d", "1w": "1wk"}


def parse_interval(interval: str) -> str:
    """Canonical interval name, or ``invalid_argument`` listing the allowed ones."""
    key = _ALIASES.get(interval.strip().lower(), interval.strip().lower())
    if key not in INTERVALS:
        raise InvalidArgumentError(
            f"unknown interval {interval!r}; use one of {', '.join(INTERVALS)}", interval=interval
        )
    return key


def interval_length(interval: str) -> pd.Timedelta:
    """Length of one bar of ``interval``."""
    return INTERVALS[parse_interval(interval)]


def is_intraday(interval: str) -> bool:
    return interval_length(interval) < pd.Timedelta(days=1)
