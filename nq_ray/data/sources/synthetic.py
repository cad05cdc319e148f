"""Seeded synthetic bars that look like CME equity-index futures: the ``synthetic`` source.

What makes them realistic enough for research and tests:
- bars exist only inside CME Globex sessions (``sessions.expected_bar_starts``: the 17:00–18:00 ET halt,
  weekends, holidays and early closes are absent);
- prices on the contract's tick grid, OHLC consistent, ``open`` = previous ``close`` inside a session;
- an intraday U-shaped activity profile (RTH open and close heavy, overnight thin) scales both volume
  and volatility (volatility ∝ √activity);
- regimes from a Markov chain over spells (trending / mean-reverting / volatile);
- gaps at every session open, scaled by √(time the market was closed): small after the daily halt,
  larger after weekends and holidays.

Vectorised numpy: 1,000,000 one-minute bars take a couple of seconds. Same arguments and seed → the same
frame. Coarse intervals (4h, 1d, 1wk) are generated at 30m and resampled session-aware.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from nq_ray.data.frames import normalize_bars
from nq_ray.data.intervals import interval_length, parse_interval
from nq_ray.data.resample import resample_bars
from nq_ray.domain.bars import EXCHANGE_TZ
from nq_ray.domain.contracts import get_contract
from nq_ray.errors import InvalidArgumentError
from nq_ray.market.sessions import expected_bar_starts, schedule, to_exchange_time

# A fixed default end (a session date), so a call without start/end is deterministic — never "now".
DEFAULT_END = pd.Timestamp("2026-04-30", tz=EXCHANGE_TZ)
DEFAULT_SESSIONS = 20
SESSION_MINUTES = 23 * 60

# Root → (typical price, annualised volatility, mean 1-minute volume over a session).
_PROFILE: dict[str, tuple[float, float, float]] = {
    "NQ": (21_000.0, 0.22, 450.0),
    "MNQ": (21_000.0, 0.22, 2_500.0),
    "ES": (6_000.0, 0.16, 1_100.0),
    "MES": (6_000.0, 0.16, 1_400.0),
    "YM": (44_000.0, 0.15, 120.0),
    "MYM": (44_000.0, 0.15, 90.0),
    "RTY": (2_200.0, 0.24, 120.0),
    "M2K": (2_200.0, 0.24, 250.0),
}

# Regimes: 0 trending, 1 mean-reverting, 2 volatile. Embedded chain (no self-transitions) + mean spell
# length in minutes make a continuous-time Markov chain over spells.
REGIMES = ("trending", "mean_reverting", "volatile")
_JUMP = np.array([[0.0, 0.7, 0.3], [0.6, 0.0, 0.4], [0.4, 0.6, 0.0]])
_SPELL_MIN = np.array([600.0, 900.0, 240.0])
_VOL_MULT = np.array([1.0, 0.8, 2.2])
_VOLUME_MULT = np.array([1.1, 0.85, 1.8])
_TREND_DRIFT = 0.02  # drift per minute in units of the 1-minute sigma, sign drawn per spell
_MR_THETA = 0.45  # MA(1) coefficient: r_t = σ(ε_t − θ ε_{t−1}) gives negative autocorrelation
_GAP_SCALE = 0.15  # gap σ = scale × σ_1m × √(minutes closed)
_WICK_SCALE = 0.5  # wick length ~ Exp(scale × σ_bar)
_COARSE_BASE = "30m"


def _raw_activity(m: np.ndarray) -> np.ndarray:
    base = np.full(m.shape, 0.22)
    base += 0.15 * np.exp(-(((m - 180.0) / 45.0) ** 2))  # London open
    base += 0.35 * np.exp(-(((m - 510.0) / 20.0) ** 2)) * (m >= 510.0)  # 08:30 ET releases
    rth = (m >= 570.0) & (m < 960.0)
    u = 1.0 + 3.0 * np.exp(-(m - 570.0) / 25.0) + 2.0 * np.exp(-(960.0 - m) / 20.0)
    base = np.where(rth, u, base)
    return np.where((m >= 960.0) & (m < 1020.0), 0.4, base)


# mean over the 23 trading hours (18:00 → 17:00), so the profile averages ≈ 1 over a session
_PROFILE_MEAN = float(
    _raw_activity(np.r_[np.arange(1080, 1440), np.arange(0, 1020)].astype("float64")).mean()
)


def activity_profile(minute_of_day: np.ndarray) -> np.ndarray:
    """Relative trading activity by ET minute of day (0–1439): U-shaped over RTH (09:30–16:00), thin
    overnight with bumps at the London open (03:00) and the 08:30 data releases; mean 1 over a session."""
    return _raw_activity(np.asarray(minute_of_day, dtype="float64")) / _PROFILE_MEAN


def _ts(value: Any) -> pd.Timestamp:
    return to_exchange_time(value, assume_tz=EXCHANGE_TZ)  # naive = exchange wall time, as in load_bars


def _sessions_span(
    anchor: pd.Timestamp, n_sessions: int, *, forward: bool
) -> tuple[pd.Timestamp, pd.Timestamp]:
    """(first open, last close) of ``n_sessions`` sessions starting at / ending at ``anchor``'s date."""
    days = int(n_sessions * 7 / 5) + 10
    if forward:
        sched = schedule(anchor.normalize(), anchor.normalize() + pd.Timedelta(days=days))
        sched = sched.loc[sched["close"] > anchor].iloc[:n_sessions]
    else:
        sched = schedule(anchor.normalize() - pd.Timedelta(days=days), anchor.normalize())
        sched = sched.loc[sched["open"] <= anchor].iloc[-n_sessions:]
    if forward:
        return max(sched["open"].iloc[0], anchor), sched["close"].iloc[-1]
    return sched["open"].iloc[0], min(sched["close"].iloc[-1], anchor)


