"""The pre-trade gate: each limit with a hand-worked example, and the property that an approved order
never breaks a limit."""

from __future__ import annotations

import math
from datetime import datetime, time
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from nq_ray.domain.contracts import get_contract
from nq_ray.domain.orders import AccountState, Bracket, Order, OrderType, Side
from nq_ray.risk import RiskAction, RiskLimits, TimeWindow, check_order

ET = ZoneInfo("America/New_York")
OPEN_RTH = datetime(2026, 3, 4, 10, 0, tzinfo=ET)  # Wednesday, Globex open, RTH
SATURDAY = datetime(2026, 3, 7, 12, 0, tzinfo=ET)
DAILY_HALT = datetime(2026, 3, 4, 17, 30, tzinfo=ET)
PREMARKET = datetime(2026, 3, 4, 8, 0, tzinfo=ET)

OFF = {
    "max_contracts_per_symbol": None,
    "max_total_contracts": None,
    "max_notional_usd": None,
    "max_margin_use_pct": None,
    "max_daily_loss_usd": None,
    "trailing_drawdown_usd": None,
    "max_orders_per_minute": None,
    "max_consecutive_losses": None,
    "trade_only_when_open": False,
}


def only(**limits: object) -> RiskLimits:
    """Limits with everything off except ``limits``."""
    return RiskLimits(**{**OFF, **limits})


def account(**kw: object) -> AccountState:
    base: dict[str, object] = {
        "equity_usd": 100_000.0,
        "starting_balance_usd": 100_000.0,
        "equity_high_usd": 100_000.0,
        "as_of": OPEN_RTH,
    }
    return AccountState(**{**base, **kw})


def buy(n: int, symbol: str = "NQ", **kw: object) -> Order:
    return Order(symbol=symbol, side=Side.BUY, quantity=n, **kw)


def sell(n: int, symbol: str = "NQ", **kw: object) -> Order:
    return Order(symbol=symbol, side=Side.SELL, quantity=n, **kw)


def codes(verdict) -> set[str]:
    return {r.code for r in verdict.reasons}


# ---- max contracts per symbol ------------------------------------------------------------------


def test_max_contracts_reduces_to_what_fits():
    """Limit 4, long 3 NQ, buy 3: worst case 3 + 3 = 6 > 4, so 4 − 3 = 1 contract is approved."""
    v = check_order(buy(3), account(positions={"NQ": 3}), only(max_contracts_per_symbol=4))
    assert v.approved and v.adjusted_contracts == 1 and v.requested_contracts == 3
    assert v.reasons[0].code == "max_contracts_per_symbol" and v.reasons[0].action is RiskAction.REDUCE
    assert "reduced to 1" in v.reasons[0].message


def test_max_contracts_denies_when_not_one_fits():
    """Limit 4, long 4 NQ, buy 1: 4 + 1 = 5 > 4 and 0 contracts fit, so the order is denied."""
    v = check_order(buy(1), account(positions={"NQ": 4}), only(max_contracts_per_symbol=4))
    assert not v.approved and v.adjusted_contracts == 0
    assert codes(v) == {"max_contracts_per_symbol"}


def test_working_orders_count_toward_max_contracts():
    """Limit 4, flat, a working buy of 3, buy 2: worst case max(|0+2|, |0+3+2|) = 5 > 4 → 1 fits."""
    v = check_order(buy(2), account(open_orders={"NQ": 3}), only(max_contracts_per_symbol=4))
    assert v.approved and v.adjusted_contracts == 1


def test_flip_through_an_oversized_short_is_capped_on_the_other_side():
    """Limit 10, short 15 (over the limit), buy 30: |−15 + n| ≤ 10 ⇔ 5 ≤ n ≤ 25, so 25 are approved."""
    v = check_order(buy(30), account(positions={"NQ": -15}), only(max_contracts_per_symbol=10))
    assert v.approved and v.adjusted_contracts == 25


# ---- total contracts ---------------------------------------------------------------------------


def test_max_total_contracts_counts_other_symbols():
    """Limit 10, short 6 ES, long 2 NQ, buy 5 NQ: room for NQ 10 − 6 = 4, |2 + n| ≤ 4 → n = 2."""
    v = check_order(buy(5), account(positions={"ES": -6, "NQ": 2}), only(max_total_contracts=10))
    assert v.approved and v.adjusted_contracts == 2 and codes(v) == {"max_total_contracts"}


