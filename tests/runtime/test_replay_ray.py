"""The ``market_replay`` actor on Ray, killed in the middle of a replay: Ray restarts it, it reads its state
and progress from the store and goes on where its bars stopped — no bar twice, none skipped, the order
that was working fills at the next bar's open plus slippage, and the paused replay is still paused."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from nq_ray.config import Settings
from nq_ray.data import load_bars
from nq_ray.runtime import Runtime
from nq_ray.runtime.replay import prepare_replay

pytestmark = pytest.mark.timeout(300)


def test_the_market_replay_actor_killed_mid_replay_goes_on_where_it_stopped(
    ray_session: Any, tmp_path: Path
) -> None:
    s = Settings(
        data={"data_dir": str(tmp_path / "data")},
        replay={"clock": "replay", "symbols": ["NQ"], "start": "2026-04-20T09:30", "speed": 1},
    )
    prepare_replay(s)
    uid = uuid.uuid4().hex[:8]
    names = {k: f"{k}_{uid}" for k in ("broker_name", "registry_name", "desk_name", "market_name")}
    rt = Runtime(s, "local", **names)
    market = rt.market()
    bars = load_bars("NQ", "5m", source="sample")

    async def go() -> tuple[list[dict[str, Any]], list[dict[str, Any]], Any, dict[str, Any], int, int]:
        first = await market.start()
        await market.pause()
        await market.step(3)
        before = await market.updates_since(0)
        order = {"symbol": "NQ", "side": "buy", "quantity": 1, "client_order_id": f"k-{uid}"}
        placed = await rt.broker().place_order(order)
        assert placed.status == "accepted"  # waits for the next replayed bar
        ray_session.kill(market.handle, no_restart=False)  # as a crash: Ray restarts the actor
        again = await market.start()
        for _ in range(600):  # until a call reaches the new process (it reads the store as it starts)
            if again["pid"] != first["pid"]:
                break
            await asyncio.sleep(0.1)
            again = await market.start()
        status = await market.status()
        await market.step(2)
        after = await market.updates_since(before[-1]["seq"])
        rec = await rt.broker().order(f"k-{uid}")
        return before, after, rec, status, first["pid"], again["pid"]

    try:
        before, after, rec, status, pid0, pid1 = asyncio.run(go())
    finally:
        for name in names.values():
            handle = _find(ray_session, name)
            if handle is not None:
                ray_session.kill(handle, no_restart=True)
    assert pid0 != pid1  # a new process
    assert status["paused"]  # paused before the crash: still paused after it
    seqs = [u["seq"] for u in before + after]
    assert seqs == list(range(1, len(seqs) + 1))  # the sequence goes on: nothing twice, nothing lost
    times = [pd.Timestamp(u["bar_time"]) for u in before + after]
    assert times == list(bars.loc["2026-04-20 09:30":"2026-04-20 09:50"].index)
    assert rec.status == "filled"
    assert rec.avg_fill_price == bars.loc["2026-04-20 09:45", "open"] + 0.25  # the next bar after the order


def _find(ray: Any, name: str) -> Any:
    try:
        return ray.get_actor(name, namespace="nq")
    except ValueError:
        return None
