"""Point in time: with ``ToolContext.as_of``, no tool returns a bar (or a number computed from a bar) that
had not closed by then, whatever arguments ask for later data.

The test walks EVERY registered tool: a new tool without an entry in ``LATER`` fails
``test_every_registered_tool_is_covered``. The independent reference for values is the same tool run
without ``as_of`` on a file that holds only the bars that had closed at ``as_of`` — if a tool's answer
differed, it would have read something after ``as_of``.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from pydantic import BaseModel

from nq_ray.config import Settings
from nq_ray.errors import DataUnavailableError, InvalidArgumentError
from nq_ray.tools.context import PointInTimeError, ToolContext
from nq_ray.tools.registry import ToolRegistry, build_registry

AS_OF = pd.Timestamp("2026-03-20T11:05:00", tz="America/New_York")  # the 11:00 bar has just closed
LAST_5M = pd.Timestamp("2026-03-20T11:00:00", tz="America/New_York")
AFTER = "2026-04-28T23:00"  # the sample's end: far after AS_OF

# Arguments that ask each tool for data after AS_OF (end beyond it, a look-back period, large limits).
LATER: dict[str, list[dict[str, Any]]] = {
    "get_nq_price": [{}, {"interval": "1h"}, {"interval": "1d"}],
    "get_historical_data": [
        {"end": AFTER, "limit": 5000},
        {"start": "2026-03-19", "end": "2026-04-30"},
        {"period": "5d", "limit": 5000},
        {"period": "max", "interval": "1d"},
        {"end": "2026-03-20", "limit": 50},  # a date: its whole day, clamped to AS_OF
    ],
    "get_market_hours": [{}],
    "get_session_calendar": [{}, {"start": "2026-03-01", "days": 60}],
    # scheduled releases are published in advance: its events lie after as_of by design (docs/calendar.md)
    "get_economic_calendar": [],
    "list_agents": [],  # no desk at a point in time: see test_the_agent_tools_have_no_desk_…
    "run_agent_task": [],
    "get_contract_info": [{}],
    "generate_mock_data": [{"bars": 50}, {"bars": 20, "interval": "5m"}],
    "calculate_technical_indicators": [{"end": AFTER, "tail": 500}, {"period": "1mo"}],
    "detect_patterns": [{"candle_bars": 500, "chart_bars": 2000}],
    "analyze_momentum": [{}],
    "find_support_resistance": [{"max_zones": 50}],
    "place_order": [],  # refused: see test_orders_are_refused_in_a_point_in_time_run
    "manage_position": [{"action": "status"}],
    "calculate_position_size": [{}, {"interval": "1d"}],
    "assess_portfolio_risk": [{}, {"positions": {"NQ": 2, "ES": -1}}],
    "check_risk_limits": [{"order_type": "limit", "price": 24000.0}],
    "calculate_var": [{"horizon_days": 5}],
    "run_backtest": [{"end": AFTER}, {"period": "1mo"}],
    "generate_performance_report": [{"end": AFTER, "n_sims": 20}],
    "compare_strategies": [{"end": AFTER}],
    "run_sweep": [{"end": AFTER, "grid": {"fast": [5, 10], "slow": [30]}}],
    "run_walk_forward": [
        {"end": AFTER, "grid": {"fast": [5, 10], "slow": [30]}, "n_folds": 2},
        {"period": "1mo", "grid": {"fast": [5], "slow": [30]}, "n_folds": 3, "mode": "anchored"},
    ],
    "scan_market": [{"symbols": ["NQ", "ES"], "timeframes": ["5m", "1h"]}],
    "scan_backtests": [{"symbols": ["NQ", "ES"], "timeframes": ["5m"], "min_trades": 1}],
    "run_challenge": [{"end": AFTER, "n_sims": 20}],
}
# Calendar facts (published in advance, not market data) may lie after AS_OF.
CALENDAR_KEYS = {"next_open", "next_close", "front_expiry", "next_roll", "sessions"}


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data={"data_dir": str(tmp_path / "data")})


@pytest.fixture
def pit(settings: Settings) -> ToolRegistry:
    return build_registry(ToolContext(settings=settings).point_in_time(AS_OF))


def timestamps(value: Any, key: str = "") -> list[tuple[str, pd.Timestamp]]:
    """Every date-time string in a tool's JSON output, with the key it sits under (calendar keys out)."""
    if isinstance(value, dict):
        return [t for k, v in value.items() if k not in CALENDAR_KEYS for t in timestamps(v, str(k))]
    if isinstance(value, list | tuple):
        return [t for v in value for t in timestamps(v, key)]
    if isinstance(value, str) and len(value) >= 16 and value[4] == "-" and value[10] in "T ":
        try:
            ts = pd.Timestamp(value)
        except ValueError:
            return []
        return [(key, ts if ts.tzinfo else ts.tz_localize("America/New_York"))]
    return []


