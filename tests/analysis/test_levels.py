"""Support/resistance: pivots (hand-worked), prior-day/overnight and volume profile (plain references)."""

from __future__ import annotations

import datetime as dt
from fractions import Fraction

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nq_ray.analysis import levels
from nq_ray.domain.contracts import get_contract
from nq_ray.errors import InvalidArgumentError, InvalidBarsError
from tests.analysis.synthetic import path_bars, random_walk

NQ = get_contract("NQ")


def _session_key(t: pd.Timestamp) -> dt.date:
    return (t + pd.Timedelta(days=1)).date() if t.hour >= 18 else t.date()


# ----------------------------------------------------------------------------- pivots
def test_classic_pivots_hand_worked() -> None:
    # H 110, L 100, C 105 → P 105; R1 = 2P − L = 110; S1 = 2P − H = 100; R2 = P + 10; S2 = P − 10;
    # R3 = H + 2(P − L) = 120; S3 = L − 2(H − P) = 90
    out = levels.pivot_levels(110, 100, 105, "classic")
    assert out == {"P": 105, "R1": 110, "S1": 100, "R2": 115, "S2": 95, "R3": 120, "S3": 90}


def test_fibonacci_pivots_hand_worked() -> None:
    out = levels.pivot_levels(110, 100, 105, "fibonacci")
    assert out["R1"] == pytest.approx(108.82) and out["S2"] == pytest.approx(98.82) and out["R3"] == 115


def test_camarilla_pivots_hand_worked() -> None:
    # C ± (H − L)·1.1/12, /6, /4, /2 with H − L = 12, C = 100
    out = levels.pivot_levels(106, 94, 100, "camarilla")
    assert out["R1"] == pytest.approx(101.1) and out["S2"] == pytest.approx(97.8)
    assert out["R3"] == pytest.approx(103.3) and out["S4"] == pytest.approx(93.4)


def test_unknown_pivot_method_raises() -> None:
    with pytest.raises(InvalidArgumentError, match="pivot method"):
        levels.pivot_levels(1, 0, 0.5, "woodie")


def test_high_below_low_raises() -> None:
    with pytest.raises(InvalidArgumentError, match="below low"):
        levels.pivot_levels(1, 2, 1.5)


# ----------------------------------------------------------------------------- prior day / overnight
def test_prior_day_and_overnight_equal_hand_grouping(nq_5m: pd.DataFrame) -> None:
    # Arrange
    bars = nq_5m.loc[:"2026-03-11 12:00"]
    keys = [_session_key(t) for t in bars.index]
    cur, prev = keys[-1], sorted(set(keys))[-2]
    prev_bars = bars[[k == prev for k in keys]]
    overnight = [t.hour >= 18 or (t.hour, t.minute) < (9, 30) for t in bars.index]
    on_bars = bars[[k == cur and o for k, o in zip(keys, overnight, strict=True)]]
    # Act
    sr = levels.find_support_resistance(bars)
    # Assert
    assert sr.prior_day == {
        "high": prev_bars.high.max(),
        "low": prev_bars.low.min(),
        "close": prev_bars.close.iloc[-1],
    }
    assert sr.overnight == {"high": on_bars.high.max(), "low": on_bars.low.min()}
    classic = levels.pivot_levels(prev_bars.high.max(), prev_bars.low.min(), prev_bars.close.iloc[-1])
    assert sr.pivots["classic"] == {k: NQ.round_price(v) for k, v in classic.items()}


def test_every_level_is_on_the_tick_grid(nq_5m: pd.DataFrame) -> None:
    sr = levels.find_support_resistance(nq_5m)
    prices = [v for m in sr.pivots.values() for v in m.values()]
    prices += [*sr.prior_day.values(), *sr.overnight.values()]
    prices += [v for p in sr.profile for v in (p.poc, p.vah, p.val) if v is not None]
    prices += [v for z in sr.zones for v in (z.low, z.high, z.price)]
    assert all(NQ.is_on_tick(v) for v in prices)


def test_nearest_levels_bracket_the_last_close(nq_5m: pd.DataFrame) -> None:
    sr = levels.find_support_resistance(nq_5m)
    assert sr.nearest_support is not None and sr.nearest_resistance is not None
    assert sr.nearest_support.price < sr.last_close < sr.nearest_resistance.price


def test_single_session_is_refused() -> None:
    bars = random_walk(50, seed=0, start="2026-03-03 10:00")
    with pytest.raises(InvalidArgumentError, match="two sessions"):
        levels.find_support_resistance(bars)


def test_missing_volume_raises_invalid_bars(nq_5m: pd.DataFrame) -> None:
    with pytest.raises(InvalidBarsError, match="'volume' missing"):
        levels.find_support_resistance(nq_5m.drop(columns=["volume"]))


def test_daily_bars_have_no_overnight_levels(nq_daily: pd.DataFrame) -> None:
    sr = levels.find_support_resistance(nq_daily)
    assert sr.overnight == {}
    assert sr.prior_day["close"] == nq_daily.close.iloc[-2]


