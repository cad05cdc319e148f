"""Indicators against TA-Lib (where it has them) or a plain reference written here."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
import talib
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from talib import abstract

from nq_ray.analysis import indicators as ind
from nq_ray.errors import InvalidArgumentError, InvalidBarsError

TOL = 1e-9


def assert_same(actual: np.ndarray, expected: np.ndarray) -> None:
    np.testing.assert_allclose(np.asarray(actual, float), np.asarray(expected, float), rtol=TOL, atol=TOL)
    assert np.array_equal(np.isnan(np.asarray(actual, float)), np.isnan(np.asarray(expected, float)))


# name → (our call on a bar frame, TA-Lib reference on arrays, TA-Lib function name, params)
CASES = {
    "sma": (lambda b: ind.sma(b.close, 20), lambda h, lo, c, v: talib.SMA(c, 20)),
    "ema": (lambda b: ind.ema(b.close, 20), lambda h, lo, c, v: talib.EMA(c, 20)),
    "rsi": (lambda b: ind.rsi(b.close, 14), lambda h, lo, c, v: talib.RSI(c, 14)),
    "macd": (
        lambda b: ind.macd(b.close, 12, 26, 9),
        lambda h, lo, c, v: np.column_stack(talib.MACD(c, 12, 26, 9)),
    ),
    "bollinger": (
        lambda b: ind.bollinger(b.close, 20, 2.0),
        lambda h, lo, c, v: np.column_stack(talib.BBANDS(c, 20, 2.0, 2.0, 0)),
    ),
    "atr": (lambda b: ind.atr(b.high, b.low, b.close, 14), lambda h, lo, c, v: talib.ATR(h, lo, c, 14)),
    "adx": (
        lambda b: ind.adx(b.high, b.low, b.close, 14),
        lambda h, lo, c, v: np.column_stack(
            [talib.ADX(h, lo, c, 14), talib.PLUS_DI(h, lo, c, 14), talib.MINUS_DI(h, lo, c, 14)]
        ),
    ),
    "stochastic": (
        lambda b: ind.stochastic(b.high, b.low, b.close, 14, 3, 3),
        lambda h, lo, c, v: np.column_stack(talib.STOCH(h, lo, c, 14, 3, 0, 3, 0)),
    ),
    "cci": (lambda b: ind.cci(b.high, b.low, b.close, 20), lambda h, lo, c, v: talib.CCI(h, lo, c, 20)),
    "williams_r": (
        lambda b: ind.williams_r(b.high, b.low, b.close, 14),
        lambda h, lo, c, v: talib.WILLR(h, lo, c, 14),
    ),
    "obv": (lambda b: ind.obv(b.close, b.volume), lambda h, lo, c, v: talib.OBV(c, v)),
    "mfi": (
        lambda b: ind.mfi(b.high, b.low, b.close, b.volume, 14),
        lambda h, lo, c, v: talib.MFI(h, lo, c, v, 14),
    ),
    "donchian": (
        lambda b: ind.donchian(b.high, b.low, 20),
        lambda h, lo, c, v: np.column_stack(
            [
                pd.Series(h).rolling(20).max(),
                (pd.Series(h).rolling(20).max() + pd.Series(lo).rolling(20).min()) / 2,
                pd.Series(lo).rolling(20).min(),
            ]
        ),
    ),
    "keltner": (
        lambda b: ind.keltner(b.high, b.low, b.close, 20, 2.0, 10),
        lambda h, lo, c, v: np.column_stack(
            [
                talib.EMA(c, 20) + 2.0 * talib.ATR(h, lo, c, 10),
                talib.EMA(c, 20),
                talib.EMA(c, 20) - 2.0 * talib.ATR(h, lo, c, 10),
            ]
        ),
    ),
}


def _arrays(b: pd.DataFrame) -> tuple[np.ndarray, ...]:
    return tuple(b[c].to_numpy(dtype=float) for c in ("high", "low", "close", "volume"))


def _bars_from_close(close: np.ndarray, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    spread = np.abs(rng.normal(0, 1, close.shape[0]))
    idx = pd.date_range("2026-03-02 09:30", periods=close.shape[0], freq="5min", tz="America/New_York")
    return pd.DataFrame(
        {
            "open": close,
            "high": close + spread,
            "low": close - spread,
            "close": close,
            "volume": rng.integers(0, 500, close.shape[0]).astype(float),
        },
        index=idx,
    )


@pytest.mark.parametrize("name", sorted(CASES))
def test_indicator_equals_talib_on_real_nq_bars(nq_5m: pd.DataFrame, name: str) -> None:
    # Arrange
    ours, ref = CASES[name]
    # Act
    out = ours(nq_5m)
    # Assert
    assert out.index.equals(nq_5m.index)
    assert_same(out.to_numpy(), ref(*_arrays(nq_5m)).reshape(out.shape))


@pytest.mark.parametrize("name", sorted(CASES))
def test_indicator_equals_talib_on_real_daily_bars(nq_daily: pd.DataFrame, name: str) -> None:
    ours, ref = CASES[name]
    out = ours(nq_daily)
    assert_same(out.to_numpy(), ref(*_arrays(nq_daily)).reshape(out.shape))


@pytest.mark.parametrize(
    ("name", "func", "params"),
    [
        ("sma", "SMA", {"timeperiod": 20}),
        ("ema", "EMA", {"timeperiod": 20}),
        ("rsi", "RSI", {"timeperiod": 14}),
        ("macd", "MACD", {}),
        ("bollinger", "BBANDS", {"timeperiod": 20}),
        ("atr", "ATR", {"timeperiod": 14}),
        ("adx", "ADX", {"timeperiod": 14}),
        ("stochastic", "STOCH", {"fastk_period": 14}),
        ("cci", "CCI", {"timeperiod": 20}),
        ("williams_r", "WILLR", {"timeperiod": 14}),
        ("mfi", "MFI", {"timeperiod": 14}),
    ],
)
def test_warmup_nan_count_is_talib_lookback(nq_5m: pd.DataFrame, name: str, func: str, params: dict) -> None:
    # Arrange
    lookback = abstract.Function(func, **params).lookback
    # Act
    out = CASES[name][0](nq_5m)
    first = out.to_numpy().reshape(len(out), -1)[:, 0]
    # Assert
    assert np.isnan(first[:lookback]).all()
    assert not np.isnan(first[lookback:]).any()


series_strategy = st.integers(min_value=1, max_value=120).flatmap(
    lambda n: arrays(np.float64, n, elements=st.floats(1.0, 1e5, allow_nan=False, allow_infinity=False))
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(close=series_strategy, lead_nans=st.integers(0, 5), name=st.sampled_from(sorted(CASES)))
def test_indicator_equals_talib_or_refuses_on_random_series(
    close: np.ndarray, lead_nans: int, name: str
) -> None:
    # Arrange: random closes with an optional leading-NaN run
    close = np.concatenate([np.full(lead_nans, np.nan), close])
    bars = _bars_from_close(close)
    ours, ref = CASES[name]
    with np.errstate(invalid="ignore"):
        expected = ref(*_arrays(bars))
    # Act / Assert: either TA-Lib's numbers, or a typed refusal exactly when TA-Lib has no output
    try:
        out = ours(bars)
    except InvalidArgumentError:
        assert np.isnan(expected.reshape(len(close), -1)[:, 0]).all()
        return
    assert_same(out.to_numpy(), expected.reshape(out.shape))


@pytest.mark.parametrize("name", sorted(CASES))
def test_constant_prices_follow_talib(name: str) -> None:
    bars = _bars_from_close(np.full(80, 25_000.0))
    bars["high"] = bars["low"] = bars["close"]
    ours, ref = CASES[name]
    out = ours(bars)
    assert_same(out.to_numpy(), ref(*_arrays(bars)).reshape(out.shape))


def test_interior_nan_is_refused_with_its_position() -> None:
    close = pd.Series(np.linspace(100, 120, 50))
    close.iloc[30] = np.nan
    with pytest.raises(InvalidArgumentError, match="position 30"):
        ind.rsi(close, 14)


def test_infinite_price_is_refused() -> None:
    close = pd.Series(np.linspace(100, 120, 50))
    close.iloc[10] = np.inf
    with pytest.raises(InvalidArgumentError, match="inf"):
        ind.sma(close, 5)


def test_leading_nans_shift_the_warmup_like_talib() -> None:
    close = pd.Series(np.r_[np.full(5, np.nan), np.linspace(100, 130, 40)])
    assert_same(ind.ema(close, 10).to_numpy(), talib.EMA(close.to_numpy(), 10))


@pytest.mark.parametrize("period", [0, -3, 2.5, True, "14", None])
def test_bad_period_raises_invalid_argument(period: object) -> None:
    with pytest.raises(InvalidArgumentError, match="period"):
        ind.rsi(pd.Series(np.linspace(1, 2, 50)), period)  # type: ignore[arg-type]


def test_series_too_short_for_period_raises_and_says_how_many() -> None:
    with pytest.raises(InvalidArgumentError, match="at least 15 values"):
        ind.rsi(pd.Series(np.linspace(1, 2, 14)), 14)


def test_series_just_long_enough_gives_one_value() -> None:
    out = ind.rsi(pd.Series(np.linspace(1, 2, 15)), 14)
    assert out.notna().sum() == 1


def test_macd_fast_not_shorter_than_slow_raises() -> None:
    with pytest.raises(InvalidArgumentError, match="shorter than slow"):
        ind.macd(pd.Series(np.linspace(1, 2, 100)), fast=26, slow=12)


def test_misaligned_inputs_raise() -> None:
    with pytest.raises(InvalidArgumentError, match="values"):
        ind.atr(pd.Series(np.ones(30)), pd.Series(np.ones(29)), pd.Series(np.ones(30)))


def test_text_prices_raise_invalid_argument() -> None:
    with pytest.raises(InvalidArgumentError, match="numeric"):
        ind.sma(pd.Series(["a"] * 30), 5)


def test_bollinger_columns_and_width_are_2_sigma() -> None:
    close = pd.Series(np.arange(1.0, 41.0))
    out = ind.bollinger(close, 20, 2.0)
    window = close.iloc[-20:]
    sigma = float(np.sqrt(((window - window.mean()) ** 2).mean()))
    assert list(out.columns) == ["upper", "middle", "lower"]
    assert out["middle"].iloc[-1] == pytest.approx(window.mean(), abs=TOL)
    assert out["upper"].iloc[-1] - out["middle"].iloc[-1] == pytest.approx(2 * sigma, abs=1e-9)


# ----------------------------------------------------------------------------- donchian, supertrend
def test_donchian_equals_rolling_max_min(nq_5m: pd.DataFrame) -> None:
    out = ind.donchian(nq_5m.high, nq_5m.low, 20)
    up = nq_5m.high.rolling(20).max()
    dn = nq_5m.low.rolling(20).min()
    assert_same(out["upper"].to_numpy(), up.to_numpy())
    assert_same(out["lower"].to_numpy(), dn.to_numpy())
    assert_same(out["middle"].to_numpy(), ((up + dn) / 2).to_numpy())


def _wilder_atr(h: list[float], lo: list[float], c: list[float], n: int) -> list[float]:
    """Wilder's ATR written out: first = mean of TR[1..n], then (prev·(n−1) + TR)/n."""
    out = [float("nan")] * len(c)
    tr = [float("nan")] + [
        max(h[i] - lo[i], abs(h[i] - c[i - 1]), abs(lo[i] - c[i - 1])) for i in range(1, len(c))
    ]
    if len(c) <= n:
        return out
    out[n] = sum(tr[1 : n + 1]) / n
    for i in range(n + 1, len(c)):
        out[i] = (out[i - 1] * (n - 1) + tr[i]) / n
    return out