def test_every_registered_tool_is_covered(pit: ToolRegistry) -> None:
    assert sorted(LATER) == sorted(pit.names())


@pytest.mark.parametrize(("tool", "args"), [(t, a) for t, cases in LATER.items() for a in cases])
async def test_no_tool_returns_a_time_after_as_of(pit: ToolRegistry, tool: str, args: dict[str, Any]) -> None:
    out = await pit.call(tool, args)

    found = timestamps(out)
    late = [(k, str(t)) for k, t in found if t > AS_OF]
    assert not late, f"{tool} returned times after {AS_OF}: {late[:5]}"
    if tool not in (
        "get_market_hours",
        "get_contract_info",
        "manage_position",
        "check_risk_limits",
        "get_session_calendar",
    ):
        assert found or tool == "assess_portfolio_risk", f"{tool}: the walk found no times to check"


@pytest.mark.parametrize("interval", ["5m", "1h", "1d"])
async def test_every_visible_bar_had_closed_by_as_of(pit: ToolRegistry, interval: str) -> None:
    out = await pit.call("get_historical_data", {"interval": interval, "end": AFTER, "limit": 5000})

    length = {"5m": pd.Timedelta(minutes=5), "1h": pd.Timedelta(hours=1), "1d": pd.Timedelta(days=1)}[
        interval
    ]
    last = pd.Timestamp(out["last_bar_time"])
    assert last + length <= AS_OF
    assert all(pd.Timestamp(b["time"]) + length <= AS_OF for b in out["bars"])


async def test_price_is_the_close_of_the_as_of_bar(pit: ToolRegistry, nq_5m: pd.DataFrame) -> None:
    quote = await pit.call("get_nq_price", {})

    assert pd.Timestamp(quote["bar_time"]) == LAST_5M
    assert quote["price"] == nq_5m.loc[LAST_5M, "close"] == 24255.75  # read off the sample file
    assert quote["origin"]["last_bar_time"] == LAST_5M.isoformat()
    assert quote["market"] == "open"  # the session state at AS_OF (Friday RTH), not at the wall clock


async def test_period_counts_back_from_the_as_of_bar(pit: ToolRegistry, nq_5m: pd.DataFrame) -> None:
    out = await pit.call("get_historical_data", {"period": "1d", "limit": 5000})

    expected = nq_5m.loc[(nq_5m.index >= LAST_5M - pd.Timedelta(days=1)) & (nq_5m.index <= LAST_5M)]
    assert out["count"] == len(expected)
    assert out["bars"][-1]["close"] == nq_5m.loc[LAST_5M, "close"]


async def test_a_start_after_as_of_is_no_data_not_future_data(pit: ToolRegistry) -> None:
    with pytest.raises((DataUnavailableError, InvalidArgumentError)):
        await pit.call("get_historical_data", {"start": "2026-04-01"})


async def test_orders_are_refused_in_a_point_in_time_run(pit: ToolRegistry) -> None:
    with pytest.raises(PointInTimeError, match="point-in-time"):
        await pit.call("place_order", {"symbol": "NQ", "side": "buy", "contracts": 1})
    with pytest.raises(PointInTimeError):
        await pit.call("manage_position", {"action": "flatten_all"})


async def test_the_agent_tools_have_no_desk_in_a_point_in_time_run(pit: ToolRegistry) -> None:
    """A replayed or backtested agent must not reach the live desk (nor a desk reach the future)."""
    with pytest.raises(PointInTimeError, match="point-in-time"):
        await pit.call("list_agents", {})
    with pytest.raises(PointInTimeError, match="point-in-time"):
        await pit.call("run_agent_task", {"agent_id": "analysis", "type": "get_recent_memory"})


def _strip_origin(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip_origin(v) for k, v in value.items() if k != "origin"}
    if isinstance(value, list):
        return [_strip_origin(v) for v in value]
    return value


