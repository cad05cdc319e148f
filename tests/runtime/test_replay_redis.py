"""Replayed bars through Redis: with ``cache.url`` set, the ``market_replay`` actor publishes every bar on
the channel every Serve replica's event bus listens on (``nq:events``). Here the driver runs with the
actor's own publisher against the real Redis on 127.0.0.1, and a subscriber receives each bar once, in
order, in the event bus's envelope."""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from nq_ray.config import Settings
from nq_ray.runtime import Runtime
from nq_ray.runtime.desk import _redis_publisher
from nq_ray.runtime.replay import MarketReplay, prepare_replay

SERVICES = Path(__file__).resolve().parents[3] / "shared" / "services.sh"
URL = "redis://127.0.0.1:6379/0"
START = "2026-03-03T10:00"  # a start no other test replays from: its updates are recognisable on the channel


@pytest.fixture(scope="module")
def redis_up() -> None:
    if SERVICES.exists():
        subprocess.run(["bash", str(SERVICES)], check=True, capture_output=True, timeout=300)


def test_every_replayed_bar_goes_out_through_redis_once_and_in_order(redis_up: None, tmp_path: Path) -> None:
    import redis.asyncio as aioredis

    s = Settings(
        data={"data_dir": str(tmp_path / "data")},
        cache={"url": URL},
        replay={"clock": "replay", "symbols": ["NQ"], "start": START},
    )
    prepare_replay(s)

    async def go() -> list[dict[str, Any]]:
        client = aioredis.from_url(URL)
        sub = client.pubsub()
        await sub.subscribe("nq:events")
        rt = Runtime(s, "in_process")
        market = MarketReplay(s, broker=rt.broker(), publish=_redis_publisher(URL), clock=rt.clock)
        got: list[dict[str, Any]] = []
        try:
            await market.start(paused=True)
            await market.step(5)
            deadline = asyncio.get_running_loop().time() + 30
            while len(got) < 5:
                assert asyncio.get_running_loop().time() < deadline, f"only {len(got)} of 5 bars arrived"
                msg = await sub.get_message(ignore_subscribe_messages=True, timeout=1)
                if msg is None:  # (the subscription's confirmation also reads as None)
                    continue
                event = json.loads(msg["data"])
                data = event.get("data") or {}
                if event["type"] == "market_update" and data.get("bar_time", "").startswith("2026-03-03"):
                    got.append(event)
        finally:
            await market.stop()
            rt.close()
            await sub.aclose()
            await client.aclose()
        return got

    got = asyncio.run(go())
    seqs = [e["data"]["seq"] for e in got]
    times = [pd.Timestamp(e["data"]["bar_time"]) for e in got]
    assert seqs == [1, 2, 3, 4, 5] and times == sorted(set(times))
    assert times[0] == pd.Timestamp("2026-03-03 10:00", tz="America/New_York")
    assert all(e["data"]["clock"] == "replay" and e["at"] for e in got)