# ---- margin ------------------------------------------------------------------------------------


def test_margin_use_reduces_to_the_margin_budget():
    """75% of $100,000 = $75,000; 1 ES uses $24,200, leaving $50,800; ⌊50,800 ÷ 36,300 (NQ)⌋ = 1."""
    v = check_order(buy(3), account(positions={"ES": 1}), only(max_margin_use_pct=0.75))
    assert v.approved and v.adjusted_contracts == 1 and codes(v) == {"max_margin_use"}


def test_margin_use_denies_when_one_contract_is_too_much():
    """75% of $40,000 = $30,000 < $36,300 initial margin of one NQ → denied; one MNQ ($3,630) fits 8."""
    acct = account(equity_usd=40_000.0, starting_balance_usd=40_000.0, equity_high_usd=40_000.0)
    limits = only(max_margin_use_pct=0.75)

    nq = check_order(buy(1), acct, limits)
    mnq = check_order(buy(10, "MNQ"), acct, limits)

    assert not nq.approved and codes(nq) == {"max_margin_use"}
    assert mnq.approved and mnq.adjusted_contracts == 8  # ⌊30,000 ÷ 3,630⌋ = ⌊8.26⌋


def test_margin_override_from_settings():
    """A clearing firm asking $50,000 per NQ: ⌊$75,000 ÷ $50,000⌋ = 1 of the 3 asked."""
    v = check_order(buy(3), account(), only(max_margin_use_pct=0.75), margins={"NQ": 50_000.0})
    assert v.approved and v.adjusted_contracts == 1


def test_default_limits_allow_two_nq_on_100k():
    """Defaults: 2 NQ × $36,300 = $72,600 ≤ 75% × $100,000 = $75,000; 2 ≤ 4 per symbol; notional at
    20,000: 2 × 20,000 × $20 = $800,000 ≤ $1.5M. A third NQ would need $108,900 of margin."""
    v = check_order(buy(3), account(), RiskLimits(), mark_price=20_000.0, clock=lambda: OPEN_RTH)
    assert v.approved and v.adjusted_contracts == 2 and codes(v) == {"max_margin_use"}


# ---- notional ----------------------------------------------------------------------------------


def test_notional_reduces_at_the_mark():
    """$1,000,000 max; 25,000 × $20 = $500,000 per NQ → ⌊2⌋ = 2 of the 3 asked."""
    v = check_order(buy(3), account(), only(max_notional_usd=1_000_000.0), mark_price=25_000.0)
    assert v.approved and v.adjusted_contracts == 2


def test_notional_prices_a_micro_at_its_parents_mark():
    """Long 5 MNQ at 25,000 × $2 = $250,000; room $750,000 ÷ $500,000 per NQ = 1.5 → 1."""
    v = check_order(
        buy(3), account(positions={"MNQ": 5}), only(max_notional_usd=1_000_000.0), mark_price={"NQ": 25_000.0}
    )
    assert v.approved and v.adjusted_contracts == 1


def test_notional_uses_the_limit_price_of_a_limit_order():
    """Limit buy at 20,000: $400,000 per NQ → ⌊1,000,000 ÷ 400,000⌋ = 2 (no mark needed)."""
    order = buy(5, order_type=OrderType.LIMIT, limit_price=20_000.0)
    v = check_order(order, account(), only(max_notional_usd=1_000_000.0))
    assert v.approved and v.adjusted_contracts == 2


def test_notional_without_a_price_is_denied_not_guessed():
    """A market order with no mark price cannot be valued: denied with no_price."""
    v = check_order(buy(1), account(), only(max_notional_usd=1_000_000.0))
    assert not v.approved and codes(v) == {"no_price"}


# ---- daily loss --------------------------------------------------------------------------------


def test_daily_loss_limit_denies_at_the_limit():
    """Realised −$1,500 + unrealised −$500 = −$2,000 ≤ −$2,000 → denied."""
    acct = account(realized_pnl_today_usd=-1_500.0, unrealized_pnl_usd=-500.0)
    v = check_order(buy(1), acct, only(max_daily_loss_usd=2_000.0))
    assert not v.approved and codes(v) == {"daily_loss_limit"}


def test_daily_loss_just_inside_the_limit_is_approved():
    """−$1,999.99 > −$2,000: still room."""
    v = check_order(buy(1), account(realized_pnl_today_usd=-1_999.99), only(max_daily_loss_usd=2_000.0))
    assert v.approved and v.adjusted_contracts == 1