@pytest.mark.parametrize(
    ("tool", "args"),
    [
        ("get_historical_data", {"limit": 300}),
        ("calculate_technical_indicators", {"tail": 20}),
        ("detect_patterns", {}),
        ("analyze_momentum", {}),
        ("find_support_resistance", {}),
        ("calculate_position_size", {}),
        ("run_backtest", {}),
    ],
)
async def test_answers_equal_those_on_data_that_ends_at_as_of(
    settings: Settings,
    pit: ToolRegistry,
    nq_5m: pd.DataFrame,
    tool: str,
    args: dict[str, Any],
) -> None:
    """Reference: the same tool, no ``as_of``, on a file holding only the bars closed by AS_OF."""
    past = nq_5m.loc[nq_5m.index + pd.Timedelta(minutes=5) <= AS_OF]
    path = settings.data.data_dir / "past.parquet"  # a caller's file: under the data roots
    path.parent.mkdir(parents=True, exist_ok=True)
    past.rename_axis("datetime").reset_index().to_parquet(path, index=False)
    plain = build_registry(ToolContext(settings=settings))

    takes_end = "end" in pit.get(tool).input_model.model_fields
    at_as_of = await pit.call(tool, {**args, "end": AFTER} if takes_end else args)
    reference = await plain.call(tool, {**args, "source": f"parquet:{path}"})

    assert _strip_origin(at_as_of) == _strip_origin(reference)


def test_point_in_time_context_reads_naive_times_as_new_york(settings: Settings) -> None:
    ctx = ToolContext(settings=settings).point_in_time("2026-03-20T11:05")

    assert ctx.as_of == AS_OF.to_pydatetime() and isinstance(ctx.as_of, datetime)
    assert ctx.now() == AS_OF and ctx.publish is None


async def test_an_agent_at_as_of_decides_as_if_the_future_did_not_exist(
    settings: Settings, pit: ToolRegistry, nq_5m: pd.DataFrame
) -> None:
    """The whole analysis agent through the point-in-time registry equals the same agent, no ``as_of``,
    on a file that ends at AS_OF: same window hash, indicators, levels, price and view."""
    from nq_ray.agents.agents import AnalysisAgent, LocalTools
    from nq_ray.llm.config import LLMConfig, ProviderConfig
    from nq_ray.llm.router import LLMRouter

    rules = ProviderConfig(name="rules", kind="rules", model="nq-rules-v1", priority=1000)
    router = LLMRouter.from_config(LLMConfig(providers=[rules], health_interval_s=0))
    path = settings.data.data_dir / "past.parquet"  # a caller's file: under the data roots
    path.parent.mkdir(parents=True, exist_ok=True)
    nq_5m.loc[nq_5m.index + pd.Timedelta(minutes=5) <= AS_OF].rename_axis(
        "datetime"
    ).reset_index().to_parquet(path, index=False)
    past = AnalysisAgent(
        LocalTools(build_registry(ToolContext(settings=settings))), router, source=f"parquet:{path}"
    )

    at_as_of = await AnalysisAgent(LocalTools(pit), router).analyze_market("NQ")
    reference = await past.analyze_market("NQ")

    assert at_as_of.inputs["window"]["sha256"] == reference.inputs["window"]["sha256"]
    for key in ("price", "indicators", "levels"):
        assert at_as_of.inputs[key] == reference.inputs[key]
    assert at_as_of.view == reference.view and at_as_of.bar_time == LAST_5M.isoformat()
    prompt_times = [_ny_stamp(s) for s in _STAMP.findall(at_as_of.prompt)]
    assert prompt_times and max(prompt_times) <= AS_OF  # the whole prompt, context included


# ------------------------------------------------------------------------------ context sources
# Every context source, with what would leak through it if it were not point in time.
CONTEXT_LEAKS: dict[str, str] = {
    "current_market_data": "a bar (or a higher-timeframe bar built from one) that closed after AS_OF",
    "indicators_levels": "indicators or levels computed on later bars",
    "open_positions": "the book as it is after a later fill",
    "working_orders": "an order placed after AS_OF",
    "recent_trades": "a trade closed after AS_OF",
    "risk_parameters": "P&L and room from later fills",
    "agent_memory": "a memory written after AS_OF",
    "scheduled_events": "the outcome (actual) of an event scheduled after AS_OF",
}
_STAMP = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2})?(?:[+-]\d{2}:\d{2})?")


class EventOut(BaseModel):
    events: list[dict[str, Any]]


