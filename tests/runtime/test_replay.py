"""Market replay end to end without Ray: the plan (bad replays are one clear error, before anything
runs), the driver (each bar once, in order, never early; the broker fills by the backtester's rules;
weekends skipped), a replay that continues after a restart and refuses to go back, the tools' point-in-
time cut-off, the stdio MCP server filling a market order on the sample, and the command line's exit 2.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from typer.testing import CliRunner

from nq_ray.cli import app
from nq_ray.config import Settings
from nq_ray.domain.contracts import get_contract
from nq_ray.errors import ConfigError
from nq_ray.runtime import Runtime
from nq_ray.runtime.replay import MarketReplay, prepare_replay, start_clock

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared" / "data"
TICK = get_contract("NQ").tick_size


def replay_settings(tmp_path: Path, **replay: Any) -> Settings:
    return Settings(
        data={"data_dir": str(tmp_path / "data")},
        replay={"clock": "replay", "symbols": ["NQ"], **replay},
    )


def sample(symbol: str = "NQ") -> pd.DataFrame:
    from nq_ray.data import load_bars

    return load_bars(symbol, "5m", source="sample")


# ---- the plan ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("replay", "match"),
    [
        ({"start": "2020-01-06T09:30"}, "before the first NQ bar"),
        ({"start": "2031-01-06T09:30"}, "after the last NQ bar"),
        ({"start": "2026-04-20T09:30", "until": "2026-04-20T09:00"}, "not after its start"),
        ({"start": "not a time"}, "replay start must be a time"),
        ({"speed": 0}, "speed must be a number above 0"),
        ({"speed": 1e9}, "speed must be a number above 0"),
        ({"interval": "1d"}, "needs intraday bars"),
    ],
)
def test_a_replay_that_cannot_run_is_one_clear_error(
    tmp_path: Path, replay: dict[str, Any], match: str
) -> None:
    speed = replay.pop("speed", None)
    s = replay_settings(tmp_path, **replay)
    with pytest.raises(ConfigError, match=match):
        prepare_replay(s, speed=speed)


def test_a_source_without_intraday_bars_is_refused(tmp_path: Path) -> None:
    daily = tmp_path / "nq_daily.csv"
    shutil.copy(SHARED / "NQ_daily.csv", daily)
    s = replay_settings(tmp_path).merged({"data": {"default_source": f"csv:{daily}"}})
    with pytest.raises(ConfigError, match="intraday bars"):
        prepare_replay(s)


def test_the_default_start_is_a_recent_session_open(tmp_path: Path) -> None:
    plan = prepare_replay(replay_settings(tmp_path, sessions_back=3))
    bars = sample()
    start = pd.Timestamp(plan.state.start).tz_convert("America/New_York")
    assert start in bars.index and start.time() == pd.Timestamp("18:00").time()  # a Globex open
    assert bars.index[-1] - start < pd.Timedelta(days=7)
    assert plan.state.until == (bars.index[-1] + pd.Timedelta(minutes=5)).to_pydatetime()


# ---- the driver --------------------------------------------------------------------------------------
async def _collect(s: Settings, steps: int) -> tuple[list[dict[str, Any]], Runtime, MarketReplay]:
    rt = Runtime(s, "in_process")
    got: list[dict[str, Any]] = []

    async def publish(event: str, data: dict[str, Any]) -> None:
        if event == "market_update":
            got.append(data)

    market = rt.market(publish=publish)
    await market.start(paused=True)  # stepping by hand: nothing is released by the wall clock meanwhile
    await market.step(steps)
    return got, rt, market


def test_each_bar_is_released_once_in_order_and_never_before_it_closed(tmp_path: Path) -> None:
    s = replay_settings(tmp_path, start="2026-04-20T09:30", symbols=["NQ", "ES"])
    prepare_replay(s)

    async def go() -> None:
        got, rt, market = await _collect(s, 12)  # 12 bar closes, NQ and ES each
        try:
            assert len(got) == 24 and [u["seq"] for u in got] == list(range(1, 25))
            for sym in ("NQ", "ES"):
                times = [u["bar_time"] for u in got if u["symbol"] == sym]
                assert times == sorted(set(times)) and len(times) == 12
                expect = sample(sym).loc["2026-04-20 09:30":"2026-04-20 10:25"]
                assert [pd.Timestamp(t) for t in times] == list(expect.index)
                assert [u["price"] for u in got if u["symbol"] == sym] == list(expect["close"])
            for u in got:  # released once its bar had closed: start + 5 minutes
                assert pd.Timestamp(u["released_at"]) == pd.Timestamp(u["bar_time"]) + pd.Timedelta(minutes=5)
            assert pd.Timestamp(market.status()["now"]) == pd.Timestamp(
                "2026-04-20 10:30", tz="America/New_York"
            )
        finally:
            await market.stop()
            rt.close()

    asyncio.run(go())


def test_a_market_order_fills_at_the_next_bars_open_plus_slippage(tmp_path: Path) -> None:
    s = replay_settings(tmp_path, start="2026-04-20T09:30")
    prepare_replay(s)
    slip = s.execution.slippage_ticks * TICK

    async def go() -> None:
        _got, rt, market = await _collect(s, 1)
        try:
            reg = rt.registry()
            quote = await reg.call("get_nq_price", {"symbol": "NQ"}, who="test")
            assert pd.Timestamp(quote["bar_time"]) == pd.Timestamp("2026-04-20 09:30", tz="America/New_York")
            order = {
                "symbol": "NQ",
                "side": "buy",
                "contracts": 1,
                "order_type": "market",
                "client_order_id": "r1",
            }
            placed = await reg.call("place_order", order, who="test")
            assert placed["accepted"], placed
            broker = rt.broker()
            assert (await broker.order("r1")).status == "accepted"  # waits for the next bar, as a backtest
            await market.step(1)
            rec = await broker.order("r1")
            nxt = sample().loc["2026-04-20 09:35"]
            assert rec.status == "filled" and rec.avg_fill_price == pytest.approx(nxt["open"] + slip)
            fills = await broker.fills("NQ")
            assert pd.Timestamp(fills[-1].fill.time) == pd.Timestamp(
                "2026-04-20 09:35", tz="America/New_York"
            )
        finally:
            await market.stop()
            rt.close()

    asyncio.run(go())


def test_the_calendar_holds_friday_close_is_closed_and_the_weekend_is_skipped(tmp_path: Path) -> None:
    s = replay_settings(tmp_path, start="2026-04-24T16:50")
    prepare_replay(s)
    slip = s.execution.slippage_ticks * TICK

    def order(coid: str) -> dict[str, Any]:
        return {
            "symbol": "NQ",
            "side": "sell",
            "contracts": 1,
            "order_type": "market",
            "client_order_id": coid,
        }

    async def go() -> None:
        got, rt, market = await _collect(s, 1)  # the 16:50 bar closes at 16:55: the week's last minutes
        try:
            reg, broker = rt.registry(), rt.broker()
            assert (await reg.call("place_order", order("w1"), who="test"))["accepted"]
            await market.step(1)  # 17:00: the 16:55 bar fills it; the market closes for the weekend
            rec = await broker.order("w1")
            assert rec.avg_fill_price == pytest.approx(sample().loc["2026-04-24 16:55"]["open"] - slip)
            closed = await reg.call("place_order", order("w2"), who="test")
            assert not closed["accepted"]
            assert [r["code"] for r in closed["order"]["reasons"]] == ["market_closed"]
            await market.step(1)  # the weekend passes in no time, to the close of Sunday's first bar
            sunday = sample().loc["2026-04-26"].index[0]  # 18:10 in this sample (no trades 18:00-18:10)
            assert pd.Timestamp(market.status()["now"]) == sunday + pd.Timedelta(minutes=5)
            assert (await reg.call("place_order", order("w3"), who="test"))["accepted"]
            assert [pd.Timestamp(u["bar_time"]) for u in got] == [
                pd.Timestamp("2026-04-24 16:50", tz="America/New_York"),
                pd.Timestamp("2026-04-24 16:55", tz="America/New_York"),
                sunday,
            ]
        finally:
            await market.stop()
            rt.close()

    asyncio.run(go())


def test_tools_see_only_bars_closed_by_replay_time(tmp_path: Path) -> None:
    s = replay_settings(tmp_path, start="2026-04-20T09:30")
    prepare_replay(s)

    async def go() -> None:
        _got, rt, market = await _collect(s, 3)
        try:
            hist = await rt.registry().call(
                "get_historical_data", {"symbol": "NQ", "interval": "5m", "limit": 5}, who="test"
            )
            assert pd.Timestamp(hist["last_bar_time"]) == pd.Timestamp(
                "2026-04-20 09:40", tz="America/New_York"
            )
            daily = await rt.registry().call(
                "get_historical_data", {"symbol": "NQ", "interval": "1h"}, who="test"
            )
            assert pd.Timestamp(daily["last_bar_time"]) < pd.Timestamp(
                "2026-04-20 09:45", tz="America/New_York"
            )
        finally:
            await market.stop()
            rt.close()

    asyncio.run(go())


def test_a_replay_continues_where_it_stopped_and_never_goes_back(tmp_path: Path) -> None:
    s = replay_settings(tmp_path, start="2026-04-20T09:30")
    prepare_replay(s)

    async def first() -> list[dict[str, Any]]:
        got, rt, market = await _collect(s, 6)
        await market.stop()
        rt.close()
        return got

    before = asyncio.run(first())
    again = s.merged({"replay": {"start": None}})
    plan = prepare_replay(again)
    assert plan.resumed and plan.state.paused  # it was paused by hand: it stays paused
    assert plan.state.anchor_at >= pd.Timestamp(before[-1]["released_at"]).to_pydatetime()

    async def second() -> list[dict[str, Any]]:
        got, rt, market = await _collect(again, 2)
        await market.stop()
        rt.close()
        return got

    after = asyncio.run(second())
    assert [u["seq"] for u in after] == [7, 8]
    assert pd.Timestamp(after[0]["bar_time"]) == pd.Timestamp(before[-1]["bar_time"]) + pd.Timedelta(
        minutes=5
    )
    with pytest.raises(ConfigError, match="fills are final"):
        prepare_replay(s)  # an explicit start before what was released


def test_the_stdio_mcp_server_fills_a_market_order_on_the_sample_without_ray(tmp_path: Path) -> None:
    from fastmcp import Client
    from fastmcp.client.transports import StdioTransport

    env = {
        "NQ_DATA__DATA_DIR": str(tmp_path / "stdio"),
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": str(ROOT),
        "RAY_USAGE_STATS_ENABLED": "0",
    }
    args = ["-m", "nq_ray.cli", "mcp", "--replay", "2026-04-20T09:30", "--speed", "600"]
    transport = StdioTransport(command=sys.executable, args=args, env=env)

    async def go() -> dict[str, Any]:
        async with Client(transport, timeout=120) as client:
            quote = (await client.call_tool("get_nq_price", {"symbol": "NQ"})).structured_content
            assert quote is not None and quote["price"] > 0
            order = {
                "symbol": "NQ",
                "side": "buy",
                "contracts": 1,
                "order_type": "market",
                "client_order_id": "s1",
            }
            placed = (await client.call_tool("place_order", order)).structured_content
            assert placed is not None and placed["accepted"], placed
            for _ in range(600):  # replay time moves 10 minutes a second: the next bar is due within 0.5 s
                risk = (await client.call_tool("assess_portfolio_risk", {})).structured_content
                assert risk is not None
                pf = risk["portfolio"] or {}
                if pf.get("positions", {}).get("NQ", {}).get("quantity"):
                    return dict(pf)
                await asyncio.sleep(0.05)
            raise AssertionError("the market order never filled")

    pf = asyncio.run(go())
    pos = pf["positions"]["NQ"]
    bars = sample()
    # the fill is some replayed bar's open plus one slippage tick, on the tick grid
    assert pos["quantity"] == 1 and pos["avg_price"] - TICK in set(bars["open"])
    assert not (tmp_path / "stdio" / "ray_auth_token").exists()  # no Ray was started


# ---- the command line --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("args", "match"),
    [
        (["up", "--replay", "2020-01-06T09:30"], "before the first NQ bar"),
        (["up", "--replay", "2026-04-20T09:30", "--until", "2026-04-19"], "not after its start"),
        (["up", "--speed", "0"], "speed"),
        (["up", "--speed", "1e9"], "speed"),
        (["mcp", "--replay", "2031-01-01"], "after the last NQ bar"),
        (["trade", "--once", "--replay", "2020-01-01"], "before the first NQ bar"),
    ],
)
def test_the_command_line_refuses_a_bad_replay_at_once_with_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], match: str
) -> None:
    monkeypatch.setenv("NQ_DATA__DATA_DIR", str(tmp_path / "cli"))
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    out = CliRunner().invoke(app, args)
    assert out.exit_code == 2, out.output
    assert "error [invalid_config]" in out.output and match in out.output
    assert not (tmp_path / "cli" / "ray_auth_token").exists()  # refused before Ray


def test_a_live_source_runs_on_the_wall_clock(tmp_path: Path) -> None:
    s = Settings(data={"data_dir": str(tmp_path / "d"), "default_source": "yahoo"})
    lines: list[str] = []
    resolved, plan = start_clock(s, echo=lines.append)
    assert plan is None and resolved.replay.clock == "wall" and "clock: wall" in lines[0]
    assert Runtime(resolved).market() is None


def test_trade_once_on_a_weekend_replay_records_a_decision(tmp_path: Path) -> None:
    env = {**os.environ, "NQ_DATA__DATA_DIR": str(tmp_path / "t"), "NQ_LLM__PROVIDERS": "[]"}
    env.pop("RAY_ADDRESS", None)
    out = subprocess.run(
        [sys.executable, "-m", "nq_ray.cli", "trade", "--once", "--replay", "2026-04-24T16:00"],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=300,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "replay of sample starts at Fri 2026-04-24 16:00 ET" in out.stdout
    assert '"decision_id"' in out.stdout