def test_loss_at_stop_must_fit_the_daily_room():
    """P&L −$1,200 of $2,000 → $800 room; 20-tick NQ stop = 20 × $5 = $100/contract → 8 of 10."""
    order = buy(10, bracket=Bracket(stop_loss_ticks=20))
    v = check_order(order, account(realized_pnl_today_usd=-1_200.0), only(max_daily_loss_usd=2_000.0))
    assert v.approved and v.adjusted_contracts == 8 and codes(v) == {"daily_loss_room"}


def test_stop_given_as_a_price_uses_the_entry_distance():
    """Limit buy 20,000 with stop 19,990: 10 pts × $20 = $200/contract; $800 room → 4."""
    order = buy(
        10, order_type=OrderType.LIMIT, limit_price=20_000.0, bracket=Bracket(stop_loss_price=19_990.0)
    )
    v = check_order(order, account(realized_pnl_today_usd=-1_200.0), only(max_daily_loss_usd=2_000.0))
    assert v.approved and v.adjusted_contracts == 4


# ---- trailing drawdown -------------------------------------------------------------------------


def test_trailing_drawdown_denies_at_the_floor():
    """High $102,000 − $3,000 = floor $99,000; equity $99,000 ≤ floor → denied."""
    acct = account(equity_usd=99_000.0, equity_high_usd=102_000.0)
    v = check_order(buy(1), acct, only(trailing_drawdown_usd=3_000.0))
    assert not v.approved and codes(v) == {"trailing_drawdown"}


def test_trailing_drawdown_above_the_floor_is_approved():
    """Equity $99,000.01 > floor $99,000."""
    acct = account(equity_usd=99_000.01, equity_high_usd=102_000.0)
    v = check_order(buy(1), acct, only(trailing_drawdown_usd=3_000.0))
    assert v.approved


def test_trailing_floor_locks_at_the_starting_balance():
    """High $104,500: unlocked floor $101,500 > equity $100,500 → denied; locked, the floor stops at
    the $100,000 starting balance → approved."""
    acct = account(equity_usd=100_500.0, equity_high_usd=104_500.0)

    unlocked = check_order(buy(1), acct, only(trailing_drawdown_usd=3_000.0, trailing_lock_at_start=False))
    locked = check_order(buy(1), acct, only(trailing_drawdown_usd=3_000.0, trailing_lock_at_start=True))

    assert not unlocked.approved and codes(unlocked) == {"trailing_drawdown"}
    assert locked.approved


def test_loss_at_stop_must_fit_above_the_trailing_floor():
    """Equity $99,600, floor $99,000 → $600 room; 10-tick NQ stop = $50/contract → 12 of 15."""
    acct = account(equity_usd=99_600.0, equity_high_usd=102_000.0)
    order = buy(15, bracket=Bracket(stop_loss_ticks=10))
    v = check_order(order, acct, only(trailing_drawdown_usd=3_000.0))
    assert v.approved and v.adjusted_contracts == 12 and codes(v) == {"drawdown_room"}


# ---- order rate, circuit breaker, stop required -------------------------------------------------


def test_order_rate_denies_the_order_over_the_limit():
    """30 sent in the last minute + this one = 31 > 30 → denied; after 29, the 30th is fine."""
    limits = only(max_orders_per_minute=30)
    assert codes(check_order(buy(1), account(orders_last_minute=30), limits)) == {"order_rate"}
    assert check_order(buy(1), account(orders_last_minute=29), limits).approved


def test_circuit_breaker_after_n_consecutive_losses():
    """Limit 4: 4 losses in a row → denied; 3 → approved."""
    limits = only(max_consecutive_losses=4)
    assert codes(check_order(buy(1), account(consecutive_losses=4), limits)) == {"circuit_breaker"}
    assert check_order(buy(1), account(consecutive_losses=3), limits).approved


def test_stop_loss_required():
    """require_stop_loss: a naked entry is denied, the same entry with a bracket stop is approved."""
    limits = only(require_stop_loss=True)
    assert codes(check_order(buy(1), account(), limits)) == {"stop_loss_required"}
    assert check_order(buy(1, bracket=Bracket(stop_loss_ticks=8)), account(), limits).approved


# ---- sessions ----------------------------------------------------------------------------------


