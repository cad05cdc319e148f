"""The ports' adapters: ``RayBroker`` (the actor) and ``LocalBroker`` (in process) satisfy
``PaperBrokerPort`` and give the same answers for the same orders; ``PointInTimeBroker`` is a
``BrokerPort``; the tools' adapters are ``ToolsPort``s."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from nq_ray.config import Settings
from nq_ray.ports import BrokerPort, PaperBrokerPort, ToolsPort
from nq_ray.runtime.broker import LocalBroker, RayBroker, get_or_create_broker
from nq_ray.tools.context import PointInTimeBroker
from tests.execution.helpers import OPEN_LIMITS

TUESDAY = datetime(2026, 3, 10, 11, 0, tzinfo=ZoneInfo("America/New_York"))  # RTH open


def _settings(path: Path) -> Settings:
    return Settings(data={"data_dir": str(path)}, risk={"limits": OPEN_LIMITS})


async def _trade(broker: PaperBrokerPort) -> dict[str, Any]:
    """A market buy, a bracketed limit sell, two prices: what the broker says at each step."""
    await broker.on_price("NQ", 18_000.0, TUESDAY)
    verdict = await broker.check_order({"symbol": "NQ", "side": "buy", "quantity": 2})
    buy = await broker.place_order(
        {"symbol": "NQ", "side": "buy", "quantity": 2, "client_order_id": "t-1"}, source="test"
    )
    fills = await broker.on_price("NQ", 18_010.0, TUESDAY + timedelta(minutes=5))
    limit = await broker.place_order(
        {"symbol": "NQ", "side": "sell", "quantity": 1, "order_type": "limit", "limit_price": 18_020.0},
        source="test",
    )
    filled = await broker.order("t-1")
    return {
        "verdict": (verdict.approved, verdict.adjusted_contracts),
        "buy": (buy.status.value, buy.quantity),
        "fills": [(f.price, f.quantity) for f in fills],
        "filled": (filled.status.value, filled.avg_fill_price),
        "limit": (limit.status.value, limit.limit_price),
        "open": len(await broker.orders(open_only=True)),
        "portfolio": (await broker.portfolio())["positions"],
    }


async def test_ray_and_local_brokers_satisfy_the_port_and_agree(ray_session: Any, tmp_path: Path) -> None:
    handle = get_or_create_broker(
        _settings(tmp_path / "ray"), name=f"paper_broker_port_{uuid.uuid4().hex[:8]}", clock="bar"
    )
    remote = RayBroker(handle)
    local = LocalBroker(_settings(tmp_path / "local"), feed=False, clock="bar")
    try:
        assert isinstance(remote, PaperBrokerPort) and isinstance(local, PaperBrokerPort)

        on_ray, in_process = await _trade(remote), await _trade(local)

        assert on_ray == in_process
        assert on_ray["filled"][0] == "filled" and on_ray["portfolio"]["NQ"]["quantity"] == 2
    finally:
        local.close()
        ray_session.kill(handle)


async def test_a_typed_error_from_the_actor_is_raised_as_itself(ray_session: Any, tmp_path: Path) -> None:
    from nq_ray.errors import NotFoundError

    handle = get_or_create_broker(_settings(tmp_path), name=f"paper_broker_err_{uuid.uuid4().hex[:8]}")
    try:
        with pytest.raises(NotFoundError) as err:
            await RayBroker(handle).order("no-such-order")
        assert type(err.value) is NotFoundError  # not Ray's wrapper
    finally:
        ray_session.kill(handle)


async def test_point_in_time_broker_is_a_broker_port_that_sends_nothing(tmp_path: Path) -> None:
    from nq_ray.tools.context import PointInTimeError

    broker = PointInTimeBroker(_settings(tmp_path), TUESDAY)

    assert isinstance(broker, BrokerPort) and not isinstance(broker, PaperBrokerPort)
    assert (await broker.portfolio())["point_in_time"] is True
    with pytest.raises(PointInTimeError):
        await broker.place_order({"symbol": "NQ", "side": "buy", "quantity": 1})


def test_tools_adapters_are_tools_ports(tmp_path: Path) -> None:
    from nq_ray.agents.agents import LocalTools
    from nq_ray.runtime.registry import RayTools
    from nq_ray.tools.context import ToolContext
    from nq_ray.tools.registry import build_registry

    local = LocalTools(build_registry(ToolContext(settings=_settings(tmp_path))))

    assert isinstance(local, ToolsPort) and isinstance(RayTools(handle=None), ToolsPort)