def _supertrend_reference(h, lo, c, n, m):  # type: ignore[no-untyped-def]
    """TradingView 'SuperTrend' (KivancOzbilgic) transliterated line by line."""
    a = _wilder_atr(list(h), list(lo), list(c), n)
    st_, dirs, ups, dns = [], [], [], []
    up_prev = dn_prev = None
    trend = 1
    for i in range(len(c)):
        if np.isnan(a[i]):
            st_.append(np.nan)
            dirs.append(np.nan)
            ups.append(np.nan)
            dns.append(np.nan)
            continue
        src = (h[i] + lo[i]) / 2
        up = src - m * a[i]
        dn = src + m * a[i]
        if up_prev is not None:
            up1, dn1 = up_prev, dn_prev
            up = max(up, up1) if c[i - 1] > up1 else up
            dn = min(dn, dn1) if c[i - 1] < dn1 else dn
            if trend == -1 and c[i] > dn1:
                trend = 1
            elif trend == 1 and c[i] < up1:
                trend = -1
        up_prev, dn_prev = up, dn
        st_.append(up if trend == 1 else dn)
        dirs.append(trend)
        ups.append(up)
        dns.append(dn)
    return np.array(st_), np.array(dirs, float), np.array(ups), np.array(dns)


def test_supertrend_equals_reference_on_real_bars(nq_5m: pd.DataFrame) -> None:
    bars = nq_5m.iloc[:3000]
    out = ind.supertrend(bars.high, bars.low, bars.close, 10, 3.0)
    st_, d, up, dn = _supertrend_reference(
        bars.high.to_numpy(), bars.low.to_numpy(), bars.close.to_numpy(), 10, 3.0
    )
    assert_same(out["supertrend"].to_numpy(), st_)
    assert_same(out["direction"].to_numpy(), d)
    assert_same(out["lower"].to_numpy(), up)
    assert_same(out["upper"].to_numpy(), dn)


