"""The live runtime under a prop-firm rule pack and the economic calendar (issue #21), in process.

- the runtime's paper broker (``BrokerService``, store-backed) denies with the breached rule (``prop_*``)
  and shows the distance to every limit; its forced flatten; the pack's state survives a restart (a
  stopped day until the next session day, a failed account for good);
- a live patch of ``propfirm.pack`` is in force for the next order, an unknown pack is refused;
- the done-when line, on the replay clock over the bundled sample: an order two minutes before the
  FOMC statement of 2026-03-18 (14:00 ET) is denied with ``event_blackout``, the same order an hour later
  is not;
- the desk halts with the rule as the reason (and flattens) when the broker's gate says the account failed.

Hand-worked numbers (pack ``live-test-50k``: start $50,000; static max loss $2,000 → floor $48,000, fail;
daily loss $1,000 on equity, stop for the day; on a $100,000 paper account: offset −$50,000; no slippage,
no commission; NQ $20 a point):
- day 1 (session 2026-03-10): buy 2 at 20,000, marked at 19,970: equity 50,000 − 30 × 20 × 2 = 48,800,
  today −1,200 ≤ −1,000 → stopped for the day; the broker flattens, filled at 19,970: balance 48,800.
- day 2 (session 2026-03-11, from 18:00 ET on the 10th): max loss distance 48,800 − 48,000 = 800, today 0.
- another account: buy 2 at 20,000, marked at 19,940: equity 50,000 − 60 × 20 × 2 = 47,600 ≤ 48,000 →
  failed, distance −400.
"""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from nq_ray.config import Settings
from nq_ray.domain.orders import Order, OrderStatus
from nq_ray.errors import ConfigError, NQRayError
from nq_ray.runtime.broker import BrokerService
from nq_ray.runtime.propfirm import FLATTEN_PREFIX
from tests.execution.helpers import OPEN_LIMITS, bar, et

ET = ZoneInfo("America/New_York")
PACK = "live-test-50k"
SOURCE = "https://example.com/rules"
PACK_YAML = f"""
name: {PACK}
firm: Test Firm
program: Test Combine
phase: evaluation
account_size_usd: 50000
starting_balance_usd: 50000
version: 1
checked: 2026-12-01
sources: [{SOURCE}]
notes: the live runtime's hand-worked pack
rules:
  - {{kind: max_loss, name: Maximum Loss, amount_usd: 2000, trailing: static, consequence: fail,
      source: "{SOURCE}", checked: 2026-12-01}}
  - {{kind: daily_loss, name: Daily Loss, amount_usd: 1000, basis: equity, consequence: stop_day,
      source: "{SOURCE}", checked: 2026-12-01}}
  - {{kind: flat_by, name: Flat By, time: "16:10", source: "{SOURCE}", checked: 2026-12-01}}
"""


def pack_settings(tmp_path: Path, pack: str | None = PACK, **more: Any) -> Settings:
    packs = tmp_path / "packs"
    packs.mkdir(exist_ok=True)
    (packs / f"{PACK}.yaml").write_text(PACK_YAML)
    return Settings(
        data={"data_dir": str(tmp_path / "data")},
        risk={"limits": OPEN_LIMITS, "account_size_usd": 100_000},
        execution={"slippage_ticks": 0, "commission_per_contract": 0},
        propfirm={"pack": pack, "packs_dir": str(packs)},
        **more,
    )


def buy(n: int, coid: str) -> Order:
    return Order(symbol="NQ", side="buy", quantity=n, client_order_id=coid)


def codes(verdict: Any) -> set[str]:
    return {r.code for r in verdict.reasons}


def row(verdict: Any, rule: str) -> Any:
    (out,) = [d for d in verdict.distances if d.rule == rule]
    return out


