"""Session-aware resampling."""

import numpy as np
import pandas as pd
import pytest

from nq_ray.data import resample_bars
from nq_ray.errors import InvalidArgumentError


def et(s: str) -> pd.Timestamp:
    return pd.Timestamp(s, tz="America/New_York")


def test_hourly_bins_never_straddle_the_halt(nq_5m: pd.DataFrame) -> None:
    """Every 5m bar falls in an hourly bin of the same session; no bin starts at 17:00."""
    h = resample_bars(nq_5m, "1h")
    assert not (h.index.hour == 17).any()
    assert h["volume"].sum() == nq_5m["volume"].sum()


def test_four_hour_bins_are_anchored_at_1800() -> None:
    idx = pd.date_range(et("2026-03-09 18:00"), et("2026-03-10 16:55"), freq="5min")
    bars = pd.DataFrame({"open": 1.0, "high": 2.0, "low": 0.5, "close": 1.5, "volume": 1.0}, index=idx)
    h4 = resample_bars(bars, "4h")
    assert [t.strftime("%H:%M") for t in h4.index] == ["18:00", "22:00", "02:00", "06:00", "10:00", "14:00"]
    assert h4["volume"].tolist() == [48, 48, 48, 48, 48, 36]  # the last bin ends at the 17:00 close


def test_ohlc_aggregation_hand_checked() -> None:
    idx = pd.DatetimeIndex([et("2026-03-09 10:00"), et("2026-03-09 10:05"), et("2026-03-09 10:10")])
    bars = pd.DataFrame(
        {
            "open": [1.0, 2.0, 3.0],
            "high": [5.0, 6.0, 4.0],
            "low": [0.5, 1.0, 0.25],
            "close": [2.0, 3.0, 3.5],
            "volume": [10.0, 20.0, 30.0],
        },
        index=idx,
    )
    out = resample_bars(bars, "15m")
    assert out.iloc[0].tolist() == [1.0, 6.0, 0.25, 3.5, 60.0]


def test_daily_bars_are_per_session_date(nq_5m: pd.DataFrame) -> None:
    """The Sunday-evening bars belong to Monday's daily bar, so no daily bar is dated a Sunday."""
    d = resample_bars(nq_5m, "1d")
    assert not (d.index.day_of_week == 6).any()
    monday = d.loc[et("2026-03-09")]
    session = nq_5m.loc[et("2026-03-08 18:00") : et("2026-03-09 16:55")]
    assert monday["open"] == session["open"].iloc[0] and monday["close"] == session["close"].iloc[-1]
    assert monday["high"] == session["high"].max() and monday["volume"] == session["volume"].sum()


def test_weekly_bars_group_iso_weeks(nq_5m: pd.DataFrame) -> None:
    w = resample_bars(nq_5m, "1wk")
    d = resample_bars(nq_5m, "1d")
    assert np.isclose(w["volume"].sum(), d["volume"].sum())
    assert (w.index.day_of_week == 0).sum() >= len(w) - 2  # labelled by the week's first session


def test_cannot_resample_to_finer(nq_5m: pd.DataFrame) -> None:
    with pytest.raises(InvalidArgumentError, match="finer"):
        resample_bars(nq_5m, "1m")
