"""``AuditRecord``: the one shape of an audit entry, and what ``bounded()`` makes of it before storing."""

from __future__ import annotations

from datetime import UTC, datetime

from nq_ray.config import REDACTED
from nq_ray.domain.audit import MAX_ARGUMENTS_BYTES, AuditRecord

T0 = datetime(2026, 3, 9, 15, 0, tzinfo=UTC)


def test_bounded_redacts_secret_arguments_and_keeps_the_rest() -> None:
    rec = AuditRecord(
        at=T0, who="mcp", tool="place_order", arguments={"symbol": "NQ", "token": "t"}, outcome="ok"
    )

    out = rec.bounded()

    assert out.arguments == {"symbol": "NQ", "token": REDACTED}
    assert (out.at, out.who, out.tool, out.outcome) == (T0, "mcp", "place_order", "ok")


def test_bounded_cuts_strings_to_the_column_widths() -> None:
    rec = AuditRecord(at=T0, who="w" * 100, tool="t" * 100, outcome="o" * 40, error_code="e" * 100)

    out = rec.bounded()

    assert (len(out.who), len(out.tool), len(out.outcome), len(out.error_code or "")) == (64, 64, 16, 64)


def test_oversized_arguments_become_a_stub_naming_their_keys() -> None:
    big = {"bars": "x" * (MAX_ARGUMENTS_BYTES + 1), "symbol": "NQ"}

    out = AuditRecord(at=T0, who="mcp", tool="t", arguments=big, outcome="ok").bounded()

    assert out.arguments is not None and out.arguments["_truncated"] is True
    assert out.arguments["keys"] == ["bars", "symbol"]