# ---- the runtime's broker under a pack ----------------------------------------------------------------
def test_a_stopped_day_denies_with_the_rule_flattens_and_survives_a_restart_until_the_next_day(
    tmp_path: Path,
) -> None:
    s = pack_settings(tmp_path)
    svc = BrokerService(s, clock="bar")
    try:
        svc.on_bar("NQ", bar(et(10, 0), 20000, 20000, 20000, 20000))
        assert svc.place_order(buy(2, "d1-buy")).status is OrderStatus.ACCEPTED
        svc.on_bar("NQ", bar(et(10, 5), 20000, 20000, 19960, 19970))  # fills at 20,000, marks 19,970
        stopped = svc.check_order(buy(1, "d1-again"))
        forced = [r for r in svc.orders(open_only=True) if r.client_order_id.startswith(FLATTEN_PREFIX)]
        status = svc.prop_status()
        svc.on_bar("NQ", bar(et(10, 10), 19970, 19975, 19965, 19970))  # the forced flatten fills
        flat = svc.portfolio()
    finally:
        svc.close()

    assert not stopped.approved and "prop_stopped_day" in codes(stopped)
    daily = row(stopped, "Daily Loss")
    assert daily.value == pytest.approx(-1200.0) and daily.limit == -1000.0 and daily.state == "breached"
    assert row(stopped, "Maximum Loss").distance == pytest.approx(800.0)  # 48,800 − 48,000
    assert len(forced) == 1 and forced[0].reduce_only and forced[0].quantity == 2
    assert status["pack"]["name"] == PACK and status["status"] == "stopped for the day (2026-03-10)"
    assert status["state"]["equity_usd"] == pytest.approx(48_800.0)
    assert not any(p["quantity"] for p in flat["positions"].values())

    again = BrokerService(s, clock="bar")  # a restart: the state comes back from the store
    try:
        still = again.check_order(buy(1, "d1-after-restart"))
        again.on_bar("NQ", bar(et(18, 0), 19970, 19970, 19970, 19970))  # session day 2026-03-11 opens
        next_day = again.check_order(buy(1, "d2-check"))
    finally:
        again.close()
    assert not still.approved and "prop_stopped_day" in codes(still)
    assert next_day.approved, next_day.reasons
    assert row(next_day, "Maximum Loss").distance == pytest.approx(800.0)
    assert row(next_day, "Daily Loss").value == pytest.approx(0.0)


def test_a_failed_account_stays_failed_after_a_restart(tmp_path: Path) -> None:
    s = pack_settings(tmp_path)
    svc = BrokerService(s, clock="bar")
    try:
        svc.on_bar("NQ", bar(et(10, 0), 20000, 20000, 20000, 20000))
        svc.place_order(buy(2, "f-buy"))
        svc.on_bar("NQ", bar(et(10, 5), 20000, 20000, 19930, 19940))  # 50,000 − 60 × 20 × 2 = 47,600
        failed = svc.check_order(buy(1, "f-check"))
        status = svc.prop_status()
    finally:
        svc.close()
    assert not failed.approved and "prop_failed" in codes(failed)
    ml = row(failed, "Maximum Loss")
    assert (ml.value, ml.limit, ml.state) == (pytest.approx(47_600.0), 48_000.0, "breached")
    assert ml.distance == pytest.approx(-400.0)
    assert status["status"] == "failed: Maximum Loss"

    svc = BrokerService(s, clock="bar")  # restarted, on a later session day: still failed
    try:
        svc.on_bar("NQ", bar(et(10, 0, day=11), 19940, 19940, 19940, 19940))
        later = svc.check_order(buy(1, "f-check-2"))
        flat = svc.portfolio()
        forced = [f for f in svc.fills() if f.fill.client_order_id.startswith(FLATTEN_PREFIX)]
    finally:
        svc.close()
    assert not later.approved and "prop_failed" in codes(later)
    # the broker's forced flatten (sent when the account failed) filled at the next bar, after the restart
    assert [(f.fill.side.value, f.fill.quantity, f.fill.price) for f in forced] == [("sell", 2, 19940.0)]
    assert not any(p["quantity"] for p in flat["positions"].values())


