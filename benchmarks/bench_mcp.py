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

With the fast ingress the sequential rounds also call one replica directly on the port Serve gave it
(read from the HAProxy config Serve wrote), which splits Serve's extra latency into the HAProxy hop and
the replica's own request handling.

Numbers depend on what else the machine is doing; each table compares sides measured in this run.
"""

from __future__ import annotations

import argparse
import asyncio
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


async def _mcp_sequential(url: str, n: int, warmup: int = 100) -> dict[str, float]:
    from fastmcp import Client
    from fastmcp.client.transports import StreamableHttpTransport

    transport = StreamableHttpTransport(url, headers={"Authorization": f"Bearer {TOKEN}"})
    async with Client(transport) as client:
        for _ in range(warmup):  # connections, caches, every replica and HAProxy's balancing warmed up
            await client.call_tool(TOOL, {"symbol": "NQ"})
        lat = []
        t0 = time.perf_counter()
        for _ in range(n):
            t = time.perf_counter()
            await client.call_tool(TOOL, {"symbol": "NQ"})
            lat.append(time.perf_counter() - t)
        wall = time.perf_counter() - t0
    a = np.array(lat) * 1000
    return {"p50_ms": float(np.percentile(a, 50)), "p99_ms": float(np.percentile(a, 99)), "per_s": n / wall}


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


def _replica_url(serve_port: int) -> str | None:
    """A replica's own HTTP address from the HAProxy config that fronts ``serve_port`` (None if absent)."""
    for path in sorted(glob.glob("/tmp/haproxy-serve/*/haproxy.cfg"), key=os.path.getmtime, reverse=True):
        text = Path(path).read_text(encoding="utf-8", errors="replace")
        if f":{serve_port}\n" in text:
            m = re.search(r"server SERVE_REPLICA\S* ([0-9.]+:\d+)", text)
            return f"http://{m.group(1)}" if m else None
    return None


def _median_round(rounds: list[dict[str, float]]) -> dict[str, float]:
    return {k: float(np.median([r[k] for r in rounds])) for k in rounds[0]}


def run(quick: bool = False, fast_ingress: bool = True) -> dict[str, Any]:
    """Start Ray + Serve + a uvicorn process, measure, tear everything down; the numbers.

    Sequential MCP calls run in alternating rounds (Serve, uvicorn, Serve, ...) and each side reports its
    median round, so a burst of load from elsewhere on the machine hits both sides alike."""
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    from nq_ray.config import Settings
    from nq_ray.serve.runtime import deploy, start_ray

    n_seq = 100 if quick else 300
    rounds = 2 if quick else 3
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
        seq: dict[str, list[dict[str, float]]] = {"serve": [], "uvicorn": [], "direct": []}
        for _ in range(rounds):
            seq["serve"].append(asyncio.run(_mcp_sequential(serve_url + "/mcp/", n_seq)))
            seq["uvicorn"].append(asyncio.run(_mcp_sequential(uv_url + "/mcp/", n_seq)))
            if direct:
                seq["direct"].append(asyncio.run(_mcp_sequential(direct + "/mcp/", n_seq)))
        out["serve_seq"], out["uvicorn_seq"] = _median_round(seq["serve"]), _median_round(seq["uvicorn"])
        out["direct_seq"] = _median_round(seq["direct"]) if seq["direct"] else None
        out["serve_conc"] = asyncio.run(_mcp_concurrent(serve_url + "/mcp/", n_seq))
        out["uvicorn_conc"] = asyncio.run(_mcp_concurrent(uv_url + "/mcp/", n_seq))
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
    s, u = r["serve_seq"], r["uvicorn_seq"]
    ingress = "Python proxy" if python_proxy else "HAProxy + direct ingress"
    print(f"Serve ingress: {ingress}; sequential rows: median of alternating rounds after 100 warm-up calls")
    print()
    print("| MCP `get_contract_info` | Serve (2 replicas) | uvicorn (same app) | Serve / uvicorn |")
    print("| --- | ---: | ---: | ---: |")
    print(f"| sequential calls/s | {s['per_s']:.0f} | {u['per_s']:.0f} | {s['per_s'] / u['per_s']:.2f}× |")
    print(f"| p50 latency | {s['p50_ms']:.2f} ms | {u['p50_ms']:.2f} ms | |")
    print(f"| p99 latency | {s['p99_ms']:.2f} ms | {u['p99_ms']:.2f} ms | |")
    d = r.get("direct_seq")
    if d:
        print(
            f"| one replica's own port, no HAProxy: p50 / p99 | {d['p50_ms']:.2f} / {d['p99_ms']:.2f} ms "
            f"| | {d['per_s'] / u['per_s']:.2f}× |"
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
