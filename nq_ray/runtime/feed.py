"""Marks for the paper broker from the configured data source: the latest bar of ``data.default_source``
for a symbol, through ``nq_ray.data.load_bars`` (the data path the market tools use).

``MarkFeed.quote`` caches each symbol's latest bar for ``ttl_s`` so a burst of orders reads the source
once. Sample and synthetic data are historical: their latest bar is old, and a mark taken from it says so
(``Quote.source``), but it is still the price the paper broker fills market orders at.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from nq_ray.domain.bars import Bar
from nq_ray.domain.contracts import get_contract
from nq_ray.errors import NQRayError

log = logging.getLogger(__name__)

FEED_INTERVAL = "5m"
LOOKBACK = timedelta(days=5)


@dataclass(frozen=True)
class Quote:
    """The latest bar of ``symbol`` from ``source``, and when it was read."""

    symbol: str
    bar: Bar
    source: str
    read_at: datetime


def latest_bar(
    settings: Any, symbol: str, interval: str = FEED_INTERVAL, as_of: datetime | None = None
) -> Bar:
    """The last bar ``load_bars`` returns for ``symbol`` from ``settings.data.default_source``; with
    ``as_of`` (a replay's time), the last one closed by then (``DataUnavailableError`` when none has)."""
    from nq_ray.data import load_bars
    from nq_ray.data.intervals import interval_length
    from nq_ray.data.loader import HISTORICAL_KINDS
    from nq_ray.errors import DataUnavailableError

    source = settings.data.default_source
    start = None if source.partition(":")[0] in HISTORICAL_KINDS else datetime.now(UTC) - LOOKBACK
    frame = load_bars(get_contract(symbol).symbol, interval, start, source=source, settings=settings)
    if as_of is not None:
        frame = frame.loc[frame.index + interval_length(interval) <= as_of]
        if frame.empty:
            raise DataUnavailableError(f"no {symbol} bar from {source} had closed by {as_of.isoformat()}")
    row = frame.iloc[-1]
    return Bar(
        time=frame.index[-1].to_pydatetime(),
        open=float(row["open"]),
        high=float(row["high"]),
        low=float(row["low"]),
        close=float(row["close"]),
        volume=float(row.get("volume", 0.0)),
    )


class MarkFeed:
    """Latest bars by symbol, cached for ``ttl_s``; a source that fails gives no quote (logged)."""

    def __init__(
        self,
        settings: Any,
        *,
        ttl_s: float = 5.0,
        loader: Callable[..., Bar] = latest_bar,
    ) -> None:
        self.settings = settings
        self.ttl_s = ttl_s
        self.loader = loader
        self._cache: dict[str, tuple[float, Quote]] = {}
        self.failures = 0

    def quote(self, symbol: str, *, fresh: bool = False, as_of: datetime | None = None) -> Quote | None:
        """The latest bar of ``symbol`` (cached ``ttl_s``); with ``as_of``, the latest closed by then
        (a replay: never cached, the answer moves with replay time)."""
        sym = get_contract(symbol).symbol
        hit = self._cache.get(sym)
        now = time.monotonic()
        if as_of is None and hit is not None and not fresh and now - hit[0] < self.ttl_s:
            return hit[1]
        try:
            bar = (
                self.loader(self.settings, sym)
                if as_of is None
                else self.loader(self.settings, sym, as_of=as_of)
            )
        except NQRayError as exc:  # no data for the symbol / source down: the order waits for a bar
            self.failures += 1
            log.warning("mark feed: no price for %s from %s: %s", sym, self.settings.data.default_source, exc)
            return None
        q = Quote(sym, bar, self.settings.data.default_source, datetime.now(UTC))
        self._cache[sym] = (now, q)
        return q
