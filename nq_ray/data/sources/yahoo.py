"""The ``yahoo`` source: continuous front-month futures bars (``NQ=F``) from Yahoo Finance via yfinance.

Yahoo's look-back limits are checked before any request, with an ``invalid_argument`` that says what is
allowed (1m: 30 days back, fetched in ≤ 7-day requests; 2m–30m: 60 days; 1h/4h: 730 days; 1d/1wk:
unlimited). "Now" comes from a ``clock``. Rate limits and transient network errors are retried with
exponential back-off (tenacity); an empty answer is ``data_unavailable``; after the last retry the
error is ``provider_unavailable``. The network call sits behind one seam, a ``Downloader``: pass one to
``fetch(downloader=...)``, or install one for a block of code with ``use_downloader(...)`` (how tests
reach it through ``load_bars``).
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, Protocol

import pandas as pd
from tenacity import RetryError, Retrying, retry_if_exception, stop_after_attempt, wait_exponential

from nq_ray.config import Settings, YahooSettings, load_settings
from nq_ray.data.frames import normalize_bars
from nq_ray.data.intervals import parse_interval
from nq_ray.data.resample import resample_bars
from nq_ray.domain.bars import EXCHANGE_TZ, PRICE_COLUMNS
from nq_ray.domain.contracts import get_contract
from nq_ray.errors import DataUnavailableError, InvalidArgumentError, ProviderUnavailableError

# nq-ray interval → (Yahoo interval to request, days back Yahoo serves, days per request, default span)
_YAHOO: dict[str, tuple[str, int | None, int | None, int]] = {
    "1m": ("1m", 30, 7, 7),
    "2m": ("2m", 60, None, 60),
    "5m": ("5m", 60, None, 60),
    "15m": ("15m", 60, None, 60),
    "30m": ("30m", 60, None, 60),
    "1h": ("60m", 730, None, 730),
    "4h": ("60m", 730, None, 730),  # Yahoo has no 4h bars: 60m resampled session-aware
    "1d": ("1d", None, None, 2 * 365),
    "1wk": ("1wk", None, None, 10 * 365),
}
# Margin inside Yahoo's limit, so a request made at the edge is not refused by the time it arrives.
_EDGE = pd.Timedelta(minutes=5)


class Downloader(Protocol):
    """Fetch raw Yahoo history for one ticker: a DataFrame shaped like ``yfinance.Ticker.history``."""

    def __call__(
        self, ticker: str, *, interval: str, start: pd.Timestamp, end: pd.Timestamp, timeout_s: float
    ) -> pd.DataFrame: ...


def yfinance_downloader(
    ticker: str, *, interval: str, start: pd.Timestamp, end: pd.Timestamp, timeout_s: float
) -> pd.DataFrame:
    """The real network call: ``yfinance.Ticker(ticker).history(...)`` with errors raised, not logged.

    ``raise_errors=True`` (deprecated in yfinance 1.x in favour of the process-global
    ``yf.config.debug.hide_exceptions``; we keep the per-call switch and silence its warning) makes
    network failures raise instead of coming back as an empty frame, so they can be retried.
    ``prepost=True`` keeps the overnight Globex bars for futures.
    """
    import yfinance as yf

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return yf.Ticker(ticker).history(
            interval=interval,
            start=start.to_pydatetime(),
            end=end.to_pydatetime(),
            auto_adjust=False,
            actions=False,
            prepost=True,
            timeout=timeout_s,
            raise_errors=True,
        )


_DOWNLOADER: ContextVar[Downloader | None] = ContextVar("nq_ray_yahoo_downloader", default=None)


@contextmanager
def use_downloader(downloader: Downloader) -> Iterator[None]:
    """Route every ``fetch`` in this context (and so ``load_bars(source='yahoo')``) to ``downloader``."""
    token = _DOWNLOADER.set(downloader)
    try:
        yield
    finally:
        _DOWNLOADER.reset(token)


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _transient(exc: BaseException) -> bool:
    """Rate limits, 'Yahoo is down' pages and network errors are worth retrying; missing data is not."""
    from yfinance.exceptions import YFDataException, YFRateLimitError, YFTickerMissingError, YFTzMissingError

    if isinstance(exc, YFTzMissingError):
        # yfinance swallows the network error of its time-zone look-up and reports "no timezone found";
        # our tickers come from the contract table and always have one, so this means Yahoo is unreachable
        return True
    if isinstance(exc, YFTickerMissingError):
        return False
    return isinstance(exc, YFRateLimitError | YFDataException | OSError)  # curl_cffi errors are OSErrors


def _missing(exc: BaseException) -> bool:
    from yfinance.exceptions import YFInvalidPeriodError, YFTickerMissingError

    return isinstance(exc, YFTickerMissingError | YFInvalidPeriodError)


def _window(interval: str, start: Any, end: Any, now: pd.Timestamp) -> tuple[pd.Timestamp, pd.Timestamp]:
    """The [start, end) to request, checked against Yahoo's limits before anything is sent."""
    _, max_back_d, _, default_d = _YAHOO[interval]
    e = now if end is None else min(pd.Timestamp(end).tz_convert("UTC"), now)
    s = e - pd.Timedelta(days=default_d) if start is None else pd.Timestamp(start).tz_convert("UTC")
    if max_back_d is not None:
        limit = now - pd.Timedelta(days=max_back_d)
        if start is None:
            s = max(s, limit + _EDGE)
        elif s < limit:
            raise InvalidArgumentError(
                f"Yahoo serves {interval} bars only for the last {max_back_d} days "
                f"(since {limit:%Y-%m-%d %H:%M} UTC); start {s:%Y-%m-%d %H:%M} UTC is earlier. "
                "Use a later start, a coarser interval "
                "(1h goes back 730 days, 1d without limit), or source='sample'/'synthetic'",
                interval=interval,
                start=str(s),
                max_days_back=max_back_d,
            )
    if s >= e:
        raise InvalidArgumentError(
            f"nothing to fetch: start {s} is not before end {e} (end is capped at now, {now})",
            start=str(s),
            end=str(e),
        )
    return s, e


