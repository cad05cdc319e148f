"""Globex session edges on the CME_Equity calendar (times in America/New_York)."""

from datetime import date

import pandas as pd
import pytest

from nq_ray.errors import InvalidArgumentError
from nq_ray.market import sessions as S


def et(s: str) -> pd.Timestamp:
    return pd.Timestamp(s, tz="America/New_York")


def test_sunday_1800_open_belongs_to_monday() -> None:
    assert S.is_open(et("2026-03-08 18:00")) and S.session_date(et("2026-03-08 18:00")) == date(2026, 3, 9)


def test_sunday_before_open_is_closed_weekend() -> None:
    status = S.session_status(et("2026-03-08 17:59"))
    assert not status.is_open and status.state == "weekend"


def test_daily_halt_1700_to_1800_is_closed() -> None:
    assert S.is_open(et("2026-03-10 16:59")) and not S.is_open(et("2026-03-10 17:00"))
    assert not S.is_open(et("2026-03-10 17:59")) and S.is_open(et("2026-03-10 18:00"))
    assert S.session_status(et("2026-03-10 17:30")).state == "daily_halt"


def test_friday_close_starts_the_weekend() -> None:
    assert S.is_open(et("2026-03-13 16:55")) and not S.is_open(et("2026-03-13 17:00"))
    assert S.next_open(et("2026-03-13 17:00")) == et("2026-03-15 18:00")


def test_christmas_is_a_holiday() -> None:
    """2026-12-25 is a Friday: closed, next open Sunday 18:00."""
    status = S.session_status(et("2026-12-25 11:00"))
    assert status.state == "holiday" and status.next_open.isoformat() == "2026-12-27T18:00:00-05:00"


def test_thanksgiving_friday_is_an_early_close() -> None:
    """The day after Thanksgiving (2026-11-27) closes early, at 13:00 ET on the CME calendar."""
    close = S.next_close(et("2026-11-27 10:00"))
    assert close == et("2026-11-27 13:00")
    assert not S.is_open(et("2026-11-27 13:30"))


def test_good_friday_2026_is_an_abbreviated_session() -> None:
    """Good Friday 2026-04-03 (payrolls day): the calendar has the session close at 09:15 ET."""
    assert S.is_open(et("2026-04-03 09:00")) and not S.is_open(et("2026-04-03 10:00"))


def test_dst_spring_forward_keeps_1800_wall_clock_open() -> None:
    """2026-03-08 clocks go to EDT; the Sunday open is still 18:00 New York time (22:00 UTC, not 23:00)."""
    opens = S.schedule("2026-03-06", "2026-03-09")["open"]
    assert opens.loc["2026-03-09"] == et("2026-03-08 18:00")
    assert opens.loc["2026-03-09"].tz_convert("UTC").hour == 22
    assert opens.loc["2026-03-06"].tz_convert("UTC").hour == 23


def test_dst_fall_back_keeps_1800_wall_clock_open() -> None:
    opens = S.schedule("2026-10-30", "2026-11-02")["open"]
    assert opens.loc["2026-11-02"] == et("2026-11-01 18:00")


def test_rth_is_0930_to_1600() -> None:
    assert not S.is_rth(et("2026-03-09 09:29")) and S.is_rth(et("2026-03-09 09:30"))
    assert S.is_rth(et("2026-03-09 15:59")) and not S.is_rth(et("2026-03-09 16:00"))


def test_rth_ends_at_an_early_close() -> None:
    assert S.is_rth(et("2026-11-27 12:59")) and not S.is_rth(et("2026-11-27 13:00"))


def test_naive_timestamp_is_rejected_not_guessed() -> None:
    with pytest.raises(InvalidArgumentError, match="no timezone"):
        S.is_open(pd.Timestamp("2026-03-09 10:00"))


def test_naive_timestamp_localised_when_zone_is_said() -> None:
    assert S.to_exchange_time("2026-03-09 10:00", assume_tz="America/Chicago") == et("2026-03-09 11:00")


def test_utc_input_is_converted() -> None:
    assert S.is_rth(pd.Timestamp("2026-03-09 14:00", tz="UTC"))  # 10:00 EDT


def test_vectorised_session_dates_match_scalar() -> None:
    idx = pd.DatetimeIndex(
        [et("2026-03-08 18:00"), et("2026-03-09 09:30"), et("2026-03-09 16:55"), et("2026-03-09 18:05")]
    )
    got = [pd.Timestamp(d).date() for d in S.session_dates(idx)]
    assert got == [S.session_date(t) for t in idx]


def test_in_session_mask_excludes_halt_and_weekend() -> None:
    idx = pd.DatetimeIndex(
        [et("2026-03-09 16:55"), et("2026-03-09 17:00"), et("2026-03-14 12:00"), et("2026-03-09 18:00")]
    )
    assert S.in_session(idx, pd.Timedelta("5min")).tolist() == [True, False, False, True]


def test_expected_bar_starts_skip_the_weekend() -> None:
    bars = S.expected_bar_starts(et("2026-03-13 16:50"), et("2026-03-15 18:05"), "5min")
    assert [t.strftime("%a %H:%M") for t in bars] == ["Fri 16:50", "Fri 16:55", "Sun 18:00", "Sun 18:05"]


def test_sample_data_has_no_bars_outside_sessions(nq_5m: pd.DataFrame) -> None:
    assert S.in_session(nq_5m.index, pd.Timedelta("5min")).all()
