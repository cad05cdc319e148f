"""LLM providers (Serve/vLLM, Ollama, OpenAI, Groq, external OpenAI-compatible, rules), the router,
structured outputs, accounting, the response cache and prompt templates."""

from nq_ray.llm.accounting import Budget, UsageLedger
from nq_ray.llm.config import BreakerConfig, LLMConfig, ProviderConfig
from nq_ray.llm.errors import (
    AllProvidersFailedError,
    BudgetExceededError,
    LLMDeadlineError,
    ProviderCallError,
    StructuredOutputError,
)
from nq_ray.llm.protocol import ChatResponse, HealthReport, LLMProvider, ProviderInfo, Usage
from nq_ray.llm.router import Attempt, LLMResult, LLMRouter, LLMStream

__all__ = [
    "AllProvidersFailedError",
    "Attempt",
    "BreakerConfig",
    "Budget",
    "BudgetExceededError",
    "ChatResponse",
    "HealthReport",
    "LLMConfig",
    "LLMDeadlineError",
    "LLMProvider",
    "LLMResult",
    "LLMRouter",
    "LLMStream",
    "ProviderCallError",
    "ProviderConfig",
    "ProviderInfo",
    "StructuredOutputError",
    "Usage",
    "UsageLedger",
]
