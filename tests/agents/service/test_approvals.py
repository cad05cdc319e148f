"""``nq_ray.agents.service.approvals``: approval mode, approving exactly once, rejected and expired
approvals."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from nq_ray.agents.service import ApprovalClosedError
from nq_ray.config import Settings
from tests.agents.deskkit import Clock, make_service, orders_for


async def test_approval_mode_waits_and_approving_twice_sends_exactly_one_order(
    ray_session: Any, settings: Settings, parts: Any
) -> None:
    registry, broker = parts
    svc = await make_service(settings, registry)
    try:
        await svc.set_approval_mode(True)
        out = await svc.run_once("NQ")
        coid = f"desk-{out['decision_id']}"
        before = orders_for(broker, ray_session, coid)
        (pending,) = await svc.pending_approvals()
        first, second = await asyncio.gather(
            svc.approve(pending["id"], who="alice"), svc.approve(pending["id"], who="bob")
        )
        third = await svc.approve(pending["id"])
        rec = await svc.decision(out["decision_id"])
        left = await svc.pending_approvals()
    finally:
        await svc.close()

    assert out["approval"]["status"] == "pending" and out["execution"] is None and before == []
    assert pending["proposal"]["side"] == "buy" and pending["expires_at"] > pending["created_at"]
    assert sorted([first["already"], second["already"], third["already"]]) == [False, True, True]
    assert len(orders_for(broker, ray_session, coid)) == 1
    assert rec["approval"]["status"] == "approved" and rec["approval"]["decided_by"] == "alice"
    assert len(rec["executions"]) == 1 and [o["client_order_id"] for o in rec["orders"]] == [coid]
    assert left == []


async def test_rejected_and_expired_approvals_cannot_be_approved_and_send_nothing(
    ray_session: Any, settings: Settings, parts: Any
) -> None:
    registry, broker = parts
    clock = Clock()
    svc = await make_service(settings, registry, clock=clock, approval_ttl_s=300)
    try:
        await svc.set_approval_mode(True)
        a = (await svc.run_once("NQ"))["approval"]
        b = (await svc.run_once("NQ"))["approval"]
        rejected = await svc.reject(a["id"], who="carol", reason="not today")
        with pytest.raises(ApprovalClosedError):
            await svc.approve(a["id"])
        clock.advance(301)
        with pytest.raises(ApprovalClosedError):
            await svc.approve(b["id"])
        with pytest.raises(ApprovalClosedError):
            await svc.reject(b["id"])
        statuses = {x["id"]: x["status"] for x in await svc.approvals()}
    finally:
        await svc.close()

    assert rejected["approval"]["status"] == "rejected" and rejected["approval"]["reason"] == "not today"
    assert statuses == {a["id"]: "rejected", b["id"]: "expired"}
    for x in (a, b):
        assert orders_for(broker, ray_session, f"desk-{x['decision_id']}") == []
