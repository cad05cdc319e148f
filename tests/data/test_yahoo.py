"""The yahoo source, offline: a downloader seam returns frames shaped exactly like yfinance 1.7's output.

Shapes, from .venv/lib/python3.11/site-packages/yfinance (1.7.0):
- ``Ticker.history(auto_adjust=False, actions=False)``: ``utils.parse_quotes`` builds columns
  Open, High, Low, Close, Adj Close, Volume from the chart JSON with a naive UTC index
  (``pd.to_datetime(timestamps, unit="s")``); ``utils.set_df_tz`` converts it to the exchange zone;
  daily bars are relabelled to midnight of the exchange zone (scrapers/history.py, "Prepare for combine");
  ``df['Volume'].fillna(0).astype(np.int64)``; the index is named "Datetime" (intraday) or "Date".
- ``Ticker.history()`` defaults (auto_adjust=True, actions=True): ``utils.auto_adjust`` drops Adj Close,
  and Dividends / Stock Splits columns of 0.0 are appended.
- ``yf.download``: ``pd.concat(..., keys=tickers, names=['Ticker', 'Price'])`` then ``swaplevel`` and a
  sort, so columns are a (Price, Ticker) MultiIndex in alphabetical order; daily bars get
  ``ignore_tz=True`` (a naive index) by default (multi.py, ``_download``).
- errors: ``YFRateLimitError()`` (exceptions.py) on HTTP 429; ``YFPricesMissingError`` when Yahoo has
  no prices and ``raise_errors=True``; ``utils.empty_df()`` when errors are hidden.
"""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest
from yfinance import utils as yf_utils
from yfinance.exceptions import YFPricesMissingError, YFRateLimitError, YFTzMissingError

from nq_ray.config import Settings
from nq_ray.data.sources import yahoo
from nq_ray.domain.bars import BAR_COLUMNS, EXCHANGE_TZ
from nq_ray.errors import DataUnavailableError, InvalidArgumentError, ProviderUnavailableError

# yfinance's own utils.auto_adjust (used to build the default shape) trips pandas 3.1's inplace deprecation
pytestmark = pytest.mark.filterwarnings("ignore:The inplace keyword")

NOW = datetime(2026, 4, 30, 21, 0, tzinfo=UTC)  # a Thursday, after the 17:00 ET close


def clock() -> datetime:
    return NOW


def settings(max_retries: int = 3, backoff_s: float = 0.0) -> Settings:
    return Settings.model_validate({"data": {"yahoo": {"max_retries": max_retries, "backoff_s": backoff_s}}})


def history_frame(
    start: pd.Timestamp,
    end: pd.Timestamp,
    interval: str,
    tz: str = "America/New_York",
    *,
    defaults: bool = False,
) -> pd.DataFrame:
    """What ``Ticker(t).history(interval=..., auto_adjust=False, actions=False)`` returns (see module doc)."""
    step = {"1m": "1min", "5m": "5min", "60m": "60min", "1d": "1D", "1wk": "7D"}[interval]
    stamps = pd.date_range(
        start.tz_convert("UTC").ceil(step if interval != "1wk" else "1D"), end, freq=step, inclusive="left"
    )
    if interval not in ("1d", "1wk"):
        stamps = stamps[~(stamps.tz_convert(EXCHANGE_TZ).hour == 17)]  # the daily halt
    n = len(stamps)
    close = 21_000 + np.arange(n) * 0.25
    quotes = pd.DataFrame(
        {
            "Open": close - 0.5,
            "High": close + 1.0,
            "Low": close - 1.25,
            "Close": close,
            "Adj Close": close,
            "Volume": np.arange(n) + 100,
        },
        index=pd.to_datetime(stamps.as_unit("s").asi8, unit="s"),  # chart JSON "timestamp": epoch seconds
    )
    quotes = yf_utils.set_df_tz(quotes, interval, tz)
    if interval in ("1d", "1wk"):
        quotes.index = pd.to_datetime(quotes.index.date).tz_localize(
            tz, ambiguous=True, nonexistent="shift_forward"
        )
    quotes["Volume"] = quotes["Volume"].fillna(0).astype(np.int64)
    quotes.index.name = "Date" if interval in ("1d", "1wk") else "Datetime"
    if defaults:  # auto_adjust=True, actions=True
        quotes = yf_utils.auto_adjust(quotes)
        quotes["Dividends"] = 0.0
        quotes["Stock Splits"] = 0.0
    return quotes


