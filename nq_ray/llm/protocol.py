"""The one ``LLMProvider`` protocol every backend implements, and the small value types it returns."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel

from nq_ray.errors import InvalidArgumentError

Message = Mapping[str, Any]
ROLES = frozenset({"system", "user", "assistant", "tool"})


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.prompt_tokens + other.prompt_tokens, self.completion_tokens + other.completion_tokens
        )


@dataclass(frozen=True)
class ChatResponse:
    """One provider's answer: the text, the validated object when a ``response_model`` was given."""

    text: str
    model: str
    usage: Usage = field(default_factory=Usage)
    parsed: BaseModel | None = None
    finish_reason: str | None = None
    repaired: bool = False


@dataclass(frozen=True)
class HealthReport:
    healthy: bool
    detail: str = ""
    latency_s: float | None = None


@dataclass(frozen=True)
class ProviderInfo:
    name: str
    kind: str
    model: str
    base_url: str | None
    is_llm: bool
    structured_mode: str
    supports_streaming: bool
    configured: bool
    not_configured_reason: str = ""


@runtime_checkable
class LLMProvider(Protocol):
    """An LLM backend (or the rules analyst). ``chat`` returns a ``ChatResponse`` or raises
    ``ProviderCallError``/``StructuredOutputError``; ``stream`` yields text chunks."""

    name: str

    async def chat(
        self, messages: Sequence[Message], *, response_model: type[BaseModel] | None = None, **params: Any
    ) -> ChatResponse: ...

    def stream(self, messages: Sequence[Message], **params: Any) -> AsyncIterator[str]: ...

    async def health(self, timeout_s: float = 3.0) -> HealthReport: ...

    def info(self) -> ProviderInfo: ...

    async def aclose(self) -> None: ...


def check_messages(messages: Sequence[Message]) -> list[dict[str, Any]]:
    """Validate OpenAI-style messages at the door: a non-empty list of ``{role, content}``."""
    if isinstance(messages, str | bytes) or not isinstance(messages, Sequence) or not messages:
        raise InvalidArgumentError(
            "messages must be a non-empty list of {'role': ..., 'content': ...} dicts",
            got=type(messages).__name__,
        )
    out: list[dict[str, Any]] = []
    for i, m in enumerate(messages):
        if not isinstance(m, Mapping) or m.get("role") not in ROLES or not isinstance(m.get("content"), str):
            raise InvalidArgumentError(
                f"messages[{i}] must have role in {sorted(ROLES)} and string content", index=i
            )
        out.append(dict(m))
    return out
