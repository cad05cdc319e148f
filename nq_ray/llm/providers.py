"""LLM providers on the official SDKs: ``openai.AsyncOpenAI`` for every OpenAI-compatible backend (our Ray
Serve LLM deployment, Ollama's ``/v1``, OpenAI, any external URL) and ``groq.AsyncGroq`` for Groq.

SDK retries are off (``max_retries=0``): the router owns retries, failover and timeouts. SDK errors are
mapped once, here, to ``ProviderCallError`` with a ``kind`` the router's policies read.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import groq
import openai
from pydantic import BaseModel

from nq_ray.llm import structured
from nq_ray.llm.config import KEY_REQUIRED, ProviderConfig
from nq_ray.llm.errors import FailureKind, ProviderCallError
from nq_ray.llm.protocol import ChatResponse, HealthReport, Message, ProviderInfo, Usage

_NO_KEY = "not-needed"  # local servers (vLLM, Ollama) ignore the key but the SDK wants one


def _retry_after(exc: BaseException) -> float | None:
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    if headers is None:
        return None
    value = headers.get("retry-after-ms")
    if value is not None:
        try:
            return float(value) / 1000.0
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        from email.utils import parsedate_to_datetime

        try:
            return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
        except (TypeError, ValueError):
            return None


def map_error(exc: BaseException, provider: str) -> ProviderCallError:
    """One mapping from SDK/transport exceptions to ``ProviderCallError`` (both SDKs share the names)."""
    status: int | None = getattr(exc, "status_code", None)
    kind: FailureKind
    for sdk in (openai, groq):
        if isinstance(exc, sdk.APITimeoutError):
            kind = "timeout"
            break
        if isinstance(exc, sdk.APIConnectionError):
            kind = "connect"
            break
        if isinstance(exc, sdk.RateLimitError):
            kind = "rate_limited"
            break
        if isinstance(exc, sdk.AuthenticationError | sdk.PermissionDeniedError):
            kind = "auth"
            break
        if isinstance(exc, sdk.APIStatusError):
            kind = "server_error" if (status or 0) >= 500 else "bad_request"
            break
        if isinstance(exc, sdk.APIResponseValidationError):
            kind = "bad_output"
            break
    else:
        kind = "timeout" if isinstance(exc, TimeoutError) else "other"
    text = str(exc).replace("\n", " ")[:300]
    return ProviderCallError(
        f"{provider}: {kind} ({status or type(exc).__name__}): {text}",
        provider=provider,
        kind=kind,
        status=status,
        retry_after_s=_retry_after(exc) if kind == "rate_limited" else None,
    )


class OpenAICompatibleProvider:
    """Any backend that speaks the OpenAI chat-completions API (kinds serve, ollama, openai, external)."""

    def __init__(self, config: ProviderConfig) -> None:
        self.config = config
        self.name = config.name
        key = config.api_key.get_secret_value() if config.api_key else None
        self._configured_reason = ""
        if config.kind in KEY_REQUIRED and not key:
            self._configured_reason = (
                f"no API key: set NQ_LLM__API_KEYS__{config.name.upper().replace('-', '_')}"
            )
        self._client = self._make_client(key or _NO_KEY)

    def _make_client(self, key: str) -> Any:
        return openai.AsyncOpenAI(
            api_key=key, base_url=self.config.base_url, max_retries=0, timeout=self.config.timeout_s
        )

    @property
    def configured(self) -> bool:
        return not self._configured_reason

    def info(self) -> ProviderInfo:
        c = self.config
        return ProviderInfo(
            name=c.name,
            kind=c.kind,
            model=c.model,
            base_url=c.base_url,
            is_llm=True,
            structured_mode=c.effective_structured_mode,
            supports_streaming=c.supports_streaming,
            configured=self.configured,
            not_configured_reason=self._configured_reason,
        )

    def _params(self, params: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {"temperature": self.config.temperature}
        if self.config.max_tokens:
            out["max_tokens"] = self.config.max_tokens
        out.update({k: v for k, v in params.items() if v is not None})
        out.setdefault("timeout", self.config.timeout_s)
        return out

    async def _raw(
        self, messages: list[dict[str, Any]], fmt: dict[str, Any] | None, params: dict[str, Any]
    ) -> ChatResponse:
        kwargs = self._params(params)
        if fmt is not None:
            kwargs["response_format"] = fmt
        try:
            resp = await self._client.chat.completions.create(
                model=self.config.model, messages=messages, **kwargs
            )
        except Exception as exc:
            if isinstance(exc, asyncio.CancelledError):
                raise
            raise map_error(exc, self.name) from exc
        if not getattr(resp, "choices", None):
            raise ProviderCallError(
                f"{self.name}: answer had no choices", provider=self.name, kind="bad_output"
            )
        choice = resp.choices[0]
        u = getattr(resp, "usage", None)
        usage = Usage(int(getattr(u, "prompt_tokens", 0) or 0), int(getattr(u, "completion_tokens", 0) or 0))
        return ChatResponse(
            text=choice.message.content or "",
            model=getattr(resp, "model", None) or self.config.model,
            usage=usage,
            finish_reason=choice.finish_reason,
        )

    async def chat(
        self, messages: Sequence[Message], *, response_model: type[BaseModel] | None = None, **params: Any
    ) -> ChatResponse:
        msgs = [dict(m) for m in messages]
        if response_model is None:
            return await self._raw(msgs, None, params)

        async def call(m: list[dict[str, Any]], fmt: dict[str, Any] | None) -> ChatResponse:
            return await self._raw(m, fmt, params)

        return await structured.complete(
            call,
            msgs,
            response_model,
            self.config.effective_structured_mode,
            provider=self.name,
            strict=self.config.kind == "openai",
        )

    async def stream(
        self, messages: Sequence[Message], *, usage_out: list[Usage] | None = None, **params: Any
    ) -> AsyncIterator[str]:
        """Text chunks as they arrive; the final usage (when the server reports it) is appended to
        ``usage_out``. Errors become ``ProviderCallError``s."""
        kwargs = self._params(params)
        if self.config.kind != "groq":
            kwargs["stream_options"] = {"include_usage": True}
        try:
            s = await self._client.chat.completions.create(
                model=self.config.model, messages=[dict(m) for m in messages], stream=True, **kwargs
            )
            async for chunk in s:
                u = getattr(chunk, "usage", None) or getattr(getattr(chunk, "x_groq", None), "usage", None)
                if u is not None and usage_out is not None:
                    usage_out.append(Usage(int(u.prompt_tokens or 0), int(u.completion_tokens or 0)))
                if chunk.choices and chunk.choices[0].delta and chunk.choices[0].delta.content:
                    yield chunk.choices[0].delta.content
        except ProviderCallError:
            raise
        except Exception as exc:
            if isinstance(exc, asyncio.CancelledError | GeneratorExit):
                raise
            raise map_error(exc, self.name) from exc

    async def health(self, timeout_s: float = 3.0) -> HealthReport:
        """``GET /models`` (cheap, no tokens); a model missing from the list is reported, not fatal."""
        if not self.configured:
            return HealthReport(False, self._configured_reason)
        t0 = time.perf_counter()
        try:
            models = await self._client.models.list(timeout=timeout_s)
            ids = [m.id for m in getattr(models, "data", [])]
        except Exception as exc:
            if isinstance(exc, asyncio.CancelledError):
                raise
            err = map_error(exc, self.name)
            return HealthReport(False, f"{err.kind}: {str(exc)[:120]}", time.perf_counter() - t0)
        detail = (
            "ok" if not ids or self.config.model in ids else f"ok; model {self.config.model!r} not listed"
        )
        return HealthReport(True, detail, time.perf_counter() - t0)

    async def aclose(self) -> None:
        await self._client.close()


class GroqProvider(OpenAICompatibleProvider):
    """Groq through its own SDK (same API shape; JSON mode for structured output)."""

    def _make_client(self, key: str) -> Any:
        return groq.AsyncGroq(
            api_key=key, base_url=self.config.base_url, max_retries=0, timeout=self.config.timeout_s
        )


def make_provider(
    config: ProviderConfig, *, rules_factory: Callable[[ProviderConfig], Any] | None = None
) -> Any:
    """The provider object for ``config.kind``."""
    if config.kind == "groq":
        return GroqProvider(config)
    if config.kind == "rules":
        if rules_factory is None:
            from nq_ray.llm.rules import RulesAnalyst

            return RulesAnalyst(config)
        return rules_factory(config)
    return OpenAICompatibleProvider(config)