def test_a_live_pack_patch_is_in_force_for_the_next_order_and_an_unknown_pack_is_refused(
    tmp_path: Path,
) -> None:
    from nq_ray.runtime.registry import LiveSettings

    s = pack_settings(tmp_path, pack=None)
    live = LiveSettings(s, s.store_url)
    svc = BrokerService(s, clock="bar")
    try:
        svc.on_bar("NQ", bar(et(10, 0), 20000, 20000, 20000, 20000))
        before = svc.check_order(buy(1, "p-1"))
        with pytest.raises(ConfigError, match="unknown prop-firm pack 'no-such-pack'; known packs: apex"):
            asyncio.run(live.apply({"propfirm": {"pack": "no-such-pack"}}, "test"))
        (tmp_path / "packs" / "broken.yaml").write_text("name: broken\nfirm: [\n")
        with pytest.raises(NQRayError, match="broken.yaml"):  # the file named
            asyncio.run(live.apply({"propfirm": {"pack": "broken"}}, "test"))
        asyncio.run(live.apply({"propfirm": {"pack": PACK}}, "test"))
        after = svc.check_order(buy(1, "p-2"))  # the broker reads the overlay before the decision
        status = svc.live()
    finally:
        svc.close()
    assert before.approved and not [d for d in before.distances if d.rule == "Maximum Loss"]
    assert after.approved and row(after, "Maximum Loss").distance == pytest.approx(2000.0)
    assert status["rule_pack"] == PACK


# ---- the done-when line: an FOMC statement in a replay -------------------------------------------------
def test_an_order_two_minutes_before_the_fomc_statement_is_denied_and_an_hour_later_is_not(
    tmp_path: Path,
) -> None:
    """The replay clock over the bundled sample and the bundled calendar, a blackout of 5 minutes either
    side of an FOMC statement (the default's FOMC window, spelled out so the test holds if the default
    rules grow): 2026-03-18 13:58 ET is inside the statement's window (14:00), 14:58 is not."""
    from nq_ray.runtime import Runtime
    from nq_ray.runtime.replay import prepare_replay

    s = Settings(
        data={"data_dir": str(tmp_path / "data")},
        replay={"clock": "replay", "symbols": ["NQ"], "start": "2026-03-18T13:00"},
        events={"blackouts": [{"kinds": ["fomc"], "before_min": 5, "after_min": 5, "action": "block"}]},
    )
    prepare_replay(s)

    async def go() -> tuple[Any, Any, Any, Any]:
        rt = Runtime(s, "in_process")
        market = rt.market()
        await market.start(paused=True)
        try:
            broker = rt.broker()
            await market.jump("2026-03-18T13:58")
            early = await broker.check_order(buy(1, "fomc-early"))
            placed = await broker.place_order(buy(1, "fomc-early"), source="test")
            await market.jump("2026-03-18T14:58")
            later = await broker.check_order(buy(1, "fomc-later"))
            status = await broker.prop_status()
            return early, placed, later, status
        finally:
            await market.stop()
            rt.close()

    early, placed, later, status = asyncio.run(go())
    assert not early.approved and codes(early) == {"event_blackout"}
    (reason,) = early.reasons
    assert "FOMC statement" in reason.message
    assert placed.status is OrderStatus.REJECTED and [r.code for r in placed.reasons or []] == [
        "event_blackout"
    ]
    assert later.approved, later.reasons
    assert status["pack"] is None and status["blackout"] is None
    assert datetime.fromisoformat(status["as_of"]).astimezone(ET).strftime("%H:%M") == "14:58"