@settings(max_examples=40, deadline=None)
@given(
    steps=arrays(np.float64, st.integers(12, 150), elements=st.floats(-50, 50, allow_nan=False)),
    period=st.integers(1, 10),
    mult=st.floats(0.5, 4.0),
)
def test_supertrend_equals_reference_on_random_walks(steps: np.ndarray, period: int, mult: float) -> None:
    bars = _bars_from_close(20_000 + np.cumsum(steps))
    out = ind.supertrend(bars.high, bars.low, bars.close, period, mult)
    ref = _supertrend_reference(
        bars.high.to_numpy(), bars.low.to_numpy(), bars.close.to_numpy(), period, mult
    )
    assert_same(out["supertrend"].to_numpy(), ref[0])
    assert_same(out["direction"].to_numpy(), ref[1])


def test_supertrend_flips_down_in_a_selloff() -> None:
    close = np.r_[np.linspace(100, 200, 60), np.linspace(200, 100, 60)]
    bars = _bars_from_close(close)
    out = ind.supertrend(bars.high, bars.low, bars.close, 10, 3.0)
    assert out["direction"].iloc[55] == 1
    assert out["direction"].iloc[-1] == -1


# ----------------------------------------------------------------------------- VWAP
def _vwap_reference(
    bars: pd.DataFrame, key: list[object], active: list[bool]
) -> tuple[np.ndarray, np.ndarray]:
    """Plain VWAP: Σv·tp/Σv over the key's bars so far; σ from a fresh two-pass sum each bar."""
    vw = np.full(len(bars), np.nan)
    sd = np.full(len(bars), np.nan)
    seen: list[tuple[float, float]] = []
    prev = object()
    for i, (h, lo, c, v) in enumerate(bars[["high", "low", "close", "volume"]].itertuples(index=False)):
        if key[i] != prev:
            prev, seen = key[i], []
        if not active[i]:
            continue
        if v > 0:
            seen.append(((h + lo + c) / 3, v))
        total = sum(w for _, w in seen)
        if total > 0:
            mean = sum(p * w for p, w in seen) / total
            vw[i] = mean
            sd[i] = (sum(w * (p - mean) ** 2 for p, w in seen) / total) ** 0.5
    return vw, sd