def download_frame(start: pd.Timestamp, end: pd.Timestamp, ticker: str = "NQ=F") -> pd.DataFrame:
    """What ``yf.download(ticker, interval='1d')`` returns: (Price, Ticker) columns, naive daily index."""
    one = history_frame(start, end, "1d", defaults=True).drop(columns=["Dividends", "Stock Splits"])
    one.index = one.index.tz_localize(None)  # ignore_tz=True for daily bars
    data = pd.concat([one], axis=1, sort=True, keys=[ticker], names=["Ticker", "Price"])
    data.columns = data.columns.swaplevel(0, 1)
    return data.sort_index(level=0, axis=1)


class Recorder:
    """A downloader that records its calls and answers from a script of frames / exceptions."""

    def __init__(self, *answers: object, shape: str = "history", tz: str = "America/New_York") -> None:
        self.answers = list(answers)
        self.calls: list[dict[str, object]] = []
        self.shape = shape
        self.tz = tz

    def __call__(
        self, ticker: str, *, interval: str, start: pd.Timestamp, end: pd.Timestamp, timeout_s: float
    ) -> pd.DataFrame:
        self.calls.append({"ticker": ticker, "interval": interval, "start": start, "end": end})
        answer = self.answers.pop(0) if self.answers else "frame"
        if isinstance(answer, BaseException):
            raise answer
        if isinstance(answer, pd.DataFrame):
            return answer
        if self.shape == "download":
            return download_frame(start, end, ticker)
        return history_frame(start, end, interval, self.tz, defaults=self.shape == "defaults")


def fetch(
    rec: Recorder, interval: str, start: object = None, end: object = None, **kw: object
) -> pd.DataFrame:
    return yahoo.fetch(
        "NQ", interval, start, end, settings=kw.pop("cfg", settings()), downloader=rec, clock=clock, **kw
    )  # type: ignore[arg-type]


def test_root_maps_to_the_contract_yahoo_symbol() -> None:
    rec = Recorder()

    yahoo.fetch("MNQ", "1d", settings=settings(), downloader=rec, clock=clock)

    assert rec.calls[0]["ticker"] == "MNQ=F"


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [("1m", "1m"), ("5m", "5m"), ("1h", "60m"), ("4h", "60m"), ("1d", "1d"), ("1wk", "1wk")],
)
def test_intervals_map_to_yahoo_names(ours: str, theirs: str) -> None:
    rec = Recorder()

    fetch(rec, ours)

    assert {c["interval"] for c in rec.calls} == {theirs}


def test_history_frame_becomes_a_bar_frame_in_exchange_time() -> None:
    bars = fetch(Recorder(), "5m")

    assert list(bars.columns) == list(BAR_COLUMNS)
    assert str(bars.index.tz) == EXCHANGE_TZ
    assert bars.index.is_monotonic_increasing and bars.index.is_unique
    assert all(bars[c].dtype == np.float64 for c in BAR_COLUMNS)


def test_default_history_columns_with_dividends_and_splits_are_accepted() -> None:
    bars = fetch(Recorder(shape="defaults"), "1h")

    assert list(bars.columns) == list(BAR_COLUMNS)


def test_download_multiindex_columns_are_accepted() -> None:
    bars = fetch(Recorder(shape="download"), "1d", start=pd.Timestamp("2026-03-02", tz=EXCHANGE_TZ))

    assert list(bars.columns) == list(BAR_COLUMNS)
    assert bars["close"].iloc[0] == 21_000.0


def test_daily_bars_are_labelled_midnight_new_york_whatever_the_exchange_zone() -> None:
    bars = fetch(Recorder(tz="America/Chicago"), "1d", start=pd.Timestamp("2026-03-02", tz=EXCHANGE_TZ))

    assert (bars.index.hour == 0).all()
    assert bars.index[0] == pd.Timestamp("2026-03-02", tz=EXCHANGE_TZ)


def test_four_hour_bars_are_resampled_from_sixty_minutes() -> None:
    bars = fetch(Recorder(), "4h", start=pd.Timestamp("2026-04-27", tz=EXCHANGE_TZ))

    assert len(bars) > 0
    assert set(bars.index.hour) <= {18, 22, 2, 6, 10, 14}