async def get_economic_calendar(start: str, end: str, kinds: list[str] | None = None) -> EventOut:
    """Test calendar: CPI before AS_OF, a Fed speaker after it (its actual would be a leak)."""
    return EventOut(
        events=[
            {"time": "2026-03-20T08:30:00-04:00", "name": "CPI", "actual": "0.3%"},
            {"time": "2026-03-20T14:00:00-04:00", "name": "Fed speaker", "actual": "hawkish"},
        ]
    )


class ReplayAt:
    mode = "replay"

    def __call__(self) -> datetime:
        return AS_OF.to_pydatetime()


def test_every_context_source_is_covered() -> None:
    from nq_ray.agents.sources import SOURCES

    assert sorted(CONTEXT_LEAKS) == sorted(SOURCES)


@pytest.mark.parametrize("name", sorted(CONTEXT_LEAKS))
async def test_no_context_source_shows_anything_after_as_of(settings: Settings, name: str) -> None:
    """A book that trades before and after AS_OF, an order placed after it, memories either side of it
    and a calendar with a later event: the tools are on a replay clock at AS_OF. No time after AS_OF
    appears in any source's content, and none of the later facts does."""
    from nq_ray.agents.agents import AnalysisAgent, LocalTools
    from nq_ray.agents.sources import gather_sources
    from nq_ray.llm.config import LLMConfig, ProviderConfig
    from nq_ray.llm.router import LLMRouter
    from nq_ray.runtime.broker import LocalBroker
    from nq_ray.tools.registry import spec_of

    def ny(s: str) -> datetime:
        return pd.Timestamp(s, tz="America/New_York").to_pydatetime()

    broker = LocalBroker(settings, feed=False, clock="bar")
    try:
        await broker.on_price("NQ", 24000.0, ny("2026-03-20T10:00"))
        for cid, side, px, at in (("a1", "buy", 24010.0, "10:05"), ("a2", "sell", 24030.0, "10:10")):
            await broker.place_order(
                {"symbol": "NQ", "side": side, "quantity": 1, "order_type": "market", "client_order_id": cid}
            )
            await broker.on_price("NQ", px, ny(f"2026-03-20T{at}"))
        registry = build_registry(
            ToolContext(settings=settings, clock=ReplayAt(), broker_factory=lambda s: broker)
        )
        registry.specs["get_economic_calendar"] = spec_of(get_economic_calendar, "data")  # the stub
        rules = ProviderConfig(name="rules", kind="rules", model="nq-rules-v1", priority=1000)
        agent = AnalysisAgent(
            LocalTools(registry),
            LLMRouter.from_config(LLMConfig(providers=[rules], health_interval_s=0)),
            source="sample",
        )
        memories = [
            {"id": 1, "at": "2026-03-20T10:30:00-04:00", "kind": "note", "value": "before"},
            {"id": 2, "at": "2026-03-20T11:30:00-04:00", "kind": "note", "value": "LATER MEMORY"},
        ][::-1]
        if name in ("open_positions", "working_orders", "risk_parameters"):  # the book moves on
            await broker.place_order(
                {"symbol": "NQ", "side": "buy", "quantity": 1, "order_type": "market", "client_order_id": "z"}
            )
            await broker.on_price("NQ", 24100.0, ny("2026-03-20T11:30"))
        if name in ("recent_trades",):  # a later round trip
            for cid, side, at in (("b1", "buy", "11:30"), ("b2", "sell", "11:40")):
                await broker.place_order(
                    {
                        "symbol": "NQ",
                        "side": side,
                        "quantity": 1,
                        "order_type": "market",
                        "client_order_id": cid,
                    }
                )
                await broker.on_price("NQ", 24100.0, ny(f"2026-03-20T{at}"))

        when, got = await gather_sources(agent, "NQ", [name], memories=memories)
    finally:
        broker.close()

    text = json.dumps(got[name], default=str)
    # a scheduled event's time is published in advance (like CALENDAR_KEYS); its outcome is not
    late = [s for s in _STAMP.findall(text) if _ny_stamp(s) > AS_OF and name != "scheduled_events"]
    assert when == AS_OF and not late, f"{name} shows times after {AS_OF}: {late[:5]}"
    assert "LATER MEMORY" not in text and "hawkish" not in text and "24100" not in text
    assert text.strip('"'), f"{name} said nothing"
    if name == "scheduled_events":
        assert "Fed speaker" in text and "actual=0.3%" in text


def _ny_stamp(s: str) -> pd.Timestamp:
    ts = pd.Timestamp(s)
    return ts.tz_localize("America/New_York") if ts.tzinfo is None else ts
