"""Support and resistance: floor pivots, swing zones, volume profile, prior-day and overnight levels.

Every price returned is on the contract's tick grid (rounded half-even to the nearest tick). A
"session" is a CME Globex session (18:00 ET → 17:00 ET, labelled by the date it closes); the previous
session is the last complete session before the one the latest bar belongs to.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Literal

import numpy as np
import pandas as pd
import talib
from pydantic import BaseModel, ConfigDict, Field

from nq_ray.analysis import kernels
from nq_ray.analysis.indicators import _bar_columns, _check_number, _check_period, _first_valid
from nq_ray.domain.contracts import get_contract
from nq_ray.errors import InvalidArgumentError, InvalidBarsError

PIVOT_METHODS: tuple[str, ...] = ("classic", "fibonacci", "camarilla")


def to_tick(prices: np.ndarray, tick_size: float) -> np.ndarray:
    """Round an array to the nearest tick (half-even, like ``Contract.round_price``); NaN stays NaN."""
    q = np.round(np.asarray(prices, dtype=float) / tick_size) * tick_size
    # clean binary noise (e.g. 0.30000000000000004) so the values print as the tick grid
    return np.round(q, max(0, int(np.ceil(-np.log10(tick_size))) + 2))


def tick_price(price: float, tick_size: float) -> float:
    """One price rounded to the nearest tick (see ``to_tick``)."""
    return float(to_tick(np.asarray(float(price)), tick_size))


# ----------------------------------------------------------------------------- models
class Level(BaseModel):
    """One named price level (``R1``, ``PDH``, ``POC`` …) on the tick grid."""

    model_config = ConfigDict(frozen=True)

    name: str
    price: float
    source: str = Field(
        description="classic | fibonacci | camarilla | prior_day | overnight | profile | swing"
    )


class Zone(BaseModel):
    """Swing pivots whose prices lie within ``tolerance`` of each other, merged into a price band."""

    model_config = ConfigDict(frozen=True)

    low: float
    high: float
    price: float = Field(description="mean of the member pivots' prices, on the tick grid")
    touches: int = Field(description="number of swing pivots in the zone")
    side: Literal["support", "resistance"] = Field(description="below / above the latest close")
    last_touch: str = Field(description="time of the most recent pivot in the zone (ISO 8601)")


class SessionProfile(BaseModel):
    """Volume profile of one session: point of control and the 70 % value area."""

    model_config = ConfigDict(frozen=True)

    session: date
    poc: float | None
    vah: float | None
    val: float | None


class SupportResistance(BaseModel):
    """Everything ``find_support_resistance`` knows about the levels around the latest close."""

    symbol: str
    as_of: str
    last_close: float
    pivots: dict[str, dict[str, float]] = Field(
        description="method → {P, R1, S1, …} from the previous session"
    )
    prior_day: dict[str, float] = Field(description="previous session's high, low and close")
    overnight: dict[str, float] = Field(description="current session's Globex high/low before 09:30 ET")
    profile: list[SessionProfile] = Field(description="previous and current (developing) session profiles")
    zones: list[Zone]
    nearest_support: Level | None
    nearest_resistance: Level | None


# ----------------------------------------------------------------------------- pivots
def pivot_levels(high: float, low: float, close: float, method: str = "classic") -> dict[str, float]:
    """Floor-trader pivots from one session's high, low and close (unrounded).

    classic: P = (H+L+C)/3, R1 = 2P − L, S1 = 2P − H, R2 = P + (H − L), S2 = P − (H − L),
    R3 = H + 2(P − L), S3 = L − 2(H − P).
    fibonacci: P as classic; R/S k = P ± {0.382, 0.618, 1.000}·(H − L).
    camarilla (Nick Scott, 1989): R/S k = C ± (H − L)·1.1/{12, 6, 4, 2} for k = 1…4.
    """
    h, lo, c = float(high), float(low), float(close)
    if not (np.isfinite(h) and np.isfinite(lo) and np.isfinite(c)):
        raise InvalidArgumentError("pivot_levels: high, low and close must be finite")
    if h < lo:
        raise InvalidArgumentError(f"pivot_levels: high {h} is below low {lo}")
    rng = h - lo
    p = (h + lo + c) / 3.0
    if method == "classic":
        return {
            "P": p,
            "R1": 2 * p - lo,
            "S1": 2 * p - h,
            "R2": p + rng,
            "S2": p - rng,
            "R3": h + 2 * (p - lo),
            "S3": lo - 2 * (h - p),
        }
    if method == "fibonacci":
        out = {"P": p}
        for k, f in enumerate((0.382, 0.618, 1.0), start=1):
            out[f"R{k}"] = p + f * rng
            out[f"S{k}"] = p - f * rng
        return out
    if method == "camarilla":
        out = {}
        for k, d in enumerate((12.0, 6.0, 4.0, 2.0), start=1):
            out[f"R{k}"] = c + rng * 1.1 / d
            out[f"S{k}"] = c - rng * 1.1 / d
        return out
    raise InvalidArgumentError(f"pivot method must be one of {', '.join(PIVOT_METHODS)}, got {method!r}")


# ----------------------------------------------------------------------------- per-session statistics
def _check_bars(bars: pd.DataFrame, who: str) -> dict[str, np.ndarray]:
    cols = _bar_columns(bars, ("open", "high", "low", "close", "volume"), who)
    if not isinstance(bars.index, pd.DatetimeIndex) or bars.index.tz is None:
        raise InvalidBarsError(f"{who}: bars need a tz-aware DatetimeIndex (the bar frame schema)")
    for name, arr in cols.items():
        if _first_valid(arr, name, who) != 0:
            raise InvalidArgumentError(f"{who}: {name} starts with NaN; drop missing bars first")
    if len(bars) == 0:
        raise InvalidArgumentError(f"{who}: no bars")
    return cols


def session_table(bars: pd.DataFrame) -> pd.DataFrame:
    """One row per Globex session date: ``high, low, close, volume`` of the whole session and the
    overnight (Globex, before 09:30 ET) ``on_high, on_low`` (NaN for sessions without such bars, e.g.
    daily bars)."""
    from nq_ray.market.sessions import session_dates

    _check_bars(bars, "session_table")
    sd = session_dates(bars.index)
    g = bars.groupby(sd, sort=True)
    out = pd.DataFrame({"high": g["high"].max(), "low": g["low"].min(), "close": g["close"].last()})
    out["volume"] = g["volume"].sum()
    et = bars.index
    minutes = et.hour * 60 + et.minute
    overnight = (minutes >= 18 * 60) | (minutes < 9 * 60 + 30)
    intraday = len(bars) > 1 and (et[1:] - et[:-1]).min() < pd.Timedelta(days=1)
    if intraday and overnight.any():
        on = bars[overnight].groupby(sd[overnight], sort=True)
        out["on_high"] = on["high"].max()
        out["on_low"] = on["low"].min()
    else:
        out["on_high"] = np.nan
        out["on_low"] = np.nan
    out.index = pd.DatetimeIndex(out.index)
    return out


def session_volume_profile(
    bars: pd.DataFrame, symbol: str = "NQ", value_area: float = 0.70, bin_ticks: int = 1
) -> pd.DataFrame:
    """Volume profile per session (index = session date): ``poc, vah, val`` on the tick grid.

    Each bar's volume is spread evenly over the price bins (``bin_ticks`` ticks wide) between its low and
    high; POC is the fullest bin, the value area grows from it towards the fuller neighbour until it holds
    ``value_area`` of the session's volume (numba kernel ``kernels.volume_profile``)."""
    from nq_ray.market.sessions import session_dates

    cols = _check_bars(bars, "volume_profile")
    bin_ticks = _check_period("volume_profile", "bin_ticks", bin_ticks, 1)
    va = _check_number("volume_profile", "value_area", value_area)
    if va > 1:
        raise InvalidArgumentError(f"volume_profile: value_area must be in (0, 1], got {va}")
    tick = get_contract(symbol).tick_size
    sd = session_dates(bars.index)
    change = np.flatnonzero(sd[1:] != sd[:-1]) + 1
    starts = np.r_[0, change, len(sd)].astype(np.int64)
    poc, vah, val = kernels.volume_profile(
        cols["low"], cols["high"], cols["volume"], starts, tick * bin_ticks, va
    )
    idx = pd.DatetimeIndex(sd[starts[:-1]])
    return pd.DataFrame(
        {"poc": to_tick(poc, tick), "vah": to_tick(vah, tick), "val": to_tick(val, tick)}, index=idx
    )


