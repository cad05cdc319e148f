"""What ``LLMRouter`` hands back: the answer (``LLMResult``) with every provider's ``Attempt`` on the way,
and ``ProviderStatus``, one provider's health, breaker, load, tokens and cost."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel

from nq_ray.llm.breaker import BreakerState
from nq_ray.llm.protocol import Usage


@dataclass(frozen=True)
class Attempt:
    """What happened with one provider during one ``chat()``."""

    provider: str
    outcome: Literal["ok", "error", "skipped"]
    reason: str
    detail: str = ""
    latency_s: float = 0.0
    calls: int = 0


@dataclass(frozen=True)
class LLMResult:
    """The answer: ``is_llm`` is False (and ``label`` says so) when the rules analyst answered."""

    text: str
    parsed: BaseModel | None
    provider: str
    model: str
    kind: str
    is_llm: bool
    usage: Usage
    latency_s: float
    attempts: tuple[Attempt, ...]
    task: str
    caller: str
    cost_usd: float = 0.0
    cached: bool = False
    repaired: bool = False
    prompt_version: str | None = None

    @property
    def label(self) -> str:
        return f"{self.provider}/{self.model}" if self.is_llm else "rules analyst (deterministic, not an LLM)"

    @property
    def failovers(self) -> int:
        return sum(1 for a in self.attempts if a.outcome == "error")


@dataclass(frozen=True)
class ProviderStatus:
    name: str
    kind: str
    model: str
    is_llm: bool
    priority: int
    tasks: list[str]
    configured: bool
    healthy: bool | None
    health_detail: str
    breaker: BreakerState
    consecutive_failures: int
    in_flight: int
    max_concurrency: int
    latency_ewma_s: float | None
    calls: int
    errors: int
    error_rate: float
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float
    last_error: str = ""
