"""``load_bars`` from the sample, CSV and Parquet sources, and every bad input at the door."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from nq_ray.data import load_bars, normalize_bars
from nq_ray.domain.bars import BAR_COLUMNS
from nq_ray.errors import DataUnavailableError, InvalidArgumentError, InvalidBarsError, UnknownSymbolError

SAMPLE_CSV = """datetime,Open,HIGH,low,Close,Volume
2026-03-09 09:30:00,24000.0,24010.0,23990.0,24005.0,1000
2026-03-09 09:35:00,24005.0,24020.0,24000.0,24015.25,1200
2026-03-09 09:40:00,24015.25,24016.0,24001.0,24002.5,800
"""


def write(tmp_path: Path, text: str, name: str = "bars.csv") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def test_sample_nq_is_the_bar_schema(nq_5m: pd.DataFrame) -> None:
    assert list(nq_5m.columns) == list(BAR_COLUMNS)
    assert str(nq_5m.index.tz) == "America/New_York"
    assert nq_5m.index.is_monotonic_increasing and nq_5m.index.is_unique
    assert (nq_5m.dtypes == np.float64).all() and len(nq_5m) == 13767


def test_sample_times_are_new_york_wall_time(nq_5m: pd.DataFrame) -> None:
    """The file's first row is 2026-02-17 00:00 (naive New York) = 05:00 UTC in February."""
    assert nq_5m.index[0] == pd.Timestamp("2026-02-17 05:00", tz="UTC")
    assert nq_5m.iloc[0]["open"] == 24623.75


def test_sample_keeps_real_zero_volume_bars(nq_5m: pd.DataFrame) -> None:
    assert (nq_5m["volume"] == 0).sum() == 42


def test_sample_daily_and_es(nq_daily: pd.DataFrame, es_5m: pd.DataFrame) -> None:
    assert len(nq_daily) == 253 and len(es_5m) == 13768


def test_sample_resampled_to_hourly_starts_at_globex_open() -> None:
    h = load_bars("NQ", "1h", start="2026-03-09", end="2026-03-10 23:59")
    assert h.index.minute.unique().tolist() == [0]
    assert pd.Timestamp("2026-03-09 18:00", tz="America/New_York") in h.index


def test_start_end_clip_with_naive_bounds_read_as_new_york() -> None:
    bars = load_bars("NQ", "5m", start="2026-03-09 09:30", end="2026-03-09 16:00")
    assert bars.index[0].strftime("%H:%M") == "09:30" and bars.index[-1].strftime("%H:%M") == "16:00"


def test_sample_has_no_1m_bars() -> None:
    with pytest.raises(DataUnavailableError, match="try source='synthetic'"):
        load_bars("NQ", "1m")


def test_sample_has_no_rty() -> None:
    with pytest.raises(DataUnavailableError):
        load_bars("RTY", "5m")


def test_empty_range_is_data_unavailable() -> None:
    with pytest.raises(DataUnavailableError, match="no NQ bars"):
        load_bars("NQ", "5m", start="2020-01-01", end="2020-02-01")


def test_end_before_start_is_invalid() -> None:
    with pytest.raises(InvalidArgumentError, match="before start"):
        load_bars("NQ", "5m", start="2026-03-10", end="2026-03-01")


def test_unknown_symbol_interval_and_source() -> None:
    with pytest.raises(UnknownSymbolError):
        load_bars("XYZ")
    with pytest.raises(InvalidArgumentError, match="unknown interval"):
        load_bars("NQ", "7m")
    with pytest.raises(InvalidArgumentError, match="unknown source"):
        load_bars("NQ", source="bloomberg")


def test_csv_columns_match_case_insensitively(tmp_path: Path) -> None:
    bars = load_bars("NQ", "5m", source=f"csv:{write(tmp_path, SAMPLE_CSV)}")
    assert list(bars.columns) == list(BAR_COLUMNS) and bars["close"].iloc[1] == 24015.25


def test_parquet_source_round_trips(tmp_path: Path, nq_5m: pd.DataFrame) -> None:
    p = tmp_path / "nq.parquet"
    nq_5m.iloc[:500].to_parquet(p)
    back = load_bars("NQ", "5m", source=f"parquet:{p}")
    pd.testing.assert_frame_equal(back, nq_5m.iloc[:500], check_freq=False)


def test_csv_with_utc_offsets_is_converted(tmp_path: Path) -> None:
    text = (
        "timestamp,open,high,low,close,volume\n"
        "2026-03-09T13:30:00Z,1,2,0.75,1.5,3\n2026-03-09T13:35:00Z,1,2,1,1.5,3\n"
    )
    bars = load_bars("NQ", "5m", source=f"csv:{write(tmp_path, text)}")
    assert bars.index[0] == pd.Timestamp("2026-03-09 09:30", tz="America/New_York")


def test_csv_whose_offsets_change_across_a_dst_switch_loads(tmp_path: Path) -> None:
    # New York moved from -05:00 to -04:00 on 2026-03-08: a file written in local time with offsets
    text = (
        "timestamp,open,high,low,close,volume\n"
        "2026-03-06T16:50:00-05:00,1,2,0.75,1.5,3\n2026-03-06T16:55:00-05:00,1,2,0.75,1.5,3\n"
        "2026-03-09T09:30:00-04:00,1,2,1,1.5,3\n2026-03-09T09:35:00-04:00,1,2,1,1.5,3\n"
    )
    bars = load_bars("NQ", "5m", source=f"csv:{write(tmp_path, text)}")
    assert bars.index[1] == pd.Timestamp("2026-03-06 16:55", tz="America/New_York")
    assert bars.index[2] == pd.Timestamp("2026-03-09 09:30", tz="America/New_York")


