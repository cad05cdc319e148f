"""Providers on the real SDKs against a real local server: requests, structured formats, error mapping."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, SecretStr

from nq_ray.llm.config import ProviderConfig
from nq_ray.llm.errors import ProviderCallError
from nq_ray.llm.protocol import LLMProvider, Usage
from nq_ray.llm.providers import GroqProvider, OpenAICompatibleProvider, make_provider
from nq_ray.llm.rules import RulesAnalyst
from nq_ray.testing import ScriptedLLMServer, Step
from tests.llm.helpers import USER, refused_url

pytestmark = pytest.mark.timeout(30)


class Level(BaseModel):
    name: str
    price: float


def provider(kind: str, url: str, **kw: object) -> OpenAICompatibleProvider:
    cfg = ProviderConfig(
        name=kind, kind=kind, base_url=url, model="m", api_key=SecretStr("sk-test"), timeout_s=2, **kw
    )  # type: ignore[arg-type]
    return make_provider(cfg)  # type: ignore[no-any-return]


async def test_every_kind_implements_the_one_protocol(server: ScriptedLLMServer) -> None:
    kinds = ["serve", "ollama", "openai", "external", "groq"]

    providers = [provider(k, server.base_url) for k in kinds]
    rules = make_provider(ProviderConfig(name="rules", kind="rules", model="r"))

    assert all(isinstance(p, LLMProvider) for p in [*providers, rules])
    assert isinstance(providers[-1], GroqProvider) and isinstance(rules, RulesAnalyst)
    assert [p.info().is_llm for p in providers] == [True] * 5 and rules.info().is_llm is False


async def test_chat_sends_model_messages_and_temperature(server: ScriptedLLMServer) -> None:
    p = provider("ollama", server.base_url, temperature=0.1, max_tokens=64)

    resp = await p.chat(USER, seed=7)

    body = server.requests[0]
    assert (body["model"], body["messages"], body["temperature"], body["max_tokens"], body["seed"]) == (
        "m",
        USER,
        0.1,
        64,
        7,
    )
    assert resp.text == "primary answer" and resp.usage.total_tokens > 0
    await p.aclose()


async def test_groq_sdk_talks_to_an_openai_compatible_server(server: ScriptedLLMServer) -> None:
    p = provider("groq", server.url)

    resp = await p.chat(USER)

    assert resp.text == "primary answer" and len(server.requests) == 1
    await p.aclose()


@pytest.mark.parametrize(
    ("kind", "expected"),
    [("serve", "json_schema"), ("openai", "json_schema"), ("ollama", "json_object"), ("groq", "json_object")],
)
async def test_structured_output_uses_the_backends_best_format(
    server: ScriptedLLMServer, kind: str, expected: str
) -> None:
    server.set_default(Step(text='{"name": "PDH", "price": 21500.25}'))
    p = provider(kind, server.url if kind == "groq" else server.base_url)

    resp = await p.chat(USER, response_model=Level)

    fmt = server.requests[0]["response_format"]
    assert fmt["type"] == expected and resp.parsed == Level(name="PDH", price=21500.25)
    if expected == "json_schema":
        assert fmt["json_schema"]["name"] == "Level" and "price" in fmt["json_schema"]["schema"]["properties"]
    else:
        assert "JSON schema" in server.requests[0]["messages"][0]["content"]
    await p.aclose()


async def test_openai_kind_asks_for_strict_schema(server: ScriptedLLMServer) -> None:
    server.set_default(Step(text='{"name": "VWAP", "price": 1.0}'))
    p = provider("openai", server.base_url)

    await p.chat(USER, response_model=Level)

    schema = server.requests[0]["response_format"]["json_schema"]
    assert schema["strict"] is True and schema["schema"]["additionalProperties"] is False
    await p.aclose()


async def test_structured_answer_in_a_code_fence_is_accepted(server: ScriptedLLMServer) -> None:
    server.set_default(Step(text='```json\n{"name": "ONH", "price": 2.5}\n```'))
    p = provider("serve", server.base_url)

    resp = await p.chat(USER, response_model=Level)

    assert resp.parsed == Level(name="ONH", price=2.5) and not resp.repaired
    await p.aclose()


@pytest.mark.parametrize(
    ("step", "kind", "retry_after"),
    [
        (Step(status=500, text="boom"), "server_error", None),
        (Step(status=503, text="busy"), "server_error", None),
        (Step(status=429, text="slow", retry_after_s=1.5), "rate_limited", 1.5),
        (Step(status=401, text="bad key"), "auth", None),
        (Step(status=400, text="bad request"), "bad_request", None),
    ],
)
async def test_http_errors_map_to_typed_provider_errors(
    server: ScriptedLLMServer, step: Step, kind: str, retry_after: float | None
) -> None:
    server.push(step)
    p = provider("external", server.base_url)

    with pytest.raises(ProviderCallError) as err:
        await p.chat(USER)

    assert err.value.kind == kind and err.value.retry_after_s == retry_after
    assert err.value.retryable is (kind in ("server_error", "rate_limited"))
    assert "sk-test" not in str(err.value)
    await p.aclose()


async def test_refused_connection_and_timeout_are_retryable_errors(server: ScriptedLLMServer) -> None:
    server.set_default(Step(delay_s=3))
    refused = provider("serve", refused_url())
    hung = provider("serve", server.base_url)

    with pytest.raises(ProviderCallError) as e1:
        await refused.chat(USER)
    with pytest.raises(ProviderCallError) as e2:
        await hung.chat(USER, timeout=0.2)

    assert (e1.value.kind, e2.value.kind) == ("connect", "timeout") and e1.value.retryable
    await refused.aclose()
    await hung.aclose()


@pytest.mark.parametrize("kind", ["serve", "ollama", "openai", "external", "groq"])
async def test_stream_yields_chunks_and_reports_usage(server: ScriptedLLMServer, kind: str) -> None:
    server.set_default(Step(text="a b c", chunks=("a", " b", " c")))
    p = provider(kind, server.url if kind == "groq" else server.base_url)
    usage: list[Usage] = []

    chunks = [c async for c in p.stream(USER, usage_out=usage)]

    assert chunks == ["a", " b", " c"] and server.requests[0]["stream"] is True
    if kind != "groq":  # Groq reports usage in its own x_groq field, which this server does not send
        assert usage and usage[-1].completion_tokens > 0
    await p.aclose()


async def test_health_lists_models_and_flags_a_refused_server(server: ScriptedLLMServer) -> None:
    up = provider("serve", server.base_url)
    down = provider("serve", refused_url())

    ok, bad = await up.health(), await down.health(1.0)

    assert ok.healthy and ok.detail.startswith("ok") and not bad.healthy and bad.detail.startswith("connect")
    await up.aclose()
    await down.aclose()


async def test_provider_without_key_reports_how_to_configure_it(server: ScriptedLLMServer) -> None:
    cfg = ProviderConfig(name="groq", kind="groq", model="llama")
    p = make_provider(cfg)

    info, health = p.info(), await p.health()

    assert not info.configured and "NQ_LLM__API_KEYS__GROQ" in info.not_configured_reason
    assert not health.healthy
