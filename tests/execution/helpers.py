"""Bars and times for the execution tests."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import numpy as np
from hypothesis import strategies as st

from nq_ray.backtest import config as bc
from nq_ray.domain.bars import Bar

ET = ZoneInfo("America/New_York")
TICK = 0.25
OPEN_LIMITS = {
    "max_contracts_per_symbol": None,
    "max_total_contracts": None,
    "max_notional_usd": None,
    "max_margin_use_pct": None,
    "max_daily_loss_usd": None,
    "trailing_drawdown_usd": None,
    "max_orders_per_minute": None,
    "max_consecutive_losses": None,
}


def et(hour: int, minute: int = 0, day: int = 10) -> datetime:
    """A time on 2026-03-{day} in New York (Tuesday the 10th: CME open except 17:00–18:00)."""
    return datetime(2026, 3, day, hour, minute, tzinfo=ET)


def bar(t: datetime, o: float, h: float, lo: float, c: float, volume: float = 1000.0) -> Bar:
    return Bar(time=t, open=o, high=h, low=lo, close=c, volume=volume)


def kernel_opts(slip: float, sl_ticks: float, tp_ticks: float, stop_first: bool) -> np.ndarray:
    o = np.zeros(bc.N_OPTIONS)
    o[bc.O_POINT_VALUE], o[bc.O_TICK], o[bc.O_CONTRACTS], o[bc.O_CAPITAL] = 20.0, TICK, 1.0, 1e7
    o[bc.O_COMMISSION], o[bc.O_SLIPPAGE_TICKS] = 2.25, slip
    o[bc.O_SL_TICKS], o[bc.O_TP_TICKS], o[bc.O_STOP_FIRST] = sl_ticks, tp_ticks, float(stop_first)
    o[bc.O_ENTRY_EXPIRY_BARS] = 1
    return o


def ohlc_from_ticks(draw_moves: list[tuple[int, int, int, int]]) -> tuple[np.ndarray, ...]:
    """OHLC on the NQ tick grid from (open, high, low, close) offsets in ticks around 20000."""
    o, h, lo, c = [], [], [], []
    for a, b, d, e in draw_moves:
        op, cl = 20000 + a * TICK, 20000 + e * TICK
        o.append(op)
        c.append(cl)
        h.append(max(op, cl) + b * TICK)
        lo.append(min(op, cl) - d * TICK)
    return tuple(np.array(x, dtype=np.float64) for x in (o, h, lo, c))


BAR_MOVES = st.tuples(st.integers(-60, 60), st.integers(0, 40), st.integers(0, 40), st.integers(-60, 60))
