"""``nq_ray.store.desk`` on SQLite and PostgreSQL: desk state, agent configs, approvals (one winner per
transition, expiry), daily usage; and one whole desk run (decision, approval, kill, restart) on PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from nq_ray.store.desk import DeskStore
from nq_ray.store.repository import Repository
from nq_ray.store.testing import ensure_postgres, temp_database
from tests.agents.deskkit import broker_registry, make_service, make_settings, orders_for

T0 = datetime(2026, 4, 28, 14, 0, tzinfo=UTC)


async def test_desk_tables_round_trip_and_approval_transitions_have_one_winner(db_url: str) -> None:
    repo = await Repository.connect(db_url)
    store = DeskStore(repo)
    try:
        await store.set_state("desk", {"halted": True, "halt_reason": "kill switch: x"}, at=T0)
        await store.set_state("desk", {"halted": False}, at=T0)
        await store.put_agent("a1", "analysis", {"temperature": 0.1}, at=T0)
        await store.put_agent("a1", "analysis", {"temperature": 0.3}, at=T0)
        a = await store.add_approval(
            decision_id=7,
            symbol="NQ",
            proposal={"side": "buy"},
            assessment={"approved": True},
            created_at=T0,
            expires_at=T0 + timedelta(minutes=5),
        )
        b = await store.add_approval(
            decision_id=8,
            symbol="NQ",
            proposal=None,
            assessment={"approved": True},
            created_at=T0,
            expires_at=T0 + timedelta(minutes=1),
        )
        wins = await asyncio.gather(
            *(store.decide_approval(a["id"], "approved", who=f"u{i}", at=T0) for i in range(4))
        )
        expired = await store.expire_approvals(T0 + timedelta(minutes=2))
        late = await store.decide_approval(b["id"], "approved", who="late", at=T0 + timedelta(minutes=2))
        for tokens, usd in ((100, 0.01), (50, 0.02)):
            await store.add_usage("a1", "2026-04-28", tokens, usd)
        state = await store.get_state("desk")
        agents = await store.agents()
        rows = {r["id"]: r for r in await store.approvals()}
        usage = await store.usage("a1", "2026-04-28")
        none = await store.usage("a1", "2026-04-29")
        deleted = (await store.delete_agent("a1"), await store.delete_agent("a1"))
    finally:
        await repo.close()

    assert state == {"halted": False}
    assert [(x["agent_id"], x["config"]) for x in agents] == [("a1", {"temperature": 0.3})]
    assert sorted(wins) == [False, False, False, True] and rows[a["id"]]["status"] == "approved"
    assert expired == 1 and late is False and rows[b["id"]]["status"] == "expired"
    assert usage[0] == 150 and usage[1] == pytest.approx(0.03) and none == (0, 0.0)
    assert deleted == (True, False)


@pytest.fixture
def pg_url(tmp_path: Path) -> Iterator[str]:
    ensure_postgres()
    with temp_database("postgresql", tmp_path) as url:
        yield url


async def test_a_desk_on_postgresql_approves_once_and_stays_killed_across_instances(
    ray_session: Any, tmp_path: Path, nq_5m: Any, pg_url: str
) -> None:
    settings = make_settings(tmp_path, store_url=pg_url)
    with broker_registry(ray_session, settings, nq_5m) as (registry, broker):
        svc = await make_service(settings, registry)
        try:
            await svc.set_approval_mode(True)
            out = await svc.run_once("NQ")
            approvals = await asyncio.gather(*(svc.approve(out["approval"]["id"]) for _ in range(3)))
            await svc.kill("pg drill")
        finally:
            await svc.close()
        again = await make_service(settings, registry)
        try:
            status = await again.status()
            rec = await again.decision(out["decision_id"])
        finally:
            await again.close()
        orders = orders_for(broker, ray_session, f"desk-{out['decision_id']}")

    assert sorted(a["already"] for a in approvals) == [False, True, True] and len(orders) == 1
    assert status["halted"] and status["approval_mode"] and rec["approval"]["status"] == "approved"
