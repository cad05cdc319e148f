"""Context sources on the bundled sample bars and a real in-process paper book: each source's content,
the budget's trimming order, and point in time (nothing after the decision's time reaches the context).

The book: a round trip long 1 NQ (10:05 → 10:10, fills 24010.25 → 24029.75 with one tick of slippage,
$2.25 commission a side: 19.5 pts × $20 − $4.50 = $385.50), then long 2 from 10:20 at 24020.25 and a
working limit sell at 24100. The tools' clock is a replay's at 11:05 on 2026-03-20 (data cut there too).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from nq_ray.agents.agents import AnalysisAgent, LocalTools
from nq_ray.agents.context import ContextManager
from nq_ray.agents.sources import (
    ANALYSIS_SOURCES,
    SOURCES,
    build_agent_context,
    gather_sources,
    resample_bars,
    round_trips,
)
from nq_ray.config import Settings
from nq_ray.llm.config import LLMConfig, ProviderConfig
from nq_ray.llm.router import LLMRouter
from nq_ray.tools.context import ToolContext
from nq_ray.tools.registry import build_registry

AS_OF = pd.Timestamp("2026-03-20T11:05", tz="America/New_York")
RULES = ProviderConfig(name="rules", kind="rules", model="nq-rules-v1", priority=1000)


def ny(s: str) -> datetime:
    return pd.Timestamp(s, tz="America/New_York").to_pydatetime()


class ReplayAt:
    """A replay clock stopped at one instant: the tools' "now" and their data cut-off."""

    mode = "replay"

    def __init__(self, at: pd.Timestamp) -> None:
        self.at = at.to_pydatetime()

    def __call__(self) -> datetime:
        return self.at


async def trade(broker: Any, side: str, qty: int, cid: str, price: float, at: str) -> None:
    order = {"symbol": "NQ", "side": side, "quantity": qty, "order_type": "market", "client_order_id": cid}
    await broker.place_order(order)
    await broker.on_price("NQ", price, ny(at))


@pytest.fixture
async def book(tmp_path: Path) -> AsyncIterator[tuple[Settings, Any]]:
    from nq_ray.runtime.broker import LocalBroker

    settings = Settings(data={"data_dir": str(tmp_path / "data")})
    broker = LocalBroker(settings, feed=False, clock="bar")
    await broker.on_price("NQ", 24000.0, ny("2026-03-20T10:00"))
    await trade(broker, "buy", 1, "a1", 24010.0, "2026-03-20T10:05")
    await trade(broker, "sell", 1, "a2", 24030.0, "2026-03-20T10:10")
    await trade(broker, "buy", 2, "a3", 24020.0, "2026-03-20T10:20")
    await broker.place_order(
        {"symbol": "NQ", "side": "sell", "quantity": 1, "order_type": "limit", "limit_price": 24100.0,
         "client_order_id": "w1"}
    )  # fmt: skip
    try:
        yield settings, broker
    finally:
        broker.close()


def agent_over(settings: Settings, broker: Any, at: pd.Timestamp = AS_OF, **kw: Any) -> AnalysisAgent:
    ctx = ToolContext(settings=settings, clock=ReplayAt(at), broker_factory=lambda s: broker)
    router = LLMRouter.from_config(LLMConfig(providers=[RULES], health_interval_s=0))
    return AnalysisAgent(LocalTools(build_registry(ctx)), router, source="sample", **kw)


