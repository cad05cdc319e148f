"""``nq_ray.agents.memory`` in process (no store): memories newest first, by kind and by age, text or data;
usage per agent per UTC day. The store-backed path is covered by the desk-service tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from nq_ray.agents.memory import MemoryManager, UsageBook
from nq_ray.errors import InvalidArgumentError


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 4, 28, 23, 30, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


async def test_memories_come_back_newest_first_by_kind_and_within_the_days_asked() -> None:
    clock = Clock()
    memory = MemoryManager(clock=clock)
    await memory.store_memory("a1", "note", "first")
    clock.now += timedelta(days=3)
    await memory.store_memory("a1", "decision", {"decision_id": 7})
    await memory.store_memory("a2", "note", "other agent")
    clock.now += timedelta(days=5)

    recent = await memory.recent("a1", 10)
    notes = await memory.recent("a1", 10, kind="note")
    week = await memory.get_memory("a1", "decision", days=7)
    old = await memory.get_memory("a1", "note", days=7)

    assert [m["value"] for m in recent] == [{"decision_id": 7}, "first"]
    assert [m["value"] for m in notes] == ["first"]
    assert [m["value"] for m in week] == [{"decision_id": 7}] and old == []


async def test_bad_memory_arguments_are_refused() -> None:
    memory = MemoryManager()
    with pytest.raises(InvalidArgumentError):
        await memory.store_memory("a1", "", "x")
    with pytest.raises(InvalidArgumentError):
        await memory.recent("a1", -1)
    with pytest.raises(InvalidArgumentError):
        await memory.get_memory("a1", "note", days=0)


async def test_usage_adds_up_per_agent_and_starts_again_each_utc_day() -> None:
    clock = Clock()
    usage = UsageBook(clock=clock)
    await usage.add("a1", 100, 0.01)
    await usage.add("a1", 50, 0.005)
    await usage.add("a1", 0, 0.0)  # nothing used: nothing recorded
    await usage.add("a2", 7, 0.0)
    today, other = await usage.used("a1"), await usage.used("a2")
    clock.now += timedelta(hours=1)  # 00:30 UTC: a new day
    tomorrow = await usage.used("a1")

    assert today == (150, pytest.approx(0.015)) and other == (7, 0.0)
    assert tomorrow == (0, 0.0)
