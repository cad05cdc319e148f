"""Market replay: how many bars per second the runtime absorbs, and how long a released bar takes to reach
a subscriber as ``market_update``.

    .venv/bin/python -m benchmarks.bench_replay [--quick]

In process, no Ray, SQLite store in a temp dir, NQ 5-minute sample bars from Monday 2026-04-13 00:00 ET
on. Every run goes through ``Runtime(settings).market()`` (``MarketReplay`` over the runtime's
``LocalBroker`` and replay clock), paused, stepped as fast as it goes (``step(1)`` per bar: each release
works the broker's book, runs the hooks and publishes, and the step writes the replay's state to the
store):

- **driver alone**: no hook;
- **driver + desk**: the desk (``Runtime.desk()``, rules analyst only, its tools cut at replay time) in
  lock-step: one ``run_once("NQ")`` per released bar (the hook of ``tests/runtime/test_replay_parity.py``);
- **bulk**: one ``jump`` to the end releases every bar at once (the driver alone, no per-step store write).

References measured in the same run: real time at speed 1 (one 5-minute bar per 300 s, so bars/s × 300 is
the largest replay speed the runtime keeps up with), and the agent backtest (``run_agent_backtest``,
every bar: the same analysis → risk decisions, point in time, no broker, no replay) over the same bars —
the desk's replay overhead is its bars/s against that.

Latency: each ``market_update`` carries ``wall`` (``time.time()`` when its bar was released); a subscriber
task reads it two ways — the event sink (``publish``, what the WebSocket fan-out is fed from), and
``updates_since`` long-polling (what Serve replicas use). Reported p50/p99 in ms. The driver publishes a
bar before it runs its hooks, so a desk in lock-step delays the next bar, not this one's update.

**The WebSocket** (``run_ws``): the real app (``build_app``, no Ray: the driver runs in its lifespan) on
uvicorn on a free loopback port in a thread of this process, a ``websockets`` client on ``/ws``, the bars
released through the HTTP replay control three ways: paused and ``step`` one bar per POST; resumed at
×10,000 (the largest speed: one 5-minute bar per 30 ms, so its bars/s is the replay's pace, not a
ceiling); one ``jump`` to the end (every bar in one burst, queued on the socket). Latency is
``time.time()`` at receipt − ``wall`` (one host, one clock; the client shares the process, and its GIL,
with the server). Every run checks that each bar the driver released arrived once and in ``seq`` order
(missing, duplicated and out-of-order updates are counted and printed). No desk runs in the app here. The
full run adds the Ray path without Serve (``run_ws_ray``): a local Ray, the ``market_replay`` actor
releasing, the same app on uvicorn pumping its updates (``MarketPump``) to ``/ws``; a Serve deployment
(``nq-ray up``, HAProxy, replicas) is not measured here.

Quick mode: 24 bars with the desk, 200 without, 50 per WebSocket run, no Ray (full: 144, 1,000;
WebSocket 1,000, 500 at ×10,000, 1,000 on Ray).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from nq_ray.config import Settings
from nq_ray.llm.config import LLMConfig, ProviderConfig

RULES = ProviderConfig(name="rules", kind="rules", model="nq-rules-v1", priority=1000)
START = "2026-04-13T00:00"
BAR_S = 300.0  # 5-minute bars: one per 300 s of real time at speed 1


def replay_settings(data_dir: Path, bars: int) -> Settings:
    """Rules-only desk, replay clock over ``bars`` NQ 5-minute bars from ``START``, limits that let the
    desk trade (so the broker works orders and brackets, as it would)."""
    import pandas as pd

    until = (pd.Timestamp(START) + pd.Timedelta(minutes=5 * bars)).isoformat()
    return Settings.model_validate(
        {
            "data": {"data_dir": str(data_dir)},
            "llm": LLMConfig(providers=[RULES], health_interval_s=0),
            "replay": {"clock": "replay", "symbols": ["NQ"], "start": START, "until": until},
            "risk": {
                "account_size_usd": 1_000_000.0,
                "limits": {
                    "max_contracts_per_symbol": 1,
                    "max_total_contracts": 1,
                    "max_daily_loss_usd": None,
                    "trailing_drawdown_usd": None,
                    "max_consecutive_losses": None,
                    "max_orders_per_minute": None,
                },
            },
        }
    )


def _pct(xs: list[float], q: float) -> float | None:
    return float(np.percentile(np.asarray(xs) * 1e3, q)) if xs else None


async def run_replay(settings: Settings, *, desk: bool = False, bulk: bool = False) -> dict[str, Any]:
    """Release every bar of ``settings.replay`` (stepping, or one jump with ``bulk``); bars/s and the
    release → subscriber latencies (ms)."""
    from nq_ray.agents.service import DeskService
    from nq_ray.runtime.builder import Runtime
    from nq_ray.runtime.replay import MarketReplay, prepare_replay

    prepare_replay(settings)
    sink: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    sink_ms: list[float] = []
    poll_ms: list[float] = []

    def publish(event: str, data: dict[str, Any]) -> None:
        if event == "market_update":
            sink.put_nowait(data)

    rt = Runtime(settings)
    market = rt.market(publish=publish)
    assert isinstance(market, MarketReplay)
    service: Any = None
    cycles = 0
    try:
        await market.start(paused=True)
        seq0 = market.seq
        if desk:
            service = rt.desk()
            assert isinstance(service, DeskService)

            async def cycle(symbol: str, _bar: Any) -> None:
                nonlocal cycles
                assert service is not None
                await service.run_once(symbol)
                cycles += 1

            market.hooks.append(cycle)

        async def from_sink() -> None:
            while True:
                u = await sink.get()
                sink_ms.append(time.time() - u["wall"])

        async def from_poll() -> None:
            seq = seq0
            while True:
                for u in await market.updates_since(seq, timeout=5.0):
                    poll_ms.append(time.time() - u["wall"])
                    seq = max(seq, u["seq"])

        readers = [asyncio.create_task(from_sink()), asyncio.create_task(from_poll())]
        bars = market.status()["bars_left"]
        t0 = time.perf_counter()
        if bulk:
            assert market.clock is not None and market.clock.state.until is not None
            await market.jump(market.clock.state.until)
        else:
            while market.status()["bars_left"] > 0:
                await market.step(1)
        elapsed = time.perf_counter() - t0
        released = market.seq - seq0
        for _ in range(100):  # let the readers take the last updates
            if len(sink_ms) >= released and len(poll_ms) >= released:
                break
            await asyncio.sleep(0.01)
        for task in readers:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        assert market.errors == 0, market.last_error
    finally:
        await market.stop()
        if service is not None:
            await service.close()
        rt.close()
    return {
        "bars": released,
        "scheduled": bars,
        "cycles": cycles,
        "seconds": elapsed,
        "bars_per_s": released / elapsed if elapsed > 0 else float("inf"),
        "sink_p50_ms": _pct(sink_ms, 50),
        "sink_p99_ms": _pct(sink_ms, 99),
        "poll_p50_ms": _pct(poll_ms, 50),
        "poll_p99_ms": _pct(poll_ms, 99),
        "updates": (len(sink_ms), len(poll_ms)),
    }


WS_MODES = {  # how the bars are released, as the rows name it
    "step": "paused, one `step` POST per bar",
    "run": "resumed at ×10,000 (a bar per 30 ms)",
    "jump": "one `jump` to the end (a burst)",
}


def run_ws(
    settings: Settings, mode: str = "step", *, on_ray: bool = False, timeout_s: float = 120.0
) -> dict[str, Any]:
    """The real app (``build_app``, no Ray) on uvicorn on a free loopback port, the replay driver in its
    lifespan; a ``websockets`` client on ``/ws`` while the replay's bars are released over the HTTP
    control (``mode``: ``step``, ``run`` or ``jump``, see ``WS_MODES``). For each ``market_update``:
    ``time.time()`` at receipt − its ``wall`` (the same host's clock), and its ``seq``, checked against
    every bar the driver released (each once, in order). ``on_ray``: Ray must be up here; the app pumps
    the ``market_replay`` actor's updates (``MarketPump``)."""
    if mode not in WS_MODES:
        raise ValueError(f"mode must be one of {sorted(WS_MODES)}, not {mode!r}")
    with _served(settings, on_ray) as (url, token):
        return asyncio.run(_ws_client(url, token, mode, timeout_s, end_notice=not on_ray))


def run_ws_ray(settings: Settings, *, timeout_s: float = 120.0) -> list[dict[str, Any]]:
    """The same over Ray, without Serve: a local Ray (2 CPUs, its own temp dir), the ``market_replay``
    actor releasing, the app on uvicorn here pumping its updates (``MarketPump``: one ``updates_since``
    long poll after another) to ``/ws``. One replay: the first half ``step`` by step, then one ``jump``
    over the rest (the actor holds one replay per Ray session). Two rows, as ``run_ws``'s."""
    from nq_ray.runtime.cluster import connect, shutdown

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    with tempfile.TemporaryDirectory(prefix="nqws") as ray_tmp:
        connect(settings=settings, num_cpus=2, dashboard=False, temp_dir=ray_tmp)
        try:
            with _served(settings, True) as (url, token):
                half = asyncio.run(_ws_client(url, token, "status", timeout_s))["bars"] // 2
                stepped = asyncio.run(_ws_client(url, token, "step", timeout_s, bars=half))
                jumped = asyncio.run(_ws_client(url, token, "jump", timeout_s))
        finally:
            shutdown()
    for row in (stepped, jumped):  # the actor's own notices reach /ws through Redis only, not the pump
        row["ended"] = None
    return [stepped, jumped]


@contextlib.contextmanager
def _served(settings: Settings, on_ray: bool) -> Iterator[tuple[str, str | None]]:
    from nq_ray.runtime.replay import prepare_replay
    from nq_ray.serve.app import build_app
    from nq_ray.testing.asgi import ThreadedUvicorn

    prepare_replay(settings)
    token = settings.mcp.auth_token.get_secret_value() if settings.mcp.auth_token else None
    with ThreadedUvicorn(build_app(settings, use_actors=on_ray), name="bench-replay-ws") as srv:
        yield srv.url, token


async def _ws_client(
    url: str,
    token: str | None,
    mode: str,
    timeout_s: float,
    *,
    bars: int | None = None,
    end_notice: bool = False,
) -> dict[str, Any]:
    """Pause, connect to ``/ws``, release (``step``: ``bars`` bars, default all; ``run``; ``jump``; or
    ``status``: nothing, ``bars`` is what is left), read until the last released ``seq`` arrived (and,
    with ``end_notice``, the replay's end notice after it when the replay ended)."""
    import httpx
    import websockets

    headers = {"Authorization": f"Bearer {token}"} if token else {}
    ws_url = url.replace("http", "ws", 1) + "/ws" + (f"?token={token}" if token else "")
    control = "/api/market/replay"

    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=60.0) as http:

        async def post(action: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
            r = await http.post(f"{control}/{action}", json=body)
            r.raise_for_status()
            out: dict[str, Any] = r.json()
            return out

        before = await post("pause")
        if mode == "status":
            return {"bars": int(before["bars_left"])}
        seq0, until = int(before["seq"]), before.get("until")
        received: list[tuple[int, float]] = []  # (seq, receipt − wall) in arrival order
        target: int | None = None  # the last seq released, once the release is done
        last_at = time.perf_counter()
        caught_up, ended = asyncio.Event(), asyncio.Event()
        async with websockets.connect(ws_url, max_size=None) as ws:

            async def read() -> None:
                nonlocal last_at
                async for raw in ws:
                    at = time.time()
                    msg = json.loads(raw)
                    if msg["type"] == "market_update":
                        received.append((int(msg["data"]["seq"]), at - float(msg["data"]["wall"])))
                        last_at = time.perf_counter()
                        if target is not None and received[-1][0] >= target:
                            caught_up.set()
                    elif msg["type"] == "system_notification" and msg["data"].get("message") == (
                        "market replay ended"
                    ):
                        ended.set()

            hello = json.loads(await ws.recv())
            assert hello["data"]["message"] == "connected", hello
            reader = asyncio.create_task(read())
            t0 = time.perf_counter()
            st = before
            if mode == "step":
                for _ in range(bars if bars is not None else st["bars_left"]):
                    if st["bars_left"] <= 0:
                        break
                    st = await post("step", {"bars": 1})
            elif mode == "run":
                await post("speed", {"speed": 10_000})
                st = await post("resume")
                while not st["finished"]:  # about 4 status reads a second while it runs
                    await asyncio.sleep(0.25)
                    st = (await http.get(control)).json()
            else:
                assert until is not None, before
                st = await post("jump", {"to": until})
            target = int(st["seq"])
            if target == seq0 or any(s >= target for s, _ in received):
                caught_up.set()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(caught_up.wait(), timeout_s)
            elapsed = last_at - t0
            if end_notice and (st.get("finished") or st.get("bars_left") == 0):
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(ended.wait(), 10.0)  # after the last bar, on the same socket
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
        after = (await http.get(control)).json()
    expected = range(seq0 + 1, target + 1)
    seqs = [s for s, _ in received]
    seen = set(seqs)
    lat = [x for _, x in received]
    return {
        "mode": mode,
        "released_before": seq0,  # bars the replay released before the pause (before this client read)
        "bars": len(expected),
        "received": len(seqs),
        "missing": sorted(set(expected) - seen),
        "duplicates": len(seqs) - len(seen),
        "out_of_order": sum(1 for a, b in itertools.pairwise(seqs) if b <= a),
        "ended": ended.is_set(),
        "errors": after.get("errors"),
        "seconds": elapsed,
        "bars_per_s": len(seqs) / elapsed if elapsed > 0 else float("inf"),
        "ws_p50_ms": _pct(lat, 50),
        "ws_p99_ms": _pct(lat, 99),
        "ws_max_ms": max(lat) * 1e3 if lat else None,
    }


async def run_agent_reference(settings: Settings, bars: int) -> dict[str, Any]:
    """The agent backtest's decisions, every bar, over the same bars: decisions per second."""
    import pandas as pd

    from nq_ray.agents.backtest import run_agent_backtest

    last = (pd.Timestamp(START) + pd.Timedelta(minutes=5 * bars)).isoformat()
    t0 = time.perf_counter()
    out = await run_agent_backtest(
        settings,
        {"start": START, "end": last, "every_bars": 1, "warmup_bars": 0, "max_decisions": 100_000},
    )
    elapsed = time.perf_counter() - t0
    n = len(out.decisions) + len(out.skipped)
    return {"bars": n, "seconds": elapsed, "bars_per_s": n / elapsed}


def _ms(x: float | None) -> str:
    return "" if x is None else f"{x:.1f}"


def main(quick: bool = False) -> list[dict[str, Any]]:
    n_desk, n_driver = (24, 200) if quick else (144, 1000)
    n_ws, n_ws_run = (50, 50) if quick else (1000, 500)
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)

        def fresh(name: str, bars: int) -> Settings:
            return replay_settings(root / name, bars)

        alone = asyncio.run(run_replay(fresh("alone", n_driver)))
        rows.append({"run": "driver alone, step(1) per bar", **alone})
        bulk = asyncio.run(run_replay(fresh("bulk", n_driver), bulk=True))
        rows.append({"run": "driver alone, one jump", **bulk})
        with_desk = asyncio.run(run_replay(fresh("desk", n_desk), desk=True))
        rows.append({"run": "driver + rules desk in lock-step", **with_desk})
        ref = asyncio.run(run_agent_reference(fresh("ref", n_desk), n_desk))
        ws_rows = [
            {"run": f"WebSocket, {WS_MODES[mode]}", **run_ws(fresh(f"ws-{mode}", bars), mode)}
            for mode, bars in (("step", n_ws), ("run", n_ws_run), ("jump", n_ws))
        ]
        if not quick:  # a local Ray start: not in the smoke run
            stepped, jumped = run_ws_ray(fresh("ws-ray", n_ws))
            ws_rows.append({"run": "WebSocket on Ray (actor → pump), half by `step` POSTs", **stepped})
            ws_rows.append({"run": "WebSocket on Ray (actor → pump), one `jump` over the rest", **jumped})
    print(
        "| run | bars | seconds | bars/s | × real time (5m bars) | sink p50 / p99 ms | "
        "updates_since p50 / p99 ms |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        print(
            f"| {r['run']} | {r['bars']} | {r['seconds']:.2f} | {r['bars_per_s']:.1f} | "
            f"{r['bars_per_s'] * BAR_S:,.0f}× | {_ms(r['sink_p50_ms'])} / {_ms(r['sink_p99_ms'])} | "
            f"{_ms(r['poll_p50_ms'])} / {_ms(r['poll_p99_ms'])} |"
        )
    ratio = with_desk["bars_per_s"] / ref["bars_per_s"]
    print(
        f"\nreference: agent backtest (same decisions, point in time, no broker, no replay) "
        f"{ref['bars']} bars in {ref['seconds']:.2f} s = {ref['bars_per_s']:.1f} bars/s; "
        f"desk over the replay / agent backtest = {ratio:.2f}×"
    )
    rows.append({"run": "agent backtest reference", **ref, "ratio": ratio})
    print(
        "\n| WebSocket `/ws` (the app on uvicorn in this process) | bars | received | missing / duplicated / "
        "out of order | seconds | bars/s | release → receipt p50 / p99 / max ms |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for w in ws_rows:
        print(
            f"| {w['run']} | {w['bars']} | {w['received']} | {len(w['missing'])} / {w['duplicates']} / "
            f"{w['out_of_order']} | {w['seconds']:.2f} | {w['bars_per_s']:.1f} | {_ms(w['ws_p50_ms'])} / "
            f"{_ms(w['ws_p99_ms'])} / {_ms(w['ws_max_ms'])} |"
        )
        if w["missing"] or w["duplicates"] or w["out_of_order"] or w["ended"] is False:
            print(
                f"  !! {w['run']}: missing seq {w['missing'][:20]}, {w['duplicates']} duplicated, "
                f"{w['out_of_order']} out of order, replay end seen: {w['ended']}"
            )
    rows.extend(ws_rows)
    return rows


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_replay")
    parser.add_argument(
        "--quick", action="store_true", help="24 bars with the desk, 200 without, 50 per WebSocket run"
    )
    main(quick=parser.parse_args().quick)