def test_at_the_flat_by_time_the_broker_flattens_and_opens_nothing_until_the_next_session(
    tmp_path: Path,
) -> None:
    svc = BrokerService(pack_settings(tmp_path), clock="bar")
    try:
        svc.on_bar("NQ", bar(et(16, 0), 20000, 20000, 20000, 20000))
        svc.place_order(buy(1, "fb-buy"))
        svc.on_bar("NQ", bar(et(16, 5), 20000, 20000, 20000, 20000))  # filled, before the flat-by time
        before = [r.client_order_id for r in svc.orders(open_only=True)]
        svc.on_bar("NQ", bar(et(16, 10), 20000, 20000, 20000, 20000))  # 16:10: flat by now
        forced = [r for r in svc.orders(open_only=True) if r.client_order_id.startswith(FLATTEN_PREFIX)]
        svc.on_bar("NQ", bar(et(16, 15), 20000, 20000, 20000, 20000))
        refused = svc.check_order(buy(1, "fb-late"))
        flat = svc.portfolio()
        svc.on_bar("NQ", bar(et(18, 0), 20000, 20000, 20000, 20000))  # the next session opens
        reopened = svc.check_order(buy(1, "fb-next"))
    finally:
        svc.close()
    assert before == [] and len(forced) == 1 and forced[0].quantity == 1
    assert not any(p["quantity"] for p in flat["positions"].values())
    assert not refused.approved and "prop_flat_by" in codes(refused)
    assert reopened.approved, reopened.reasons


# ---- the desk ---------------------------------------------------------------------------------------
async def test_the_desk_halts_naming_the_rule_and_flattens_when_the_gate_says_the_account_failed(
    tmp_path: Path,
) -> None:
    """A risk agent that asks the real gate about a one-lot buy (``check_risk_limits`` through the tools,
    the runtime's broker behind them): the account failed under the pack, so the verdict says
    ``prop_failed`` and the desk halts with the rule in the reason and flattens through the tools."""
    from nq_ray.agents.agents import LocalTools, RiskAgent
    from nq_ray.agents.models import RiskAssessment
    from nq_ray.agents.service import DeskService, LocalAgentHost
    from nq_ray.llm.router import LLMRouter
    from nq_ray.market.clock import FixedClock
    from nq_ray.runtime import Runtime
    from nq_ray.store.repository import Repository
    from tests.agents.deskkit import RULES

    class GateRisk(RiskAgent):
        async def assess_trade(self, analysis: Any) -> RiskAssessment:
            out = await self.tools.call(
                "check_risk_limits", {"symbol": "NQ", "side": "buy", "contracts": 1}, who=self.agent_id
            )
            v = out["verdict"]
            return RiskAssessment(
                symbol="NQ", approved=v["approved"], contracts=v["adjusted_contracts"], verdict=v
            )

    class GateHost(LocalAgentHost):
        def build(self, agent_type: str, agent_id: str, config: Any) -> Any:
            if agent_type == "risk":
                return GateRisk(self.tools, agent_id=agent_id, config=config)
            return super().build(agent_type, agent_id, config)

    s = pack_settings(tmp_path, llm={"providers": [RULES.model_dump()], "health_interval_s": 0})
    clock = FixedClock(et(10, 30, day=11))  # Wednesday: the weekly jobless claims are tomorrow 08:30
    rt = Runtime(s, "in_process", feed=False, clock=clock)
    broker = rt.broker()
    await broker.on_bar("NQ", bar(et(10, 0, day=11), 20000, 20000, 20000, 20000))
    await broker.place_order(buy(2, "desk-buy"))
    await broker.on_bar("NQ", bar(et(10, 5, day=11), 20000, 20000, 19930, 19940))  # equity 47,600: failed
    tools = LocalTools(rt.registry())
    repo = await Repository.connect(s.store_url)
    router = LLMRouter.from_config(s.llm)
    desk = DeskService(
        s, repo=repo, tools=tools, router=router, host=GateHost(tools, router, repo, clock), clock=clock
    )
    try:
        out = await desk.run_once("NQ")
        record = await desk.decision(out["decision_id"])
        status = await desk.status()
        events = await desk.events_since(0)
        working = [r for r in await broker.orders(open_only=True) if r.reduce_only]
    finally:
        await desk.close()
        await repo.close()
        rt.close()
    # the day's loss (−$2,400) breached the daily loss too; the failing rule is named with its consequence
    assert out["auto_halt"].startswith("risk engine: prop_daily_loss, prop_failed rule 'Maximum Loss' (fail)")
    assert status["halted"] and "Maximum Loss" in status["halt_reason"] and status["halted_by"] == "desk"
    assert out["flatten"]["error"] is None
    assert "flattened" in [e["kind"] for e in events]
    assert working and all(r.side.value == "sell" for r in working)  # closing orders for the 2 held
    # the upcoming events reach the desk's analysis (the calendar tool behind the agents' context)
    assert "Unemployment insurance weekly claims" in json.dumps(record["inputs"]) + str(record["prompt"])


