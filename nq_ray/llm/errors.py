"""LLM error types, built on ``nq_ray/errors.py`` (proposed to move there; kept here while the LLM issue
lands so that file has one owner). Each has a stable ``code`` and says what to do."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from nq_ray.errors import NQRayError, ProviderUnavailableError

FailureKind = Literal[
    "connect",
    "timeout",
    "server_error",
    "rate_limited",
    "auth",
    "bad_request",
    "bad_output",
    "saturated",
    "deadline",
    "other",
]
RETRYABLE: frozenset[str] = frozenset({"connect", "timeout", "server_error", "rate_limited"})


class ProviderCallError(ProviderUnavailableError):
    """One call to one LLM provider failed. ``kind`` says how; ``retryable`` is true for refused
    connections, timeouts, 5xx and 429 (``retry_after_s`` carries the server's Retry-After)."""

    code = "llm_provider_error"

    def __init__(
        self,
        message: str,
        *,
        provider: str,
        kind: FailureKind,
        status: int | None = None,
        retry_after_s: float | None = None,
        **details: Any,
    ) -> None:
        super().__init__(message, provider=provider, kind=kind, status=status, **details)
        self.provider = provider
        self.kind: FailureKind = kind
        self.status = status
        self.retry_after_s = retry_after_s

    @property
    def retryable(self) -> bool:
        return self.kind in RETRYABLE


class StructuredOutputError(NQRayError):
    """The model's answer did not validate against the requested schema, even after one repair attempt.
    ``details`` holds the validation errors and the start of the raw answer; the answer is never passed on."""

    code = "llm_invalid_output"
    http_status: ClassVar[int] = 502


class AllProvidersFailedError(ProviderUnavailableError):
    """Every provider in the chain for this task failed or was skipped; ``details['attempts']`` says why
    for each. Configure a reachable provider (``NQ_LLM__...``) or keep the rules analyst in the chain."""

    code = "llm_unavailable"


class LLMDeadlineError(AllProvidersFailedError):
    """The overall deadline passed before any provider answered."""

    code = "llm_deadline_exceeded"
    http_status: ClassVar[int] = 504


class BudgetExceededError(NQRayError):
    """The caller's token or cost budget is spent and no free provider (rules) serves the task."""

    code = "llm_budget_exceeded"
    http_status: ClassVar[int] = 429