def _chunks(s: pd.Timestamp, e: pd.Timestamp, days: int | None) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
    if days is None:
        return [(s, e)]
    step = pd.Timedelta(days=days)
    out, t = [], s
    while t < e:
        out.append((t, min(t + step, e)))
        t += step
    return out


def _call(
    downloader: Downloader,
    ticker: str,
    interval: str,
    s: pd.Timestamp,
    e: pd.Timestamp,
    cfg: YahooSettings,
    sleep: Callable[[float], None],
) -> pd.DataFrame:
    retrying = Retrying(
        stop=stop_after_attempt(cfg.max_retries + 1),
        wait=wait_exponential(multiplier=cfg.backoff_s, min=cfg.backoff_s, max=60.0),
        retry=retry_if_exception(_transient),
        sleep=sleep,
        reraise=False,
    )
    try:
        return retrying(downloader, ticker, interval=interval, start=s, end=e, timeout_s=cfg.timeout_s)
    except RetryError as exc:
        last = exc.last_attempt.exception()
        raise ProviderUnavailableError(
            f"Yahoo Finance did not answer for {ticker} {interval} after {cfg.max_retries + 1} attempts "
            f"({type(last).__name__}: {last}); wait a few minutes (rate limit) or use source='sample' "
            "or 'synthetic'",
            ticker=ticker,
            interval=interval,
            attempts=cfg.max_retries + 1,
            error=type(last).__name__,
        ) from last
    except Exception as exc:
        if _missing(exc):
            raise DataUnavailableError(
                f"Yahoo has no {interval} data for {ticker} between {s} and {e}: {exc}",
                ticker=ticker,
                interval=interval,
                start=str(s),
                end=str(e),
            ) from exc
        raise


def to_bar_frame(raw: pd.DataFrame, interval: str, ticker: str) -> pd.DataFrame:
    """yfinance output → a bar frame. Accepts ``Ticker.history`` columns (Open … Volume, maybe Adj
    Close / Dividends / Stock Splits) and ``yf.download``'s (Price, Ticker) MultiIndex columns; rows
    without a price (Yahoo's placeholders) are dropped; daily and weekly bars are relabelled to
    00:00 America/New_York of their date (Yahoo labels them midnight in the exchange's own zone)."""
    df = raw
    if isinstance(df.columns, pd.MultiIndex):
        level = "Ticker" if "Ticker" in (df.columns.names or []) else 1
        mine = ticker in set(df.columns.get_level_values(level))
        df = df.xs(ticker, axis=1, level=level) if mine else df.droplevel(level, axis=1)
    keep = [c for c in df.columns if str(c).lower() in (*PRICE_COLUMNS, "volume")]
    df = df.loc[:, keep]
    prices = [c for c in keep if str(c).lower() in PRICE_COLUMNS]
    df = df.dropna(subset=prices, how="any")
    if df.empty:
        raise DataUnavailableError(
            f"Yahoo returned no {interval} bars for {ticker}", ticker=ticker, interval=interval
        )
    if interval in ("1d", "1wk") and isinstance(df.index, pd.DatetimeIndex):
        wall = df.index.tz_localize(None) if df.index.tz is not None else df.index  # exchange wall time
        df = df.set_axis(wall.normalize().tz_localize(EXCHANGE_TZ), axis=0)
    return normalize_bars(df, source=f"yahoo:{ticker}")


def fetch(
    root: str,
    interval: str,
    start: Any = None,
    end: Any = None,
    settings: Settings | None = None,
    *,
    downloader: Downloader | None = None,
    clock: Callable[[], datetime] = _utc_now,
    sleep: Callable[[float], None] = time.sleep,
) -> pd.DataFrame:
    """Bars of ``root``'s Yahoo continuous contract at ``interval`` in [start, end] as a bar frame.

    ``start``/``end`` must be tz-aware (``load_bars`` makes them so) or None (the longest span Yahoo
    serves for intraday intervals; 2 years of 1d, 10 years of 1wk).
    """
    cfg = (settings or load_settings()).data.yahoo
    interval = parse_interval(interval)
    ticker = get_contract(root).yahoo_symbol
    for name, ts in (("start", start), ("end", end)):
        if ts is not None and pd.Timestamp(ts).tzinfo is None:
            raise InvalidArgumentError(
                f"{name} {ts} has no timezone; pass a tz-aware time", **{name: str(ts)}
            )
    now = pd.Timestamp(clock()).tz_convert("UTC")
    s, e = _window(interval, start, end, now)
    yahoo_interval, _, per_request_d, _ = _YAHOO[interval]
    call = downloader or _DOWNLOADER.get() or yfinance_downloader
    parts = []
    for cs, ce in _chunks(s, e, per_request_d):
        try:
            parts.append(
                to_bar_frame(_call(call, ticker, yahoo_interval, cs, ce, cfg, sleep), interval, ticker)
            )
        except DataUnavailableError:
            if per_request_d is None:
                raise
    if not parts:
        raise DataUnavailableError(
            f"Yahoo returned no {interval} bars for {ticker} between {s} and {e}",
            ticker=ticker,
            interval=interval,
        )
    bars = pd.concat(parts) if len(parts) > 1 else parts[0]
    bars = bars[~bars.index.duplicated(keep="last")].sort_index()
    if interval == "4h":
        bars = resample_bars(bars, "4h")
    return bars
