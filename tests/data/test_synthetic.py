"""The synthetic source: tick grid, sessions, OHLC, determinism, intraday profile, gaps, length, speed."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest

from nq_ray.data import load_bars
from nq_ray.data.sources.synthetic import DEFAULT_END, DEFAULT_SESSIONS, generate_bars
from nq_ray.domain.bars import BAR_COLUMNS, EXCHANGE_TZ
from nq_ray.domain.contracts import get_contract
from nq_ray.errors import InvalidArgumentError
from nq_ray.market.sessions import expected_bar_starts, schedule


@pytest.fixture(scope="module")
def month_1m() -> pd.DataFrame:
    """About a month of NQ 1-minute bars over the 2025 Christmas week (holiday + early close)."""
    return generate_bars("NQ", "1m", start="2025-12-01", end="2026-01-09 17:00", seed=11)


def _ticks_off_grid(prices: np.ndarray, tick: float) -> int:
    q = prices / tick
    return int((np.abs(q - np.round(q)) > 1e-9).sum())


@pytest.mark.parametrize("symbol", ["NQ", "ES", "YM", "RTY"])
def test_every_price_is_on_the_contract_tick_grid(symbol: str) -> None:
    tick = get_contract(symbol).tick_size

    bars = generate_bars(symbol, "1m", n_bars=20_000, seed=3)

    prices = bars[["open", "high", "low", "close"]].to_numpy().ravel()
    assert _ticks_off_grid(prices, tick) == 0


def test_bars_are_exactly_the_globex_session_bar_starts(month_1m: pd.DataFrame) -> None:
    expected = expected_bar_starts(month_1m.index[0], month_1m.index[-1], "1min")

    assert month_1m.index.equals(expected)


def test_no_bar_in_the_daily_halt_or_on_saturday(month_1m: pd.DataFrame) -> None:
    minutes = month_1m.index.hour * 60 + month_1m.index.minute

    in_halt = (minutes >= 17 * 60) & (minutes < 18 * 60)

    assert not in_halt.any()
    assert not (month_1m.index.day_of_week == 5).any()


def test_christmas_is_closed_and_christmas_eve_closes_early(month_1m: pd.DataFrame) -> None:
    eve_close = schedule("2025-12-24", "2025-12-24")["close"].iloc[0]

    christmas_day = month_1m.loc["2025-12-25 00:00":"2025-12-25 17:59"]
    eve = month_1m.loc["2025-12-24 09:00":"2025-12-24 23:59"]

    assert christmas_day.empty
    assert eve.index[-1] == eve_close - pd.Timedelta(minutes=1)


def test_ohlc_is_consistent_and_volume_positive(month_1m: pd.DataFrame) -> None:
    o, h, lo, c, v = (month_1m[col].to_numpy() for col in BAR_COLUMNS)

    assert (h >= np.maximum(o, c)).all()
    assert (lo <= np.minimum(o, c)).all()
    assert (v > 0).all()


def test_output_is_a_bar_frame(month_1m: pd.DataFrame) -> None:
    assert list(month_1m.columns) == list(BAR_COLUMNS)
    assert str(month_1m.index.tz) == EXCHANGE_TZ
    assert month_1m.index.is_monotonic_increasing and month_1m.index.is_unique
    assert all(month_1m[c].dtype == np.float64 for c in BAR_COLUMNS)


def test_same_seed_gives_identical_bars() -> None:
    first = generate_bars("NQ", "5m", n_bars=5_000, seed=42)

    second = generate_bars("NQ", "5m", n_bars=5_000, seed=42)

    pd.testing.assert_frame_equal(first, second)


def test_different_seeds_give_different_bars() -> None:
    a = generate_bars("NQ", "5m", n_bars=1_000, seed=1)

    b = generate_bars("NQ", "5m", n_bars=1_000, seed=2)

    assert not np.array_equal(a["close"].to_numpy(), b["close"].to_numpy())


def test_volume_by_time_of_day_is_u_shaped(month_1m: pd.DataFrame) -> None:
    minutes = month_1m.index.hour * 60 + month_1m.index.minute
    volume = month_1m["volume"]

    rth_open = volume[(minutes >= 570) & (minutes < 600)].mean()  # 09:30–10:00
    midday = volume[(minutes >= 720) & (minutes < 810)].mean()  # 12:00–13:30
    rth_close = volume[(minutes >= 930) & (minutes < 960)].mean()  # 15:30–16:00
    overnight = volume[(minutes >= 0) & (minutes < 120)].mean()  # 00:00–02:00

    assert rth_open > 1.5 * midday
    assert rth_close > 1.5 * midday
    assert midday > 2 * overnight


def test_volatility_by_time_of_day_is_higher_at_the_rth_open_than_overnight(month_1m: pd.DataFrame) -> None:
    minutes = month_1m.index.hour * 60 + month_1m.index.minute
    bar_range = month_1m["high"] - month_1m["low"]

    rth_open = bar_range[(minutes >= 570) & (minutes < 600)].mean()
    overnight = bar_range[(minutes >= 0) & (minutes < 120)].mean()

    assert rth_open > 2 * overnight


def test_inside_a_session_each_bar_opens_at_the_previous_close(month_1m: pd.DataFrame) -> None:
    same_session = np.diff(month_1m.index.as_unit("ns").asi8) == pd.Timedelta(minutes=1).value

    opens = month_1m["open"].to_numpy()[1:][same_session]
    prev_closes = month_1m["close"].to_numpy()[:-1][same_session]

    assert np.array_equal(opens, prev_closes)


def test_sessions_open_with_gaps_larger_after_weekends(month_1m: pd.DataFrame) -> None:
    step = np.diff(month_1m.index.as_unit("ns").asi8)
    first = np.flatnonzero(step > pd.Timedelta(minutes=1).value) + 1
    gaps = np.abs(month_1m["open"].to_numpy()[first] - month_1m["close"].to_numpy()[first - 1])
    closed = step[first - 1] / 3.6e12  # hours

    weekend = gaps[closed > 24]
    halt = gaps[closed < 2]

    assert (gaps > 0).mean() > 0.7
    assert weekend.mean() > halt.mean()


def test_regimes_vary_volatility_across_sessions(month_1m: pd.DataFrame) -> None:
    rets = np.log(month_1m["close"]).diff()

    daily_vol = rets.groupby(month_1m.index.date).std()

    assert daily_vol.max() > 1.5 * daily_vol.median()


def test_n_bars_with_start_returns_exactly_that_many_from_start() -> None:
    start = pd.Timestamp("2026-03-02 09:30", tz=EXCHANGE_TZ)

    bars = generate_bars("NQ", "1m", start=start, n_bars=3_000)

    assert len(bars) == 3_000
    assert bars.index[0] == start


def test_default_span_is_the_last_sessions_before_a_fixed_date() -> None:
    bars = generate_bars("NQ", "1h")

    sessions = np.unique((bars.index + pd.Timedelta(hours=6)).date)

    assert len(sessions) == DEFAULT_SESSIONS
    assert sessions[-1] == DEFAULT_END.date()


def test_end_alone_gives_sessions_up_to_end_and_not_beyond() -> None:
    end = pd.Timestamp("2026-03-04 12:00", tz=EXCHANGE_TZ)

    bars = generate_bars("NQ", "5m", end=end)

    assert bars.index[-1] == end
    assert len(np.unique((bars.index + pd.Timedelta(hours=6)).date)) == DEFAULT_SESSIONS


@pytest.mark.parametrize(("interval", "n"), [("4h", 30), ("1d", 60), ("1wk", 12)])
def test_coarse_intervals_have_the_requested_length(interval: str, n: int) -> None:
    bars = generate_bars("NQ", interval, n_bars=n)

    assert len(bars) == n


def test_a_million_one_minute_bars_generate_in_a_few_seconds() -> None:
    t0 = time.perf_counter()

    bars = generate_bars("NQ", "1m", n_bars=1_000_000, seed=5)

    elapsed = time.perf_counter() - t0
    assert len(bars) == 1_000_000
    assert elapsed < 6.0, f"took {elapsed:.2f}s"


def test_start_end_and_n_bars_together_are_refused() -> None:
    with pytest.raises(InvalidArgumentError, match="at most two"):
        generate_bars("NQ", "1m", start="2026-01-05", end="2026-01-06", n_bars=10)


def test_a_range_without_sessions_is_refused() -> None:
    with pytest.raises(InvalidArgumentError, match="no CME Globex session"):
        generate_bars("NQ", "1m", start="2026-01-03 08:00", end="2026-01-03 12:00")  # a Saturday


def test_load_bars_serves_the_synthetic_source_within_the_range() -> None:
    bars = load_bars("NQ", "5m", start="2026-03-02", end="2026-03-06", source="synthetic")

    assert bars.index[0] >= pd.Timestamp("2026-03-02", tz=EXCHANGE_TZ)
    assert bars.index[-1] <= pd.Timestamp("2026-03-06", tz=EXCHANGE_TZ)
    assert len(bars) > 1_000