def test_a_flatten_blackout_window_flattens_and_refuses_new_risk_until_it_ends(tmp_path: Path) -> None:
    """No pack: a user calendar's CPI at 10:30 ET with a window of 10 minutes before to 5 after whose
    action is ``flatten``. The 10:20 mark is inside it: the broker flattens the long; a buy is refused with
    ``event_blackout`` until 10:35, when it passes again."""
    cal = tmp_path / "cpi.csv"
    cal.write_text(
        "kind,time,title,source\n"
        "cpi,2026-03-10T10:30:00-04:00,CPI (test),https://www.bls.gov/schedule/news_release/cpi.htm\n"
    )
    rules = [{"kinds": ["cpi"], "before_min": 10, "after_min": 5, "action": "flatten"}]
    s = pack_settings(tmp_path, pack=None, events={"calendar_files": [str(cal)], "blackouts": rules})
    svc = BrokerService(s, clock="bar")
    try:
        svc.on_bar("NQ", bar(et(10, 0), 20000, 20000, 20000, 20000))
        svc.place_order(buy(1, "cpi-buy"))
        svc.on_bar("NQ", bar(et(10, 5), 20000, 20000, 20000, 20000))  # filled, outside the window
        svc.on_bar("NQ", bar(et(10, 20), 20000, 20000, 20000, 20000))  # 10:20: the window opens
        forced = [r for r in svc.orders(open_only=True) if r.client_order_id.startswith(FLATTEN_PREFIX)]
        inside = svc.check_order(buy(1, "cpi-inside"))
        status = svc.prop_status()
        svc.on_bar("NQ", bar(et(10, 25), 20000, 20000, 20000, 20000))
        flat = svc.portfolio()
        svc.on_bar("NQ", bar(et(10, 35), 20000, 20000, 20000, 20000))  # the window has ended
        after = svc.check_order(buy(1, "cpi-after"))
    finally:
        svc.close()
    assert len(forced) == 1 and forced[0].side.value == "sell" and forced[0].quantity == 1
    assert codes(inside) == {"event_blackout"} and "CPI (test)" in inside.reasons[0].message
    assert status["blackout"]["action"] == "flatten" and "CPI (test)" in status["flatten_due"]
    assert status["last_flatten"]["orders"] == [forced[0].client_order_id]
    assert not any(p["quantity"] for p in flat["positions"].values())
    assert after.approved, after.reasons


def test_a_broker_whose_calendar_knows_no_coming_release_of_a_blackout_kind_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The bundled CPI rows end in early 2026: a broker started later logs that no CPI is known ahead
    (so none gets a blackout) and where to load the schedule; a user row 40 days ahead silences it."""
    ahead = (datetime.now(ET) + timedelta(days=40)).replace(microsecond=0, second=0, minute=30, hour=8)
    mine = tmp_path / "mine.csv"
    mine.write_text(f"kind,time,title,source\ncpi,{ahead.isoformat()},CPI (mine),{SOURCE}\n")
    quiet = {
        "calendar_files": [str(mine)],
        "blackouts": [{"kinds": ["cpi"], "before_min": 5, "after_min": 5}],
    }

    for events, warned in (({}, True), (quiet, False)):
        caplog.clear()
        with caplog.at_level("WARNING", logger="nq_ray.runtime.propfirm"):
            svc = BrokerService(pack_settings(tmp_path, events=events), clock="bar")
            svc.close()
        lines = [r.getMessage() for r in caplog.records if "economic calendar" in r.getMessage()]
        if warned:
            assert len(lines) == 1 and "last release of cpi is on 2026-" in lines[0] and "nfp" in lines[0]
            assert "events.calendar_files" in lines[0]
        else:
            assert lines == []