def test_one_minute_history_is_fetched_in_requests_of_at_most_seven_days() -> None:
    rec = Recorder()

    fetch(rec, "1m", start=pd.Timestamp("2026-04-10", tz=EXCHANGE_TZ))

    spans = [c["end"] - c["start"] for c in rec.calls]  # type: ignore[operator]
    assert len(rec.calls) == 3
    assert max(spans) <= pd.Timedelta(days=7)


@pytest.mark.parametrize(("interval", "days_back"), [("1m", 31), ("5m", 61), ("30m", 61), ("1h", 731)])
def test_start_beyond_yahoo_look_back_is_refused_before_any_request(interval: str, days_back: int) -> None:
    rec = Recorder()
    start = pd.Timestamp(NOW) - pd.Timedelta(days=days_back)

    with pytest.raises(InvalidArgumentError, match=f"last {days_back - 1} days"):
        fetch(rec, interval, start=start)

    assert rec.calls == []


def test_daily_history_has_no_look_back_limit() -> None:
    rec = Recorder()

    fetch(
        rec,
        "1d",
        start=pd.Timestamp("2000-01-03", tz=EXCHANGE_TZ),
        end=pd.Timestamp("2000-02-01", tz=EXCHANGE_TZ),
    )

    assert len(rec.calls) == 1


def test_rate_limit_is_retried_with_exponential_back_off() -> None:
    rec = Recorder(YFRateLimitError(), YFRateLimitError(), "frame")
    waits: list[float] = []

    bars = fetch(rec, "1d", cfg=settings(max_retries=3, backoff_s=0.5), sleep=waits.append)

    assert len(bars) > 0
    assert waits == [0.5, 1.0]


def test_persistent_rate_limit_becomes_provider_unavailable() -> None:
    rec = Recorder(*[YFRateLimitError() for _ in range(3)])

    with pytest.raises(ProviderUnavailableError, match="after 3 attempts"):
        fetch(rec, "1d", cfg=settings(max_retries=2))

    assert len(rec.calls) == 3


def test_network_error_is_retried() -> None:
    rec = Recorder(ConnectionError("reset by peer"), "frame")

    fetch(rec, "1d")

    assert len(rec.calls) == 2


def test_unreachable_yahoo_reported_as_missing_timezone_is_provider_unavailable() -> None:
    # yfinance turns a failed time-zone look-up (no network) into YFTzMissingError (base.py _get_ticker_tz)
    rec = Recorder(*[YFTzMissingError("NQ=F") for _ in range(2)])

    with pytest.raises(ProviderUnavailableError, match="did not answer"):
        fetch(rec, "1d", cfg=settings(max_retries=1))

    assert len(rec.calls) == 2


def test_prices_missing_is_data_unavailable_without_retry() -> None:
    rec = Recorder(YFPricesMissingError("NQ=F", "(1d 2026-01-01 -> 2026-02-01)"))

    with pytest.raises(DataUnavailableError):
        fetch(rec, "1d")

    assert len(rec.calls) == 1


def test_empty_frame_is_data_unavailable() -> None:
    rec = Recorder(yf_utils.empty_df())

    with pytest.raises(DataUnavailableError, match="no 1d bars"):
        fetch(rec, "1d")


def test_naive_bounds_are_refused() -> None:
    with pytest.raises(InvalidArgumentError, match="no timezone"):
        fetch(Recorder(), "1d", start=pd.Timestamp("2026-01-05"))


def test_use_downloader_routes_fetch_without_passing_it() -> None:
    rec = Recorder()

    with yahoo.use_downloader(rec):
        yahoo.fetch("NQ", "1d", settings=settings(), clock=clock)

    assert len(rec.calls) == 1


@pytest.mark.network
def test_live_nq_daily() -> None:
    bars = yahoo.fetch(
        "NQ",
        "1d",
        pd.Timestamp.now(tz=EXCHANGE_TZ) - pd.Timedelta(days=30),
        None,
        settings=settings(max_retries=2, backoff_s=2.0),
    )

    assert len(bars) >= 10
    assert list(bars.columns) == list(BAR_COLUMNS)
    assert bars["close"].between(1_000, 100_000).all()