def _session_key(t: pd.Timestamp) -> dt.date:
    """Session date by hand: from 18:00 ET a bar belongs to the next day's session."""
    return (t + pd.Timedelta(days=1)).date() if t.hour >= 18 else t.date()


def test_session_vwap_equals_reference_on_real_bars(nq_5m: pd.DataFrame) -> None:
    bars = nq_5m.iloc[:2500]
    key = [_session_key(t) for t in bars.index]
    expected, expected_sd = _vwap_reference(bars, key, [True] * len(bars))
    out = ind.vwap_bands(bars, "session", num_std=(1.0, 2.0))
    assert_same(ind.vwap(bars, "session").to_numpy(), expected)
    np.testing.assert_allclose(out["std"].to_numpy(), expected_sd, rtol=1e-9, atol=1e-7)
    assert_same(out["upper_2"].to_numpy(), out["vwap"].to_numpy() + 2 * out["std"].to_numpy())


def test_session_vwap_resets_at_18_00() -> None:
    idx = pd.DatetimeIndex(
        ["2026-03-03 16:50", "2026-03-03 16:55", "2026-03-03 18:00", "2026-03-03 18:05"],
        tz="America/New_York",
    )
    bars = pd.DataFrame(
        {
            "open": 1.0,
            "high": [10, 20, 30, 40.0],
            "low": [10, 20, 30, 40.0],
            "close": [10, 20, 30, 40.0],
            "volume": [1, 1, 1, 3.0],
        },
        index=idx,
    )
    out = ind.vwap(bars, "session")
    assert out.tolist() == [10.0, 15.0, 30.0, (30 + 3 * 40) / 4]


