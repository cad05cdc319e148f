"""Builders for the prop-firm tests: a pack from a few rules, and ET timestamps in a plain March 2025 week."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from nq_ray.propfirm.model import RulePack

ET = ZoneInfo("America/New_York")
SRC = "https://example.com/rules"


def et(day: int, hh: int, mm: int = 0) -> datetime:
    """March ``day`` 2025 at hh:mm ET (Mon 10 .. Fri 14 is a plain trading week)."""
    return datetime(2025, 3, day, hh, mm, tzinfo=ET)


def rule(kind: str, name: str | None = None, **params: Any) -> dict[str, Any]:
    return {"kind": kind, "name": name or kind, "source": SRC, "checked": "2026-12-07", **params}


def make_pack(*rules: dict[str, Any], start: float = 50_000.0, name: str = "test-50k") -> RulePack:
    return RulePack.model_validate(
        {
            "name": name,
            "firm": "Test",
            "program": "Evaluation",
            "phase": "evaluation",
            "account_size_usd": start,
            "starting_balance_usd": start,
            "version": 1,
            "checked": date(2026, 12, 7),
            "sources": [SRC],
            "rules": list(rules),
        }
    )
