"""``nq_ray.agents.service.loop``: the trading windows, the loop's cadence over all symbols, and recovery of
a cycle cut short."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from nq_ray.agents.agents import ExecutionAgent
from nq_ray.agents.desk import TradingDesk
from nq_ray.agents.service import in_window
from nq_ray.config import Settings
from tests.agents.deskkit import Clock, make_service, orders_for


def test_windows_follow_the_cme_sessions() -> None:
    tue_10 = datetime(2026, 4, 28, 14, 0, tzinfo=UTC)  # 10:00 New York
    tue_2335 = datetime(2026, 4, 29, 3, 35, tzinfo=UTC)  # 23:35 New York: Globex, not RTH
    sat = datetime(2026, 4, 25, 16, 0, tzinfo=UTC)
    assert [in_window(w, tue_10) for w in ("rth", "globex", "always")] == [True, True, True]
    assert [in_window(w, tue_2335) for w in ("rth", "globex", "always")] == [False, True, True]
    assert [in_window(w, sat) for w in ("rth", "globex", "always")] == [False, False, True]


async def test_loop_runs_all_symbols_every_cadence_only_inside_the_window(
    settings: Settings, parts: Any
) -> None:
    clock = Clock(datetime(2026, 4, 25, 16, 0, tzinfo=UTC))  # Saturday noon New York: closed

    async def sleep(seconds: float) -> None:
        clock.advance(seconds)
        await asyncio.sleep(0)

    svc = await make_service(settings, parts[0], clock=clock, sleep=sleep, windows="globex")
    try:
        await svc.start(symbols=["NQ", "ES"], cadence_s=3600)
        for _ in range(600):
            if svc.cycles >= 4:
                break
            await asyncio.sleep(0.05)
        stopped = await svc.stop()
        rows = await svc.decisions(limit=50)
    finally:
        await svc.close()

    ats = sorted({r["at"] for r in rows})
    open_ = datetime(2026, 4, 26, 22, 0, tzinfo=UTC)  # Sunday 18:00 New York, the Globex open
    assert datetime.fromisoformat(ats[0]) == open_
    assert datetime.fromisoformat(ats[1]) - datetime.fromisoformat(ats[0]) == timedelta(hours=1)
    by_time: dict[str, set[str]] = {}
    for r in rows:
        by_time.setdefault(r["at"], set()).add(r["symbol"])
    assert by_time[ats[0]] == {"NQ", "ES"} and not stopped["running"]


class FailingTools:
    """A broker that dies before the order is sent."""

    async def call(self, name: str, arguments: dict[str, Any], *, who: str) -> dict[str, Any]:
        raise RuntimeError(f"process died before {name}")


async def test_a_cycle_cut_short_after_its_decision_is_finished_once_on_restart(
    ray_session: Any, settings: Settings, parts: Any
) -> None:
    registry, broker = parts
    svc = await make_service(settings, registry)
    desk = TradingDesk(
        svc._agent("analysis_agent"), svc._agent("risk_agent"), ExecutionAgent(FailingTools()), svc._repo
    )
    desk.clock = svc.clock
    with pytest.raises(RuntimeError, match="process died"):
        await desk.run_once("NQ")
    (cut,) = await svc.decisions()
    await svc.close()

    for _ in range(2):  # two restarts: the second finds nothing left to do
        again = await make_service(settings, registry)
        rec = await again.decision(cut["id"])
        await again.close()

    assert orders_for(broker, ray_session, f"desk-{cut['id']}") and len(rec["executions"]) == 1
    assert len(orders_for(broker, ray_session, f"desk-{cut['id']}")) == 1