def test_rth_vwap_is_nan_outside_rth_and_restarts_at_0930(nq_5m: pd.DataFrame) -> None:
    from nq_ray.market.sessions import rth_mask

    bars = nq_5m.iloc[:2500]
    mask = list(rth_mask(bars.index))
    key = [t.date() for t in bars.index]
    expected, _ = _vwap_reference(bars, key, mask)
    out = ind.vwap(bars, "rth")
    assert_same(out.to_numpy(), expected)
    assert out[bars.index.strftime("%H:%M") == "09:00"].isna().all()


def test_week_vwap_resets_on_sunday_evening(nq_5m: pd.DataFrame) -> None:
    bars = nq_5m.iloc[:5000]
    key = [_session_key(t).isocalendar()[:2] for t in bars.index]
    expected, _ = _vwap_reference(bars, key, [True] * len(bars))
    assert_same(ind.vwap(bars, "week").to_numpy(), expected)


def test_vwap_nan_until_first_volume_and_zero_volume_bars_do_not_move_it() -> None:
    idx = pd.date_range("2026-03-03 09:30", periods=5, freq="5min", tz="America/New_York")
    px = [100.0, 110.0, 120.0, 130.0, 140.0]
    bars = pd.DataFrame(
        {"open": px, "high": px, "low": px, "close": px, "volume": [0, 0, 2.0, 0, 2.0]}, index=idx
    )
    out = ind.vwap(bars)
    assert np.isnan(out.iloc[0]) and np.isnan(out.iloc[1])
    assert out.iloc[2] == 120.0 and out.iloc[3] == 120.0 and out.iloc[4] == 130.0


@settings(max_examples=40, deadline=None)
@given(
    closes=arrays(np.float64, st.integers(1, 120), elements=st.floats(100, 30_000, allow_nan=False)),
    vols=st.data(),
)
def test_session_vwap_equals_reference_on_random_bars(closes: np.ndarray, vols: st.DataObject) -> None:
    n = closes.shape[0]
    volume = vols.draw(arrays(np.float64, n, elements=st.sampled_from([0.0, 1.0, 5.0, 250.0])))
    idx = pd.date_range("2026-03-03 15:00", periods=n, freq="30min", tz="America/New_York")
    bars = pd.DataFrame(
        {"open": closes, "high": closes + 2, "low": closes - 2, "close": closes, "volume": volume}, index=idx
    )
    expected, _ = _vwap_reference(bars, [_session_key(t) for t in idx], [True] * n)
    assert_same(ind.vwap(bars).to_numpy(), expected)


def test_vwap_missing_volume_column_raises_invalid_bars() -> None:
    idx = pd.date_range("2026-03-03 09:30", periods=3, freq="5min", tz="America/New_York")
    bars = pd.DataFrame({"high": 1.0, "low": 1.0, "close": 1.0}, index=idx)
    with pytest.raises(InvalidBarsError, match="'volume' missing"):
        ind.vwap(bars)


def test_vwap_unknown_anchor_raises() -> None:
    idx = pd.date_range("2026-03-03 09:30", periods=3, freq="5min", tz="America/New_York")
    bars = pd.DataFrame({"high": 1.0, "low": 1.0, "close": 1.0, "volume": 1.0}, index=idx)
    with pytest.raises(InvalidArgumentError, match="anchor"):
        ind.vwap(bars, "month")