async def test_every_source_has_real_content_from_the_book_and_the_bars(
    book: tuple[Settings, Any], nq_5m: pd.DataFrame
) -> None:
    settings, broker = book
    agent = agent_over(settings, broker)
    await agent.memory.store_memory(agent.agent_id, "note", "NQ held VWAP")  # stamped now: after AS_OF
    memories = [{"id": 7, "at": "2026-03-20T10:30:00-04:00", "kind": "decision", "value": {"bias": "long"}}]

    when, got = await gather_sources(agent, "NQ", list(SOURCES), memories=memories)

    assert when == AS_OF
    # the bundled calendar has nothing from 10:05 Friday 2026-03-20 to 11:05 Saturday (claims: Thursdays)
    assert got["scheduled_events"] == [
        "no scheduled releases in the hour before or the 24 hours after 2026-03-20 11:05 (New York)"
    ]
    last = nq_5m.loc[pd.Timestamp("2026-03-20T11:00", tz="America/New_York")]
    md = got["current_market_data"]
    assert f"11:00 O {last['open']:.2f} H {last['high']:.2f}" in md["5m (this agent's timeframe)"]
    assert "last bar closed 2026-03-20 11:05" in md["5m (this agent's timeframe)"]
    assert md["1h"].endswith("(forming)") and "2026-03-20 10:00" in md["1h"]
    assert got["indicators_levels"]["indicators"]["rsi"] > 0 and got["indicators_levels"]["prior day"]
    assert got["open_positions"] == ["NQ: long 2 @ 24020.25, mark 24020.00, unrealised -$10.00"]
    assert len(got["working_orders"]) == 1 and got["working_orders"][0].startswith("w1: sell 1 NQ limit")
    assert got["recent_trades"] == [
        "2026-03-20 10:05 → 2026-03-20 10:10 long 1 NQ 24010.25 → 24029.75: win $385.50"
    ]
    risk = got["risk_parameters"]
    assert risk["max contracts per symbol"] == "4; NQ holds 2, room 2"
    # today's P&L: $390 realised − 4 × $2.25 commission (3 fills, 4 contracts) − $10 unrealised
    assert risk["max daily loss"].startswith("$2,000.00; today's P&L $371.00 (session 2026-03-20)")
    assert risk["max daily loss"].endswith("room $2,371.00")
    assert got["agent_memory"] == ['2026-03-20T10:30:00-04:00 [decision] {"bias": "long"}']


def test_higher_timeframes_are_resampled_from_the_closed_bars(nq_5m: pd.DataFrame) -> None:
    bars = nq_5m.loc["2026-03-20 09:00":"2026-03-20 10:55"]  # 09:00 … 10:55 start: two whole hours

    hourly = resample_bars(bars, "1h")

    ref = nq_5m.loc["2026-03-20 10:00":"2026-03-20 10:55"]
    row = hourly.iloc[-1]
    assert len(hourly) == 2 and row["n"] == 12
    assert (row["open"], row["high"], row["low"], row["close"]) == (
        ref["open"].iloc[0],
        ref["high"].max(),
        ref["low"].min(),
        ref["close"].iloc[-1],
    )
    four = resample_bars(nq_5m.loc["2026-03-19 16:00":"2026-03-20 10:55"], "4h")  # the 17:00 halt: no bars
    assert [t.hour for t in four.index] == [14, 18, 22, 2, 6, 10]  # counted from the 18:00 open


def test_round_trips_net_commission_and_split_a_reversal() -> None:
    f = [
        {"symbol": "NQ", "side": "buy", "quantity": 2, "price": 100.0, "commission_usd": 4.0,
         "realized_pnl_usd": 0.0, "time": "2026-03-20T10:00:00-04:00"},
        {"symbol": "NQ", "side": "sell", "quantity": 3, "price": 101.0, "commission_usd": 6.0,
         "realized_pnl_usd": 40.0, "time": "2026-03-20T10:05:00-04:00"},
    ]  # fmt: skip

    closed, still_open = round_trips(f)

    # the sell closes 2 (+$40 realised, $4 + 2/3 × $6 commission) and opens a short of 1
    assert closed[0]["pnl_usd"] == 32.0 and closed[0]["contracts"] == 2 and closed[0]["exit"] == 101.0
    assert still_open[0]["side"] == "short" and still_open[0]["pos"] == -1