def test_missing_file_is_data_unavailable(tmp_path: Path) -> None:
    with pytest.raises(DataUnavailableError, match="does not exist"):
        load_bars(source=f"csv:{tmp_path / 'nope.csv'}")


def test_empty_file_is_invalid_bars(tmp_path: Path) -> None:
    with pytest.raises(InvalidBarsError, match="empty"):
        load_bars(source=f"csv:{write(tmp_path, '')}")


def test_header_only_file_is_invalid_bars(tmp_path: Path) -> None:
    path = write(tmp_path, "datetime,open,high,low,close,volume\n")
    with pytest.raises(InvalidBarsError, match="no rows"):
        load_bars(source=f"csv:{path}")


def test_missing_column_names_what_to_fix(tmp_path: Path) -> None:
    text = SAMPLE_CSV.replace(",Close", ",Last")
    with pytest.raises(InvalidBarsError, match="'close' missing; expected open,high,low,close,volume"):
        load_bars(source=f"csv:{write(tmp_path, text)}")


def test_text_in_price_column_names_the_row(tmp_path: Path) -> None:
    text = SAMPLE_CSV.replace(",24015.25,1200", ",24015.25x,1200")
    with pytest.raises(InvalidBarsError, match=r"column 'close' holds non-numeric values, first at row 1"):
        load_bars(source=f"csv:{write(tmp_path, text)}")


def test_empty_price_cell_is_refused(tmp_path: Path) -> None:
    text = SAMPLE_CSV.replace("24015.25", "n/a")
    with pytest.raises(InvalidBarsError, match=r"2 row\(s\) have empty prices, first at row 1"):
        load_bars(source=f"csv:{write(tmp_path, text)}")


def test_unsorted_timestamps_are_refused(tmp_path: Path) -> None:
    lines = SAMPLE_CSV.strip().split("\n")
    text = "\n".join([lines[0], lines[2], lines[1], lines[3]]) + "\n"
    with pytest.raises(InvalidBarsError, match="not sorted"):
        load_bars(source=f"csv:{write(tmp_path, text)}")


def test_duplicated_timestamps_are_refused_with_a_way_out(tmp_path: Path) -> None:
    lines = SAMPLE_CSV.strip().split("\n")
    text = "\n".join([*lines, lines[3]]) + "\n"
    with pytest.raises(InvalidBarsError, match="clean_bars"):
        load_bars(source=f"csv:{write(tmp_path, text)}")


def test_unparseable_dates_are_invalid_bars(tmp_path: Path) -> None:
    text = SAMPLE_CSV.replace("2026-03-09 09:35:00", "yesterday-ish")
    with pytest.raises(InvalidBarsError, match="cannot be parsed"):
        load_bars(source=f"csv:{write(tmp_path, text)}")


def test_naive_frame_needs_an_explicit_zone() -> None:
    raw = pd.read_csv(pd.io.common.StringIO(SAMPLE_CSV))
    with pytest.raises(InvalidBarsError, match="no timezone"):
        normalize_bars(raw)
    assert normalize_bars(raw, assume_tz="America/Chicago").index[0].hour == 10


def test_csv_of_1m_bars_is_resampled_to_5m(tmp_path: Path) -> None:
    idx = pd.date_range("2026-03-09 09:30", periods=10, freq="1min")
    raw = pd.DataFrame({"datetime": idx, "open": 1.0, "high": 2.0, "low": 0.5, "close": 1.5, "volume": 1.0})
    p = tmp_path / "m1.csv"
    raw.to_csv(p, index=False)
    bars = load_bars("NQ", "5m", source=f"csv:{p}")
    assert len(bars) == 2 and bars["volume"].tolist() == [5.0, 5.0]


def test_coarse_file_cannot_become_finer(tmp_path: Path) -> None:
    with pytest.raises(DataUnavailableError, match="finer"):
        load_bars("NQ", "1m", source=f"csv:{write(tmp_path, SAMPLE_CSV)}")


# ---- files named by API / MCP callers: only inside the data roots -----------------------------------


def test_without_roots_any_path_is_read_as_the_operator_asks(tmp_path: Path) -> None:
    outside = write(tmp_path, SAMPLE_CSV)
    assert len(load_bars("NQ", "5m", source=f"csv:{outside}")) == 3  # the CLI and the operator's config


def test_with_roots_a_file_outside_them_is_refused_whether_or_not_it_exists(tmp_path: Path) -> None:
    from nq_ray.errors import PathNotAllowedError

    root = tmp_path / "data"
    root.mkdir()
    outside = write(tmp_path, SAMPLE_CSV)
    (root / "escape.csv").symlink_to(outside)
    messages = set()
    for source in (f"csv:{outside}", f"csv:{tmp_path / 'missing.csv'}", "csv:../bars.csv", "csv:escape.csv"):
        with pytest.raises(PathNotAllowedError) as info:
            load_bars("NQ", "5m", source=source, roots=[root.resolve()])
        messages.add(str(info.value))
    assert len(messages) == 1 and str(tmp_path) not in messages.pop()


def test_with_roots_a_file_inside_is_read_and_named_as_the_caller_named_it(tmp_path: Path) -> None:
    root = tmp_path / "data"
    root.mkdir()
    write(root, SAMPLE_CSV)
    assert len(load_bars("NQ", "5m", source="csv:bars.csv", roots=[root.resolve()])) == 3
    assert len(load_bars("NQ", "5m", source=f"csv:{root / 'bars.csv'}", roots=[root.resolve()])) == 3
    with pytest.raises(DataUnavailableError) as info:
        load_bars("NQ", "5m", source="csv:nope.csv", roots=[root.resolve()])
    assert "'nope.csv'" in str(info.value) and str(root) not in str(info.value)