# ----------------------------------------------------------------------------- swing zones
def swing_points(bars: pd.DataFrame, prominence: float = 1.5, atr_period: int = 14) -> pd.DataFrame:
    """Confirmed swing highs/lows (zig-zag with a reversal of ``prominence`` × Wilder ATR, see
    ``kernels.swing_pivots``): rows ``time, pos, kind (+1 high / −1 low), price``."""
    prominence = _check_number("swing_points", "prominence", prominence)
    atr_period = _check_period("swing_points", "atr_period", atr_period, 1)
    cols = _bar_columns(bars, ("high", "low", "close"), "swing_points")
    if len(bars) <= atr_period:
        raise InvalidArgumentError(f"swing_points: needs more than {atr_period} bars, got {len(bars)}")
    a = talib.ATR(cols["high"], cols["low"], cols["close"], timeperiod=atr_period)
    flags = kernels.swing_pivots(cols["high"], cols["low"], a, prominence)
    pos = np.flatnonzero(flags)
    kind = flags[pos].astype(np.int64)
    price = np.where(kind > 0, cols["high"][pos], cols["low"][pos])
    return pd.DataFrame({"time": bars.index[pos], "pos": pos, "kind": kind, "price": price})


def swing_zones(
    bars: pd.DataFrame,
    symbol: str = "NQ",
    prominence: float = 1.5,
    tolerance_atr: float = 0.5,
    atr_period: int = 14,
    min_touches: int = 1,
) -> list[Zone]:
    """Cluster swing pivot prices into zones: sorted pivot prices join the current zone while within
    ``tolerance_atr`` × latest ATR of the zone's first price. Zones with fewer than ``min_touches``
    pivots are dropped; the rest are sorted by distance from the latest close."""
    tol = _check_number("swing_zones", "tolerance_atr", tolerance_atr)
    piv = swing_points(bars, prominence, atr_period)
    if piv.empty:
        return []
    a = talib.ATR(
        bars["high"].to_numpy(float), bars["low"].to_numpy(float), bars["close"].to_numpy(float), atr_period
    )[-1]
    width = tol * a
    tick = get_contract(symbol).tick_size
    last = float(bars["close"].iloc[-1])
    piv = piv.sort_values("price", kind="stable")
    prices = piv["price"].to_numpy()
    positions = piv["pos"].to_numpy()
    zones: list[Zone] = []
    start = 0
    for i in range(1, len(prices) + 1):
        if i == len(prices) or prices[i] - prices[start] > width:
            members = prices[start:i]
            if len(members) >= min_touches:
                mean = float(members.mean())
                zones.append(
                    Zone(
                        low=tick_price(float(members[0]), tick),
                        high=tick_price(float(members[-1]), tick),
                        price=tick_price(mean, tick),
                        touches=len(members),
                        side="support" if mean <= last else "resistance",
                        last_touch=bars.index[int(positions[start:i].max())].isoformat(),
                    )
                )
            start = i
    zones.sort(key=lambda z: abs(z.price - last))
    return zones