def _session_of(ts: pd.Timestamp) -> tuple[pd.Timestamp, pd.Timestamp]:
    """(open, close) of the session trading at ``ts``, or of the next one to open."""
    sched = schedule(ts.normalize() - pd.Timedelta(days=1), ts.normalize() + pd.Timedelta(days=10))
    row = sched.loc[sched["close"] > ts].iloc[0]
    return row["open"], row["close"]


def _bar_starts(
    start: pd.Timestamp | None,
    end: pd.Timestamp | None,
    n_bars: int | None,
    step: pd.Timedelta,
    per_session: float,
) -> pd.DatetimeIndex:
    freq = f"{int(step.total_seconds())}s"
    if start is not None and end is not None:
        return expected_bar_starts(start, end, freq)
    if n_bars is None:
        if start is not None:
            s, e = _sessions_span(start, DEFAULT_SESSIONS, forward=True)
        else:
            s, e = _sessions_span(
                end if end is not None else DEFAULT_END + pd.Timedelta(hours=17),
                DEFAULT_SESSIONS,
                forward=False,
            )
        return expected_bar_starts(s, e, freq)
    n_sessions = math.ceil(n_bars / per_session) + 2
    while True:
        if start is not None:
            s, e = _sessions_span(start, n_sessions, forward=True)
            idx = expected_bar_starts(s, e, freq)
            idx = idx[idx >= start]
            if len(idx) >= n_bars:
                return idx[:n_bars]
        else:
            anchor = end if end is not None else DEFAULT_END + pd.Timedelta(hours=17)
            s, e = _sessions_span(anchor, n_sessions, forward=False)
            idx = expected_bar_starts(s, e, freq)
            idx = idx[idx <= anchor]
            if len(idx) >= n_bars:
                return idx[-n_bars:]
        n_sessions *= 2