@pytest.mark.parametrize("when", [SATURDAY, DAILY_HALT])
def test_market_closed_denies(when: datetime):
    """Saturday noon and the 17:00–18:00 ET halt are closed on Globex."""
    v = check_order(buy(1), account(), only(trade_only_when_open=True), clock=lambda: when)
    assert not v.approved and codes(v) == {"market_closed"}


def test_outside_the_allowed_window_denies_new_risk():
    """RTH-only window 09:30–16:00 ET: 08:00 ET is refused, 10:00 ET accepted."""
    limits = only(allowed_windows=[TimeWindow(start=time(9, 30), end=time(16, 0))])
    assert codes(check_order(buy(1), account(), limits, clock=lambda: PREMARKET)) == {"outside_window"}
    assert check_order(buy(1), account(), limits, clock=lambda: OPEN_RTH).approved


def test_a_window_can_wrap_midnight():
    """18:00–09:30 contains 20:00 and 08:00, not 10:00."""
    w = TimeWindow(start=time(18, 0), end=time(9, 30))
    assert w.contains(time(20, 0)) and w.contains(time(8, 0)) and not w.contains(time(10, 0))


def test_no_time_source_is_denied():
    """No clock, no as_of, no created_at: the session cannot be checked, so the gate fails closed."""
    v = check_order(buy(1), account(as_of=None), only(trade_only_when_open=True))
    assert not v.approved and codes(v) == {"time_unknown"}


# ---- reducing orders ---------------------------------------------------------------------------


def test_reducing_order_passes_the_loss_limits_so_a_trader_can_flatten():
    """Daily loss hit, drawdown hit, breaker tripped, over max contracts: selling 2 of a long 6 is allowed."""
    acct = account(
        positions={"NQ": 6},
        realized_pnl_today_usd=-5_000.0,
        equity_usd=95_000.0,
        consecutive_losses=9,
    )
    v = check_order(sell(2), acct, RiskLimits(), clock=lambda: OPEN_RTH)
    assert v.approved and v.adjusted_contracts == 2 and v.reasons == []


def test_reducing_order_still_needs_an_open_market():
    v = check_order(sell(2), account(positions={"NQ": 6}), RiskLimits(), clock=lambda: SATURDAY)
    assert not v.approved and codes(v) == {"market_closed"}


def test_reduce_only_that_would_add_is_denied():
    """reduce_only buy 1 while long 2 would increase the position."""
    v = check_order(buy(1, reduce_only=True), account(positions={"NQ": 2}), only())
    assert not v.approved and codes(v) == {"reduce_only"}


def test_every_failing_limit_is_listed():
    """A denial lists every reason, not just the first."""
    acct = account(realized_pnl_today_usd=-3_000.0, consecutive_losses=5, orders_last_minute=40)
    v = check_order(buy(1), acct, RiskLimits(), mark_price=20_000.0, clock=lambda: OPEN_RTH)
    assert {"daily_loss_limit", "circuit_breaker", "order_rate"} <= codes(v)


# ---- bad input fails closed --------------------------------------------------------------------


def test_non_finite_account_state_is_denied_not_raised():
    """A NaN equity from a broken feed: denied with invalid_account_state, no exception."""
    v = check_order(buy(1), account(equity_usd=float("nan")), RiskLimits(), mark_price=20_000.0)
    assert not v.approved and codes(v) == {"invalid_account_state"}


def test_nan_mark_is_no_price():
    v = check_order(buy(1), account(), only(max_notional_usd=1e6), mark_price=float("nan"))
    assert not v.approved and codes(v) == {"no_price"}


def test_stop_price_on_the_wrong_side_of_the_mark_is_denied():
    """Buy at mark 20,000 with a stop-loss at 20,010 (above the entry) would stop out at once."""
    order = buy(1, bracket=Bracket(stop_loss_price=20_010.0))
    v = check_order(order, account(), only(max_daily_loss_usd=2_000.0), mark_price=20_000.0)
    assert not v.approved and codes(v) == {"stop_wrong_side"}


def test_verdict_round_trips_through_json():
    """The verdict is the wire model for the API and MCP."""
    v = check_order(buy(3), account(positions={"NQ": 3}), only(max_contracts_per_symbol=4))
    assert type(v).model_validate_json(v.model_dump_json()) == v


# ---- property: an approved order never breaks a limit -------------------------------------------

SYMBOLS = ["NQ", "MNQ", "ES", "MES"]
MARKS = {"NQ": 20_000.0, "ES": 6_000.0}


