"""Validation at the door: any raw table of bars → the bar frame schema, or a clear ``invalid_bars``.

After ``normalize_bars`` the rest of nq-ray trusts the frame: tz-aware America/New_York index labelled at
the bar's start, sorted, unique, float64 ``open, high, low, close, volume``.
"""

from __future__ import annotations

import pandas as pd

from nq_ray.domain.bars import BAR_COLUMNS, EXCHANGE_TZ, PRICE_COLUMNS
from nq_ray.errors import InvalidBarsError

TIME_COLUMNS = ("datetime", "timestamp", "time", "date", "ts")
_ALIASES = {"o": "open", "h": "high", "l": "low", "c": "close", "v": "volume", "vol": "volume"}


def normalize_bars(
    raw: pd.DataFrame,
    *,
    source: str = "input",
    assume_tz: str | None = None,
    require_volume: bool = True,
) -> pd.DataFrame:
    """Check and convert ``raw`` into a bar frame.

    Column names match case-insensitively (``Open``, ``CLOSE``, ``Adj Close`` ignored); the time comes
    from a ``datetime``/``timestamp``/``time``/``date`` column or the index. Naive times are localised
    only with an explicit ``assume_tz``. Unsorted or duplicated timestamps are refused (``clean_bars``
    can drop duplicates) rather than silently reordered.
    """
    if not isinstance(raw, pd.DataFrame):
        raise InvalidBarsError(f"{source}: expected a pandas DataFrame, got {type(raw).__name__}")
    if raw.empty:
        raise InvalidBarsError(f"{source}: no rows; expected columns {','.join(BAR_COLUMNS)}", source=source)
    df = raw.copy()
    if isinstance(df.columns, pd.MultiIndex):  # yfinance returns (field, ticker) columns
        df.columns = [str(c[0]) for c in df.columns]
    lower = {c: _ALIASES.get(str(c).strip().lower(), str(c).strip().lower()) for c in df.columns}
    df = df.rename(columns=lower)
    df = df.loc[:, ~df.columns.duplicated()]

    time_col = next((c for c in TIME_COLUMNS if c in df.columns), None)
    if time_col is not None:
        df = df.set_index(time_col)
    elif not isinstance(df.index, pd.DatetimeIndex):
        raise InvalidBarsError(
            f"{source}: no time column; expected one of {', '.join(TIME_COLUMNS)} or a DatetimeIndex",
            source=source,
        )
    wanted = BAR_COLUMNS if require_volume else PRICE_COLUMNS
    missing = [c for c in wanted if c not in df.columns]
    if missing:
        raise InvalidBarsError(
            f"{source}: column(s) {', '.join(repr(m) for m in missing)} missing; expected "
            f"{','.join(BAR_COLUMNS)} (names match case-insensitively)",
            source=source,
            missing=missing,
            found=[str(c) for c in raw.columns],
        )
    if "volume" not in df.columns:
        df["volume"] = 0.0

    idx = _parse_index(df.index, source)
    if idx.tz is None:
        if assume_tz is None:
            raise InvalidBarsError(
                f"{source}: timestamps have no timezone; say which zone they are in "
                "(assume_tz='America/New_York' for exchange wall time)",
                source=source,
            )
        try:
            idx = idx.tz_localize(assume_tz, ambiguous="infer", nonexistent="raise")
        except Exception as exc:  # pytz/zoneinfo errors for DST gaps or ambiguous hours
            raise InvalidBarsError(
                f"{source}: cannot localise timestamps to {assume_tz}: {exc}", source=source
            ) from exc
    out = pd.DataFrame(index=idx.tz_convert(EXCHANGE_TZ).as_unit("ns"))
    out.index.name = "time"
    for col in BAR_COLUMNS:
        values = pd.to_numeric(df[col].to_numpy(), errors="coerce")
        bad = pd.isna(values) & ~pd.isna(df[col].to_numpy())
        if bad.any():
            first = int(bad.argmax())
            raise InvalidBarsError(
                f"{source}: column {col!r} holds non-numeric values, first at row {first} "
                f"({df.index[first]}: {df[col].iloc[first]!r}); fix or drop those rows",
                source=source,
                column=col,
                row=first,
            )
        out[col] = values.astype("float64")
    empty = out[list(PRICE_COLUMNS)].isna().any(axis=1).to_numpy()
    if empty.any():
        first = int(empty.argmax())
        raise InvalidBarsError(
            f"{source}: {int(empty.sum())} row(s) have empty prices, first at row {first} "
            f"({out.index[first]}); "
            "drop them, or load the frame with pandas and call clean_bars(bars)",
            source=source,
            row=first,
        )
    out["volume"] = out["volume"].fillna(0.0)

    dup = out.index.duplicated(keep=False)
    if dup.any():
        first = out.index[dup][0]
        raise InvalidBarsError(
            f"{source}: {int(out.index.duplicated().sum())} duplicated timestamp(s), first {first}; "
            "remove them or use clean_bars(bars) to keep the last of each",
            source=source,
            first_duplicate=str(first),
        )
    if not out.index.is_monotonic_increasing:
        pos = int((out.index[1:] < out.index[:-1]).argmax()) + 1
        raise InvalidBarsError(
            f"{source}: timestamps are not sorted (row {pos}, {out.index[pos]}, comes before the row above "
            "it); sort the data by time first",
            source=source,
            row=pos,
        )
    return out


def _parse_index(index: pd.Index, source: str) -> pd.DatetimeIndex:
    if isinstance(index, pd.DatetimeIndex):
        return index
    try:
        try:
            parsed = pd.to_datetime(index, format="mixed")
        except ValueError as exc:  # pandas 3: offsets that change across a DST switch
            if "Mixed timezones" not in str(exc):
                raise
            parsed = pd.to_datetime(index, format="mixed", utc=True)
        if not isinstance(parsed, pd.DatetimeIndex) or parsed.dtype == object:  # older pandas: objects
            parsed = pd.to_datetime(index, format="mixed", utc=True)
        return pd.DatetimeIndex(parsed)
    except (ValueError, TypeError) as exc:
        raise InvalidBarsError(
            f"{source}: time values cannot be parsed as dates: {exc}", source=source
        ) from exc
