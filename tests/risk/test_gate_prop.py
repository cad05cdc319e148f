"""The gate under a prop-firm rule pack: its reasons (codes prop_*), reducing orders always pass, and the
distance to every limit in every verdict."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from nq_ray.domain.orders import AccountState, Order, Side
from nq_ray.propfirm.packs import load_pack
from nq_ray.propfirm.state import mark, start
from nq_ray.risk import RiskAction, RiskLimits, check_order

ET = ZoneInfo("America/New_York")
TUE_10 = datetime(2026, 3, 3, 10, 0, tzinfo=ET)  # a plain Tuesday, RTH
TUE_1615 = datetime(2026, 3, 3, 16, 15, tzinfo=ET)  # after Topstep's 16:10 ET flat-by time

LIMITS = RiskLimits(
    max_contracts_per_symbol=8,
    max_total_contracts=10,
    max_notional_usd=None,
    max_margin_use_pct=None,
    max_daily_loss_usd=2_000,
    trailing_drawdown_usd=3_000,
    max_orders_per_minute=None,
    max_consecutive_losses=None,
    trade_only_when_open=False,  # never depend on the wall clock or the CME calendar here
)


def account(equity: float = 50_000.0, positions: dict[str, int] | None = None, **kw) -> AccountState:
    return AccountState(
        equity_usd=equity,
        starting_balance_usd=50_000.0,
        equity_high_usd=max(equity, 50_000.0),
        positions=positions or {},
        as_of=kw.pop("as_of", TUE_10),
        **kw,
    )


def topstep(balance: float = 50_000.0, equity: float | None = None, at: datetime = TUE_10):
    pack = load_pack("topstep-50k")
    state = start(pack, datetime(2026, 3, 3, 9, 0, tzinfo=ET))
    state = mark(pack, state, at=at, balance_usd=balance, equity_usd=balance if equity is None else equity)
    return pack, state


def codes(v) -> set[str]:
    return {r.code for r in v.reasons}


def test_contract_cap_reduces_in_mini_equivalents():
    # topstep-50k: 5 lots, micros count as full lots. Long 3 NQ, buy 4 MNQ: 3 + 4 = 7 > 5 → 2 fit
    v = check_order(
        Order(symbol="MNQ", side=Side.BUY, quantity=4),
        account(positions={"NQ": 3}),
        LIMITS,
        prop=topstep(),
    )
    assert v.approved and v.adjusted_contracts == 2
    [r] = [r for r in v.reasons if r.code == "prop_max_contracts"]
    assert r.action is RiskAction.REDUCE and "4 reduced to 2" in r.message


def test_max_loss_breach_fails_the_account_and_denies_new_risk():
    # topstep-50k day one: MLL floor 48,000; equity 48,000 is at the floor → failed
    pack, state = topstep(balance=48_000)
    assert state.failed is not None
    v = check_order(
        Order(symbol="NQ", side=Side.BUY, quantity=1), account(48_000), LIMITS, prop=(pack, state)
    )
    assert not v.approved and "prop_failed" in codes(v)


def test_reducing_order_passes_a_failed_account():
    pack, state = topstep(balance=48_000)
    v = check_order(
        Order(symbol="NQ", side=Side.SELL, quantity=1),
        account(48_000, positions={"NQ": 1}),
        LIMITS,
        prop=(pack, state),
    )
    assert v.approved and v.adjusted_contracts == 1 and not any(r.code.startswith("prop_") for r in v.reasons)


def test_daily_loss_soft_breach_stops_the_day():
    # DLL 1,000 from the day's starting balance: equity 48,999 is −1,001 (MLL floor 48,000 not reached)
    pack, state = topstep(balance=50_000, equity=48_999)
    assert state.stopped_day == "2026-03-03" and state.failed is None
    v = check_order(
        Order(symbol="NQ", side=Side.BUY, quantity=1), account(48_999), LIMITS, prop=(pack, state)
    )
    assert not v.approved and codes(v) == {"prop_stopped_day"}


def test_flat_by_time_denies_new_risk():
    pack, state = topstep(at=TUE_10)
    v = check_order(
        Order(symbol="NQ", side=Side.BUY, quantity=1),
        account(as_of=TUE_1615),
        LIMITS,
        prop=(pack, state),
    )
    assert not v.approved and codes(v) == {"prop_flat_by"}
    assert "16:15 ET" in next(r.message for r in v.reasons if r.code == "prop_flat_by")


def test_distances_in_an_approved_verdict_cover_every_limit():
    # equity 50,400 after +400 today (balance 50,000 at the day's start, high 50,400)
    pack, state = topstep(balance=50_000, equity=50_400)
    acct = account(50_400, positions={"NQ": 1}, unrealized_pnl_usd=400.0)
    v = check_order(Order(symbol="NQ", side=Side.BUY, quantity=1), acct, LIMITS, prop=(pack, state))
    assert v.approved
    rows = {d.rule: d for d in v.distances}
    assert set(rows) == {
        "limits.max_daily_loss_usd",
        "limits.trailing_drawdown_usd",
        "limits.max_contracts_per_symbol",
        "limits.max_total_contracts",
        "profit_target",
        "maximum_loss_limit",
        "daily_loss_limit",
        "maximum_position_size",
        "consistency_target",
        "flat_by_close",
    }
    assert rows["limits.max_daily_loss_usd"].distance == 2_400  # 2,000 + 400
    assert rows["limits.trailing_drawdown_usd"].distance == 3_000  # floor 50,400 − 3,000
    assert rows["maximum_loss_limit"].distance == 2_400  # EOD floor still 48,000
    assert rows["daily_loss_limit"].distance == 1_400  # 1,000 + 400
    assert rows["maximum_position_size"].distance == 4  # 5 − 1 held
    assert rows["profit_target"].state == "pending" and rows["profit_target"].distance == 3_000
    assert rows["flat_by_close"].distance == 370  # 10:00 → 16:10 ET


def test_distances_in_a_denied_verdict_and_without_a_pack():
    v = check_order(
        Order(symbol="NQ", side=Side.BUY, quantity=1),
        account(47_000, realized_pnl_today_usd=-3_000.0),
        LIMITS,
    )
    assert not v.approved
    rows = {d.rule: d for d in v.distances}
    assert (
        rows["limits.max_daily_loss_usd"].state == "breached"
        and rows["limits.max_daily_loss_usd"].distance == -1_000
    )
    assert rows["limits.trailing_drawdown_usd"].state == "breached"


def test_no_pack_no_prop_reasons():
    v = check_order(Order(symbol="MNQ", side=Side.BUY, quantity=9), account(positions={"NQ": 3}), LIMITS)
    # only the gate's own limits: 10 in all − 3 NQ held = 7 MNQ (per symbol 8 allows more)
    assert v.approved and v.adjusted_contracts == 7
    assert not any(r.code.startswith("prop_") for r in v.reasons)