def _worst(pos: int, work: int) -> int:
    return max(abs(pos), abs(pos + work))


def _breaks(order: Order, n: int, acct: AccountState, limits: RiskLimits) -> list[str]:
    """An independent restatement of every limit for the order resized to ``n`` contracts."""
    sym, s = order.symbol, order.side.sign
    c = get_contract(sym)
    pos = acct.positions.get(sym, 0)
    if pos and s == -(1 if pos > 0 else -1) and n <= abs(pos):
        return []  # risk-reducing: no limit can get worse
    broken = []
    after = dict(acct.positions)
    after[sym] = pos + s * n
    work = dict(acct.open_orders)
    worst = {
        k: max(_worst(after.get(k, 0), 0), _worst(after.get(k, 0), work.get(k, 0))) for k in after | work
    }
    if limits.max_contracts_per_symbol is not None and worst[sym] > limits.max_contracts_per_symbol:
        broken.append("per symbol")
    if limits.max_total_contracts is not None and sum(worst.values()) > limits.max_total_contracts:
        broken.append("total")
    if limits.max_margin_use_pct is not None:
        margin = sum(get_contract(k).initial_margin_usd * e for k, e in worst.items())
        if margin > limits.max_margin_use_pct * acct.equity_usd + 1e-6:
            broken.append("margin")
    if limits.max_notional_usd is not None:
        notional = sum(e * MARKS[k.removeprefix("M")] * get_contract(k).point_value for k, e in worst.items())
        if notional > limits.max_notional_usd + 1e-6:
            broken.append("notional")
    stop_usd = n * order.bracket.stop_loss_ticks * c.tick_value if order.bracket else 0.0
    if limits.max_daily_loss_usd is not None:
        if acct.daily_pnl_usd <= -limits.max_daily_loss_usd:
            broken.append("daily loss")
        if acct.daily_pnl_usd - stop_usd < -limits.max_daily_loss_usd - 1e-6:
            broken.append("daily loss room")
    floor = limits.trailing_floor_usd(max(acct.equity_high_usd, acct.equity_usd), acct.starting_balance_usd)
    if floor is not None and acct.equity_usd - stop_usd < floor - 1e-6:
        broken.append("drawdown room")
    if floor is not None and acct.equity_usd <= floor:
        broken.append("drawdown")
    if limits.max_consecutive_losses is not None and acct.consecutive_losses >= limits.max_consecutive_losses:
        broken.append("breaker")
    if limits.max_orders_per_minute is not None and acct.orders_last_minute >= limits.max_orders_per_minute:
        broken.append("rate")
    return broken


@st.composite
def scenarios(draw):
    book = st.dictionaries(st.sampled_from(SYMBOLS), st.integers(-8, 8), max_size=4)
    equity = draw(st.floats(20_000, 200_000))
    acct = AccountState(
        equity_usd=equity,
        starting_balance_usd=100_000.0,
        equity_high_usd=equity + draw(st.floats(0, 8_000)),
        realized_pnl_today_usd=draw(st.floats(-3_000, 1_000)),
        unrealized_pnl_usd=draw(st.floats(-1_000, 1_000)),
        positions=draw(book),
        open_orders=draw(book),
        orders_last_minute=draw(st.integers(0, 40)),
        consecutive_losses=draw(st.integers(0, 6)),
        as_of=OPEN_RTH,
    )
    ticks = draw(st.none() | st.integers(1, 200))
    order = Order(
        symbol=draw(st.sampled_from(SYMBOLS)),
        side=draw(st.sampled_from([Side.BUY, Side.SELL])),
        quantity=draw(st.integers(1, 25)),
        bracket=Bracket(stop_loss_ticks=ticks) if ticks else None,
    )
    limits = RiskLimits(
        max_contracts_per_symbol=draw(st.none() | st.integers(0, 12)),
        max_total_contracts=draw(st.none() | st.integers(0, 25)),
        max_notional_usd=draw(st.none() | st.floats(100_000, 3_000_000)),
        max_margin_use_pct=draw(st.none() | st.floats(0.05, 1.0)),
        max_daily_loss_usd=draw(st.none() | st.floats(500, 5_000)),
        trailing_drawdown_usd=draw(st.none() | st.floats(1_000, 10_000)),
        trailing_lock_at_start=draw(st.booleans()),
        max_orders_per_minute=draw(st.none() | st.integers(1, 40)),
        max_consecutive_losses=draw(st.none() | st.integers(1, 6)),
    )
    return order, acct, limits


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_an_approved_order_never_breaks_a_limit(scenario):
    order, acct, limits = scenario

    v = check_order(order, acct, limits, mark_price=MARKS, clock=lambda: OPEN_RTH)

    if v.approved:
        assert 1 <= v.adjusted_contracts <= order.quantity
        assert _breaks(order, v.adjusted_contracts, acct, limits) == []
        pos = acct.positions.get(order.symbol, 0)
        if v.reduced and pos * order.side.sign >= 0:  # reduced: one more contract would break a limit
            assert _breaks(order, v.adjusted_contracts + 1, acct, limits) != []
    else:
        assert v.adjusted_contracts == 0 and v.reasons
        assert all(r.code and r.message for r in v.reasons)
    assert all(math.isfinite(x) for x in (v.adjusted_contracts, v.requested_contracts))