# ----------------------------------------------------------------------------- volume profile
def _profile_reference(low, high, vol, tick, va=0.7):  # type: ignore[no-untyped-def]
    """Histogram in a dict keyed by tick number, in exact rational arithmetic (so a tie or the 70 % mark
    is exact); POC, then grow the value area one tick at a time."""
    hist: dict[int, Fraction] = {}
    for lo, hi, v in zip(low, high, vol, strict=True):
        if v <= 0:
            continue
        a, b = round(lo / tick), round(hi / tick)
        for k in range(a, b + 1):
            hist[k] = hist.get(k, Fraction(0)) + Fraction(v) / (b - a + 1)
    if not hist:
        return (np.nan, np.nan, np.nan)
    keys = list(range(min(hist), max(hist) + 1))
    h = [hist.get(k, Fraction(0)) for k in keys]
    mid = Fraction(len(h) - 1, 2)
    best = max(range(len(h)), key=lambda i: (h[i], -abs(i - mid), -i))
    lo_i = hi_i = best
    acc, total = h[best], sum(h)
    while acc < Fraction(str(va)) * total and (lo_i > 0 or hi_i < len(h) - 1):
        up = h[hi_i + 1] if hi_i < len(h) - 1 else -1
        dn = h[lo_i - 1] if lo_i > 0 else -1
        if up >= dn:
            hi_i += 1
            acc += up
        else:
            lo_i -= 1
            acc += dn
    return (keys[best] * tick, keys[hi_i] * tick, keys[lo_i] * tick)


def test_volume_profile_equals_reference_on_real_sessions(nq_5m: pd.DataFrame) -> None:
    bars = nq_5m.loc["2026-03-02":"2026-03-06 16:00"]
    out = levels.session_volume_profile(bars)
    keys = np.array([_session_key(t) for t in bars.index])
    for day, row in out.iterrows():
        sub = bars[keys == day.date()]
        ref = _profile_reference(sub.low.to_numpy(), sub.high.to_numpy(), sub.volume.to_numpy(), 0.25)
        assert (row.poc, row.vah, row.val) == pytest.approx(ref)


@settings(max_examples=400, deadline=None)
@given(
    rows=st.lists(
        st.tuples(st.integers(0, 40), st.integers(0, 6), st.sampled_from([0.0, 1.0, 3.0, 10.0])),
        min_size=1,
        max_size=30,
    )
)
def test_volume_profile_equals_reference_on_random_bars(rows: list[tuple[int, int, float]]) -> None:
    low = np.array([20_000 + r[0] * 0.25 for r in rows])
    high = low + np.array([r[1] * 0.25 for r in rows])
    vol = np.array([r[2] for r in rows])
    idx = pd.date_range("2026-03-03 09:30", periods=len(rows), freq="1min", tz="America/New_York")
    bars = pd.DataFrame({"open": low, "high": high, "low": low, "close": high, "volume": vol}, index=idx)
    out = levels.session_volume_profile(bars).iloc[0]
    ref = _profile_reference(low, high, vol, 0.25)
    np.testing.assert_allclose([out.poc, out.vah, out.val], ref, equal_nan=True)


def test_poc_is_where_volume_concentrates() -> None:
    idx = pd.date_range("2026-03-03 09:30", periods=3, freq="5min", tz="America/New_York")
    bars = pd.DataFrame(
        {
            "open": 100.0,
            "high": [101.0, 100.5, 102.0],
            "low": [99.0, 100.5, 98.0],
            "close": 100.0,
            "volume": [10.0, 500.0, 10.0],
        },
        index=idx,
    )
    out = levels.session_volume_profile(bars).iloc[0]
    assert out.poc == 100.5
    assert out.val <= 100.5 <= out.vah


# ----------------------------------------------------------------------------- swing zones
def test_repeated_highs_form_a_resistance_zone_with_touches() -> None:
    bars = path_bars([100, 110, 101, 110.25, 100.5, 109.75, 101, 105])
    zones = levels.swing_zones(bars, prominence=2.0, min_touches=2)
    res = [z for z in zones if z.side == "resistance"]
    sup = [z for z in zones if z.side == "support"]
    assert res and res[0].touches == 3 and 109.75 <= res[0].price <= 110.5
    assert sup and sup[0].touches >= 2 and 100 <= sup[0].price <= 101.25


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), step=st.floats(0.5, 20))
def test_levels_of_random_walks_are_on_the_tick_grid(seed: int, step: float) -> None:
    # Arrange: a 5-minute random walk over ~3 sessions, then snapped to the tick grid like real prices
    bars = random_walk(800, seed, step=step, start="2026-03-02 18:00")
    bars[["open", "high", "low", "close"]] = (bars[["open", "high", "low", "close"]] / 0.25).round() * 0.25
    # Act
    sr = levels.find_support_resistance(bars)
    # Assert
    prices = [v for m in sr.pivots.values() for v in m.values()] + [*sr.prior_day.values()]
    prices += [v for p in sr.profile for v in (p.poc, p.vah, p.val) if v is not None]
    prices += [v for z in sr.zones for v in (z.low, z.high, z.price)]
    assert all(NQ.is_on_tick(v) for v in prices)
