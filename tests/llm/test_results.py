"""``nq_ray.llm.results``: what a result says about itself (its label and how many providers failed)."""

from __future__ import annotations

from nq_ray.llm.protocol import Usage
from nq_ray.llm.results import Attempt, LLMResult


def result(is_llm: bool, attempts: tuple[Attempt, ...]) -> LLMResult:
    return LLMResult(
        text="ok",
        parsed=None,
        provider="groq" if is_llm else "rules",
        model="llama-3.3-70b" if is_llm else "nq-rules-v1",
        kind="groq" if is_llm else "rules",
        is_llm=is_llm,
        usage=Usage(),
        latency_s=0.1,
        attempts=attempts,
        task="technical_analysis",
        caller="test",
    )


def test_label_names_the_model_or_says_the_rules_analyst_is_not_an_llm() -> None:
    assert result(True, ()).label == "groq/llama-3.3-70b"
    assert result(False, ()).label == "rules analyst (deterministic, not an LLM)"


def test_failovers_count_errors_not_skips() -> None:
    attempts = (
        Attempt("a", "error", "timeout"),
        Attempt("b", "skipped", "circuit_open"),
        Attempt("c", "error", "server_error"),
        Attempt("rules", "ok", "answered"),
    )

    assert result(False, attempts).failovers == 2
