"""``scan_market`` / ``scan_backtests`` through the registry: typed results, bounded inputs with clear
errors, and as jobs: progress per finished cell, cancellation that stops the Ray tasks."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from nq_ray.backtest import BacktestConfig, run_backtest
from nq_ray.data import load_bars
from nq_ray.errors import InvalidArgumentError, UnknownSymbolError
from nq_ray.testing.wait import await_until
from nq_ray.tools.jobs import JobManager
from nq_ray.tools.registry import ToolRegistry

SIX_TIMEFRAMES = ["1m", "5m", "15m", "30m", "1h", "1d"]


async def test_scan_market_ranks_rows_and_says_how(registry: ToolRegistry) -> None:
    out = await registry.call("scan_market", {"symbols": ["NQ", "ES"], "timeframes": ["5m", "1h"]})

    assert out["mode"] == "analysis" and out["cells"] == 4 and out["finished"] == 4
    assert "confidence × alignment" in out["rank_rule"]
    scores = [r["score"] for r in out["rows"]]
    assert scores == sorted(scores, reverse=True)
    assert [r["rank"] for r in out["rows"]] == [1, 2, 3, 4]
    first = out["rows"][0]
    assert first["bias"] in ("bullish", "bearish", "neutral") and first["atr"] > 0
    assert first["summary"].startswith("[rules analyst")


async def test_scan_backtests_matches_single_backtests_and_ranks_by_sharpe(registry: ToolRegistry) -> None:
    args = {"symbols": ["NQ", "ES"], "timeframes": ["1h"], "strategy": "ema_cross", "min_trades": 5}

    out = await registry.call("scan_backtests", args)

    assert out["mode"] == "backtest" and out["strategy"] == "ema_cross"
    for row in out["rows"]:  # each cell is the same backtest run directly (the server's default costs)
        costs = registry.context.settings.execution.costs().model_dump()
        bars = load_bars(row["symbol"], "1h", source="sample")
        ref = run_backtest(bars, "ema_cross", None, BacktestConfig(symbol=row["symbol"], **costs))
        assert row["n_trades"] == ref.metrics.n_trades
        assert row["net_pnl_usd"] == pytest.approx(ref.metrics.net_pnl_usd)
        assert row["score"] == pytest.approx(ref.metrics.sharpe)
    assert out["rows"][0]["score"] >= out["rows"][1]["score"]


async def test_runs_with_too_few_trades_get_no_score_and_rank_last(registry: ToolRegistry) -> None:
    out = await registry.call(
        "scan_backtests", {"symbols": ["NQ"], "timeframes": ["5m", "1d"], "min_trades": 50}
    )

    by = {r["interval"]: r for r in out["rows"]}
    assert by["1d"]["n_trades"] < 50 and by["1d"]["score"] is None
    assert by["5m"]["score"] is not None and out["rows"][-1]["interval"] == "1d"


@pytest.mark.parametrize(
    ("args", "error", "match"),
    [
        ({"symbols": []}, InvalidArgumentError, "symbols"),
        ({"timeframes": []}, InvalidArgumentError, "timeframes"),
        ({"symbols": ["NQ", "ACME"]}, UnknownSymbolError, "unknown symbol 'ACME'"),
        ({"timeframes": ["5m", "3h"]}, InvalidArgumentError, "unknown interval '3h'"),
        ({"symbols": ["NQ"] * 17}, InvalidArgumentError, "symbols"),
        (
            {
                "symbols": ["NQ", "MNQ", "ES", "MES", "YM", "RTY"],
                "timeframes": ["1m", "5m", "15m", "30m", "1h", "1d"],
            },
            InvalidArgumentError,
            "6 symbols × 6 timeframes = 36 cells; at most 32",
        ),
    ],
)
async def test_hostile_scans_are_refused_with_a_clear_error(
    registry: ToolRegistry, args: dict[str, Any], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        await registry.call("scan_market", args)


async def test_unknown_strategy_is_refused_before_any_cell_runs(registry: ToolRegistry) -> None:
    with pytest.raises(InvalidArgumentError, match="strategy"):
        await registry.call("scan_backtests", {"strategy": "no_such_strategy"})


SLOW_SCAN = {
    "symbols": ["NQ", "MNQ", "ES", "MES", "YM", "MYM", "RTY", "M2K"],
    "timeframes": ["1m", "5m"],
    "source": "synthetic",
}


async def test_scan_job_reports_each_cell_and_finishes(ray_session: Any, registry: ToolRegistry) -> None:
    jobs = JobManager(registry)
    messages: list[str] = []

    job = await jobs.submit("scan_market", {"symbols": ["NQ", "ES"], "timeframes": ["5m", "1h"]})

    async def finished() -> bool:
        state = await jobs.get(job.id)
        if state.message and state.message not in messages:
            messages.append(state.message)
        return state.done

    await await_until(finished, timeout_s=120, interval_s=0.02, message="the scan job finished")
    state = await jobs.get(job.id)
    assert state.status == "succeeded" and state.progress == state.total == 4
    assert state.result is not None and state.result["finished"] == 4
    assert state.message is not None and state.message.startswith("4/4 cells; ")


async def test_cancelling_a_scan_job_stops_its_ray_tasks(ray_session: Any, registry: ToolRegistry) -> None:
    # Arrange
    cpus = float(ray_session.cluster_resources()["CPU"])
    jobs = JobManager(registry)
    job = await jobs.submit("scan_market", SLOW_SCAN)

    async def one_cell_done() -> bool:
        return ((await jobs.get(job.id)).progress or 0) >= 1

    await await_until(one_cell_done, timeout_s=120, interval_s=0.02, message="a first cell finished")

    # Act
    await jobs.cancel(job.id)

    # Assert: the job reads cancelled with what had finished; every CPU comes back
    async def settled() -> bool:
        return (await jobs.get(job.id)).done

    await await_until(settled, timeout_s=30, message="the job settled")
    state = await jobs.get(job.id)
    assert state.status == "cancelled" and state.total == 16
    assert state.progress is not None and 1 <= state.progress < 16
    assert state.message is not None and "cells;" in state.message

    async def cpus_free() -> bool:
        await asyncio.sleep(0)
        return float(ray_session.available_resources().get("CPU", 0)) == cpus

    await await_until(cpus_free, timeout_s=30, message="every CPU is free again")