async def test_budget_trims_memory_first_and_keeps_the_limits(book: tuple[Settings, Any]) -> None:
    settings, broker = book
    agent = agent_over(settings, broker)
    memories = [
        {"id": i, "at": "2026-03-20T09:00:00-04:00", "kind": "note", "value": f"note {i} " + "x" * 200}
        for i in range(30)
    ]
    full = await build_agent_context(agent, "NQ", ANALYSIS_SOURCES, memories=memories, token_budget=20_000)

    tight = await build_agent_context(
        agent, "NQ", ANALYSIS_SOURCES, memories=memories, token_budget=full.built.tokens // 2
    )

    assert not full.built.trimmed and tight.built.tokens <= full.built.tokens // 2
    assert tight.built.dropped[0].source == "agent_memory"
    assert "risk_parameters" in tight.built.sections and "open_positions" in tight.built.sections
    assert "room 2" in tight.text and tight.record()["dropped"][0]["source"] == "agent_memory"


async def test_nothing_after_the_decision_time_reaches_the_context(book: tuple[Settings, Any]) -> None:
    """The book trades on after 10:20; at 10:15 the context shows only what was known then: the closed
    10:05 → 10:10 trade, no later fill; the positions and limits of a book that has moved on are refused
    (not shown as they are now); the bars end with the one that closed at 10:15."""
    settings, broker = book
    early = pd.Timestamp("2026-03-20T10:15", tz="America/New_York")
    agent = agent_over(settings, broker, at=early)

    _, got = await gather_sources(agent, "NQ", list(SOURCES))

    assert got["recent_trades"] == [
        "2026-03-20 10:05 → 2026-03-20 10:10 long 1 NQ 24010.25 → 24029.75: win $385.50"
    ]
    for name in ("open_positions", "working_orders", "risk_parameters"):
        assert got[name].startswith("not available: the paper book has fills after the decision time")
    assert "last bar closed 2026-03-20 10:15" in got["current_market_data"]["5m (this agent's timeframe)"]


async def test_indicators_computed_on_later_bars_are_refused(tmp_path: Path) -> None:
    """Tools on the wall clock (no cut-off) with a decision time before the data's end: the indicator
    source will not pass off later bars as this decision's."""
    settings = Settings(data={"data_dir": str(tmp_path / "data")})
    ctx = ToolContext(settings=settings, clock=lambda: AS_OF.to_pydatetime())
    router = LLMRouter.from_config(LLMConfig(providers=[RULES], health_interval_s=0))
    agent = AnalysisAgent(LocalTools(build_registry(ctx)), router, source="sample")

    _, got = await gather_sources(agent, "NQ", ["indicators_levels", "open_positions"])

    assert got["indicators_levels"].startswith("not available: the 5m bars reach 2026-04-28")
    assert "no paper broker" in got["open_positions"]


async def test_an_agent_without_the_book_tools_gets_a_clear_section(book: tuple[Settings, Any]) -> None:
    settings, broker = book
    agent = agent_over(settings, broker, config={"tools": ["get_market_hours", "get_historical_data"]})

    built = await build_agent_context(agent, "NQ", ["open_positions", "current_market_data"])

    assert "## Open positions\nnot available: analysis_agent may not call 'manage_position'" in built.text
    assert isinstance(agent.context, ContextManager) and built.built.token_budget == 1200


async def test_scheduled_events_count_down_to_the_next_release(book: tuple[Settings, Any]) -> None:
    # the January 2026 CPI came out Friday 2026-02-13 08:30 EST (moved from 02-11 by the funding lapse)
    settings, broker = book
    agent = agent_over(settings, broker, at=pd.Timestamp("2026-02-13T07:55", tz="America/New_York"))

    _, got = await gather_sources(agent, "NQ", ["scheduled_events"])

    assert got["scheduled_events"] == [
        "CPI in 35 minutes: Consumer Price Index for January 2026 at 2026-02-13 08:30 EST; "
        "blackout 08:25–08:35 ET (block)"
    ]