def _regimes(n: int, bar_minutes: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Regime of each bar and the trend direction (±1) of its spell, from the Markov chain over spells."""
    regime = np.empty(n, dtype=np.int8)
    direction = np.empty(n, dtype=np.float64)
    state = int(rng.integers(3))
    i = 0
    while i < n:
        mean_bars = max(_SPELL_MIN[state] / bar_minutes, 1.0)
        length = int(rng.geometric(1.0 / mean_bars))
        regime[i : i + length] = state
        direction[i : i + length] = 1.0 if rng.random() < 0.5 else -1.0
        i += length
        state = int(rng.choice(3, p=_JUMP[state]))
    return regime, direction


def _simulate(
    index: pd.DatetimeIndex,
    step: pd.Timedelta,
    tick: float,
    start_price: float,
    annual_vol: float,
    volume_1m: float,
    rng: np.random.Generator,
) -> pd.DataFrame:
    n = len(index)
    bar_min = step.total_seconds() / 60.0
    minute = (index.hour * 60 + index.minute).to_numpy()
    activity = activity_profile(minute)
    sigma_1m = annual_vol / math.sqrt(252.0 * SESSION_MINUTES)
    regime, direction = _regimes(n, bar_min, rng)
    sigma = sigma_1m * math.sqrt(bar_min) * np.sqrt(activity) * _VOL_MULT[regime]

    eps = rng.standard_normal(n + 1)
    shock = eps[1:] - np.where(regime == 1, _MR_THETA, 0.0) * eps[:-1]
    drift = np.where(regime == 0, _TREND_DRIFT * direction * bar_min * sigma_1m * np.sqrt(activity), 0.0)
    r = sigma * shock + drift - 0.5 * sigma**2

    # gaps: the first bar of a session opens away from the last close, σ ∝ √(minutes closed)
    t_ns = index.as_unit("ns").asi8
    closed_min = np.zeros(n)
    closed_min[1:] = (np.diff(t_ns) / 60e9) - bar_min
    first = closed_min > 0.5
    gap = np.zeros(n)
    gap[first] = _GAP_SCALE * sigma_1m * np.sqrt(closed_min[first]) * rng.standard_normal(int(first.sum()))

    log_close = math.log(start_price) + np.cumsum(gap + r)
    close_t = np.rint(np.exp(log_close) / tick)
    open_t = np.empty(n)
    open_t[1:] = close_t[:-1]
    reopen = np.exp(log_close - r) / tick  # price after the gap, before the bar's move
    open_t[0] = np.rint(reopen[0])
    open_t[first] = np.rint(reopen[first])

    sigma_ticks = sigma * np.exp(log_close) / tick
    wick_up = np.floor(rng.exponential(_WICK_SCALE, n) * sigma_ticks)
    wick_dn = np.floor(rng.exponential(_WICK_SCALE, n) * sigma_ticks)
    high_t = np.maximum(open_t, close_t) + wick_up
    low_t = np.minimum(open_t, close_t) - wick_dn

    noise = rng.lognormal(mean=-0.5 * 0.35**2, sigma=0.35, size=n)
    volume = np.maximum(np.rint(volume_1m * bar_min * activity * _VOLUME_MULT[regime] * noise), 1.0)

    decimals = max(0, -math.floor(math.log10(tick)) + 2)
    frame = pd.DataFrame(
        {
            "open": np.round(open_t * tick, decimals),
            "high": np.round(high_t * tick, decimals),
            "low": np.round(low_t * tick, decimals),
            "close": np.round(close_t * tick, decimals),
            "volume": volume,
        },
        index=index,
    )
    return frame


def generate_bars(
    symbol: str = "NQ",
    interval: str = "1m",
    start: Any = None,
    end: Any = None,
    n_bars: int | None = None,
    seed: int = 7,
    start_price: float | None = None,
) -> pd.DataFrame:
    """Synthetic bars for ``symbol`` at ``interval`` as a bar frame, deterministic for ``seed``.

    Give at most two of ``start``, ``end``, ``n_bars``: both ends → every session bar in between;
    ``n_bars`` with one end → that many bars from ``start`` / up to ``end``; ``n_bars`` alone → that many
    bars up to ``DEFAULT_END``; one end alone → ``DEFAULT_SESSIONS`` sessions from/to it; nothing →
    the ``DEFAULT_SESSIONS`` sessions up to ``DEFAULT_END``. Naive times are America/New_York wall time.
    """
    contract = get_contract(symbol)
    interval = parse_interval(interval)
    if start is not None and end is not None and n_bars is not None:
        raise InvalidArgumentError("give at most two of start, end and n_bars", n_bars=n_bars)
    if n_bars is not None and n_bars <= 0:
        raise InvalidArgumentError(f"n_bars must be positive, got {n_bars}", n_bars=n_bars)
    s = _ts(start) if start is not None else None
    e = _ts(end) if end is not None else None
    if s is not None and e is not None and e < s:
        raise InvalidArgumentError(f"end {e} is before start {s}", start=str(s), end=str(e))
    price0, annual_vol, volume_1m = _PROFILE.get(contract.symbol, (1_000.0, 0.2, 100.0))
    if start_price is not None:
        if not start_price > 0:
            raise InvalidArgumentError(f"start_price must be positive, got {start_price}")
        price0 = start_price

    step = interval_length(interval)
    coarse = step > pd.Timedelta(hours=1)
    gen_step = interval_length(_COARSE_BASE) if coarse else step
    per_out_session = {"4h": 6.0, "1d": 1.0, "1wk": 0.2}.get(
        interval, SESSION_MINUTES / (step.total_seconds() / 60)
    )
    gen_n = None
    if n_bars is not None:
        # enough base bars for n_bars output bars (plus a session of margin at each end)
        gen_n = (
            int((n_bars / per_out_session + 2) * SESSION_MINUTES / (gen_step.total_seconds() / 60))
            if coarse
            else n_bars
        )
    gen_s, gen_e = s, e
    if coarse:  # whole sessions, so the first and last daily / 4h bars are not built from a fragment
        gen_s = None if s is None else min(s, _session_of(s)[0])
        gen_e = None if e is None else max(e, _session_of(e)[1])
    index = _bar_starts(gen_s, gen_e, gen_n, gen_step, SESSION_MINUTES / (gen_step.total_seconds() / 60))
    if len(index) == 0:
        raise InvalidArgumentError(
            f"no CME Globex session bars between {s} and {e}; pick a range that contains a trading session",
            start=str(s),
            end=str(e),
        )
    rng = np.random.default_rng(seed)
    frame = _simulate(index, gen_step, contract.tick_size, price0, annual_vol, volume_1m, rng)
    if coarse:
        frame = resample_bars(frame, interval)
        if s is not None:
            frame = frame.loc[frame.index >= s]
        if e is not None:
            frame = frame.loc[frame.index <= e]
        if n_bars is not None:
            frame = frame.iloc[:n_bars] if s is not None else frame.iloc[-n_bars:]
    return normalize_bars(frame, source=f"synthetic:{contract.symbol}")


def fetch(root: str, interval: str, start: Any = None, end: Any = None, seed: int = 7) -> pd.DataFrame:
    """The ``synthetic`` source for ``load_bars``: ``generate_bars`` over [start, end] (defaults above)."""
    return generate_bars(root, interval, start=start, end=end, seed=seed)
