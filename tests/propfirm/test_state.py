"""An account's path under a pack, each rule kind with hand-worked numbers."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nq_ray.errors import InvalidArgumentError
from nq_ray.propfirm.state import (
    close_day,
    evaluate,
    flatten_due,
    mark,
    max_loss_floor,
    news_rules,
    order_check,
    start,
)
from tests.propfirm.conftest import et, make_pack, rule


def _row(pack, state, kind, **kw):
    return next(r for r in evaluate(pack, state, **kw) if r.kind == kind)


# ---- the same day's path under the two trailing flavours ----------------------------------------------
# start 50,000, max loss 2,000. Monday: equity peaks at 51,500 (open P&L), the day closes flat at 50,800.
#   intraday_equity: ref = highest equity = 51,500 → floor 49,500 as soon as the peak is marked.
#   eod_balance:     ref = highest END-OF-DAY balance; Monday intraday it is the start 50,000 → floor 48,000;
#                    after Monday's close the ref is 50,800 → floor 48,800 on Tuesday.
# Tuesday 10:00 equity 49,400: intraday (floor 49,500) is breached → failed; EOD (floor 48,800) is not,
# with 600 of room.


def _monday_path(trailing: str):
    pack = make_pack(rule("max_loss", amount_usd=2_000, trailing=trailing))
    s = start(pack, et(10, 9, 0))
    s = mark(pack, s, at=et(10, 10, 0), balance_usd=50_000, equity_usd=51_500, traded=True)
    s = mark(pack, s, at=et(10, 15, 0), balance_usd=50_800, equity_usd=50_800)
    return pack, s


def test_intraday_equity_floor_follows_the_unrealised_peak_the_same_day():
    pack, s = _monday_path("intraday_equity")
    assert max_loss_floor(pack, s, pack.rules[0]) == 49_500
    s = mark(pack, s, at=et(11, 10, 0), balance_usd=50_800, equity_usd=49_400)
    assert s.failed is not None and s.failed.rule == "max_loss"
    assert s.failed_at == et(11, 10, 0)


def test_eod_balance_floor_stays_all_day_then_moves_to_the_close():
    pack, s = _monday_path("eod_balance")
    assert max_loss_floor(pack, s, pack.rules[0]) == 48_000  # Monday: still start − 2,000
    s = mark(pack, s, at=et(11, 10, 0), balance_usd=50_800, equity_usd=49_400)  # rolls Monday's close
    assert s.high_eod_balance_usd == 50_800
    assert max_loss_floor(pack, s, pack.rules[0]) == 48_800
    assert s.failed is None
    row = _row(pack, s, "max_loss")
    assert row.distance == pytest.approx(600) and row.state == "ok"


def test_eod_balance_is_checked_intraday_against_equity():
    # floor 48,000 on day one; an open loss taking equity to 48,000 breaches it (≤ floor) before any close
    pack = make_pack(rule("max_loss", amount_usd=2_000, trailing="eod_balance"))
    s = start(pack, et(10, 9, 0))
    s = mark(pack, s, at=et(10, 10, 0), balance_usd=50_000, equity_usd=48_000.01)
    assert s.failed is None
    s = mark(pack, s, at=et(10, 10, 5), balance_usd=50_000, equity_usd=48_000)
    assert s.failed is not None


def test_trailing_stops_at_the_starting_balance():
    # 2,000 trailing, stop_at 50,000: EOD balances 51,000 (floor 49,000), 53,000 (floor would be 51,000,
    # capped at 50,000), so on day three equity 50,100 is fine and 50,000 fails.
    pack = make_pack(rule("max_loss", amount_usd=2_000, trailing="eod_balance", stop_at_usd=50_000))
    s = start(pack, et(10, 9, 0))
    s = mark(pack, s, at=et(10, 15, 0), balance_usd=51_000, equity_usd=51_000)
    s = mark(pack, s, at=et(11, 15, 0), balance_usd=53_000, equity_usd=53_000)
    assert max_loss_floor(pack, s, pack.rules[0]) == 49_000  # Tuesday runs on Monday's close
    s = mark(pack, s, at=et(12, 10, 0), balance_usd=50_100, equity_usd=50_100)
    assert max_loss_floor(pack, s, pack.rules[0]) == 50_000
    assert s.failed is None
    s = mark(pack, s, at=et(12, 11, 0), balance_usd=50_000, equity_usd=50_000)
    assert s.failed is not None


def test_static_max_loss_never_moves():
    pack = make_pack(rule("max_loss", amount_usd=2_000, trailing="static"))
    s = start(pack, et(10, 9, 0))
    s = mark(pack, s, at=et(10, 10, 0), balance_usd=58_000, equity_usd=58_000)
    s = mark(pack, s, at=et(11, 10, 0), balance_usd=48_001, equity_usd=48_001)
    assert max_loss_floor(pack, s, pack.rules[0]) == 48_000 and s.failed is None


# ---- daily loss ----------------------------------------------------------------------------------------


def test_daily_loss_stop_day_stops_today_and_resets_next_session_day():
    # Tuesday starts at 50,500 (Monday's close); equity 49,500 is −1,000 = the limit → stopped for Tuesday
    pack = make_pack(
        rule("max_loss", amount_usd=2_000, trailing="static"),
        rule("daily_loss", amount_usd=1_000, basis="equity", consequence="stop_day"),
    )
    s = start(pack, et(10, 9, 0))
    s = mark(pack, s, at=et(10, 15, 0), balance_usd=50_500, equity_usd=50_500)
    s = mark(pack, s, at=et(11, 10, 0), balance_usd=50_500, equity_usd=49_500)
    assert s.stopped_day == "2025-03-11" and s.failed is None
    reasons, n = order_check(
        pack,
        s,
        symbol="NQ",
        side_sign=1,
        contracts=1,
        positions={},
        working={},
        at=et(11, 10, 1),
        reducing=False,
    )
    assert [c for c, _, _ in reasons] == ["prop_stopped_day"] and n == 0
    assert flatten_due(pack, s, et(11, 10, 1)) is not None
    # Wednesday: a new session day, the stop is over
    reasons, n = order_check(
        pack,
        s,
        symbol="NQ",
        side_sign=1,
        contracts=1,
        positions={},
        working={},
        at=et(12, 10, 0),
        reducing=False,
    )
    assert reasons == [] and n == 1


def test_daily_loss_fail_fails_the_account():
    pack = make_pack(rule("daily_loss", amount_usd=1_000, basis="balance", consequence="fail"))
    s = start(pack, et(10, 9, 0))
    s = mark(pack, s, at=et(10, 10, 0), balance_usd=50_000, equity_usd=48_500)  # open loss: balance basis
    assert s.failed is None
    s = mark(pack, s, at=et(10, 10, 5), balance_usd=49_000, equity_usd=49_000)
    assert s.failed is not None and s.failed.rule == "daily_loss"


def test_reducing_orders_pass_a_failed_account():
    pack = make_pack(rule("max_loss", amount_usd=2_000, trailing="static"))
    s = mark(pack, start(pack, et(10, 9, 0)), at=et(10, 10, 0), balance_usd=48_000, equity_usd=48_000)
    assert order_check(
        pack,
        s,
        symbol="NQ",
        side_sign=-1,
        contracts=1,
        positions={"NQ": 1},
        working={},
        at=et(10, 10, 1),
        reducing=True,
    ) == ([], 1)
    reasons, n = order_check(
        pack,
        s,
        symbol="NQ",
        side_sign=1,
        contracts=1,
        positions={},
        working={},
        at=et(10, 10, 1),
        reducing=False,
    )
    assert [c for c, _, _ in reasons] == ["prop_failed"] and n == 0


def test_marks_cannot_go_back_a_session_day():
    pack = make_pack(rule("max_loss", amount_usd=2_000, trailing="static"))
    s = mark(pack, start(pack, et(11, 9, 0)), at=et(11, 10, 0), balance_usd=50_000, equity_usd=50_000)
    with pytest.raises(InvalidArgumentError):
        mark(pack, s, at=et(10, 10, 0), balance_usd=50_000, equity_usd=50_000)


def test_non_finite_marks_are_refused():
    pack = make_pack(rule("max_loss", amount_usd=2_000, trailing="intraday_equity"))
    s = start(pack, et(10, 9, 0))
    with pytest.raises(InvalidArgumentError, match="finite"):
        mark(pack, s, at=et(10, 10, 0), balance_usd=50_000, equity_usd=float("nan"))


def test_close_day_is_idempotent():
    pack = make_pack(rule("max_loss", amount_usd=2_000, trailing="eod_balance"))
    s = mark(pack, start(pack, et(10, 9, 0)), at=et(10, 15, 0), balance_usd=50_700, equity_usd=50_700)
    once = close_day(pack, s)
    assert close_day(pack, once) == once
    assert once.day_pnl_usd == {"2025-03-10": 700}


# ---- contracts and scaling -----------------------------------------------------------------------------

SCALING = rule(
    "max_contracts",
    minis=5,
    micros_per_mini=10,
    scaling=[
        {"min_balance_usd": 50_000, "minis": 2},
        {"min_balance_usd": 51_500, "minis": 3},
        {"min_balance_usd": 52_000, "minis": 5},
    ],
)


def _check(pack, s, at, symbol="NQ", n=1, positions=None, working=None):
    return order_check(
        pack,
        s,
        symbol=symbol,
        side_sign=1,
        contracts=n,
        positions=positions or {},
        working=working or {},
        at=at,
        reducing=False,
    )


def test_scaling_step_takes_effect_the_next_session_day_not_intraday():
    # Monday closes at 51,600 (≥ 51,500): Monday's cap stays 2 all day; Tuesday's is 3
    pack = make_pack(SCALING)
    s = start(pack, et(10, 9, 0))
    s = mark(pack, s, at=et(10, 15, 0), balance_usd=51_600, equity_usd=51_600)
    assert _check(pack, s, et(10, 15, 1), n=3)[1] == 2
    s = mark(pack, s, at=et(11, 9, 30), balance_usd=51_600, equity_usd=51_600)
    assert _check(pack, s, et(11, 9, 31), n=3) == ([], 3)
    assert _check(pack, s, et(11, 9, 31), n=4)[1] == 3


def test_micros_count_as_a_tenth_of_a_mini_with_working_orders_worst_case():
    # cap 2 minis: long 1 NQ, 5 MNQ working (0.5) → room 0.5 mini = 5 MNQ
    pack = make_pack(SCALING)
    s = start(pack, et(10, 9, 0))
    reasons, n = _check(pack, s, et(10, 10, 0), symbol="MNQ", n=8, positions={"NQ": 1}, working={"MNQ": 5})
    assert n == 5 and reasons[0][0] == "prop_max_contracts" and reasons[0][2] == "reduce"
    reasons, n = _check(pack, s, et(10, 10, 0), symbol="NQ", n=1, positions={"NQ": 2})
    assert n == 0 and reasons[0][2] == "deny"


# ---- passing conditions --------------------------------------------------------------------------------


def _goals_pack():
    return make_pack(
        rule("profit_target", amount_usd=3_000),
        rule("consistency", max_best_day_pct=50),
        rule("min_trading_days", days=3),
    )


def test_consistency_pending_until_best_day_is_half_of_profit_then_pass_at_close():
    # days: +2,000, +500, +500 → total 3,000, best 2,000 = 66.7% > 50%: pending, not passed.
    # day 4: +1,000 → total 4,000, best 2,000 = 50% ≤ 50%: met; the pass is decided at the day's close.
    pack = _goals_pack()
    s = start(pack, et(10, 9, 0))
    bal = 50_000.0
    for day, pnl in ((10, 2_000), (11, 500), (12, 500)):
        bal += pnl
        s = mark(pack, s, at=et(day, 15, 0), balance_usd=bal, equity_usd=bal, traded=True)
    s = close_day(pack, s)
    rows = {r.kind: r for r in evaluate(pack, s)}
    assert rows["profit_target"].state == "met" and rows["min_trading_days"].state == "met"
    assert rows["consistency"].state == "pending" and rows["consistency"].value == pytest.approx(200 / 3)
    assert s.passed_at is None
    s = mark(pack, s, at=et(13, 15, 0), balance_usd=bal + 1_000, equity_usd=bal + 1_000, traded=True)
    assert s.passed_at is None  # not before the close
    s = close_day(pack, s, et(13, 17, 0))
    assert s.passed_at == et(13, 17, 0)
    assert {r.kind: r.state for r in evaluate(pack, s)}["consistency"] == "met"


def test_strict_consistency_refuses_exactly_the_share():
    pack = make_pack(rule("consistency", max_best_day_pct=50, strict=True))
    s = start(pack, et(10, 9, 0))
    s = mark(pack, s, at=et(10, 15, 0), balance_usd=51_000, equity_usd=51_000)
    s = mark(pack, s, at=et(11, 15, 0), balance_usd=52_000, equity_usd=52_000)  # 1,000 of 2,000 = 50%
    assert evaluate(pack, s)[0].state == "pending"


def test_min_trading_days_counts_days_with_a_fill():
    # target met on day one, but 2 of 3 traded days by Tuesday's close → not passed; Wednesday's fill passes
    pack = make_pack(rule("profit_target", amount_usd=1_000), rule("min_trading_days", days=3))
    s = start(pack, et(10, 9, 0))
    s = mark(pack, s, at=et(10, 15, 0), balance_usd=51_200, equity_usd=51_200, traded=True)
    s = mark(pack, s, at=et(11, 15, 0), balance_usd=51_200, equity_usd=51_200, traded=True)
    s = mark(pack, s, at=et(11, 15, 5), balance_usd=51_200, equity_usd=51_200, traded=True)  # same day
    s = close_day(pack, s)
    assert s.traded_days == ["2025-03-10", "2025-03-11"] and s.passed_at is None
    s = mark(pack, s, at=et(12, 10, 0), balance_usd=51_200, equity_usd=51_200, traded=True)
    s = close_day(pack, s, et(12, 17, 0))
    assert s.passed_at == et(12, 17, 0)


def test_a_failed_account_never_passes():
    pack = make_pack(
        rule("profit_target", amount_usd=1_000), rule("max_loss", amount_usd=2_000, trailing="static")
    )
    s = start(pack, et(10, 9, 0))
    s = mark(pack, s, at=et(10, 10, 0), balance_usd=48_000, equity_usd=48_000)
    s = mark(pack, s, at=et(10, 15, 0), balance_usd=51_000, equity_usd=51_000)
    assert close_day(pack, s).passed_at is None and s.failed is not None


# ---- flat-by time and news -----------------------------------------------------------------------------


def test_flat_by_window_runs_from_the_time_to_the_reopen():
    pack = make_pack(rule("flat_by", time="16:10"))
    s = start(pack, et(10, 9, 0))
    assert flatten_due(pack, s, et(10, 16, 9)) is None
    assert "flat by 16:10 ET" in flatten_due(pack, s, et(10, 16, 10))
    assert [c for c, _, _ in _check(pack, s, et(10, 17, 59))[0]] == ["prop_flat_by"]
    assert _check(pack, s, et(10, 18, 0)) == ([], 1)  # the next session is open for new risk
    row = evaluate(pack, s, at=et(10, 15, 40), positions={"NQ": 1})[0]
    assert row.distance == 30 and row.state == "ok"
    row = evaluate(pack, s, at=et(10, 16, 20), positions={"NQ": 1})[0]
    assert row.state == "breached"


class _Blackout:  # the calendar's Blackout, as flatten_due reads it
    def __init__(self, action: str) -> None:
        self.rule = type("R", (), {"action": action})()
        self.event = type("E", (), {"kind": "cpi", "title": "CPI", "time": "2025-03-12T08:30-04:00"})()


def test_news_rules_become_calendar_blackouts_and_flatten_windows():
    pack = make_pack(rule("news", kinds=["cpi", "fomc"], before_min=2, after_min=2, action="flatten"))
    assert news_rules(pack) == [
        {"kinds": ["cpi", "fomc"], "before_min": 2, "after_min": 2, "action": "flatten"}
    ]
    s = start(pack, et(12, 8, 0))
    assert "CPI" in flatten_due(pack, s, et(12, 8, 29), blackout=_Blackout("flatten"))
    assert flatten_due(pack, s, et(12, 8, 29), blackout=_Blackout("block")) is None


# ---- property: what order_check allows never breaks the contract cap ----------------------------------

_book = st.dictionaries(st.sampled_from(["NQ", "MNQ", "ES", "MES"]), st.integers(-12, 12), max_size=4)


def _exposure(cap_rule, positions, working, symbol, signed_n):
    """Worst-case mini-equivalents with ``signed_n`` more of ``symbol`` (the model's definition, by hand)."""
    total = 0.0
    for k in set(positions) | set(working) | {symbol}:
        p, w = positions.get(k, 0), working.get(k, 0)
        extra = signed_n if k == symbol else 0
        total += max(abs(p + extra), abs(p + w + extra)) * cap_rule.weight(k)
    return total


@settings(max_examples=200, deadline=None)
@given(
    positions=_book,
    working=_book,
    symbol=st.sampled_from(["NQ", "MNQ", "ES", "MES"]),
    side=st.sampled_from([1, -1]),
    n=st.integers(1, 40),
)
def test_allowed_contracts_are_the_most_that_fit_the_cap(positions, working, symbol, side, n):
    pack = make_pack(SCALING)  # cap 2 minis at the start balance
    cap_rule = pack.rules[0]
    s = start(pack, et(10, 9, 0))
    _, allowed = order_check(
        pack,
        s,
        symbol=symbol,
        side_sign=side,
        contracts=n,
        positions=positions,
        working=working,
        at=et(10, 10, 0),
        reducing=False,
    )
    if allowed:
        assert _exposure(cap_rule, positions, working, symbol, side * allowed) <= 2 + 1e-9
    for more in range(allowed + 1, n + 1):  # every larger size would break it
        assert _exposure(cap_rule, positions, working, symbol, side * more) > 2 + 1e-9
