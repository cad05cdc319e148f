"""``nq_ray.agents.service.state``: the events every part emits, numbered, buffered (the last 500) and
published; a publishing outage never stops the desk."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest

from nq_ray.agents.service.state import DeskCore, check_limit
from nq_ray.config import Settings
from nq_ray.errors import InvalidArgumentError

AT = datetime(2026, 4, 28, 14, 0, tzinfo=UTC)


def core(publish: Any = None) -> DeskCore:
    return DeskCore(
        Settings(),
        repo=None,
        tools=None,
        router=None,
        host=None,
        publish=publish,
        clock=lambda: AT,
        sleep=asyncio.sleep,
        approval_ttl_s=300.0,
        defaults={},
    )


async def test_events_are_numbered_published_and_the_last_500_kept() -> None:
    published: list[tuple[str, dict[str, Any]]] = []

    async def publish(channel: str, event: dict[str, Any]) -> None:
        published.append((channel, event))

    c = core(publish)
    for i in range(502):
        await c.emit("decision", {"i": i})
    after = await c.events_since(500)

    assert [e["seq"] for e in after] == [501, 502] and after[0]["i"] == 500
    assert after[0]["kind"] == "decision" and after[0]["at"] == AT.isoformat()
    assert len(await c.events_since(0)) == 500 and (await c.events_since(0))[0]["seq"] == 3
    assert len(published) == 502 and published[-1] == ("agent_update", after[-1])


async def test_a_publishing_outage_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    async def publish(channel: str, event: dict[str, Any]) -> None:
        raise ConnectionError("redis down")

    c = core(publish)
    await c.emit("halted", {"reason": "drill"})

    assert [e["kind"] for e in await c.events_since(0)] == ["halted"]
    assert "publishing halted failed: redis down" in caplog.text


@pytest.mark.parametrize("limit", [0, 1001, True, 2.0])
def test_limits_outside_1_to_1000_are_refused(limit: Any) -> None:
    with pytest.raises(InvalidArgumentError):
        check_limit(limit)
