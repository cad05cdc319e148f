"""An account's path under a pack, each rule kind with hand-worked numbers."""

from __future__ import annotations

import pytest

from nq_ray.errors import InvalidArgumentError
from nq_ray.propfirm.state import close_day, evaluate, flatten_due, mark, max_loss_floor, order_check, start
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


def test_close_day_is_idempotent():
    pack = make_pack(rule("max_loss", amount_usd=2_000, trailing="eod_balance"))
    s = mark(pack, start(pack, et(10, 9, 0)), at=et(10, 15, 0), balance_usd=50_700, equity_usd=50_700)
    once = close_day(pack, s)
    assert close_day(pack, once) == once
    assert once.day_pnl_usd == {"2025-03-10": 700}