@st.composite
def model_answers(draw):
    """Anything a risk or execution model could answer: any stance and size, any entry, stop, target and
    scale-outs (wrong sides, off the tick grid, wider than approved included)."""
    from nq_ray.agents.thinking import OrderPlan, RiskNarrative, ScaleOut

    stance = draw(st.sampled_from(["proceed", "reduce", "stand_aside"]))
    narrative = RiskNarrative(
        narrative="m", stance=stance, suggested_contracts=draw(st.none() | st.integers(0, 60))
    )
    off = draw(st.sampled_from([0.0, 0.0, 0.0, 0.0, 0.1]))  # now and then a price off the grid
    entry_type = draw(st.sampled_from(["limit", "market"]))
    # entry, stop and target as multiples of the approved stop distance (1.0 = as far as approved): mostly
    # inside it, sometimes wider, on the wrong side, or with fractions summing past 1
    stop = {"in": st.floats(0.1, 1.0), "wide": st.floats(1.05, 3.0), "wrong": st.floats(-1.0, 0.0)}
    target = {"in": st.floats(0.2, 3.0), "wide": st.floats(0.2, 3.0), "wrong": st.floats(-1.0, 0.0)}
    kind = draw(st.sampled_from(["in", "in", "in", "wide", "wrong"]))
    offsets = {"e": draw(st.floats(-0.5, 0.5)), "s": draw(stop[kind]), "t": draw(target[kind])}
    # a scale-out's price as a fraction of the way to the target (> 1: past it)
    scale = draw(st.lists(st.tuples(st.floats(0.05, 0.6), st.floats(0.05, 1.2)), max_size=3))
    return narrative, entry_type, offsets, off, scale, ScaleOut, OrderPlan


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios(), model_answers())
def test_no_model_narrative_or_order_plan_loosens_a_limit(scenario, answer):
    """The code sizes and gates a trade; whatever a model then answers, the contracts are never more, the
    stop never farther, and the order that goes to the gate (which stays final) never breaks a limit."""
    from nq_ray.agents.models import TradeProposal
    from nq_ray.agents.thinking import apply_narrative, check_order_plan, plan_legs

    order, acct, limits = scenario
    narrative, entry_type, off, jitter, scale, ScaleOut, OrderPlan = answer
    order = order if order.bracket else order.model_copy(update={"bracket": Bracket(stop_loss_ticks=40)})
    c, s = get_contract(order.symbol), order.side.sign
    entry = MARKS[order.symbol.removeprefix("M")]
    ticks = order.bracket.stop_loss_ticks
    proposal = TradeProposal(
        symbol=order.symbol,
        side=order.side.value,
        contracts=order.quantity,
        entry=entry,
        stop=entry - s * ticks * c.tick_size,
        target=entry + s * 2 * ticks * c.tick_size,
        rationale="property",
    )
    v = check_order(order, acct, limits, mark_price=MARKS, clock=lambda: OPEN_RTH)
    code = v.adjusted_contracts if v.approved else 0

    contracts, _ = apply_narrative(narrative, code)

    assert 0 <= contracts <= code

    def at(base: float, k: float) -> float:  # k approved stop distances from base, on the grid
        return max(c.tick_size, base + s * round(k * ticks) * c.tick_size)

    e = at(entry, off["e"]) if entry_type == "limit" else entry
    plan = OrderPlan(
        entry_type=entry_type,
        entry_price=e if entry_type == "limit" else None,
        stop_price=at(e, -off["s"]) + jitter,
        target_price=at(e, off["t"]),
        scale_out=[ScaleOut(fraction=f, price=at(e, k * off["t"])) for f, k in scale],
    )
    if check_order_plan(plan, proposal, contracts):
        event("plan rejected")
        return  # rejected: the deterministic plan (the proposal as gated) is sent instead
    event("plan accepted")
    p_entry = plan.entry_price if plan.entry_price is not None else entry
    plan_ticks = round(abs(p_entry - plan.stop_price) / c.tick_size)
    assert 1 <= plan_ticks <= ticks and s * (p_entry - plan.stop_price) > 0 and c.is_on_tick(plan.stop_price)
    assert contracts * plan_ticks <= code * ticks  # the loss at the stop never grows
    legs, _ = plan_legs(plan, contracts)
    assert sum(leg.contracts for leg in legs) == contracts
    final = order.model_copy(update={"quantity": contracts, "bracket": Bracket(stop_loss_ticks=plan_ticks)})
    v2 = check_order(final, acct, limits, mark_price=MARKS, clock=lambda: OPEN_RTH)
    if v2.approved:
        assert (
            v2.adjusted_contracts <= contracts and _breaks(final, v2.adjusted_contracts, acct, limits) == []
        )


