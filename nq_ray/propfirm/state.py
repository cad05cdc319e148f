"""An account's path under a rule pack: pure functions over an immutable ``PropState``.

The caller (backtester, desk, challenge simulator) reports the account at each mark — closed balance and
equity — with ``mark``; ``close_day`` closes a CME session day (``mark`` does it too when a mark falls in a
later session day). ``evaluate`` gives every rule's value against its limit; ``order_check`` is what the
risk gate adds for a pack; ``flatten_due`` says when positions must go.

Worked example (docs/propfirm.md, tests/propfirm/test_state.py): start 50,000, max loss 2,000; the day's
equity peaks at 51,500 and the day closes at 50,800. The intraday-equity floor followed the peak to
51,500 − 2,000 = 49,500 during the day; the end-of-day-balance floor stayed at 48,000 all day and moves to
50,800 − 2,000 = 48,800 at the close. Next day, equity 49,400 fails the first account and not the second.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import date, datetime, time
from typing import Any, Protocol

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from nq_ray.domain.contracts import normalize_symbol
from nq_ray.errors import InvalidArgumentError
from nq_ray.market.sessions import session_date, to_exchange_time
from nq_ray.propfirm.model import (
    PASSING_KINDS,
    WEEKDAYS,
    Consistency,
    DailyLoss,
    FlatBy,
    MaxContracts,
    MaxLoss,
    MinTradingDays,
    NewsRule,
    ProfitTarget,
    RulePack,
    RuleState,
    RuleStatus,
)

_EPS = 1e-9
REOPEN = time(18, 0)  # the CME Globex reopen (ET): a flat-by window ends there
WARN_SHARE = 0.25  # a limit with less room than 25% of its allowance is a "warning"


class PropState(BaseModel):
    """The account under a pack at its last mark (frozen: every update returns a new state)."""

    model_config = ConfigDict(frozen=True)

    pack: str
    start_balance_usd: float
    balance_usd: float = Field(description="closed (realised) balance incl. commissions")
    equity_usd: float = Field(description="balance + open P&L")
    session_day: date = Field(description="CME session date of the last mark")
    day_start_balance_usd: float = Field(description="closed balance at the start of session_day")
    high_eod_balance_usd: float = Field(description="highest end-of-day balance so far (start included)")
    high_equity_usd: float = Field(description="highest equity at any mark (start included)")
    day_pnl_usd: dict[str, float] = Field(default_factory=dict, description="closed day (ISO) → P&L")
    traded_days: list[str] = Field(default_factory=list, description="session days (ISO) with a fill")
    failed: RuleStatus | None = None
    failed_at: datetime | None = None
    stopped_day: str | None = Field(default=None, description="session day (ISO) a stop_day rule hit")
    passed_at: datetime | None = None
    last_mark: datetime | None = None


class BlackoutLike(Protocol):
    """What ``flatten_due`` needs of an economic-calendar blackout (``nq_ray.market.calendar.Blackout``)."""

    @property
    def rule(self) -> Any: ...  # .action: "block" | "flatten"

    @property
    def event(self) -> Any: ...  # .kind, .title, .time


# --------------------------------------------------------------------------------------------------
# the path


def start(pack: RulePack, at: datetime, balance_usd: float | None = None) -> PropState:
    """A fresh account under ``pack`` at ``at`` (balance: the pack's starting balance unless given)."""
    bal = float(pack.starting_balance_usd if balance_usd is None else balance_usd)
    if not (math.isfinite(bal) and bal > 0):
        raise InvalidArgumentError(f"starting balance must be > 0, got {balance_usd}")
    return PropState(
        pack=pack.name,
        start_balance_usd=bal,
        balance_usd=bal,
        equity_usd=bal,
        session_day=session_date(at),
        day_start_balance_usd=bal,
        high_eod_balance_usd=bal,
        high_equity_usd=bal,
        last_mark=at,
    )


def close_day(pack: RulePack, state: PropState, at: datetime | None = None) -> PropState:
    """Close ``state.session_day``: its P&L (balance change) goes into ``day_pnl_usd`` and its closing
    balance into ``high_eod_balance_usd``; then the passing conditions are checked (a pass is decided at
    the end of a day). Idempotent: closing the same day twice records the same numbers."""
    day = state.session_day.isoformat()
    pnl = dict(state.day_pnl_usd)
    pnl[day] = state.balance_usd - state.day_start_balance_usd
    closed = state.model_copy(
        update={
            "day_pnl_usd": pnl,
            "high_eod_balance_usd": max(state.high_eod_balance_usd, state.balance_usd),
        }
    )
    return _judge(pack, closed, at or state.last_mark, passing=True)


def mark(
    pack: RulePack,
    state: PropState,
    *,
    at: datetime,
    balance_usd: float,
    equity_usd: float,
    traded: bool = False,
) -> PropState:
    """The account at ``at``: rolls the session day first when ``at`` is in a later CME session day
    (closing the previous one), updates the highs, then evaluates: ``failed``/``failed_at`` on the first
    ``fail`` rule breached, ``stopped_day`` on a ``stop_day`` breach. ``traded``: a fill happened."""
    if not (math.isfinite(balance_usd) and math.isfinite(equity_usd)):
        raise InvalidArgumentError(
            f"mark needs finite balance and equity, got balance {balance_usd}, equity {equity_usd}; "
            "fix the account feed"
        )
    day = session_date(at)
    if day < state.session_day:
        raise InvalidArgumentError(
            f"mark at {at.isoformat()} is in session day {day}, before the state's {state.session_day}; "
            "marks must move forward in time"
        )
    if day > state.session_day:
        state = close_day(pack, state, at)
        state = state.model_copy(update={"session_day": day, "day_start_balance_usd": state.balance_usd})
    traded_days = state.traded_days
    if traded and day.isoformat() not in traded_days:
        traded_days = [*traded_days, day.isoformat()]
    state = state.model_copy(
        update={
            "balance_usd": float(balance_usd),
            "equity_usd": float(equity_usd),
            "high_equity_usd": max(state.high_equity_usd, float(equity_usd)),
            "traded_days": traded_days,
            "last_mark": at,
        }
    )
    return _judge(pack, state, at, passing=False)


def _judge(pack: RulePack, state: PropState, at: datetime | None, *, passing: bool) -> PropState:
    if state.failed is not None:
        return state
    rows = evaluate(pack, state)
    update: dict[str, Any] = {}
    for row in rows:
        if row.state != "breached":
            continue
        if row.consequence == "fail":
            update.update(failed=row, failed_at=at)
            break
        if row.consequence == "stop_day" and state.stopped_day != state.session_day.isoformat():
            update["stopped_day"] = state.session_day.isoformat()
    if passing and "failed" not in update and state.passed_at is None:
        goals = [r for r in rows if r.kind in PASSING_KINDS]
        if goals and all(r.state == "met" for r in goals):
            update["passed_at"] = at
    return state.model_copy(update=update) if update else state


# --------------------------------------------------------------------------------------------------
# evaluation


def max_loss_floor(pack: RulePack, state: PropState, rule: MaxLoss) -> float:
    """The equity level at which ``rule`` is breached now (see ``MaxLoss`` for each flavour)."""
    if rule.trailing == "static":
        return state.start_balance_usd - rule.amount_usd
    ref = state.high_eod_balance_usd if rule.trailing == "eod_balance" else state.high_equity_usd
    floor = ref - rule.amount_usd
    if rule.stop_at_usd is not None:
        floor = min(floor, rule.stop_at_usd + (state.start_balance_usd - pack.starting_balance_usd))
    return floor


def limit_state(distance: float, allowance: float) -> RuleState:
    """``breached`` with no room left, ``warning`` under ``WARN_SHARE`` of the allowance, else ``ok``."""
    if distance <= _EPS:
        return "breached"
    return "warning" if distance < WARN_SHARE * allowance else "ok"


def exposure_minis(rule: MaxContracts, positions: Mapping[str, int]) -> float:
    """Open contracts across every symbol in mini-equivalents (1 micro = 1/micros_per_mini)."""
    return sum(abs(int(n)) * rule.weight(normalize_symbol(s)) for s, n in positions.items())


def _day_pnls(state: PropState) -> dict[str, float]:
    days = dict(state.day_pnl_usd)
    days[state.session_day.isoformat()] = state.balance_usd - state.day_start_balance_usd
    return days


def in_flat_window(rule: FlatBy, at: datetime) -> bool:
    """True from the rule's time (ET) on one of its weekdays until the 18:00 ET reopen."""
    et = to_exchange_time(at)
    return WEEKDAYS[et.weekday()] in rule.days and rule.time <= et.time() < REOPEN


def _minutes_to_flat(rule: FlatBy, at: datetime) -> float:
    """Minutes from ``at`` to the rule's next flat-by time (0 inside the window)."""
    if in_flat_window(rule, at):
        return 0.0
    et = to_exchange_time(at)
    for ahead in range(8):
        d = (et + pd.Timedelta(days=ahead)).date()
        if WEEKDAYS[d.weekday()] not in rule.days:
            continue
        target = pd.Timestamp(datetime.combine(d, rule.time), tz=et.tz)
        if target > et:
            return (target - et) / pd.Timedelta(minutes=1)
    return float("inf")  # unreachable: days is never empty


def evaluate(
    pack: RulePack,
    state: PropState,
    *,
    positions: Mapping[str, int] | None = None,
    at: datetime | None = None,
) -> list[RuleStatus]:
    """Every rule's value against its limit, in the pack's order. ``positions`` (root → signed contracts)
    fills in the contract cap's value; ``at`` the flat-by time's distance."""
    out: list[RuleStatus] = []
    for r in pack.rules:
        base: dict[str, Any] = {"rule": r.name, "kind": r.kind, "consequence": r.consequence}
        if isinstance(r, ProfitTarget):
            made = state.balance_usd - state.start_balance_usd
            left = r.amount_usd - made
            ok = left <= _EPS
            out.append(
                RuleStatus(
                    **base,
                    value=made,
                    limit=r.amount_usd,
                    distance=left,
                    unit="usd",
                    state="met" if ok else "pending",
                    message=f"profit ${made:,.2f} of the ${r.amount_usd:,.2f} target"
                    + ("" if ok else f"; ${left:,.2f} to go"),
                )
            )
        elif isinstance(r, MaxLoss):
            floor = max_loss_floor(pack, state, r)
            dist = state.equity_usd - floor
            st = limit_state(dist, r.amount_usd)
            out.append(
                RuleStatus(
                    **base,
                    value=state.equity_usd,
                    limit=floor,
                    distance=dist,
                    unit="usd",
                    state=st,
                    message=f"equity ${state.equity_usd:,.2f} vs max-loss floor ${floor:,.2f} "
                    f"({r.trailing.replace('_', ' ')}, ${r.amount_usd:,.0f})"
                    + (": breached" if st == "breached" else f": ${dist:,.2f} of room"),
                )
            )
        elif isinstance(r, DailyLoss):
            level = state.equity_usd if r.basis == "equity" else state.balance_usd
            today = level - state.day_start_balance_usd
            dist = today + r.amount_usd
            st = limit_state(dist, r.amount_usd)
            if state.stopped_day == state.session_day.isoformat() and r.consequence == "stop_day":
                st = "breached"
            out.append(
                RuleStatus(
                    **base,
                    value=today,
                    limit=-r.amount_usd,
                    distance=dist,
                    unit="usd",
                    state=st,
                    message=f"today's P&L ({r.basis}) ${today:,.2f} vs −${r.amount_usd:,.2f}"
                    + (": breached" if st == "breached" else f": ${dist:,.2f} of room"),
                )
            )
        elif isinstance(r, MaxContracts):
            cap = r.cap_for(state.day_start_balance_usd)
            held = exposure_minis(r, positions) if positions is not None else None
            room = None if held is None else cap - held
            if room is None:
                st = "ok"
            elif room < -_EPS:
                st = "breached"
            else:
                st = "warning" if room < WARN_SHARE * cap else "ok"
            out.append(
                RuleStatus(
                    **base,
                    value=held,
                    limit=float(cap),
                    distance=room,
                    unit="contracts",
                    state=st,
                    message=f"cap {cap} minis ({cap * r.micros_per_mini} micros) at a day-start balance of "
                    f"${state.day_start_balance_usd:,.2f}" + ("" if held is None else f"; {held:g} held"),
                )
            )
        elif isinstance(r, Consistency):
            days = _day_pnls(state)
            total = state.balance_usd - state.start_balance_usd
            best = max(days.values(), default=0.0)
            pct = best / total * 100 if total > _EPS else None
            if pct is None:
                ok = False
            elif r.strict:
                ok = pct < r.max_best_day_pct - _EPS
            else:
                ok = pct <= r.max_best_day_pct + _EPS
            out.append(
                RuleStatus(
                    **base,
                    value=pct,
                    limit=r.max_best_day_pct,
                    distance=None if pct is None else r.max_best_day_pct - pct,
                    unit="pct",
                    state="met" if ok else "pending",
                    message=(
                        "no profit yet"
                        if pct is None
                        else f"best day ${best:,.2f} is {pct:.1f}% of the ${total:,.2f} profit "
                        f"({'below' if r.strict else 'at most'} {r.max_best_day_pct:g}%)"
                    ),
                )
            )
        elif isinstance(r, MinTradingDays):
            n = len(state.traded_days)
            out.append(
                RuleStatus(
                    **base,
                    value=float(n),
                    limit=float(r.days),
                    distance=float(r.days - n),
                    unit="days",
                    state="met" if n >= r.days else "pending",
                    message=f"{n} of {r.days} trading days",
                )
            )
        elif isinstance(r, FlatBy):
            mins = None if at is None else _minutes_to_flat(r, at)
            flat = positions is None or not any(positions.values())
            st = (
                "breached"
                if mins == 0 and not flat
                else ("warning" if mins is not None and mins < 15 else "ok")
            )
            out.append(
                RuleStatus(
                    **base,
                    value=mins,
                    limit=None,
                    distance=mins,
                    unit="minutes",
                    state=st,
                    message=f"flat by {r.time:%H:%M} ET ({', '.join(r.days)})"
                    + (
                        ""
                        if mins is None
                        else f"; {mins:.0f} minutes to go"
                        if mins
                        else "; in the flat window"
                    ),
                )
            )
        elif isinstance(r, NewsRule):
            out.append(
                RuleStatus(
                    **base,
                    unit="minutes",
                    state="ok",
                    message=f"{r.action} {r.before_min} min before to {r.after_min} min after "
                    f"{', '.join(r.kinds)} (enforced by the economic-calendar blackout)",
                )
            )
    return out


# --------------------------------------------------------------------------------------------------
# orders and flattening


def _worst(pos: int, work: int) -> int:
    return max(abs(pos), abs(pos + work))


def order_check(
    pack: RulePack,
    state: PropState,
    *,
    symbol: str,
    side_sign: int,
    contracts: int,
    positions: Mapping[str, int],
    working: Mapping[str, int],
    at: datetime,
    reducing: bool,
) -> tuple[list[tuple[str, str, str]], int]:
    """What the pack says about an order: ``([(code, message, "deny"|"reduce"), ...], contracts allowed)``.

    Codes: ``prop_failed``, ``prop_stopped_day``, ``prop_max_loss``, ``prop_daily_loss``,
    ``prop_max_contracts`` (reduce to fit, in mini-equivalents, worst case over working orders),
    ``prop_flat_by``. A ``reducing`` order passes everything: an account can always flatten."""
    if reducing:
        return [], contracts
    out: list[tuple[str, str, str]] = []
    today = session_date(at).isoformat()
    if state.failed is not None:
        when = f" at {state.failed_at.isoformat()}" if state.failed_at else ""
        out.append(("prop_failed", f"the {pack.name} account failed{when}: {state.failed.message}", "deny"))
    if state.stopped_day == today:
        out.append(
            (
                "prop_stopped_day",
                f"a stop-for-the-day rule of {pack.name} was hit on session day {today}; "
                "no new risk until the next session day",
                "deny",
            )
        )
    same_day = state.session_day.isoformat() == today
    for row in evaluate(pack, state, at=at):
        if row.state != "breached":
            continue
        if row.kind == "max_loss" and state.failed is None:
            out.append(("prop_max_loss", f"{pack.name} {row.rule}: {row.message}", "deny"))
        elif row.kind == "daily_loss" and same_day and state.stopped_day != today:
            out.append(("prop_daily_loss", f"{pack.name} {row.rule}: {row.message}", "deny"))
    for r in pack.rules_of("flat_by"):
        if in_flat_window(r, at):
            et = to_exchange_time(at)
            out.append(
                (
                    "prop_flat_by",
                    f"{pack.name} {r.name}: positions must be flat from {r.time:%H:%M} ET until the 18:00 ET "
                    f"reopen; it is {et:%H:%M} ET",
                    "deny",
                )
            )
    allowed = contracts
    cap_rule = pack.rule("max_contracts")
    if isinstance(cap_rule, MaxContracts):
        cap = cap_rule.cap_for(state.day_start_balance_usd)
        sym = normalize_symbol(symbol)
        pos_by = _by_root(positions)
        work_by = _by_root(working)
        others = sum(
            _worst(pos_by.get(k, 0), work_by.get(k, 0)) * cap_rule.weight(k)
            for k in set(pos_by) | set(work_by)
            if k != sym
        )
        p, w, wt = pos_by.get(sym, 0), work_by.get(sym, 0), cap_rule.weight(sym)
        allowed = 0
        for n in range(contracts, 0, -1):
            mine = max(abs(p + side_sign * n), abs(p + w + side_sign * n)) * wt
            if others + mine <= cap + _EPS:
                allowed = n
                break
        if allowed < contracts:
            msg = (
                f"{pack.name} {cap_rule.name}: at most {cap} minis ({cap * cap_rule.micros_per_mini} micros) "
                f"in all at a day-start balance of ${state.day_start_balance_usd:,.2f}; "
                f"{others:g} held in other symbols, {sym} position {p}, working {w}"
            )
            if allowed == 0:
                out.append(("prop_max_contracts", f"{msg}; not even 1 contract fits", "deny"))
            else:
                out.append(("prop_max_contracts", f"{msg}; {contracts} reduced to {allowed}", "reduce"))
    if any(a == "deny" for _, _, a in out):
        allowed = 0
    return out, allowed


def _by_root(book: Mapping[str, int]) -> dict[str, int]:
    out: dict[str, int] = {}
    for k, n in book.items():
        root = normalize_symbol(k)
        out[root] = out.get(root, 0) + int(n)
    return out


def flatten_due(
    pack: RulePack, state: PropState, at: datetime, *, blackout: BlackoutLike | None = None
) -> str | None:
    """Why positions must be flattened now, or None: the account failed, a stop-for-the-day rule hit
    today, the flat-by time is reached, or ``blackout`` (the calendar's, for the pack's ``news_rules``)
    is a ``flatten`` window."""
    if state.failed is not None:
        return f"{pack.name}: account failed ({state.failed.rule}: {state.failed.message})"
    today = session_date(at).isoformat()
    if state.stopped_day == today:
        return f"{pack.name}: stop-for-the-day rule hit on session day {today}"
    for r in pack.rules_of("flat_by"):
        if in_flat_window(r, at):
            return f"{pack.name} {r.name}: flat by {r.time:%H:%M} ET"
    if blackout is not None and getattr(blackout.rule, "action", None) == "flatten":
        ev = blackout.event
        return f"{pack.name}: news flatten window around {getattr(ev, 'title', '') or ev.kind} at {ev.time}"
    return None


def news_rules(pack: RulePack) -> list[dict[str, Any]]:
    """The pack's news rules as economic-calendar blackout rules (``BlackoutRule(**row)``): pass them to
    ``EconomicCalendar.blackout_at(at, rules)`` and the result to the gate's ``blackout=``."""
    return [
        {"kinds": list(r.kinds), "before_min": r.before_min, "after_min": r.after_min, "action": r.action}
        for r in pack.rules_of("news")
    ]


__all__ = [
    "BlackoutLike",
    "PropState",
    "close_day",
    "evaluate",
    "exposure_minis",
    "flatten_due",
    "in_flat_window",
    "mark",
    "max_loss_floor",
    "news_rules",
    "order_check",
    "start",
]
