"""The pre-trade risk gate: ``check_order`` → ``RiskVerdict``. A denial is a value, never an exception.

Rules (docs/risk.md, "Limits and the gate", has the worked examples):

* Size limits (contracts per symbol, total contracts, notional, margin use, loss at the stop vs the room
  left under the daily-loss and trailing-drawdown limits) **reduce** the order to the largest whole
  number of contracts that fits; they deny only when not even one contract fits.
* State limits (market closed, outside the allowed windows, order rate, daily loss reached, trailing
  drawdown reached, circuit breaker, missing stop-loss, reduce-only that would add) **deny**.
* An order that only reduces an open position (opposite side, quantity ≤ |position|, and still reducing
  with the working orders filled: |position + working + order| ≤ |position + working|) takes no new risk:
  it skips the size limits, the loss and drawdown limits, the circuit breaker and the windows, so a
  trader can always flatten; it still needs an open market and a free slot in the order-rate limit. A
  second exit while the first is working is checked as new risk (several "exits" of one position, each
  judged alone, would otherwise carry it through zero and past every size limit).
* Exposure is worst-case: per symbol max(|position + order|, |position + working + order|), so
  working orders count whether they fill or not.
* A halt (the desk's kill switch or an automatic halt, ``halt_reason``) **denies** every order that opens
  or adds to a position (code ``halted``); orders that only reduce a position (as above) still pass, so a
  halted account can always be flattened.

Every verdict names what it was checked against: ``limits`` (the values in force) and, when the caller
knows it, ``settings_version`` (the live settings overlay's version, ``nq_ray.store.live``), so what a
caller shows beside a verdict is what the gate applied.

A prop-firm rule pack (``prop=(pack, state)``, ``nq_ray.propfirm``) adds its reasons (codes ``prop_*``:
failed account, stopped day, max loss, daily loss, contract cap in mini-equivalents, flat-by time); orders
that only reduce a position pass them all. Every verdict, approved or not, carries ``distances``: one
``RuleStatus`` per limit — the gate's own (``limits.max_daily_loss_usd``, ``limits.trailing_drawdown_usd``,
``limits.max_contracts_per_symbol``, ``limits.max_total_contracts``) and each rule of the pack — with its
value, limit and the room left.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from nq_ray.domain.contracts import get_contract, normalize_symbol
from nq_ray.domain.orders import AccountState, Order
from nq_ray.market.calendar import Blackout
from nq_ray.market.sessions import is_open, to_exchange_time
from nq_ray.propfirm.model import RulePack, RuleStatus
from nq_ray.propfirm.state import PropState, evaluate, limit_state, order_check
from nq_ray.risk.exposure import lookup_price, worst_case_contracts
from nq_ray.risk.limits import RiskLimits

_EPS = 1e-9


class RiskAction(StrEnum):
    DENY = "deny"
    REDUCE = "reduce"


class RiskReason(BaseModel):
    """Why the gate denied or reduced an order: a stable ``code`` and a message with the numbers."""

    model_config = ConfigDict(frozen=True)

    code: str
    message: str
    action: RiskAction = RiskAction.DENY


class RiskVerdict(BaseModel):
    """The gate's answer. ``adjusted_contracts`` is what may be sent: the order's quantity, fewer when a
    size limit reduced it (a ``reduce`` reason says which), 0 when denied."""

    model_config = ConfigDict(frozen=True)

    approved: bool
    reasons: list[RiskReason] = Field(default_factory=list)
    adjusted_contracts: int = Field(ge=0)
    requested_contracts: int = Field(ge=0)
    limits: RiskLimits | None = Field(default=None, description="the limits this order was checked against")
    settings_version: int | None = Field(
        default=None, description="the live settings version those limits come from (None: not known)"
    )
    distances: list[RuleStatus] = Field(
        default_factory=list, description="every limit's value, limit and room left (gate and prop pack)"
    )

    @property
    def reduced(self) -> bool:
        return self.approved and self.adjusted_contracts < self.requested_contracts


# --------------------------------------------------------------------------------------------------
# size limits as intervals of n (contracts of this order) that satisfy them


def _abs_interval(c: int, s: int, limit: int) -> tuple[float, float]:
    """The n with |c + s·n| ≤ limit, as a real interval (empty when lo > hi)."""
    if s > 0:
        return (-limit - c, limit - c)
    return (c - limit, c + limit)


def _exposure_interval(pos: int, work: int, s: int, limit: int) -> tuple[float, float]:
    a = _abs_interval(pos, s, limit)
    b = _abs_interval(pos + work, s, limit)
    return (max(a[0], b[0]), min(a[1], b[1]))


def _best_n(lo: float, hi: float, q: int) -> int:
    """Largest whole n in [max(lo, 1), min(hi, q)], or 0 when there is none."""
    top = math.floor(min(hi, q) + _EPS)
    bottom = math.ceil(max(lo, 1) - _EPS)
    return top if top >= bottom else 0


class _SizeRule:
    def __init__(self, code: str, lo: float, hi: float, message: str) -> None:
        self.code, self.lo, self.hi, self.message = code, lo, hi, message


def _now(clock: Callable[[], datetime] | None, acct: AccountState, order: Order) -> datetime | None:
    if clock is not None:
        return clock()
    return acct.as_of or order.created_at


def _by_root(book: Mapping[str, int]) -> dict[str, int]:
    out: dict[str, int] = {}
    for k, n in book.items():
        root = normalize_symbol(k)
        out[root] = out.get(root, 0) + int(n)
    return out


def _prices(mark_price: float | Mapping[str, float] | None, symbol: str) -> dict[str, float]:
    if mark_price is None:
        return {}
    raw = mark_price if isinstance(mark_price, Mapping) else {symbol: mark_price}
    # a NaN, infinite or non-positive mark is no price at all: the limits that need one deny
    return {normalize_symbol(str(k)): float(v) for k, v in raw.items() if math.isfinite(v) and v > 0}


def check_order(
    order: Order,
    account_state: AccountState,
    limits: RiskLimits,
    *,
    mark_price: float | Mapping[str, float] | None = None,
    clock: Callable[[], datetime] | None = None,
    margins: Mapping[str, float] | None = None,
    halt_reason: str | None = None,
    settings_version: int | None = None,
    blackout: Blackout | None = None,
    prop: tuple[RulePack, PropState] | None = None,
) -> RiskVerdict:
    """Check ``order`` against ``limits`` for ``account_state``; never raises for a breach.

    ``mark_price`` is this symbol's price, or a mapping root → price when other symbols are held
    (needed only by the notional limit; a micro takes its parent's price). The order's own limit or
    stop price is used as its entry price when it has one. "Now" comes from ``clock``, else
    ``account_state.as_of``, else ``order.created_at``; with none of them the order is denied.
    ``margins`` overrides the initial margin per root symbol in USD (``Settings.risk.margins``).
    ``halt_reason`` (not None while trading is halted) denies every order that does not only reduce a
    position. ``blackout`` (the economic-event window in force now, ``EconomicCalendar.blackout_at``)
    denies the same orders with code ``event_blackout``. ``prop`` (a rule pack and the account's state
    under it) adds the pack's reasons. The verdict carries ``limits``, ``settings_version`` and
    ``distances`` (every limit's room left).
    """
    verdict = _check(order, account_state, limits, mark_price, clock, margins, halt_reason, blackout, prop)
    now = _now(clock, account_state, order)
    return verdict.model_copy(
        update={
            "limits": limits,
            "settings_version": settings_version,
            "distances": distances(account_state, limits, prop=prop, at=now),
        }
    )


def _check(
    order: Order,
    account_state: AccountState,
    limits: RiskLimits,
    mark_price: float | Mapping[str, float] | None,
    clock: Callable[[], datetime] | None,
    margins: Mapping[str, float] | None,
    halt_reason: str | None,
    blackout: Blackout | None = None,
    prop: tuple[RulePack, PropState] | None = None,
) -> RiskVerdict:
    acct, sym, q, s = account_state, order.symbol, order.quantity, order.side.sign
    contract = get_contract(sym)
    positions, working = _by_root(acct.positions), _by_root(acct.open_orders)
    pos, work = positions.get(sym, 0), working.get(sym, 0)
    reasons: list[RiskReason] = []

    def deny(code: str, message: str) -> None:
        reasons.append(RiskReason(code=code, message=message, action=RiskAction.DENY))

    bad = [
        name
        for name in (
            "equity_usd",
            "starting_balance_usd",
            "equity_high_usd",
            "realized_pnl_today_usd",
            "unrealized_pnl_usd",
        )
        if not math.isfinite(getattr(acct, name))
    ]
    if bad:  # fail closed: a broken account state never lets an order through, and never raises
        deny("invalid_account_state", f"account state has non-finite {', '.join(bad)}; fix the account feed")
        return _verdict(reasons, q, 0)

    # an exit is one only if it still reduces once the working orders fill too: with a long 2 and a sell 2
    # working, another sell would open a short (each exit alone "reduces" the position it sees)
    closes = pos != 0 and s == -(1 if pos > 0 else -1) and q <= abs(pos)
    reducing = closes and abs(pos + work + s * q) <= abs(pos + work)
    if order.reduce_only and not reducing:
        deny(
            "reduce_only",
            f"reduce-only {order.side} {q} {sym} would not reduce the position of {pos}; "
            f"send at most {abs(pos)} on the {'sell' if pos > 0 else 'buy'} side"
            if pos
            else f"reduce-only {order.side} {q} {sym} with no {sym} position to reduce",
        )

    if halt_reason is not None and not reducing:
        deny(
            "halted",
            f"trading is halted ({halt_reason[:200]}): {order.side} {q} {sym} would open or add to a "
            f"position (position {pos}); only orders that reduce a position are accepted until resume",
        )

    if blackout is not None and not reducing:
        deny(
            "event_blackout",
            f"economic-event blackout: {blackout.describe()}; {order.side} {q} {sym} would open or add to "
            f"a position (position {pos}); new risk is refused until {blackout.ends:%H:%M %Z}",
        )

    # ---- time: market open, allowed windows ----------------------------------------------------
    now = _now(clock, acct, order)
    if now is None:
        deny("time_unknown", "no clock, account_state.as_of or order.created_at: cannot check sessions")
    else:
        et = to_exchange_time(now)
        if limits.trade_only_when_open and not is_open(et):
            deny("market_closed", f"CME Globex is closed at {et:%a %Y-%m-%d %H:%M %Z}")
        if (
            limits.allowed_windows
            and not reducing
            and not any(w.contains(et.time()) for w in limits.allowed_windows)
        ):
            spans = ", ".join(f"{w.start:%H:%M}–{w.end:%H:%M}" for w in limits.allowed_windows)
            deny("outside_window", f"{et:%H:%M} ET is outside the allowed windows ({spans} ET) for new risk")

    # ---- order rate ------------------------------------------------------------------------------
    if (
        limits.max_orders_per_minute is not None
        and acct.orders_last_minute + 1 > limits.max_orders_per_minute
    ):
        deny(
            "order_rate",
            f"{acct.orders_last_minute} orders in the last minute; one more exceeds the limit of "
            f"{limits.max_orders_per_minute} per minute",
        )

    # ---- prop-firm rule pack (reducing orders pass it: an account can always flatten) ------------------
    prop_allowed = q
    if prop is not None and now is not None and not reducing:
        found, prop_allowed = order_check(
            prop[0],
            prop[1],
            symbol=sym,
            side_sign=s,
            contracts=q,
            positions=positions,
            working=working,
            at=now,
            reducing=reducing,
        )
        reasons.extend(RiskReason(code=c, message=m, action=RiskAction(a)) for c, m, a in found)

    if reducing:
        return _verdict(reasons, q, q)

    # ---- account state: daily loss, trailing drawdown, circuit breaker -----------------------------
    daily_pnl = acct.daily_pnl_usd
    if limits.max_daily_loss_usd is not None and daily_pnl <= -limits.max_daily_loss_usd:
        deny(
            "daily_loss_limit",
            f"today's P&L ${daily_pnl:,.2f} has reached the daily loss limit of "
            f"−${limits.max_daily_loss_usd:,.2f}; no new risk until the next session",
        )
    equity_high = max(acct.equity_high_usd, acct.equity_usd)
    floor = limits.trailing_floor_usd(equity_high, acct.starting_balance_usd)
    if floor is not None and acct.equity_usd <= floor:
        deny(
            "trailing_drawdown",
            f"equity ${acct.equity_usd:,.2f} is at or below the trailing drawdown floor ${floor:,.2f} "
            f"(high ${equity_high:,.2f} − ${limits.trailing_drawdown_usd:,.2f}"
            f"{', locked at the starting balance' if limits.trailing_lock_at_start else ''})",
        )
    if limits.max_consecutive_losses is not None and acct.consecutive_losses >= limits.max_consecutive_losses:
        deny(
            "circuit_breaker",
            f"{acct.consecutive_losses} losing trades in a row (limit {limits.max_consecutive_losses}); "
            "trading halted until the count is reset",
        )

    # ---- prices ----------------------------------------------------------------------------------
    prices = _prices(mark_price, sym)
    entry = order.limit_price or order.stop_price or lookup_price(prices, sym)

    stop_pts: float | None = None
    b = order.bracket
    if b is not None and b.stop_loss_ticks is not None:
        stop_pts = b.stop_loss_ticks * contract.tick_size
    elif b is not None and b.stop_loss_price is not None:
        if entry is None:
            deny("no_price", "the stop-loss is a price but the order has no entry price: pass mark_price")
        elif s * (entry - b.stop_loss_price) <= 0:
            deny(
                "stop_wrong_side",
                f"stop-loss {b.stop_loss_price} is not {'below' if s > 0 else 'above'} the entry {entry} "
                f"of a {order.side}",
            )
        else:
            stop_pts = s * (entry - b.stop_loss_price)
    if limits.require_stop_loss and (b is None or (b.stop_loss_ticks is None and b.stop_loss_price is None)):
        deny("stop_loss_required", "orders that open risk need a bracket stop-loss (require_stop_loss)")

    # ---- size limits: each gives the interval of n that satisfies it --------------------------------
    held = {k: (positions.get(k, 0), working.get(k, 0)) for k in set(positions) | set(working)}
    others = {k: worst_case_contracts(p, w) for k, (p, w) in held.items() if k != sym}
    rules: list[_SizeRule] = []

    def exposure_rule(code: str, limit: int, what: str) -> None:
        lo, hi = _exposure_interval(pos, work, s, limit)
        rules.append(
            _SizeRule(
                code,
                lo,
                hi,
                f"{what}: at most {max(limit, 0)} contracts of {sym} "
                f"worst-case (position {pos}, working {work})",
            )
        )

    if limits.max_contracts_per_symbol is not None:
        exposure_rule(
            "max_contracts_per_symbol",
            limits.max_contracts_per_symbol,
            f"max {limits.max_contracts_per_symbol} contracts per symbol",
        )
    if limits.max_total_contracts is not None:
        rest = sum(others.values())
        exposure_rule(
            "max_total_contracts",
            limits.max_total_contracts - rest,
            f"max {limits.max_total_contracts} contracts in all, {rest} held in other symbols",
        )
    overrides = {normalize_symbol(k): float(v) for k, v in (margins or {}).items()}

    def initial_margin(root: str) -> float:
        return overrides.get(root, get_contract(root).initial_margin_usd)

    margin_per = initial_margin(sym)
    if limits.max_margin_use_pct is not None and margin_per > 0:
        budget = limits.max_margin_use_pct * acct.equity_usd
        used = sum(initial_margin(k) * e for k, e in others.items())
        room = math.floor((budget - used) / margin_per + _EPS)
        exposure_rule(
            "max_margin_use",
            room,
            f"margin use ≤ {limits.max_margin_use_pct:.0%} of equity = ${budget:,.2f}, "
            f"${used:,.2f} used by other symbols, "
            f"${margin_per:,.2f} initial margin per {sym}",
        )
    if limits.max_notional_usd is not None:
        marks = {k: lookup_price(prices, k) for k, e in others.items() if e}
        missing = [k for k, m in marks.items() if m is None]
        if entry is None or missing:
            need = ([sym] if entry is None else []) + missing
            deny(
                "no_price",
                f"no price for {', '.join(need)}: pass mark_price (a mapping for several "
                "symbols) so the notional limit can be checked",
            )
        else:
            used = sum(others[k] * float(m or 0.0) * get_contract(k).point_value for k, m in marks.items())
            per = entry * contract.point_value
            room = math.floor((limits.max_notional_usd - used) / per + _EPS)
            exposure_rule(
                "max_notional",
                room,
                f"notional ≤ ${limits.max_notional_usd:,.0f}, ${used:,.0f} in other symbols, "
                f"${per:,.2f} per {sym} contract at {entry}",
            )
    if stop_pts is not None:
        risk_per = stop_pts * contract.point_value
        if limits.max_daily_loss_usd is not None:
            room_usd = limits.max_daily_loss_usd + daily_pnl
            rules.append(
                _SizeRule(
                    "daily_loss_room",
                    -math.inf,
                    room_usd / risk_per,
                    f"loss at the stop ${risk_per:,.2f}/contract must fit the ${max(room_usd, 0):,.2f} left "
                    f"of the daily loss limit",
                )
            )
        if floor is not None:
            room_usd = acct.equity_usd - floor
            rules.append(
                _SizeRule(
                    "drawdown_room",
                    -math.inf,
                    room_usd / risk_per,
                    f"loss at the stop ${risk_per:,.2f}/contract must fit the ${max(room_usd, 0):,.2f} above "
                    f"the trailing drawdown floor",
                )
            )

    lo = max([r.lo for r in rules], default=-math.inf)
    hi = min([r.hi for r in rules], default=math.inf)
    allowed = min(_best_n(lo, hi, q), prop_allowed)
    for r in rules:
        n_r = _best_n(r.lo, r.hi, q)
        if n_r == 0:
            reasons.append(RiskReason(code=r.code, message=f"{r.message}; not even 1 contract fits"))
        elif n_r < q:
            reasons.append(
                RiskReason(
                    code=r.code, message=f"{r.message}; {q} reduced to {n_r}", action=RiskAction.REDUCE
                )
            )
    if allowed == 0 and not any(r.action is RiskAction.DENY for r in reasons):
        deny("size_limits_conflict", "no whole number of contracts satisfies every size limit at once")
    return _verdict(reasons, q, allowed)


def _verdict(reasons: list[RiskReason], requested: int, allowed: int) -> RiskVerdict:
    approved = not any(r.action is RiskAction.DENY for r in reasons)
    return RiskVerdict(
        approved=approved,
        reasons=reasons,
        adjusted_contracts=allowed if approved else 0,
        requested_contracts=requested,
    )


# --------------------------------------------------------------------------------------------------
# distances: every limit's room left, in every verdict


def distances(
    account_state: AccountState,
    limits: RiskLimits,
    *,
    prop: tuple[RulePack, PropState] | None = None,
    at: datetime | None = None,
) -> list[RuleStatus]:
    """The value, limit and room left of each of the gate's account limits that is on, then each rule of
    the prop pack (``nq_ray.propfirm.state.evaluate``). Empty for the gate's rows when the account state
    has non-finite numbers (the gate denies those)."""
    acct = account_state
    rows: list[RuleStatus] = []
    finite = all(
        math.isfinite(v)
        for v in (acct.equity_usd, acct.starting_balance_usd, acct.equity_high_usd, acct.daily_pnl_usd)
    )
    positions = _by_root(acct.positions)
    if finite and limits.max_daily_loss_usd is not None:
        room = limits.max_daily_loss_usd + acct.daily_pnl_usd
        rows.append(
            RuleStatus(
                rule="limits.max_daily_loss_usd",
                kind="daily_loss",
                consequence="stop_day",
                value=acct.daily_pnl_usd,
                limit=-limits.max_daily_loss_usd,
                distance=room,
                unit="usd",
                state=limit_state(room, limits.max_daily_loss_usd),
                message=f"today's P&L ${acct.daily_pnl_usd:,.2f} vs −${limits.max_daily_loss_usd:,.2f}",
            )
        )
    if finite and limits.trailing_drawdown_usd is not None:
        floor = limits.trailing_floor_usd(
            max(acct.equity_high_usd, acct.equity_usd), acct.starting_balance_usd
        )
        if floor is not None:
            room = acct.equity_usd - floor
            rows.append(
                RuleStatus(
                    rule="limits.trailing_drawdown_usd",
                    kind="max_loss",
                    consequence="block",
                    value=acct.equity_usd,
                    limit=floor,
                    distance=room,
                    unit="usd",
                    state=limit_state(room, limits.trailing_drawdown_usd),
                    message=f"equity ${acct.equity_usd:,.2f} vs trailing floor ${floor:,.2f}",
                )
            )
    for name, cap, held in (
        (
            "limits.max_contracts_per_symbol",
            limits.max_contracts_per_symbol,
            max((abs(n) for n in positions.values()), default=0),
        ),
        ("limits.max_total_contracts", limits.max_total_contracts, sum(abs(n) for n in positions.values())),
    ):
        if cap is None:
            continue
        room = float(cap - held)
        rows.append(
            RuleStatus(
                rule=name,
                kind="max_contracts",
                consequence="block",
                value=float(held),
                limit=float(cap),
                distance=room,
                unit="contracts",
                state="breached" if room < 0 else ("warning" if room < 0.25 * cap else "ok"),
                message=f"{held} contracts held (largest symbol)"
                if name.endswith("symbol")
                else f"{held} held in all",
            )
        )
    if prop is not None:
        rows.extend(evaluate(prop[0], prop[1], positions=positions, at=at))
    return rows
