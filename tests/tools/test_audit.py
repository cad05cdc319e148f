"""Audit sinks: ``StoreAuditor`` writes ``AuditRecord``s to the store; ``ForwardingAuditor`` batches them
to an ``AuditLog`` (the registry actor's ``audit_many`` in the runtime; a recording sink here)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from nq_ray.config import REDACTED, Settings
from nq_ray.domain.audit import AuditRecord
from nq_ray.tools.audit import ForwardingAuditor, StoreAuditor

T0 = datetime(2026, 3, 9, 15, 0, tzinfo=UTC)


def _record(i: int, **kw: Any) -> AuditRecord:
    return AuditRecord(at=T0, who="mcp", tool=f"tool_{i}", arguments={"i": i} | kw, outcome="ok")


async def test_store_auditor_writes_one_record_and_a_batch(settings: Settings) -> None:
    auditor = StoreAuditor(settings.store_url)
    try:
        await auditor.audit(_record(0, password="pw"))
        written = await auditor.audit_many([_record(1), _record(2)])
        log = await auditor.recent(10)
    finally:
        await auditor.close()

    assert written == 2 and auditor.failures == 0
    assert sorted(r["tool"] for r in log) == ["tool_0", "tool_1", "tool_2"]
    assert next(r for r in log if r["tool"] == "tool_0")["arguments"]["password"] == REDACTED


class _Sink:
    """An ``AuditLog`` (``nq_ray.ports``) that keeps each batch it is sent."""

    def __init__(self) -> None:
        self.batches: list[list[AuditRecord]] = []

    async def audit_many(self, records: list[AuditRecord]) -> int:
        self.batches.append(records)
        return len(records)


async def test_forwarding_auditor_sends_bounded_records_in_one_batch() -> None:
    sink = _Sink()
    auditor = ForwardingAuditor(sink, flush_s=60, batch=100)

    for i in range(3):
        await auditor.audit(_record(i, api_key="k"))
    await auditor.flush()

    (batch,) = sink.batches
    assert [r.tool for r in batch] == ["tool_0", "tool_1", "tool_2"]
    assert all(isinstance(r, AuditRecord) and r.arguments["api_key"] == REDACTED for r in batch)
    assert auditor.sent == 3
