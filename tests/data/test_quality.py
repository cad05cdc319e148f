"""validate_bars / clean_bars on the real sample's quirks and on hand-made bad frames."""

import numpy as np
import pandas as pd
import pytest

from nq_ray.data.quality import clean_bars, robust_zscores, validate_bars
from nq_ray.errors import InvalidArgumentError, InvalidBarsError


def et(s: str) -> pd.Timestamp:
    return pd.Timestamp(s, tz="America/New_York")


def frame(times: list[str], closes: list[float], **over: list[float]) -> pd.DataFrame:
    c = np.array(closes, dtype=float)
    data = {"open": c, "high": c + 1, "low": c - 1, "close": c, "volume": np.full(len(c), 10.0)}
    data.update({k: np.array(v, dtype=float) for k, v in over.items()})
    return pd.DataFrame(data, index=pd.DatetimeIndex([et(t) for t in times]))


def test_sample_is_clean_but_has_real_quirks(nq_5m: pd.DataFrame) -> None:
    """No duplicates, OHLC errors or off-tick prices; 42 zero-volume bars; missing bars exist (the source
    skips the 00:00 bar most days and the first minutes of some Sunday opens)."""
    report = validate_bars(nq_5m, "NQ", "5m")
    assert report.ok
    assert report.count("zero_volume") == 42
    assert report.count("missing_bars") > 0 and report.count("outside_session") == 0


def test_roll_week_gap_is_flagged_as_an_outlier(nq_5m: pd.DataFrame) -> None:
    report = validate_bars(nq_5m, "NQ", "5m", outlier_z=30)
    outliers = next(i for i in report.issues if i.code == "outliers")
    assert "2026-03-08 18:10:00-04:00" in outliers.examples


def test_outlier_threshold_must_be_positive(nq_5m: pd.DataFrame) -> None:
    with pytest.raises(InvalidArgumentError):
        validate_bars(nq_5m, outlier_z=0)


def test_robust_zscore_matches_hand_calculation() -> None:
    """Returns ln(101/100), ln(100/101), ln(102/100)…: z = (r − median) / (1.4826 × MAD)."""
    bars = frame(
        ["2026-03-09 10:00", "2026-03-09 10:05", "2026-03-09 10:10", "2026-03-09 10:15"],
        [100.0, 101.0, 100.0, 102.0],
    )
    r = np.log(np.array([101 / 100, 100 / 101, 102 / 100]))
    med = np.median(r)
    mad = np.median(np.abs(r - med))
    assert np.allclose(robust_zscores(bars).iloc[1:], (r - med) / (1.4826 * mad))


def test_detects_duplicates_ohlc_off_tick_and_halt_bars() -> None:
    bars = frame(
        ["2026-03-09 10:00", "2026-03-09 10:00", "2026-03-09 10:05", "2026-03-09 17:20"],
        [100.0, 100.0, 100.1, 101.0],
        high=[101.0, 101.0, 101.0, 100.0],
    )
    report = validate_bars(bars, "NQ", "5m")
    assert not report.ok
    assert report.count("duplicates") == 1
    assert report.count("off_tick") == 1
    assert report.count("ohlc_inconsistent") == 1  # high 100 < close 101
    assert report.count("outside_session") == 1  # 17:20 is in the daily halt


def test_missing_bars_counted_against_the_calendar_not_the_clock() -> None:
    """Fri 16:50, 16:55 then Sun 18:00, 18:10: only Sun 18:05 is missing (the weekend is not)."""
    bars = frame(
        ["2026-03-13 16:50", "2026-03-13 16:55", "2026-03-15 18:00", "2026-03-15 18:10"],
        [100.0, 100.25, 100.5, 100.75],
    )
    report = validate_bars(bars, "NQ", "5m")
    assert report.count("missing_bars") == 1
    assert next(i for i in report.issues if i.code == "missing_bars").examples == [
        "2026-03-15 18:05:00-04:00"
    ]


def test_clean_fixes_and_reports_each_change() -> None:
    bars = frame(
        ["2026-03-09 10:05", "2026-03-09 10:00", "2026-03-09 10:00", "2026-03-09 17:20"],
        [100.1, 100.0, 100.25, 101.0],
        high=[101.0, 101.0, 101.0, 101.0],
    )
    cleaned, changes = clean_bars(bars, "NQ", "5m")
    actions = {c.action: c.count for c in changes}
    assert actions == {
        "sorted": 1,
        "dropped_duplicates": 1,
        "dropped_outside_session": 1,
        "rounded_to_tick": 1,
    }
    assert cleaned["close"].tolist() == [100.25, 100.0]  # kept the last duplicate; 100.1 → 100.0
    assert validate_bars(cleaned, "NQ", "5m").ok


def test_fill_missing_forward_fills_within_a_session_only() -> None:
    """A hole at 10:05 is filled flat at the 10:00 close with volume 0; the halt and the next session's
    first bar (18:00, no earlier bar in its session) are never filled from the previous session."""
    bars = frame(["2026-03-09 10:00", "2026-03-09 10:10", "2026-03-09 18:05"], [100.0, 101.0, 102.0])
    cleaned, changes = clean_bars(bars, "NQ", "5m", fill_missing=True)
    filled = cleaned.loc[et("2026-03-09 10:05")]
    assert filled[["open", "high", "low", "close", "volume"]].tolist() == [100.0, 100.0, 100.0, 100.0, 0.0]
    assert et("2026-03-09 18:00") not in cleaned.index
    assert not ((cleaned.index >= et("2026-03-09 17:00")) & (cleaned.index < et("2026-03-09 18:00"))).any()
    # 10:05, then 10:15 … 16:55 (81 bars) are filled: 82 in all
    assert next(c for c in changes if c.action == "filled_missing").count == 82


def test_outliers_are_kept_unless_asked(nq_5m: pd.DataFrame) -> None:
    kept, _ = clean_bars(nq_5m, "NQ", "5m")
    dropped, changes = clean_bars(nq_5m, "NQ", "5m", drop_outliers=True, outlier_z=30)
    assert len(kept) == len(nq_5m)
    assert len(dropped) < len(nq_5m) and any(c.action == "dropped_outliers" for c in changes)


def test_naive_index_is_refused() -> None:
    bars = frame(["2026-03-09 10:00"], [100.0])
    bars.index = bars.index.tz_localize(None)
    with pytest.raises(InvalidBarsError, match="no timezone"):
        validate_bars(bars)
