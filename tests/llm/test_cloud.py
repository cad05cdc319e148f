"""Live smoke tests against the real clouds (``make test-network``); skipped unless the key is set."""

from __future__ import annotations

import os

import pytest
from pydantic import BaseModel, SecretStr

from nq_ray.llm import LLMConfig, LLMRouter, ProviderConfig

pytestmark = [pytest.mark.network, pytest.mark.timeout(120)]


class Answer(BaseModel):
    symbol: str
    tick_size: float


MSG = [{"role": "user", "content": "What is the tick size of the CME E-mini Nasdaq-100 future (NQ)?"}]


def router_for(kind: str, model: str, key_var: str, base_url: str | None) -> LLMRouter:
    key = os.environ.get(key_var)
    if not key:
        pytest.skip(f"{key_var} is not set")
    provider = ProviderConfig(
        name=kind, kind=kind, base_url=base_url, model=model, api_key=SecretStr(key), priority=1, timeout_s=60
    )  # type: ignore[arg-type]
    return LLMRouter.from_config(LLMConfig(providers=[provider], health_interval_s=0))


@pytest.mark.parametrize(
    ("kind", "model", "key_var", "base_url"),
    [
        ("openai", "gpt-4o-mini", "OPENAI_API_KEY", "https://api.openai.com/v1"),
        ("groq", "llama-3.3-70b-versatile", "GROQ_API_KEY", None),
    ],
)
async def test_cloud_provider_answers_structured_and_streams(
    kind: str, model: str, key_var: str, base_url: str | None
) -> None:
    router = router_for(kind, model, key_var, base_url)

    result = await router.chat(MSG, response_model=Answer, caller="smoke")
    stream = await router.chat(MSG, stream=True)
    text = await stream.text()
    health = await router.check_health()

    assert result.provider == kind and isinstance(result.parsed, Answer) and result.parsed.tick_size == 0.25
    assert result.usage.total_tokens > 0 and result.cost_usd >= 0 and text and health[kind].healthy
    await router.aclose()