# ----------------------------------------------------------------------------- compute_indicators
def test_compute_indicators_default_set_is_rsi_macd_bollinger_atr(nq_5m: pd.DataFrame) -> None:
    out = ind.compute_indicators(nq_5m)
    h, lo, c, _ = _arrays(nq_5m)
    assert set(out.params) == {"rsi", "macd", "bollinger", "atr"}
    assert_same(out.series["rsi"].to_numpy(), talib.RSI(c, 14))
    assert_same(out.series["macd_hist"].to_numpy(), talib.MACD(c, 12, 26, 9)[2])
    assert_same(out.series["bollinger_lower"].to_numpy(), talib.BBANDS(c, 20, 2, 2, 0)[2])
    assert out.latest["atr"] == pytest.approx(talib.ATR(h, lo, c, 14)[-1], abs=TOL)
    assert out.as_of == nq_5m.index[-1]


def test_compute_indicators_named_custom_spec(nq_5m: pd.DataFrame) -> None:
    out = ind.compute_indicators(nq_5m, {"ema_50": {"kind": "ema", "period": 50}, "vwap": {"anchor": "rth"}})
    assert list(out.series.columns) == ["ema_50", "vwap"]
    assert out.latest["ema_50"] == pytest.approx(talib.EMA(nq_5m.close.to_numpy(), 50)[-1], abs=TOL)


def test_compute_indicators_latest_is_none_where_the_value_is_nan(nq_5m: pd.DataFrame) -> None:
    evening = nq_5m[nq_5m.index.hour == 20].index[-1]
    out = ind.compute_indicators(nq_5m.loc[:evening], {"vwap": {"anchor": "rth"}})
    assert out.latest["vwap"] is None


def test_compute_indicators_too_short_for_one_indicator_raises(nq_5m: pd.DataFrame) -> None:
    with pytest.raises(InvalidArgumentError, match="macd: needs at least 34"):
        ind.compute_indicators(nq_5m.iloc[:30])


def test_compute_indicators_unknown_name_raises() -> None:
    with pytest.raises(InvalidArgumentError, match="unknown indicator 'foo'"):
        ind.compute_indicators(_bars_from_close(np.linspace(1, 2, 100)), ["foo"])


def test_compute_indicators_unknown_parameter_raises() -> None:
    with pytest.raises(InvalidArgumentError, match="unknown parameter"):
        ind.compute_indicators(_bars_from_close(np.linspace(1, 2, 100)), {"rsi": {"length": 3}})


def test_compute_indicators_missing_column_raises_invalid_bars() -> None:
    bars = _bars_from_close(np.linspace(1, 2, 100)).drop(columns=["high"])
    with pytest.raises(InvalidBarsError, match="'high' missing"):
        ind.compute_indicators(bars)


@settings(max_examples=40, deadline=None)
@given(
    close=arrays(np.float64, st.integers(40, 80), elements=st.floats(1.0, 1e5, allow_nan=False)),
    hole=st.integers(1, 39),
    name=st.sampled_from(sorted(CASES)),
)
def test_interior_nan_is_refused_by_every_indicator(close: np.ndarray, hole: int, name: str) -> None:
    # Arrange: a NaN after the first value (a missing bar nobody filled)
    bars = _bars_from_close(close)
    bars.iloc[hole, :4] = np.nan
    # Act / Assert: a typed refusal that names the position, never NaN-poisoned output
    with pytest.raises(InvalidArgumentError, match=f"position {hole}"):
        CASES[name][0](bars)


@settings(max_examples=30, deadline=None)
@given(
    steps=arrays(np.float64, st.integers(40, 200), elements=st.floats(-30, 30, allow_nan=False)),
    gap=st.floats(-500, 500),
)
def test_price_gaps_follow_talib(steps: np.ndarray, gap: float) -> None:
    # Arrange: a random walk with one large opening gap in the middle
    close = 20_000 + np.cumsum(steps)
    close[len(close) // 2 :] += gap
    bars = _bars_from_close(close)
    # Act / Assert
    for name in ("rsi", "atr", "macd", "bollinger", "adx", "keltner"):
        ours, ref = CASES[name]
        out = ours(bars)
        assert_same(out.to_numpy(), ref(*_arrays(bars)).reshape(out.shape))
