"""``nq_ray.agents.service.decisions``: a cycle's decision read back in full (inputs, prompt, parsed view,
risk, executions, the broker order) and in the summary list."""

from __future__ import annotations

import json
from typing import Any

from nq_ray.config import Settings
from tests.agents.deskkit import make_service, orders_for


async def test_run_once_records_the_full_decision_and_one_order_with_the_desk_client_id(
    ray_session: Any, settings: Settings, parts: Any
) -> None:
    registry, broker = parts
    svc = await make_service(settings, registry)
    try:
        out = await svc.run_once("NQ")
        rec = await svc.decision(out["decision_id"])
        summary = await svc.decisions(limit=5)
        status = await svc.status()
    finally:
        await svc.close()

    coid = f"desk-{out['decision_id']}"
    assert out["action"] == "buy" and out["execution"]["placed"]
    assert rec["inputs"]["window"]["bars"] == 600 and len(rec["inputs"]["window"]["sha256"]) == 64
    assert rec["parsed"]["bias"] == "long" and rec["risk"]["approved"] and rec["model"] == "rules/nq-rules-v1"
    assert json.loads(rec["prompt"])[0]["role"] == "system" and rec["raw_output"]
    assert [o["client_order_id"] for o in rec["orders"]] == [coid]
    assert [e["decision_id"] for e in rec["executions"]] == [out["decision_id"]]
    assert len(orders_for(broker, ray_session, coid)) == 1
    assert summary[0]["id"] == out["decision_id"] and summary[0]["action"] == "buy"
    assert status["cycles"] == 1 and not status["halted"] and status["llm"][0]["name"] == "rules"
    assert {a["agent_id"] for a in status["agents"]} >= {"analysis_agent", "risk_agent", "execution_agent"}
