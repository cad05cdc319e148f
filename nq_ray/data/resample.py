"""Session-aware resampling: intraday bins are anchored at the 18:00 ET Globex open, so no bin straddles
the 17:00–18:00 halt; daily bars are per session date (the day the session closes), not calendar date;
weekly bars group session dates by ISO week."""

from __future__ import annotations

import numpy as np
import pandas as pd

from nq_ray.data.intervals import interval_length, parse_interval
from nq_ray.domain.bars import BAR_COLUMNS, EXCHANGE_TZ
from nq_ray.errors import InvalidArgumentError
from nq_ray.market.sessions import SESSION_SHIFT, session_dates

_AGG = {"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"}


def resample_bars(bars: pd.DataFrame, interval: str) -> pd.DataFrame:
    """Aggregate a bar frame to a coarser ``interval`` (OHLC first/max/min/last, volume summed).

    Intraday bins start at 18:00 ET + k × interval and end at the session's close at the latest; a bin
    label is its start. Daily bars are labelled with their session date at 00:00 ET; weekly bars with
    the first session date in the ISO week. Empty bins are not created.
    """
    interval = parse_interval(interval)
    step = interval_length(interval)
    if len(bars) == 0:
        return bars.copy()
    if len(bars) > 1:
        native = pd.Series(bars.index[1:] - bars.index[:-1]).min()
        if step < native:
            raise InvalidArgumentError(
                f"cannot resample {native} bars to the finer interval {interval}", interval=interval
            )
    wall = bars.index.tz_convert(EXCHANGE_TZ).tz_localize(None)
    sdate = session_dates(bars.index)
    if interval == "1wk":
        sd = pd.DatetimeIndex(sdate)
        key = (sd - pd.to_timedelta(sd.day_of_week, unit="D")).to_numpy()
        out = bars.groupby(key, sort=True).agg(_AGG)
        first = pd.Series(sd, index=bars.index).groupby(key, sort=True).min()
        out.index = pd.DatetimeIndex(first.to_numpy()).tz_localize(EXCHANGE_TZ)
    elif step >= pd.Timedelta(days=1):
        out = bars.groupby(sdate, sort=True).agg(_AGG)
        out.index = pd.DatetimeIndex(out.index).tz_localize(EXCHANGE_TZ)
    else:
        session_start = sdate.astype("datetime64[ns]") - SESSION_SHIFT.to_timedelta64()
        since = wall.to_numpy().astype("datetime64[ns]") - session_start
        k = since // step.to_timedelta64()
        label = session_start + k * step.to_timedelta64()
        out = bars.groupby(label, sort=True).agg(_AGG)
        out.index = pd.DatetimeIndex(out.index).tz_localize(
            EXCHANGE_TZ, ambiguous=np.zeros(len(out), dtype=bool), nonexistent="shift_forward"
        )
    out.index = out.index.as_unit("ns")
    out.index.name = "time"
    return out[list(BAR_COLUMNS)].astype("float64")
