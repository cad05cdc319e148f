"""Chart patterns from swing pivots: head and shoulders (and inverse), double tops/bottoms, ascending /
descending / symmetric triangles, channels and flags.

Pivots come from ``kernels.swing_pivots``: a zig-zag whose legs are at least ``prominence`` × Wilder
ATR(``atr_period``) long, so highs and lows alternate. All tolerances are in ATRs at the pattern's last
pivot (``a`` below). Every detection carries start/end bars, key prices, a ``breakout`` level, a
measured-move ``target`` and a ``confidence`` in [0, 1]:

    confidence = fit × (1.0 if a close has crossed the breakout level within ``confirm_bars`` bars of
                        the last pivot, else 0.6)

where ``fit`` is the mean of the pattern's shape scores, each in [0, 1] (1 = textbook):

- head and shoulders: shoulder symmetry 1 − |LS − RS| / (shoulder_tol·a); neckline flatness
  1 − |N1 − N2| / (neckline_tol·a); head prominence min(1, (head − higher shoulder) / (2·a)).
  Neckline through the two troughs; target = breakout − (head − neckline at the head).
- double top/bottom: symmetry 1 − |P1 − P2| / (equal_tol·a); depth min(1, depth / (4·a)).
  Neckline = the trough/peak between; target = neckline ∓ depth.
- triangles and channels (least-squares lines through the last ``line_pivots`` pivots' highs and
  lows): line fit 1 − worst residual / (fit_tol·a); pivots on the lines min(1, n / 6). A line is flat
  when it moves less than ``flat_tol``·a over the pattern. Triangles must converge (end width ≤ 0.75 ×
  start width); channels keep their width (parallel lines moving the same way). Target = breakout ±
  the pattern's starting height.
- flags: pole strength min(1, pole / (2·pole_min·a)); tightness 1 − flag range / (0.5·pole); shallow
  retracement 1 − retrace / (0.5·pole). Target = breakout ± pole (measured move).

A pattern is dropped if price invalidates it before the breakout (e.g. takes out the head or the
double top before closing through the neckline). The rate at which these detectors fire on random
walks is measured in ``tests/analysis/test_chart_patterns.py`` and stated in docs/analysis.md.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
import talib
from pydantic import BaseModel, ConfigDict, Field

from nq_ray.analysis import kernels
from nq_ray.analysis.indicators import _bar_columns, _check_number, _check_period, _first_valid
from nq_ray.analysis.levels import tick_price
from nq_ray.domain.contracts import get_contract
from nq_ray.errors import InvalidArgumentError

PATTERN_KINDS: tuple[str, ...] = (
    "head_and_shoulders",
    "inverse_head_and_shoulders",
    "double_top",
    "double_bottom",
    "ascending_triangle",
    "descending_triangle",
    "symmetric_triangle",
    "ascending_channel",
    "descending_channel",
    "horizontal_channel",
    "bull_flag",
    "bear_flag",
)
UNCONFIRMED_FACTOR = 0.6


class ChartPattern(BaseModel):
    """One chart pattern detection."""

    model_config = ConfigDict(frozen=True)

    kind: str
    direction: Literal["bullish", "bearish", "neutral"]
    start_bar: int
    end_bar: int = Field(description="bar of the pattern's last pivot (flags: end of the consolidation)")
    start: str
    end: str
    key_prices: dict[str, float] = Field(
        description="pattern-specific prices (neckline, head, upper, lower …)"
    )
    breakout: float = Field(description="price whose crossing confirms the pattern")
    target: float = Field(description="measured-move objective after the breakout")
    status: Literal["forming", "confirmed"]
    breakout_bar: int | None = None
    confidence: float = Field(ge=0, le=1, description="fit × (1 confirmed | 0.6 forming); see module docs")


@dataclass(frozen=True)
class PatternParams:
    """Tolerances (in ATRs unless said otherwise) shared by the detectors."""

    prominence: float = 2.0
    atr_period: int = 14
    shoulder_tol: float = 1.0
    neckline_tol: float = 1.5
    head_min: float = 0.5
    equal_tol: float = 0.5
    line_pivots: int = 6
    fit_tol: float = 0.5
    flat_tol: float = 0.75
    pole_min: float = 4.0
    pole_max_bars: int = 15
    flag_min_bars: int = 3
    flag_max_bars: int = 20
    confirm_bars: int = 30


@dataclass
class _Ctx:
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    atr: np.ndarray
    index: pd.Index
    pos: np.ndarray
    kind: np.ndarray
    price: np.ndarray
    p: PatternParams
    tick: float

    def t(self, i: int) -> str:
        x = self.index[i]
        return x.isoformat() if hasattr(x, "isoformat") else str(x)

    def px(self, v: float) -> float:
        return tick_price(v, self.tick)


def _clip01(x: float) -> float:
    return float(min(1.0, max(0.0, x)))


def _first_cross(
    ctx: _Ctx,
    start: int,
    level_at: Callable[[int], float],
    above: bool,
    invalid_at: Callable[[int], bool] | None = None,
) -> tuple[int | None, bool]:
    """First bar in (start, start + confirm_bars] whose close crosses ``level_at(i)`` (above/below);
    (None, True) if ``invalid_at(i)`` fires first (the pattern is void), (None, False) if neither."""
    end = min(len(ctx.close), start + 1 + ctx.p.confirm_bars)
    for i in range(start + 1, end):
        if invalid_at is not None and invalid_at(i):
            return None, True
        lvl = level_at(i)
        if (above and ctx.close[i] > lvl) or (not above and ctx.close[i] < lvl):
            return i, False
    return None, False


def _make(
    ctx: _Ctx,
    kind: str,
    direction: Literal["bullish", "bearish", "neutral"],
    start: int,
    end: int,
    key: dict[str, float],
    breakout: float,
    target: float,
    fit: float,
    bo_bar: int | None,
) -> ChartPattern:
    confirmed = bo_bar is not None
    return ChartPattern(
        kind=kind,
        direction=direction,
        start_bar=int(start),
        end_bar=int(end),
        start=ctx.t(start),
        end=ctx.t(end),
        key_prices={k: ctx.px(v) for k, v in key.items()},
        breakout=ctx.px(breakout),
        target=ctx.px(target),
        status="confirmed" if confirmed else "forming",
        breakout_bar=None if bo_bar is None else int(bo_bar),
        confidence=round(_clip01(fit) * (1.0 if confirmed else UNCONFIRMED_FACTOR), 4),
    )


# ----------------------------------------------------------------------------- head and shoulders
def _head_and_shoulders(ctx: _Ctx, j: int) -> ChartPattern | None:
    """Pivots j..j+4 = shoulder, trough, head, trough, shoulder (tops for H&S, bottoms for inverse)."""
    if j + 4 >= len(ctx.pos):
        return None
    s = int(ctx.kind[j])  # +1: tops (H&S), −1: bottoms (inverse)
    pos, pr = ctx.pos[j : j + 5], ctx.price[j : j + 5] * s
    ls, n1, head, n2, rs = pr
    a = ctx.atr[pos[4]]
    p = ctx.p
    if not (head - max(ls, rs) >= p.head_min * a and min(ls, rs) > max(n1, n2)):
        return None
    if abs(ls - rs) > p.shoulder_tol * a or abs(n1 - n2) > p.neckline_tol * a:
        return None
    if j >= 1 and ctx.price[j - 1] * s > min(n1, n2):  # price must rise into the left shoulder
        return None
    slope = (n2 - n1) / (pos[3] - pos[1])

    def neck(i: int) -> float:
        return (n1 + slope * (i - pos[1])) * s

    head_abs = head * s
    bo, void = _first_cross(
        ctx,
        int(pos[4]),
        neck,
        above=s < 0,
        invalid_at=lambda i: (ctx.high[i] > head_abs) if s > 0 else (ctx.low[i] < head_abs),
    )
    if void:
        return None
    at = int(bo) if bo is not None else len(ctx.close) - 1
    height = head - (n1 + slope * (pos[2] - pos[1]))
    fit = np.mean(
        [
            1 - abs(ls - rs) / (p.shoulder_tol * a),
            1 - abs(n1 - n2) / (p.neckline_tol * a),
            _clip01((head - max(ls, rs)) / (2 * a)),
        ]
    )
    breakout = neck(at)
    return _make(
        ctx,
        "head_and_shoulders" if s > 0 else "inverse_head_and_shoulders",
        "bearish" if s > 0 else "bullish",
        int(pos[0]),
        int(pos[4]),
        {
            "left_shoulder": ls * s,
            "head": head_abs,
            "right_shoulder": rs * s,
            "neckline_left": n1 * s,
            "neckline_right": n2 * s,
        },
        breakout,
        breakout - s * height,
        float(fit),
        bo,
    )


# ----------------------------------------------------------------------------- double top / bottom
def _double(ctx: _Ctx, j: int) -> ChartPattern | None:
    """Pivots j..j+2 = peak, trough, peak (double top) or trough, peak, trough (double bottom)."""
    if j + 2 >= len(ctx.pos):
        return None
    s = int(ctx.kind[j])
    pos, pr = ctx.pos[j : j + 3], ctx.price[j : j + 3] * s
    p1, mid, p2 = pr
    a = ctx.atr[pos[2]]
    p = ctx.p
    if abs(p1 - p2) > p.equal_tol * a:
        return None
    if j >= 1 and ctx.price[j - 1] * s > mid:  # price must rise (fall) into the first top (bottom)
        return None
    if j + 3 < len(ctx.pos) and j + 4 < len(ctx.pos) and ctx.price[j + 4] * s > max(p1, p2) - p.equal_tol * a:
        return None  # a third equal peak: a range or triple top, not a double
    depth = min(p1, p2) - mid
    extreme = max(p1, p2) * s + s * p.equal_tol * a
    bo, void = _first_cross(
        ctx,
        int(pos[2]),
        lambda i: mid * s,
        above=s < 0,
        invalid_at=lambda i: (ctx.high[i] > extreme) if s > 0 else (ctx.low[i] < extreme),
    )
    if void:
        return None
    fit = np.mean([1 - abs(p1 - p2) / (p.equal_tol * a), _clip01(depth / (4 * a))])
    return _make(
        ctx,
        "double_top" if s > 0 else "double_bottom",
        "bearish" if s > 0 else "bullish",
        int(pos[0]),
        int(pos[2]),
        {"first": p1 * s, "second": p2 * s, "neckline": mid * s},
        mid * s,
        (mid - depth) * s,
        float(fit),
        bo,
    )


# ----------------------------------------------------------------------------- triangles and channels
def _line(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    slope, icept = np.polyfit(x.astype(float), y, 1)
    return float(slope), float(icept)


def _lines(ctx: _Ctx, j: int) -> ChartPattern | None:
    """Least-squares lines through the highs and the lows of pivots j … j+line_pivots−1."""
    p = ctx.p
    k = p.line_pivots
    if j + k > len(ctx.pos):
        return None
    pos, kind, pr = ctx.pos[j : j + k], ctx.kind[j : j + k], ctx.price[j : j + k]
    hi, lo = kind > 0, kind < 0
    if hi.sum() < 2 or lo.sum() < 2:
        return None
    a = ctx.atr[pos[-1]]
    x0, x1 = int(pos[0]), int(pos[-1])
    sh, ih = _line(pos[hi], pr[hi])
    sl, il = _line(pos[lo], pr[lo])
    resid = max(np.abs(pr[hi] - (sh * pos[hi] + ih)).max(), np.abs(pr[lo] - (sl * pos[lo] + il)).max())
    if resid > p.fit_tol * a:
        return None
    span = x1 - x0
    dh, dl = sh * span, sl * span  # how far each line moves over the pattern
    w0 = (sh * x0 + ih) - (sl * x0 + il)
    w1 = (sh * x1 + ih) - (sl * x1 + il)
    if w0 <= 0 or w1 <= 0:
        return None

    def trend(d: float) -> int:
        return 0 if abs(d) <= p.flat_tol * a else (1 if d > 0 else -1)

    th, tl = trend(dh), trend(dl)
    converging = w1 <= 0.75 * w0
    parallel = abs(dh - dl) <= p.flat_tol * a
    kind_name: str | None = None
    direction: Literal["bullish", "bearish", "neutral"] = "neutral"
    if converging and th == 0 and tl == 1:
        kind_name, direction = "ascending_triangle", "bullish"
    elif converging and th == -1 and tl == 0:
        kind_name, direction = "descending_triangle", "bearish"
    elif converging and th == -1 and tl == 1:
        kind_name = "symmetric_triangle"
    elif parallel and th == tl == 1:
        kind_name, direction = "ascending_channel", "bullish"
    elif parallel and th == tl == -1:
        kind_name, direction = "descending_channel", "bearish"
    elif parallel and th == tl == 0:
        kind_name = "horizontal_channel"
    if kind_name is None:
        return None
    if direction == "neutral" and kind_name == "symmetric_triangle" and j >= 1:
        # a symmetric triangle continues the move into it
        direction = "bullish" if ctx.kind[j - 1] < 0 else "bearish"

    def upper(i: int) -> float:
        return sh * i + ih

    def lower(i: int) -> float:
        return sl * i + il

    up_bo, _ = _first_cross(ctx, x1, upper, above=True)
    dn_bo, _ = _first_cross(ctx, x1, lower, above=False)
    if kind_name.endswith("channel"):
        # a channel is confirmed by its continuation-side break (up for ascending, down for descending,
        # the first break for a range); its target is one channel width beyond
        if direction == "bullish":
            bo, side = up_bo, 1
        elif direction == "bearish":
            bo, side = dn_bo, -1
        else:
            cand = [(b, sd) for b, sd in ((up_bo, 1), (dn_bo, -1)) if b is not None]
            bo, side = min(cand) if cand else (None, 1)
    else:
        side = 1 if direction == "bullish" else -1
        bo = up_bo if side > 0 else dn_bo
    at = int(bo) if bo is not None else len(ctx.close) - 1
    breakout = upper(at) if side > 0 else lower(at)
    fit = np.mean([1 - resid / (p.fit_tol * a), _clip01(k / 6)])
    return _make(
        ctx,
        kind_name,
        direction,
        x0,
        x1,
        {"upper_start": upper(x0), "upper_end": upper(x1), "lower_start": lower(x0), "lower_end": lower(x1)},
        breakout,
        breakout + side * w0,
        float(fit),
        bo,
    )


# ----------------------------------------------------------------------------- flags
def _flag(ctx: _Ctx, j: int) -> ChartPattern | None:
    """Pole = the leg from pivot j to pivot j+1 (≥ pole_min·a within pole_max_bars); flag = the
    following bars, which must stay within half the pole (range and retracement) for at least
    flag_min_bars and drift against the pole, until a close beyond the flag's extreme (the breakout)
    within flag_max_bars. Without a breakout it is reported only while it is still forming at the
    end of the data."""
    if j + 1 >= len(ctx.pos):
        return None
    p = ctx.p
    s = int(ctx.kind[j + 1])  # +1: pole up to a high (bull flag), −1: pole down (bear flag)
    p0, p1 = int(ctx.pos[j]), int(ctx.pos[j + 1])
    a = ctx.atr[p1]
    top = ctx.price[j + 1]
    pole = (top - ctx.price[j]) * s
    if pole < p.pole_min * a:
        return None
    # the pole starts where price last left its base (within 10 % of the pole of the pivot)
    base = (ctx.low[p0:p1] - ctx.price[j]) if s > 0 else (ctx.price[j] - ctx.high[p0:p1])
    p0 = p0 + int(np.flatnonzero(base <= 0.1 * pole)[-1])
    if p1 - p0 > p.pole_max_bars:
        return None
    n = len(ctx.close)
    hi, lo = -np.inf, np.inf
    bo = None
    end = p1
    for i in range(p1 + 1, min(n, p1 + p.flag_max_bars + 2)):
        if i - p1 > p.flag_min_bars and (ctx.close[i] - (hi if s > 0 else lo)) * s > 0:
            bo = i
            break
        hi, lo = max(hi, ctx.high[i]), min(lo, ctx.low[i])
        beyond_pole = hi > top if s > 0 else lo < top
        if hi - lo > 0.5 * pole or (top - (lo if s > 0 else hi)) * s > 0.5 * pole or beyond_pole:
            return None
        end = i
    if end - p1 < p.flag_min_bars or (bo is None and end < n - 1):
        return None
    rng = hi - lo
    retrace = (top - (lo if s > 0 else hi)) * s
    x = np.arange(p1 + 1, end + 1)
    slope = np.polyfit(x.astype(float), ctx.close[p1 + 1 : end + 1], 1)[0] * s
    if slope > 0.1 * a:  # a flag drifts against (or sideways to) the pole
        return None
    level = hi if s > 0 else lo
    fit = np.mean([_clip01(pole / (2 * p.pole_min * a)), 1 - rng / (0.5 * pole), 1 - retrace / (0.5 * pole)])
    return _make(
        ctx,
        "bull_flag" if s > 0 else "bear_flag",
        "bullish" if s > 0 else "bearish",
        p0,
        end,
        {"pole_start": ctx.price[j], "pole_end": top, "flag_high": hi, "flag_low": lo},
        level,
        level + s * pole,
        float(fit),
        bo,
    )


# ----------------------------------------------------------------------------- driver
_DETECTORS = {
    "head_and_shoulders": _head_and_shoulders,
    "double": _double,
    "lines": _lines,
    "flag": _flag,
}


def _family(kind: str) -> str:
    if "head_and_shoulders" in kind:
        return "head_and_shoulders"
    if kind.startswith("double"):
        return "double"
    if kind.endswith("flag"):
        return "flag"
    return "lines"


def _dedupe(found: list[ChartPattern]) -> list[ChartPattern]:
    """Among overlapping detections of the same kind keep the most confident (greedy)."""
    kept: list[ChartPattern] = []
    for c in sorted(found, key=lambda x: (-x.confidence, x.end_bar)):
        overlap = False
        for k in kept:
            if k.kind != c.kind:
                continue
            inter = min(k.end_bar, c.end_bar) - max(k.start_bar, c.start_bar)
            if inter > 0.5 * min(k.end_bar - k.start_bar, c.end_bar - c.start_bar):
                overlap = True
                break
        if not overlap:
            kept.append(c)
    return sorted(kept, key=lambda x: (x.end_bar, x.kind))


def detect_chart_patterns(
    bars: pd.DataFrame,
    symbol: str = "NQ",
    kinds: Sequence[str] | None = None,
    params: PatternParams | None = None,
    last_bars: int | None = None,
    min_confidence: float = 0.0,
) -> list[ChartPattern]:
    """Detect chart patterns (``PATTERN_KINDS``) in ``bars``; with ``last_bars``, only patterns whose
    last pivot lies in the last ``last_bars`` bars. Prices are rounded to the contract's tick."""
    p = params or PatternParams()
    _check_number("detect_chart_patterns", "prominence", p.prominence)
    _check_period("detect_chart_patterns", "atr_period", p.atr_period, 1)
    _check_period("detect_chart_patterns", "line_pivots", p.line_pivots, 4)
    wanted = set(PATTERN_KINDS if kinds is None else kinds)
    unknown = wanted - set(PATTERN_KINDS)
    if unknown:
        raise InvalidArgumentError(
            f"unknown chart pattern(s) {', '.join(sorted(unknown))}; known: {', '.join(PATTERN_KINDS)}"
        )
    cols = _bar_columns(bars, ("high", "low", "close"), "detect_chart_patterns")
    for k, arr in cols.items():
        if _first_valid(arr, k, "detect_chart_patterns") != 0:
            raise InvalidArgumentError(f"detect_chart_patterns: {k} starts with NaN; drop missing bars first")
    if len(bars) <= p.atr_period + 1:
        raise InvalidArgumentError(
            f"detect_chart_patterns: needs more than {p.atr_period + 1} bars, got {len(bars)}"
        )
    h, lo, c = cols["high"], cols["low"], cols["close"]
    a = talib.ATR(h, lo, c, timeperiod=p.atr_period)
    flags = kernels.swing_pivots(h, lo, a, p.prominence)
    pos = np.flatnonzero(flags)
    kind = flags[pos].astype(np.int64)
    price = np.where(kind > 0, h[pos], lo[pos])
    ctx = _Ctx(h, lo, c, a, bars.index, pos, kind, price, p, get_contract(symbol).tick_size)
    families = {_family(k) for k in wanted}
    first_j = 0
    if last_bars is not None:
        last_bars = _check_period("detect_chart_patterns", "last_bars", last_bars, 1)
        first_j = max(0, int(np.searchsorted(pos, len(bars) - last_bars)) - p.line_pivots - 4)
    found: list[ChartPattern] = []
    for fam in families:
        det = _DETECTORS[fam]
        for j in range(first_j, len(pos)):
            r = det(ctx, j)
            recent_enough = r is not None and (last_bars is None or r.end_bar >= len(bars) - last_bars)
            if r is not None and recent_enough and r.kind in wanted and r.confidence >= min_confidence:
                found.append(r)
    return _dedupe(found)
