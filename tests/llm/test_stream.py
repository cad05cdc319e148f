"""``nq_ray.llm.stream``: ``LLMRouter.chat(..., stream=True)`` against real local OpenAI-compatible servers:
chunks and a result, failover before the first chunk, a typed error after it, the rules analyst and
backends without streaming."""

from __future__ import annotations

import pandas as pd
import pytest

from nq_ray.llm import LLMRouter
from nq_ray.testing import ScriptedLLMServer, Step
from tests.llm.helpers import RULES, USER, config, local, refused_url

pytestmark = pytest.mark.timeout(60)


async def test_stream_yields_text_chunks_and_a_result(server: ScriptedLLMServer) -> None:
    server.set_default(Step(text="NQ looks firm above VWAP", chunks=("NQ looks", " firm", " above VWAP")))
    router = LLMRouter.from_config(config(local("a", server.base_url, 1)))

    stream = await router.chat(USER, stream=True, caller="ui")
    chunks = [c async for c in stream]

    assert chunks == ["NQ looks", " firm", " above VWAP"]
    assert stream.result is not None and stream.result.text == "NQ looks firm above VWAP"
    assert stream.result.usage.completion_tokens > 0 and stream.provider == "a"
    await router.aclose()


async def test_stream_fails_over_before_the_first_chunk(server2: ScriptedLLMServer) -> None:
    router = LLMRouter.from_config(config(local("down", refused_url(), 1), local("b", server2.base_url, 2)))

    stream = await router.chat(USER, stream=True)
    text = await stream.text()

    assert text == "secondary answer" and stream.provider == "b"
    await router.aclose()


async def test_stream_from_the_rules_analyst_is_labelled(nq_5m: pd.DataFrame) -> None:
    router = LLMRouter.from_config(config(local("down", refused_url(), 1), RULES), bars_loader=lambda: nq_5m)

    stream = await router.chat(USER, stream=True)
    text = await stream.text()

    assert stream.is_llm is False and text.startswith("[rules analyst")
    await router.aclose()


async def test_a_stream_cut_after_the_first_chunk_raises_a_typed_error_to_the_consumer(
    server: ScriptedLLMServer, server2: ScriptedLLMServer
) -> None:
    from nq_ray.llm import ProviderCallError

    server.push(Step(text="partial", chunks=("par", "tial"), abort_after_chunks=True))
    router = LLMRouter.from_config(config(local("a", server.base_url, 1), local("b", server2.base_url, 2)))

    stream = await router.chat(USER, stream=True)
    got: list[str] = []
    with pytest.raises(ProviderCallError) as err:
        async for chunk in stream:
            got.append(chunk)

    assert got[:1] == ["par"] and err.value.provider == "a" and server2.requests == []
    assert router.status()[0].errors == 1
    await router.aclose()


async def test_stream_from_a_backend_without_streaming_is_one_chunk(server: ScriptedLLMServer) -> None:
    router = LLMRouter.from_config(config(local("a", server.base_url, 1, supports_streaming=False)))

    stream = await router.chat(USER, stream=True)
    chunks = [c async for c in stream]

    assert chunks == ["primary answer"] and "stream" not in server.requests[0]
    assert stream.result is not None and stream.result.usage.total_tokens > 0
    await router.aclose()