# ---- halts and what a verdict names --------------------------------------------------------------


def test_halt_denies_entries_and_additions_but_lets_exits_through():
    """Halted, long 2 NQ: buying more and opening ES are denied with ``halted``; selling 2 (flatten) and
    selling 1 (partial exit) pass; selling 3 (a reversal: opens a short) is denied."""
    acct = account(positions={"NQ": 2})
    limits = only()
    add, new, flat, part, flip = (
        check_order(o, acct, limits, halt_reason="kill switch: test")
        for o in (buy(1), buy(1, "ES"), sell(2), sell(1), sell(3))
    )
    assert codes(add) == codes(new) == codes(flip) == {"halted"}
    assert not (add.approved or new.approved or flip.approved)
    assert "kill switch: test" in add.reasons[0].message
    assert flat.approved and flat.adjusted_contracts == 2 and part.approved and part.adjusted_contracts == 1


def test_halt_refuses_an_exit_that_working_exits_would_turn_into_a_new_position():
    """Halted, long 2 NQ with a working sell 2 (the kill switch's flatten): one more sell 1 would leave
    short 1 once both fill, so it is denied; with no working exit it passes."""
    working = check_order(
        sell(1), account(positions={"NQ": 2}, open_orders={"NQ": -2}), only(), halt_reason="k"
    )
    alone = check_order(sell(1), account(positions={"NQ": 2}), only(), halt_reason="k")
    assert codes(working) == {"halted"} and alone.approved


def test_a_verdict_names_the_limits_and_settings_version_it_was_checked_against():
    limits = only(max_contracts_per_symbol=1)
    v = check_order(buy(3), account(), limits, settings_version=7)
    plain = check_order(buy(1), account(), limits)
    assert v.adjusted_contracts == 1 and codes(v) == {"max_contracts_per_symbol"}  # 3 reduced to 1
    assert v.limits == limits and v.settings_version == 7
    assert plain.limits == limits and plain.settings_version is None
    again = type(v).model_validate(v.model_dump(mode="json"))  # JSON round trip (stored with the order)
    assert again.limits is not None and again.limits.max_contracts_per_symbol == 1


def test_exits_that_would_cross_zero_together_are_checked_as_new_risk():
    """Limit 2, short 2 NQ with working buys of 4 (an exit of 2, then a buy of 2 the size limit allowed:
    −2 + 4 = +2): another buy 2 alone would "reduce" the short, but with the working buys filled it makes
    long 4 > 2, so the size limit denies it (before, each such exit skipped the size limits, and a burst of
    them carried a paper book from −2 to +11). The first buy 2, with nothing working, is an exit."""
    limits = only(max_contracts_per_symbol=2, max_daily_loss_usd=1000)
    v = check_order(buy(2), account(positions={"NQ": -2}, open_orders={"NQ": 4}), limits)
    first = check_order(buy(2), account(positions={"NQ": -2}, realized_pnl_today_usd=-5000), limits)
    assert not v.approved and codes(v) == {"max_contracts_per_symbol"}
    assert first.approved and first.adjusted_contracts == 2  # an exit: past the daily loss limit too
