"""The replay benchmark runs end to end (quick sizes): every bar released once, each one reaching both
subscribers and a real WebSocket client of the app on uvicorn (once, in order, with a positive latency),
the desk cycling once per bar, and every row with a positive rate."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from benchmarks import bench_replay


def test_driver_alone_releases_every_bar_once_to_both_subscribers(tmp_path: Path) -> None:
    out = asyncio.run(bench_replay.run_replay(bench_replay.replay_settings(tmp_path / "data", 30)))
    assert out["bars"] == out["scheduled"] >= 30
    assert out["updates"] == (out["bars"], out["bars"])
    assert out["cycles"] == 0
    assert out["sink_p50_ms"] is not None and 0 <= out["sink_p50_ms"] <= out["sink_p99_ms"]


@pytest.mark.parametrize("mode", ["step", "jump"])
def test_websocket_client_gets_every_released_bar_once_in_order(tmp_path: Path, mode: str) -> None:
    out = bench_replay.run_ws(bench_replay.replay_settings(tmp_path / "data", 30), mode, timeout_s=30.0)
    assert out["ended"], out  # the replay's end notice came after the last bar, on the same socket
    # the replay runs from the app's start: on a loaded host a bar may be out before the client pauses it
    assert out["released_before"] + out["bars"] >= 30 and out["bars"] >= 25 and out["errors"] == 0
    assert (out["received"], out["missing"], out["duplicates"], out["out_of_order"]) == (
        out["bars"],
        [],
        0,
        0,
    )
    assert 0 < out["ws_p50_ms"] <= out["ws_p99_ms"] <= out["ws_max_ms"] < 5_000


def test_a_few_steps_then_one_jump_reach_one_socket_each_once(tmp_path: Path) -> None:
    """What ``run_ws_ray`` does on Ray, on the in-process app: part of a replay by steps, then the rest
    in one jump, each on its own connection; every bar counted once, nothing skipped between them."""
    settings = bench_replay.replay_settings(tmp_path / "data", 30)
    with bench_replay._served(settings, False) as (url, token):
        stepped = asyncio.run(bench_replay._ws_client(url, token, "step", 30.0, bars=10))
        jumped = asyncio.run(bench_replay._ws_client(url, token, "jump", 30.0, end_notice=True))
    assert stepped["bars"] == stepped["received"] == 10
    assert jumped["bars"] == jumped["received"] >= 20 and jumped["ended"]
    for out in (stepped, jumped):
        assert (out["missing"], out["duplicates"], out["out_of_order"]) == ([], 0, 0), out
        assert 0 < out["ws_p50_ms"] <= out["ws_p99_ms"]


def test_websocket_run_rejects_an_unknown_mode(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="mode must be one of"):
        bench_replay.run_ws(bench_replay.replay_settings(tmp_path / "data", 5), "fast")


@pytest.mark.slow
def test_quick_benchmark_runs_and_reports_every_row() -> None:
    rows = bench_replay.main(quick=True)
    assert [r["run"] for r in rows] == [
        "driver alone, step(1) per bar",
        "driver alone, one jump",
        "driver + rules desk in lock-step",
        "agent backtest reference",
        "WebSocket, paused, one `step` POST per bar",
        "WebSocket, resumed at ×10,000 (a bar per 30 ms)",
        "WebSocket, one `jump` to the end (a burst)",
    ]
    assert all(r["bars_per_s"] > 0 for r in rows)
    desk = rows[2]
    assert desk["cycles"] == desk["bars"] >= 24
    assert rows[3]["ratio"] > 0
    for ws in rows[4:]:  # every bar reached the socket once, in order, after its release
        assert ws["received"] == ws["bars"] >= 50, ws
        assert (ws["missing"], ws["duplicates"], ws["out_of_order"], ws["ended"]) == ([], 0, 0, True)
        assert 0 < ws["ws_p50_ms"] <= ws["ws_p99_ms"]
