"""Data quality: ``validate_bars`` reports what is wrong, ``clean_bars`` fixes what can be fixed safely
and says what it changed. Neither hides a real market move: a roll gap or a news spike is reported as an
outlier, never smoothed away."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, Field

from nq_ray.data.intervals import interval_length, parse_interval
from nq_ray.domain.bars import BAR_COLUMNS, EXCHANGE_TZ, PRICE_COLUMNS
from nq_ray.domain.contracts import get_contract
from nq_ray.errors import InvalidArgumentError, InvalidBarsError
from nq_ray.market.sessions import expected_bar_starts, in_session, session_dates

MAD_SCALE = 1.4826  # makes the MAD a consistent estimator of σ for normal data
_EXAMPLES = 5


class QualityIssue(BaseModel):
    code: str = Field(
        description="missing_bars | duplicates | ohlc_inconsistent | off_tick | outliers | "
        "zero_volume | outside_session | nan_prices"
    )
    count: int
    examples: list[str] = Field(default_factory=list, description="first few timestamps affected")
    note: str = ""


class QualityReport(BaseModel):
    """What ``validate_bars`` found; ``ok`` is False when any error-level issue is present."""

    symbol: str
    interval: str | None
    n_bars: int
    start: str | None
    end: str | None
    issues: list[QualityIssue]
    outlier_threshold: float

    @property
    def ok(self) -> bool:
        errors = {"duplicates", "ohlc_inconsistent", "off_tick", "outside_session", "nan_prices"}
        return not any(i.code in errors and i.count for i in self.issues)

    def count(self, code: str) -> int:
        return next((i.count for i in self.issues if i.code == code), 0)

    def summary(self) -> str:
        found = ", ".join(f"{i.code}={i.count}" for i in self.issues if i.count) or "no issues"
        return f"{self.symbol} {self.interval or ''} {self.n_bars} bars {self.start} → {self.end}: {found}"


class Change(BaseModel):
    """One thing ``clean_bars`` did."""

    action: str
    count: int
    examples: list[str] = Field(default_factory=list)


def _as_frame(bars: pd.DataFrame) -> pd.DataFrame:
    if not isinstance(bars, pd.DataFrame) or not isinstance(bars.index, pd.DatetimeIndex):
        raise InvalidBarsError("expected a DataFrame indexed by a DatetimeIndex")
    if bars.index.tz is None:
        raise InvalidBarsError("bar timestamps have no timezone; localise them first (e.g. America/New_York)")
    missing = [c for c in BAR_COLUMNS if c not in bars.columns]
    if missing:
        raise InvalidBarsError(
            f"column(s) {missing} missing; expected {','.join(BAR_COLUMNS)}", missing=missing
        )
    return bars


def _examples(index: pd.Index) -> list[str]:
    return [str(t) for t in index[:_EXAMPLES]]


def robust_zscores(bars: pd.DataFrame) -> pd.Series:
    """Robust z-score of each close-to-close log return: (r − median) / (1.4826 × MAD)."""
    r = np.log(bars["close"]).diff()
    med = r.median()
    mad = (r - med).abs().median()
    if not np.isfinite(mad) or mad == 0:
        return pd.Series(0.0, index=bars.index)
    return (r - med) / (MAD_SCALE * mad)


def infer_interval(bars: pd.DataFrame) -> str | None:
    """The most common spacing between bars, as an interval name, when it is one nq-ray knows."""
    if len(bars) < 2:
        return None
    from nq_ray.data.intervals import INTERVALS

    step = pd.Series(bars.index[1:] - bars.index[:-1]).mode().iloc[0]
    for name, length in INTERVALS.items():
        if length == step:
            return name
    if pd.Timedelta(days=1) <= step <= pd.Timedelta(days=3):
        return "1d"
    return None


def missing_bar_times(bars: pd.DataFrame, interval: str) -> pd.DatetimeIndex:
    """Intraday bar starts the session calendar expects between the first and last bar but absent."""
    expected = expected_bar_starts(bars.index[0], bars.index[-1], interval)
    return expected.difference(bars.index.tz_convert(EXCHANGE_TZ))


def validate_bars(
    bars: pd.DataFrame, symbol: str = "NQ", interval: str | None = None, outlier_z: float = 3.0
) -> QualityReport:
    """Check ``bars`` against the session calendar and the contract; report, change nothing.

    Missing bars (intraday only) are counted against the CME Globex calendar, so the halt, weekends,
    holidays and early closes are not "missing". Outliers are returns with |robust z| > ``outlier_z``.
    """
    if outlier_z <= 0:
        raise InvalidArgumentError(f"outlier_z must be > 0, got {outlier_z}")
    bars = _as_frame(bars)
    contract = get_contract(symbol)
    interval = parse_interval(interval) if interval else infer_interval(bars)
    issues: list[QualityIssue] = []
    idx = bars.index

    dup = idx.duplicated(keep="first")
    issues.append(QualityIssue(code="duplicates", count=int(dup.sum()), examples=_examples(idx[dup])))
    if not idx.is_monotonic_increasing:
        issues.append(
            QualityIssue(
                code="unsorted",
                count=int((idx[1:] < idx[:-1]).sum()),
                note="timestamps go backwards; clean_bars sorts them",
            )
        )
    prices = bars[list(PRICE_COLUMNS)]
    nan_rows = prices.isna().any(axis=1).to_numpy()
    issues.append(
        QualityIssue(code="nan_prices", count=int(nan_rows.sum()), examples=_examples(idx[nan_rows]))
    )
    o, h, lo, c = (bars[k].to_numpy() for k in PRICE_COLUMNS)
    with np.errstate(invalid="ignore"):
        bad = (h < np.maximum(o, c)) | (lo > np.minimum(o, c)) | (h < lo)
    issues.append(
        QualityIssue(
            code="ohlc_inconsistent",
            count=int(bad.sum()),
            examples=_examples(idx[bad]),
            note="high < max(open, close), low > min(open, close) or high < low",
        )
    )
    q = prices.to_numpy() / contract.tick_size
    off = (np.abs(q - np.round(q)) > 1e-6).any(axis=1) & ~nan_rows
    issues.append(
        QualityIssue(
            code="off_tick",
            count=int(off.sum()),
            examples=_examples(idx[off]),
            note=f"prices off the {contract.tick_size} tick grid",
        )
    )
    zero = bars["volume"].to_numpy() == 0
    issues.append(
        QualityIssue(
            code="zero_volume",
            count=int(zero.sum()),
            examples=_examples(idx[zero]),
            note="real on thin overnight minutes; VWAP ignores them",
        )
    )
    if interval and interval_length(interval) < pd.Timedelta(days=1):
        outside = ~in_session(idx, interval_length(interval))
        issues.append(
            QualityIssue(
                code="outside_session",
                count=int(outside.sum()),
                examples=_examples(idx[outside]),
                note="bars in the daily halt, a weekend or a holiday",
            )
        )
        clean_idx = bars.loc[~dup].sort_index()
        miss = missing_bar_times(clean_idx, interval)
        issues.append(
            QualityIssue(
                code="missing_bars",
                count=len(miss),
                examples=_examples(miss),
                note="against the CME Globex calendar between the first and last bar",
            )
        )
    z = robust_zscores(bars.loc[~dup].sort_index())
    out = z.abs() > outlier_z
    note = f"|robust z| of log returns > {outlier_z}; includes real moves such as roll gaps and news spikes"
    issues.append(
        QualityIssue(code="outliers", count=int(out.sum()), examples=_examples(z.index[out]), note=note)
    )
    return QualityReport(
        symbol=contract.symbol,
        interval=interval,
        n_bars=len(bars),
        start=str(idx.min()) if len(idx) else None,
        end=str(idx.max()) if len(idx) else None,
        issues=issues,
        outlier_threshold=outlier_z,
    )


def clean_bars(
    bars: pd.DataFrame,
    symbol: str = "NQ",
    interval: str | None = None,
    *,
    fill_missing: bool = False,
    drop_outliers: bool = False,
    outlier_z: float = 3.0,
) -> tuple[pd.DataFrame, list[Change]]:
    """A cleaned copy of ``bars`` and the list of changes made.

    Always: sort, keep the last of duplicated timestamps, drop rows with no prices, drop bars outside
    the session calendar, round prices to the tick grid, widen high/low to contain open and close.
    ``fill_missing``: add each missing intraday bar as a flat bar at the previous close with volume 0,
    forward-filling *within a session only* (never across the halt, a weekend or a holiday).
    ``drop_outliers``: remove bars whose return has |robust z| > ``outlier_z`` (off by default:
    outliers are usually real).
    """
    df = _as_frame(bars)[list(BAR_COLUMNS)].astype("float64").copy()
    df.index = df.index.tz_convert(EXCHANGE_TZ)
    contract = get_contract(symbol)
    changes: list[Change] = []

    def record(action: str, index: pd.Index) -> None:
        if len(index):
            changes.append(Change(action=action, count=len(index), examples=_examples(index)))

    if not df.index.is_monotonic_increasing:
        record("sorted", df.index[:1])
        df = df.sort_index(kind="stable")
    dup = df.index.duplicated(keep="last")
    record("dropped_duplicates", df.index[dup])
    df = df.loc[~dup]
    nan_rows = df[list(PRICE_COLUMNS)].isna().any(axis=1).to_numpy()
    record("dropped_nan_prices", df.index[nan_rows])
    df = df.loc[~nan_rows]
    df["volume"] = df["volume"].fillna(0.0)
    interval = parse_interval(interval) if interval else infer_interval(df)
    bar_length = interval_length(interval) if interval is not None else None
    intraday = bar_length is not None and bar_length < pd.Timedelta(days=1)
    if bar_length is not None and intraday and len(df):
        outside = ~in_session(df.index, bar_length)
        record("dropped_outside_session", df.index[outside])
        df = df.loc[~outside]
    prices = df[list(PRICE_COLUMNS)].to_numpy()
    rounded = np.round(prices / contract.tick_size) * contract.tick_size
    off = (np.abs(prices - rounded) > 1e-9).any(axis=1)
    record("rounded_to_tick", df.index[off])
    df[list(PRICE_COLUMNS)] = rounded
    o, h, lo, c = (df[k].to_numpy() for k in PRICE_COLUMNS)
    hi_new, lo_new = np.maximum.reduce([o, h, c, lo]), np.minimum.reduce([o, lo, c, h])
    fixed = (hi_new != h) | (lo_new != lo)
    record("fixed_ohlc", df.index[fixed])
    df["high"], df["low"] = hi_new, lo_new
    if drop_outliers and len(df) > 2:
        z = robust_zscores(df)
        out = (z.abs() > outlier_z).to_numpy()
        record("dropped_outliers", df.index[out])
        df = df.loc[~out]
    if fill_missing and interval is not None and intraday and len(df) > 1:
        df = _fill_within_sessions(df, interval, record)
    return df, changes


def _fill_within_sessions(df: pd.DataFrame, interval: str, record: Any) -> pd.DataFrame:
    miss = missing_bar_times(df, interval)
    if not len(miss):
        return df
    full = df.reindex(df.index.append(miss).sort_values())
    sessions = session_dates(full.index)
    prev_close = full["close"].groupby(sessions).ffill()  # never crosses a session boundary
    fill = full["open"].isna() & prev_close.notna()
    for col in PRICE_COLUMNS:
        full.loc[fill, col] = prev_close[fill]
    full.loc[fill, "volume"] = 0.0
    record("filled_missing", full.index[fill.to_numpy()])
    return full.loc[full["open"].notna()]
