"""The Ray metrics sink accepts ledger records inside a running Ray instance."""

from __future__ import annotations

import pytest

from nq_ray.llm.accounting import UsageLedger
from nq_ray.llm.metrics import RayMetricsSink

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]


def test_ledger_records_reach_ray_metrics(ray_session: object) -> None:
    sink = RayMetricsSink(prefix="nq_llm_test")
    ledger = UsageLedger(sinks=[sink])

    ledger.record(
        provider="serve",
        model="qwen",
        caller="agent-1",
        task="technical_analysis",
        prompt_tokens=120,
        completion_tokens=30,
        latency_s=0.4,
        cost_usd=0.001,
        ok=True,
    )

    assert ledger.totals(caller="agent-1").total_tokens == 150
    assert sink.tokens.info["name"] == "nq_llm_test_tokens_total"
