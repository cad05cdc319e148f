"""``desk.scan``: with the scanner on, a loop round trades only the best-ranked symbols of ``scan_market``."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from nq_ray.config import DeskScanSettings, Settings
from tests.agents.deskkit import Clock, make_service


async def test_the_loop_trades_only_the_top_ranked_symbol_when_the_scan_is_on(
    settings: Settings, parts: Any
) -> None:
    # Arrange: the scan ranks NQ and ES on 5m and 1h; the loop was started for ES alone
    settings.desk.scan = DeskScanSettings(
        enabled=True, symbols=["NQ", "ES"], timeframes=["5m", "1h"], top_n=1
    )
    ranked = await parts[0].call("scan_market", {"symbols": ["NQ", "ES"], "timeframes": ["5m", "1h"]})
    best = ranked["top_symbols"][0]
    clock = Clock(datetime(2026, 4, 28, 14, 0, tzinfo=UTC))  # Tuesday 10:00 New York

    async def sleep(seconds: float) -> None:
        clock.advance(seconds)
        await asyncio.sleep(0)

    svc = await make_service(settings, parts[0], clock=clock, sleep=sleep, windows="always")
    try:
        # Act
        await svc.start(symbols=["ES"], cadence_s=3600)
        for _ in range(1200):
            if svc.cycles >= 2:
                break
            await asyncio.sleep(0.05)
        await svc.stop()
        rows = await svc.decisions(limit=50)
        events = await svc.events_since(0)
    finally:
        await svc.close()

    # Assert: every decision is for the scan's best symbol, and the round's ranking was published
    assert svc.cycles >= 2
    assert {r["symbol"] for r in rows} == {best}
    scans = [e for e in events if e["kind"] == "scan"]
    assert scans and scans[0]["picked"] == [best]
    assert [(r["symbol"], r["interval"]) for r in scans[0]["ranking"]] == [
        (r["symbol"], r["interval"]) for r in ranked["rows"]
    ]


def test_the_scan_is_off_by_default() -> None:
    assert Settings().desk.scan.enabled is False
