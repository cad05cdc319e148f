"""``MarketPump`` over a real ``MarketReplay`` (in this process; on Ray it is the same driver in the
``market_replay`` actor): every update once, in seq order; a late pump starts at the current seq; a
repeated or older seq is dropped; a replay that starts again on the store is followed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from nq_ray.config import Settings
from nq_ray.serve.market_feed import MarketPump
from nq_ray.testing.wait import await_until


@pytest.fixture
async def market(tmp_path: Path) -> AsyncIterator[Any]:
    """A paused replay of the sample NQ bars (no broker, no publisher), caught up to its clock."""
    from nq_ray.runtime.replay import MarketReplay, prepare_replay

    settings = Settings(data={"data_dir": str(tmp_path / "data")}).merged(
        {"replay": {"clock": "replay", "start": "2026-04-20T09:30", "speed": 60, "symbols": ["NQ"]}}
    )
    await asyncio.to_thread(prepare_replay, settings)
    m = MarketReplay(settings)
    await m.start()
    await m.pause()
    await m.step(1)
    try:
        yield m
    finally:
        await m.stop()


class Sink:
    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []

    async def __call__(self, event: str, data: dict[str, Any]) -> None:
        self.events.append((event, data))

    @property
    def seqs(self) -> list[int]:
        return [d["seq"] for e, d in self.events if e == "market_update"]


async def test_pump_publishes_every_update_once_in_order_from_the_current_seq(market: Any) -> None:
    sink = Sink()
    pump = MarketPump(market, sink, timeout_s=5)
    pump.start()
    try:
        await asyncio.wait_for(pump.ready.wait(), 10)
        s0 = pump.last_seq
        s1 = (await market.step(4))["seq"]
        await await_until(lambda: len(sink.seqs) >= 4, timeout_s=10, message="four updates pumped")
        s2 = (await market.step(1))["seq"]
        await await_until(lambda: len(sink.seqs) >= 5, timeout_s=10, message="the fifth update pumped")
    finally:
        await pump.stop()

    assert s0 == market.seq - 5 > 0  # started at the seq of the moment, not from 0
    assert sink.seqs == list(range(s0 + 1, s2 + 1)) and s1 == s0 + 4
    assert pump.duplicates == 0 and pump.gaps == 0


async def test_pump_drops_repeated_and_older_updates(market: Any) -> None:
    sink = Sink()
    pump = MarketPump(market, sink)
    pump.last_seq = market.seq
    await market.step(3)
    fresh = await market.updates_since(pump.last_seq)

    first = await pump.take(fresh)
    again = await pump.take(fresh + fresh[:1])  # an actor restart re-releasing under the same numbers

    assert first == 3 and again == 0
    assert pump.duplicates == 4
    assert sink.seqs == [u["seq"] for u in fresh]


async def test_pump_counts_a_gap_and_goes_on(market: Any) -> None:
    sink = Sink()
    pump = MarketPump(market, sink)
    pump.last_seq = market.seq
    await market.step(3)
    fresh = await market.updates_since(pump.last_seq)

    n = await pump.take([fresh[0], fresh[2]])  # the middle one fell out of the actor's buffer

    assert n == 2 and pump.gaps == 1
    assert sink.seqs == [fresh[0]["seq"], fresh[2]["seq"]]


async def test_pump_follows_a_new_replay_but_not_a_restarted_actor(market: Any) -> None:
    sink = Sink()
    pump = MarketPump(market, sink)
    st = market.status()
    pump.replay = (st["start"], st["source"])
    pump.last_seq = market.seq + 3  # a restarted actor behind what the pump published: the same replay
    await pump._check_reset()
    kept = pump.last_seq
    pump.replay = ("2026-04-13T13:30:00+00:00", st["source"])  # what it published of an earlier replay
    await pump._check_reset()

    assert kept == market.seq + 3
    assert pump.last_seq == market.seq and pump.replay == (st["start"], st["source"])
