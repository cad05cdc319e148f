"""Streaming answers of ``LLMRouter`` (``chat(..., stream=True)``): the stream is opened and its first chunk
awaited under the router's retry/timeout policy, so errors before the first chunk fail over to the next
provider; errors after it reach the consumer as ``ProviderCallError``. ``LLMStream`` is what the caller
iterates; its ``result`` is set (and the call accounted) once it is exhausted."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

from nq_ray.llm.protocol import ChatResponse, Usage
from nq_ray.llm.results import Attempt, LLMResult

if TYPE_CHECKING:
    from nq_ray.llm.router import LLMRouter, _Slot


class LLMStream:
    """``stream=True``: an async iterator of text chunks; ``result`` is set once it is exhausted."""

    def __init__(
        self,
        first: str,
        rest: AsyncIterator[str],
        finish: Callable[[str, BaseException | None], LLMResult],
        *,
        provider: str,
        model: str,
        is_llm: bool,
    ) -> None:
        self._first: str | None = first
        self._rest = rest
        self._finish = finish
        self._parts: list[str] = []
        self.provider = provider
        self.model = model
        self.is_llm = is_llm
        self.result: LLMResult | None = None

    def __aiter__(self) -> LLMStream:
        return self

    async def __anext__(self) -> str:
        if self._first is not None:
            chunk, self._first = self._first, None
            if chunk:
                self._parts.append(chunk)
                return chunk
        try:
            chunk = await self._rest.__anext__()
        except StopAsyncIteration:
            if self.result is None:
                self.result = self._finish("".join(self._parts), None)
            raise
        except BaseException as exc:
            if self.result is None:
                self._finish("".join(self._parts), exc)
            raise
        self._parts.append(chunk)
        return chunk

    async def text(self) -> str:
        """Consume the stream and return the whole text."""
        return "".join([c async for c in self])

    async def aclose(self) -> None:
        with contextlib.suppress(Exception):
            await self._rest.aclose()  # type: ignore[attr-defined]


async def open_stream(
    router: LLMRouter,
    slot: _Slot,
    msgs: list[dict[str, Any]],
    extra: dict[str, Any],
    deadline: float,
    attempts: list[Attempt],
    task: str,
    caller: str,
    prompt_version: str | None,
    t0: float,
) -> LLMStream:
    """Open ``slot``'s stream for ``router.chat`` and wait for its first chunk under the router's
    retry/timeout policy; errors before the first chunk fail over, errors after it reach the consumer as
    ``ProviderCallError``."""
    usage_box: list[Usage] = []
    holder: dict[str, AsyncIterator[str]] = {}

    async def whole(kw: dict[str, Any]) -> AsyncIterator[str]:
        """A backend without streaming: one chunk with the whole answer."""
        resp = await slot.provider.chat(msgs, **kw)
        usage_box.append(resp.usage)
        yield resp.text

    async def open_(timeout_s: float) -> str:
        kw = dict(extra)
        if slot.config.is_llm:
            kw["timeout"] = timeout_s
        if slot.config.supports_streaming:
            gen = slot.provider.stream(msgs, **kw, **({"usage_out": usage_box} if slot.config.is_llm else {}))
        else:
            gen = whole(kw)
        holder["gen"] = gen
        try:
            return await gen.__anext__()
        except StopAsyncIteration:
            return ""

    first, calls = await router._call(slot, open_, deadline, enforce_deadline=slot.config.is_llm)
    slot.breaker.success()  # it answered: a half-open probe must not stay in flight while we stream
    gen = holder["gen"]

    def finish(text: str, error: BaseException | None) -> LLMResult:
        latency = router._clock() - t0
        if error is not None:
            if isinstance(error, Exception):
                router._record_failure(slot, error, latency_s=latency, task=task, caller=caller)
            else:
                slot.breaker.release()
            raise error
        usage = usage_box[-1] if usage_box else Usage()
        resp = ChatResponse(text=text, model=slot.config.model, usage=usage)
        return router._finish_success(
            slot,
            resp,
            latency_s=latency,
            attempts=attempts,
            task=task,
            caller=caller,
            cached=False,
            prompt_version=prompt_version,
            calls=calls,
        )

    return LLMStream(
        first, gen, finish, provider=slot.name, model=slot.config.model, is_llm=slot.config.is_llm
    )
