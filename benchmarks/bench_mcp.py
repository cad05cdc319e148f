"""MCP tool calls through Ray Serve vs the same app on plain uvicorn, and REST throughput by replicas.

    .venv/bin/python -m benchmarks.bench_mcp [--quick] [--python-proxy]

1. ``get_contract_info`` over MCP streamable HTTP (fastmcp ``Client``, bearer token, ``/mcp/``):
   sequential calls (p50/p99 latency, calls/s) and 8 concurrent clients (calls/s), against
   (a) the Serve app (``settings.serve.api_replicas`` = 2 replicas, 0.1 CPU each) and
   (b) ``build_app`` — the very same FastAPI + FastMCP app — on one uvicorn process. Both sides connect
   to the same local Ray (the uvicorn process joins it), so tool code, auth and audit forwarding match.
2. ``GET /api/market/nq-price`` with 16 concurrent clients against Serve with 1 and with 2 replicas.

Serve runs with the fast ingress ``nq-ray up`` uses (replicas serve HTTP directly behind a Serve-managed
HAProxy, ``nq_ray.serve.runtime.SERVE_FAST_INGRESS_ENV``); ``--python-proxy`` measures Serve's default
Python proxy instead (the ~0.25× first measurement). The load generator shares the machine's cores.

With the fast ingress the sequential calls also go to one replica directly on the port Serve gave it
(read from the HAProxy config Serve wrote), which splits Serve's extra latency into the HAProxy hop and
the replica's own request handling.

Numbers depend on what else the machine is doing; each table compares sides measured in this run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import glob
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

TOKEN = "bench-token"
TOOL = "get_contract_info"

_UVICORN = """
import os, sys, ray, uvicorn
ray.init(address=sys.argv[2], namespace="nq", log_to_driver=False, configure_logging=False)
from nq_ray.config import Settings
from nq_ray.serve.app import build_app
settings = Settings.model_validate_json(os.environ["NQ_BENCH_SETTINGS"])
uvicorn.run(build_app(settings), host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_http(url: str, timeout_s: float = 90.0) -> None:
    import httpx

    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout_s:
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{url} did not come up in {timeout_s:.0f} s")


async def _mcp_interleaved(
    urls: dict[str, str],
    n: int,
    *,
    raw: bool = False,
    warmup: int = 100,
    cpu_of: dict[str, list[int]] | None = None,
) -> dict[str, dict[str, float]]:
    """Sequential calls, one at a time, taking turns between the sides (``urls``: side → MCP URL).

    Call k goes to every side in turn (the order rotates each time), so a burst of load from elsewhere
    on the machine lands on all sides alike instead of on whichever side's round it fell in. Per side:
    p50/p99 latency and calls/s = calls ÷ the time its own calls took.

    The client is fastmcp's ``Client``, or with ``raw`` one JSON-RPC ``tools/call`` POST per call over a
    kept-alive httpx connection — what is left of a call without an MCP client library's own work.
    ``cpu_of`` (name → pids): the CPU seconds each group of processes used during the timed calls, under
    ``out["cpu_s"]``."""
    import httpx
    from fastmcp import Client
    from fastmcp.client.transports import StreamableHttpTransport

    headers = {"Authorization": f"Bearer {TOKEN}"}
    call = {"jsonrpc": "2.0", "id": 1, "method": "tools/call"}
    call["params"] = {"name": TOOL, "arguments": {"symbol": "NQ"}}
    raw_headers = headers | {"Accept": "application/json, text/event-stream"}
    raw_headers["MCP-Protocol-Version"] = "2025-06-18"
    async with contextlib.AsyncExitStack() as stack:
        calls: dict[str, Any] = {}
        for side, url in urls.items():
            if raw:
                http = await stack.enter_async_context(httpx.AsyncClient(timeout=30))

                async def one(http: httpx.AsyncClient = http, url: str = url) -> None:
                    r = await http.post(url, json=call, headers=raw_headers)
                    if r.status_code != 200 or "structuredContent" not in r.text:
                        raise RuntimeError(f"{url}: {r.status_code} {r.text[:200]}")

            else:
                transport = StreamableHttpTransport(url, headers=headers)
                client = await stack.enter_async_context(Client(transport))

                async def one(client: Any = client) -> None:
                    await client.call_tool(TOOL, {"symbol": "NQ"})

            calls[side] = one
        sides = list(calls)
        for _ in range(warmup):  # connections, caches, every replica and HAProxy's balancing warmed up
            for side in sides:
                await calls[side]()
        lat: dict[str, list[float]] = {side: [] for side in sides}
        cpu0 = {name: _cpu_s(pids) for name, pids in (cpu_of or {}).items()}
        for k in range(n):
            for side in sides[k % len(sides) :] + sides[: k % len(sides)]:
                t = time.perf_counter()
                await calls[side]()
                lat[side].append(time.perf_counter() - t)
        cpu1 = {name: _cpu_s(pids) for name, pids in (cpu_of or {}).items()}
    out: dict[str, dict[str, float]] = {}
    if cpu_of:
        out["cpu_s"] = {k: cpu1[k] - v for k, v in cpu0.items() if v is not None and cpu1[k] is not None}
    for side, xs in lat.items():
        a = np.array(xs) * 1000
        out[side] = {
            "p50_ms": float(np.percentile(a, 50)),
            "p99_ms": float(np.percentile(a, 99)),
            "per_s": len(xs) / float(np.sum(xs)),
        }
    return out


async def _mcp_concurrent(url: str, n: int, clients: int = 8) -> float:
    from fastmcp import Client
    from fastmcp.client.transports import StreamableHttpTransport

    async def one(k: int) -> None:
        transport = StreamableHttpTransport(url, headers={"Authorization": f"Bearer {TOKEN}"})
        async with Client(transport) as client:
            for _ in range(k):
                await client.call_tool(TOOL, {"symbol": "NQ"})

    per = max(1, n // clients)
    t0 = time.perf_counter()
    await asyncio.gather(*(one(per) for _ in range(clients)))
    return per * clients / (time.perf_counter() - t0)


async def _rest(url: str, n: int, concurrency: int = 16) -> dict[str, float]:
    import httpx

    lat: list[float] = []
    headers = {"Authorization": f"Bearer {TOKEN}"}

    async def worker(client: httpx.AsyncClient, k: int) -> None:
        for _ in range(k):
            t = time.perf_counter()
            r = await client.get(url, headers=headers)
            r.raise_for_status()
            lat.append(time.perf_counter() - t)

    async with httpx.AsyncClient(timeout=30) as client:
        await worker(client, 10)
        lat.clear()
        t0 = time.perf_counter()
        await asyncio.gather(*(worker(client, n // concurrency) for _ in range(concurrency)))
        wall = time.perf_counter() - t0
    a = np.array(lat) * 1000
    return {
        "p50_ms": float(np.percentile(a, 50)),
        "p99_ms": float(np.percentile(a, 99)),
        "per_s": len(lat) / wall,
    }


def _cpu_s(pids: list[int]) -> float | None:
    """CPU seconds (user + system) the processes have used so far, from ``/proc`` (None where absent)."""
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return None
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def _pids(*pgrep_args: str) -> list[int]:
    found = subprocess.run(["pgrep", *pgrep_args], capture_output=True, text=True, check=False)
    return [int(p) for p in found.stdout.split()]


def _replica_url(serve_port: int) -> str | None:
    """A replica's own HTTP address from the HAProxy config that fronts ``serve_port`` (None if absent)."""
    for path in sorted(glob.glob("/tmp/haproxy-serve/*/haproxy.cfg"), key=os.path.getmtime, reverse=True):
        text = Path(path).read_text(encoding="utf-8", errors="replace")
        if f":{serve_port}\n" in text:
            m = re.search(r"server SERVE_REPLICA\S* ([0-9.]+:\d+)", text)
            return f"http://{m.group(1)}" if m else None
    return None


def run(quick: bool = False, fast_ingress: bool = True) -> dict[str, Any]:
    """Start Ray + Serve + a uvicorn process, measure, tear everything down; the numbers.

    Sequential MCP calls take turns between the sides call by call (``_mcp_interleaved``), so a burst of
    load from elsewhere on the machine hits every side alike."""
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    from nq_ray.config import Settings
    from nq_ray.serve.runtime import deploy, start_ray

    n_seq = 300 if quick else 1000
    n_conc = 160 if quick else 480
    n_rest = 160 if quick else 480
    tmp = Path(tempfile.mkdtemp(prefix="nqb"))
    settings = Settings(
        mcp={"auth_token": TOKEN},
        data={"data_dir": str(tmp / "data")},
        serve={"host": "127.0.0.1", "port": _free_port(), "api_replicas": 2},
    )
    start_ray(settings, temp_dir=str(tmp), num_cpus=2, fast_ingress=fast_ingress)  # env before Serve loads
    import ray
    from ray import serve

    proc = None
    out: dict[str, Any] = {}
    try:
        deploy(settings)
        serve_url = f"http://127.0.0.1:{settings.serve.port}"
        uv_port = _free_port()
        env = dict(os.environ, NQ_BENCH_SETTINGS=_settings_json(settings))
        proc = subprocess.Popen(
            [sys.executable, "-c", _UVICORN, str(uv_port), ray.get_runtime_context().gcs_address],
            env=env,
        )
        uv_url = f"http://127.0.0.1:{uv_port}"
        _wait_http(uv_url + "/health")
        _wait_http(serve_url + "/health")
        direct = _replica_url(settings.serve.port) if fast_ingress else None
        sides = {"serve": serve_url + "/mcp/", "uvicorn": uv_url + "/mcp/"}
        if direct:
            sides["direct"] = direct + "/mcp/"
        out["seq"] = asyncio.run(_mcp_interleaved(sides, n_seq))
        cpu_of = {"uvicorn": [proc.pid], "replicas": _pids("-f", "ServeReplica:nq:NQApi")}
        cpu_of |= {"haproxy": _pids("-x", "haproxy"), "client": [os.getpid()]}
        out["raw_seq"] = asyncio.run(_mcp_interleaved(sides, n_seq, raw=True, cpu_of=cpu_of))
        out["n_seq"] = n_seq
        out["serve_conc"] = asyncio.run(_mcp_concurrent(serve_url + "/mcp/", n_conc))
        out["uvicorn_conc"] = asyncio.run(_mcp_concurrent(uv_url + "/mcp/", n_conc))
        out["rest_2"] = asyncio.run(_rest(serve_url + "/api/market/nq-price", n_rest))
        one = settings.model_copy(update={"serve": settings.serve.model_copy(update={"api_replicas": 1})})
        deploy(one)
        _wait_http(serve_url + "/health")
        out["rest_1"] = asyncio.run(_rest(serve_url + "/api/market/nq-price", n_rest))
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(10)
        serve.shutdown()
        ray.shutdown()
    return out


def _settings_json(settings: Any) -> str:
    import json

    data = settings.model_dump(mode="json")
    data["mcp"]["auth_token"] = (
        settings.mcp.auth_token.get_secret_value() if settings.mcp.auth_token else None
    )
    return json.dumps(data)


def main(quick: bool = False, python_proxy: bool = False) -> None:
    r = run(quick, fast_ingress=not python_proxy)
    ingress = "Python proxy" if python_proxy else "HAProxy + direct ingress"
    print(f"Serve ingress: {ingress}; sequential rows: the sides take turns call by call (100 warm-up calls)")
    print()
    print("| MCP `get_contract_info` | Serve (2 replicas) | uvicorn (same app) | Serve / uvicorn |")
    print("| --- | ---: | ---: | ---: |")
    for label, seq in (("fastmcp `Client`", r["seq"]), ("raw JSON-RPC POST", r["raw_seq"])):
        s, u, d = seq["serve"], seq["uvicorn"], seq.get("direct")
        ratio = s["per_s"] / u["per_s"]
        print(f"| {label}: sequential calls/s | {s['per_s']:.0f} | {u['per_s']:.0f} | {ratio:.2f}× |")
        print(f"| {label}: p50 / p99 | {s['p50_ms']:.2f} / {s['p99_ms']:.2f} ms | {u['p50_ms']:.2f} / "
              f"{u['p99_ms']:.2f} ms | |")  # fmt: skip
        if d:
            print(
                f"| {label}: one replica's own port, no HAProxy: p50 / p99 | {d['p50_ms']:.2f} / "
                f"{d['p99_ms']:.2f} ms | | {d['per_s'] / u['per_s']:.2f}× |"
            )
    cpu, n = r["raw_seq"].get("cpu_s", {}), r["n_seq"]
    if {"uvicorn", "replicas"} <= set(cpu):
        replica_calls = n * (2 if r["raw_seq"].get("direct") else 1)  # the direct calls hit a replica too
        ms = {k: v / n * 1000 for k, v in cpu.items()}
        replica_ms = cpu["replicas"] / replica_calls * 1000
        print(
            f"| raw JSON-RPC POST: CPU per call (/proc) | replica {replica_ms:.2f} ms"
            f" + HAProxy {ms.get('haproxy', float('nan')):.2f} ms | {ms['uvicorn']:.2f} ms | |"
        )
    print(
        f"| 8 clients, calls/s | {r['serve_conc']:.0f} | {r['uvicorn_conc']:.0f} | "
        f"{r['serve_conc'] / r['uvicorn_conc']:.2f}× |"
    )
    print()
    one, two = r["rest_1"], r["rest_2"]
    print("| REST `GET /api/market/nq-price`, 16 clients | 1 replica | 2 replicas | 2 / 1 |")
    print("| --- | ---: | ---: | ---: |")
    print(f"| requests/s | {one['per_s']:.0f} | {two['per_s']:.0f} | {two['per_s'] / one['per_s']:.2f}× |")
    print(f"| p50 latency | {one['p50_ms']:.2f} ms | {two['p50_ms']:.2f} ms | |")
    print(f"| p99 latency | {one['p99_ms']:.2f} ms | {two['p99_ms']:.2f} ms | |")
    print(f"\n(machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at the end)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_mcp")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument(
        "--python-proxy", action="store_true", help="Serve's default Python proxy instead of the fast ingress"
    )
    args = parser.parse_args()
    main(args.quick, args.python_proxy)
