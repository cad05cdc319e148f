"""LLM router overhead and failover time against the local scripted OpenAI-compatible server.

``python -m benchmarks.bench_llm [--quick]``. Three measurements, all on 127.0.0.1:
1. p50 latency of ``LLMRouter.chat`` vs the bare ``openai.AsyncOpenAI`` client on the same server,
   requests interleaved (target: router ≤ 1.05× bare).
2. Failover when the first provider refuses connections: p50 of a chat whose first provider is a closed
   port, minus the bare p50 (target: a few ms).
3. Failover when the first provider hangs: p50 of a chat whose first provider never answers, against its
   ``timeout_s`` (target: ≤ timeout + 50 ms).
The server's answers are scripted (honest test infrastructure): this measures our overhead, not a model.
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


def main(quick: bool = False) -> list[tuple[str, str, str, str]]:
    rows = asyncio.run(run(quick))
    print("| measurement | value | relative | target |")
    print("| --- | --- | --- | --- |")
    for r in rows:
        print("| " + " | ".join(r) + " |")
    return rows


if __name__ == "__main__":
    ap = argparse.ArgumentParser(prog="python -m benchmarks.bench_llm")
    ap.add_argument("--quick", action="store_true")
    main(quick=ap.parse_args().quick)