# ----------------------------------------------------------------------------- everything together
def find_support_resistance(
    bars: pd.DataFrame,
    symbol: str = "NQ",
    prominence: float = 1.5,
    tolerance_atr: float = 0.5,
    max_zones: int = 8,
    methods: Sequence[str] = PIVOT_METHODS,
    zone_lookback_bars: int = 2000,
    min_touches: int = 2,
) -> SupportResistance:
    """Levels around the latest close: pivots of the previous session, prior-day H/L/C, overnight H/L,
    previous and developing volume profile, the ``max_zones`` swing zones (≥ ``min_touches`` pivots in
    the last ``zone_lookback_bars`` bars) nearest the close, and the nearest support and resistance
    among all of them."""
    _check_bars(bars, "find_support_resistance")
    tick = get_contract(symbol).tick_size
    table = session_table(bars)
    if len(table) < 2:
        raise InvalidArgumentError(
            "find_support_resistance: needs bars from at least two sessions (pivots use the previous one)",
            sessions=len(table),
        )
    prev, cur = table.iloc[-2], table.iloc[-1]
    pivots = {
        m: {
            k: tick_price(v, tick)
            for k, v in pivot_levels(prev["high"], prev["low"], prev["close"], m).items()
        }
        for m in methods
    }
    prior_day = {
        "high": tick_price(prev["high"], tick),
        "low": tick_price(prev["low"], tick),
        "close": tick_price(prev["close"], tick),
    }
    overnight = {}
    if np.isfinite(cur["on_high"]):
        overnight = {"high": tick_price(cur["on_high"], tick), "low": tick_price(cur["on_low"], tick)}
    profile_rows = session_volume_profile(
        bars.loc[bars.index >= _session_start(bars, table.index[-2])], symbol
    )
    profile = [
        SessionProfile(
            session=d.date(),
            poc=None if np.isnan(r.poc) else r.poc,
            vah=None if np.isnan(r.vah) else r.vah,
            val=None if np.isnan(r.val) else r.val,
        )
        for d, r in profile_rows.iterrows()
    ]
    try:
        recent = bars.iloc[-zone_lookback_bars:]
        zones = swing_zones(recent, symbol, prominence, tolerance_atr, min_touches=min_touches)[:max_zones]
    except InvalidArgumentError:
        zones = []
    last = float(bars["close"].iloc[-1])
    candidates: list[Level] = []
    for m, lv in pivots.items():
        candidates += [Level(name=f"{m}:{k}", price=v, source=m) for k, v in lv.items()]
    candidates += [Level(name=f"PD{k[0].upper()}", price=v, source="prior_day") for k, v in prior_day.items()]
    candidates += [Level(name=f"ON{k[0].upper()}", price=v, source="overnight") for k, v in overnight.items()]
    if profile and profile[0].poc is not None:
        p0 = profile[0]
        candidates += [
            Level(name=n, price=v, source="profile")
            for n, v in (("pPOC", p0.poc), ("pVAH", p0.vah), ("pVAL", p0.val))
            if v is not None
        ]
    candidates += [Level(name=f"zone×{z.touches}", price=z.price, source="swing") for z in zones]
    below = [lv for lv in candidates if lv.price < last]
    above = [lv for lv in candidates if lv.price > last]
    return SupportResistance(
        symbol=get_contract(symbol).symbol,
        as_of=bars.index[-1].isoformat(),
        last_close=last,
        pivots=pivots,
        prior_day=prior_day,
        overnight=overnight,
        profile=profile,
        zones=zones,
        nearest_support=max(below, key=lambda lv: lv.price) if below else None,
        nearest_resistance=min(above, key=lambda lv: lv.price) if above else None,
    )


def _session_start(bars: pd.DataFrame, session: pd.Timestamp) -> pd.Timestamp:
    """First bar time of the given session date."""
    from nq_ray.market.sessions import session_dates

    sd = session_dates(bars.index)
    pos = int(np.argmax(sd >= np.datetime64(session.date(), "D")))
    return bars.index[pos]
