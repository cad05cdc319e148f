"""LLMRouter against real local OpenAI-compatible servers: failover, retries, deadlines, load balancing,
concurrency, budgets, cache, status. The breaker's tests are in test_breaker.py, streaming's in
test_stream.py."""

from __future__ import annotations

import asyncio
import time

import pandas as pd
import pytest
from pydantic import BaseModel, Field

from nq_ray.errors import InvalidArgumentError
from nq_ray.llm import (
    AllProvidersFailedError,
    Budget,
    BudgetExceededError,
    LLMDeadlineError,
    LLMRouter,
)
from nq_ray.testing import ScriptedLLMServer, Step
from nq_ray.testing.wait import await_until
from tests.llm.helpers import RULES, USER, config, keyed, local, refused_url, without_rules

pytestmark = pytest.mark.timeout(60)


class View(BaseModel):
    bias: str = Field(pattern="^(bullish|bearish|neutral)$")
    confidence: float = Field(ge=0, le=1)


async def test_first_provider_answers_with_usage_and_latency(
    server: ScriptedLLMServer, server2: ScriptedLLMServer
) -> None:
    router = LLMRouter.from_config(config(local("a", server.base_url, 1), local("b", server2.base_url, 2)))

    result = await router.chat(USER, task="technical_analysis", caller="agent-1")

    assert (result.text, result.provider, result.model, result.is_llm) == (
        "primary answer",
        "a",
        "a-model",
        True,
    )
    assert result.usage.prompt_tokens > 0 and result.usage.completion_tokens > 0
    assert 0 < result.latency_s < 2 and [a.reason for a in result.attempts] == ["answered"]
    assert server2.requests == []
    await router.aclose()


async def test_fails_over_when_first_provider_refuses_connections(server2: ScriptedLLMServer) -> None:
    router = LLMRouter.from_config(config(local("down", refused_url(), 1), local("b", server2.base_url, 2)))

    result = await router.chat(USER)

    assert result.provider == "b" and result.text == "secondary answer"
    assert [(a.provider, a.outcome, a.reason) for a in result.attempts] == [
        ("down", "error", "connect"),
        ("b", "ok", "answered"),
    ]
    await router.aclose()


async def test_fails_over_when_first_provider_hangs_past_its_timeout(
    server: ScriptedLLMServer, server2: ScriptedLLMServer
) -> None:
    server.set_default(Step(text="too late", delay_s=5))
    router = LLMRouter.from_config(
        config(local("slow", server.base_url, 1, timeout_s=0.3), local("b", server2.base_url, 2))
    )

    t0 = time.perf_counter()
    result = await router.chat(USER)
    elapsed = time.perf_counter() - t0

    assert result.provider == "b" and result.attempts[0].reason == "timeout"
    assert 0.3 <= elapsed < 0.3 + 0.5
    await router.aclose()


async def test_retries_5xx_on_the_same_provider(
    server: ScriptedLLMServer, server2: ScriptedLLMServer
) -> None:
    server.push(Step(status=500, text="boom"), Step(status=503, text="busy"))
    router = LLMRouter.from_config(
        config(local("a", server.base_url, 1, max_retries=2), local("b", server2.base_url, 2))
    )

    result = await router.chat(USER)

    assert result.provider == "a" and result.attempts[-1].calls == 3 and len(server.requests) == 3
    assert server2.requests == []
    await router.aclose()


async def test_fails_over_after_5xx_retries_are_spent(
    server: ScriptedLLMServer, server2: ScriptedLLMServer
) -> None:
    server.set_default(Step(status=502, text="bad gateway"))
    router = LLMRouter.from_config(
        config(local("a", server.base_url, 1, max_retries=1), local("b", server2.base_url, 2))
    )

    result = await router.chat(USER)

    assert result.provider == "b" and result.attempts[0].reason == "server_error"
    assert len(server.requests) == 2
    await router.aclose()


async def test_429_waits_for_retry_after_then_retries_same_provider(server: ScriptedLLMServer) -> None:
    server.push(Step(status=429, text="slow down", retry_after_s=0.4))
    router = LLMRouter.from_config(config(local("a", server.base_url, 1)))

    t0 = time.perf_counter()
    result = await router.chat(USER)

    assert result.provider == "a" and len(server.requests) == 2
    assert time.perf_counter() - t0 >= 0.4
    await router.aclose()


async def test_429_with_retry_after_beyond_the_cap_fails_over_at_once(
    server: ScriptedLLMServer, server2: ScriptedLLMServer
) -> None:
    server.push(Step(status=429, text="come back in a minute", retry_after_s=60))
    router = LLMRouter.from_config(
        config(local("a", server.base_url, 1), local("b", server2.base_url, 2), max_retry_after_s=5)
    )

    t0 = time.perf_counter()
    result = await router.chat(USER)

    assert result.provider == "b" and result.attempts[0].reason == "rate_limited"
    assert time.perf_counter() - t0 < 1.0
    await router.aclose()


async def test_malformed_json_is_repaired_once(server: ScriptedLLMServer) -> None:
    server.push(Step(text="Sure! The bias is bullish."), Step(text='{"bias": "bullish", "confidence": 0.7}'))
    router = LLMRouter.from_config(config(local("a", server.base_url, 1)))

    result = await router.chat(USER, response_model=View)

    assert result.parsed == View(bias="bullish", confidence=0.7) and result.repaired
    repair_prompt = server.requests[1]["messages"][-1]["content"]
    assert "not valid for the schema" in repair_prompt
    assert result.usage.prompt_tokens > 0 and len(server.requests) == 2
    await router.aclose()


async def test_malformed_json_after_repair_fails_over_to_the_next_provider(
    server: ScriptedLLMServer, server2: ScriptedLLMServer
) -> None:
    server.set_default(Step(text='{"bias": "up", "confidence": 3}'))
    server2.set_default(Step(text='{"bias": "bearish", "confidence": 0.4}'))
    router = LLMRouter.from_config(config(local("a", server.base_url, 1), local("b", server2.base_url, 2)))

    result = await router.chat(USER, response_model=View)

    assert result.provider == "b" and result.parsed == View(bias="bearish", confidence=0.4)
    assert result.attempts[0].reason == "bad_output" and len(server.requests) == 2
    await router.aclose()


async def test_never_passes_on_an_unparsed_answer(server: ScriptedLLMServer) -> None:
    server.set_default(Step(text="not json at all"))
    router = without_rules(config(local("a", server.base_url, 1)))

    with pytest.raises(AllProvidersFailedError) as err:
        await router.chat(USER, response_model=View)

    assert err.value.details["attempts"][0]["reason"] == "bad_output"
    await router.aclose()


async def test_every_llm_down_the_rules_analyst_answers_labelled_as_rules(
    server: ScriptedLLMServer, nq_5m: pd.DataFrame
) -> None:
    server.set_default(Step(status=503, text="unavailable"))
    cfg = config(
        local("serve", refused_url(), 10),
        local("ollama", server.base_url, 20, kind="ollama", max_retries=0),
        keyed("openai", "openai", refused_url(), 30),
        keyed("groq", "groq", refused_url(), 40),
        RULES,
    )
    router = LLMRouter.from_config(cfg, bars_loader=lambda: nq_5m)

    result = await router.chat(USER, task="technical_analysis")

    assert result.provider == "rules" and result.kind == "rules" and result.is_llm is False
    assert result.label == "rules analyst (deterministic, not an LLM)"
    assert result.text.startswith("[rules analyst — deterministic, not an LLM]")
    assert result.parsed is not None and result.parsed.source == "rules"  # type: ignore[attr-defined]
    assert [a.reason for a in result.attempts] == [
        "connect",
        "server_error",
        "connect",
        "connect",
        "answered",
    ]
    assert result.usage.total_tokens == 0 and result.cost_usd == 0
    await router.aclose()


async def test_no_rules_and_everything_down_raises_with_every_attempt() -> None:
    router = without_rules(config(local("a", refused_url(), 1), local("b", refused_url(), 2)))

    with pytest.raises(AllProvidersFailedError) as err:
        await router.chat(USER)

    assert [a["provider"] for a in err.value.details["attempts"]] == ["a", "b"]
    assert err.value.code == "llm_unavailable"
    await router.aclose()


async def test_overall_deadline_stops_failover_and_says_so(
    server: ScriptedLLMServer, server2: ScriptedLLMServer
) -> None:
    server.set_default(Step(delay_s=5))
    server2.set_default(Step(delay_s=5))
    router = without_rules(
        config(local("a", server.base_url, 1, timeout_s=2), local("b", server2.base_url, 2, timeout_s=2))
    )

    t0 = time.perf_counter()
    with pytest.raises(LLMDeadlineError) as err:
        await router.chat(USER, deadline_s=0.5)

    assert time.perf_counter() - t0 < 0.5 + 0.4
    assert err.value.code == "llm_deadline_exceeded"
    await router.aclose()


async def test_round_robin_spreads_equal_priority_providers(
    server: ScriptedLLMServer, server2: ScriptedLLMServer
) -> None:
    router = LLMRouter.from_config(
        config(local("a", server.base_url, 5), local("b", server2.base_url, 5), load_balancing="round_robin")
    )

    used = [(await router.chat(USER)).provider for _ in range(4)]

    assert sorted(used) == ["a", "a", "b", "b"] and used[0] != used[1]
    await router.aclose()


async def test_least_latency_prefers_the_faster_provider(
    server: ScriptedLLMServer, server2: ScriptedLLMServer
) -> None:
    server.set_latency(0.15)
    router = LLMRouter.from_config(
        config(
            local("slow", server.base_url, 5),
            local("fast", server2.base_url, 5),
            load_balancing="least_latency",
        )
    )
    await router.chat(USER)
    await router.chat(USER)  # both have a latency estimate now

    used = [(await router.chat(USER)).provider for _ in range(3)]

    assert used == ["fast", "fast", "fast"]
    await router.aclose()


async def test_concurrency_limit_queues_requests_per_provider(server: ScriptedLLMServer) -> None:
    server.set_latency(0.2)
    router = LLMRouter.from_config(config(local("a", server.base_url, 1, max_concurrency=1)))

    t0 = time.perf_counter()
    results = await asyncio.gather(*(router.chat(USER) for _ in range(3)))

    assert all(r.provider == "a" for r in results)
    assert time.perf_counter() - t0 >= 0.6
    await router.aclose()


async def test_equal_priority_prefers_a_provider_with_a_free_slot(
    server: ScriptedLLMServer, server2: ScriptedLLMServer
) -> None:
    server.set_latency(0.3)
    server2.set_latency(0.3)
    router = LLMRouter.from_config(
        config(
            local("a", server.base_url, 5, max_concurrency=1),
            local("b", server2.base_url, 5, max_concurrency=1),
        )
    )

    t0 = time.perf_counter()
    results = await asyncio.gather(router.chat(USER), router.chat(USER))

    assert {r.provider for r in results} == {"a", "b"} and time.perf_counter() - t0 < 0.55
    await router.aclose()


async def test_tokens_and_cost_are_counted_per_caller_and_budgets_enforced(
    server: ScriptedLLMServer, nq_5m: pd.DataFrame
) -> None:
    server.set_default(Step(text="fine", prompt_tokens=1000, completion_tokens=500))
    router = LLMRouter.from_config(
        config(
            keyed(
                "paid",
                "external",
                server.base_url,
                1,
                cost_per_1k_prompt_usd=0.01,
                cost_per_1k_completion_usd=0.02,
            ),
            RULES,
        ),
        bars_loader=lambda: nq_5m,
    )
    router.ledger.set_budget("agent-1", Budget(max_tokens=2000))

    first = await router.chat(USER, caller="agent-1")
    second = await router.chat(USER, caller="agent-2")
    over = await router.chat(USER, caller="agent-1")  # 1,500 used < 2,000: still allowed
    capped = await router.chat(USER, caller="agent-1")  # 3,000 ≥ 2,000: LLMs skipped

    assert first.cost_usd == pytest.approx(0.01 + 0.01) and second.provider == "paid"
    assert over.provider == "paid" and capped.provider == "rules"
    assert capped.attempts[0].reason == "budget"
    totals = router.ledger.totals(caller="agent-1")
    assert (totals.prompt_tokens, totals.completion_tokens) == (2000, 1000)
    assert totals.cost_usd == pytest.approx(0.04)
    await router.aclose()


async def test_budget_exceeded_without_a_free_provider_raises(server: ScriptedLLMServer) -> None:
    router = without_rules(config(local("a", server.base_url, 1)))
    router.ledger.set_budget("agent-1", Budget(max_tokens=0))

    with pytest.raises(BudgetExceededError):
        await router.chat(USER, caller="agent-1")

    assert server.requests == []
    await router.aclose()


async def test_status_reports_health_latency_errors_tokens_and_cost(server: ScriptedLLMServer) -> None:
    server.set_default(Step(text="x", prompt_tokens=100, completion_tokens=50))
    router = LLMRouter.from_config(
        config(
            keyed(
                "paid",
                "external",
                server.base_url,
                1,
                cost_per_1k_prompt_usd=1.0,
                cost_per_1k_completion_usd=2.0,
            ),
            local("down", refused_url(), 2),
        )
    )
    await router.chat(USER)
    await router.check_health()

    status = {s.name: s for s in router.status()}

    paid, down = status["paid"], status["down"]
    assert paid.healthy is True and paid.breaker == "closed" and paid.latency_ewma_s is not None
    assert (paid.prompt_tokens, paid.completion_tokens, paid.cost_usd) == (100, 50, pytest.approx(0.2))
    assert down.healthy is False and "connect" in down.health_detail
    assert status["rules"].is_llm is False
    await router.aclose()


async def test_unhealthy_provider_is_skipped_until_healthy_again(server2: ScriptedLLMServer) -> None:
    router = LLMRouter.from_config(config(local("down", refused_url(), 1), local("b", server2.base_url, 2)))
    await router.check_health()

    result = await router.chat(USER)

    assert result.attempts[0].reason == "unhealthy" and result.provider == "b"
    assert router.get_best_model_for_task("technical_analysis") == ("b", "b-model")
    await router.aclose()


async def test_background_health_checks_run_on_the_interval(server: ScriptedLLMServer) -> None:
    router = LLMRouter.from_config(config(local("a", server.base_url, 1), health_interval_s=0.05))

    async with router:
        await await_until(
            lambda: router.status()[0].healthy is not None, timeout_s=10, message="a health check ran"
        )
        status = router.status()[0]

    assert status.healthy is True and status.health_detail.startswith("ok")


async def test_provider_without_a_key_is_not_configured_and_skipped(server: ScriptedLLMServer) -> None:
    from nq_ray.llm.config import ProviderConfig

    no_key = ProviderConfig(name="openai", kind="openai", base_url=server.base_url, model="gpt", priority=1)
    router = LLMRouter.from_config(config(no_key, local("b", server.base_url, 2)))

    result = await router.chat(USER)

    assert result.attempts[0].reason == "not_configured"
    assert "NQ_LLM__API_KEYS__OPENAI" in result.attempts[0].detail and result.provider == "b"
    await router.aclose()


async def test_priority_per_task_and_get_best_model_for_task(
    server: ScriptedLLMServer, server2: ScriptedLLMServer
) -> None:
    router = LLMRouter.from_config(
        config(
            local("big", server.base_url, 1, tasks=["technical_analysis", "risk_assessment"]),
            local("small", server2.base_url, 2, task_priorities={"market_summary": 0}),
        )
    )

    assert router.get_best_model_for_task("technical_analysis") == ("big", "big-model")
    assert router.get_best_model_for_task("market_summary") == ("small", "small-model")
    result = await router.chat(USER, task="order_management")

    assert result.provider == "small"
    await router.aclose()


async def test_cache_replays_an_identical_request_without_calling_the_server(
    server: ScriptedLLMServer,
) -> None:
    router = LLMRouter.from_config(config(local("a", server.base_url, 1), cache="memory"))

    first = await router.chat(USER, temperature=0)
    replay = await router.chat(USER, temperature=0)
    other = await router.chat(USER, temperature=0.5)

    assert replay.cached and replay.text == first.text and not first.cached and not other.cached
    assert len(server.requests) == 2 and replay.usage.total_tokens == 0
    await router.aclose()


async def test_prompt_version_is_recorded_with_the_result(server: ScriptedLLMServer) -> None:
    router = LLMRouter.from_config(config(local("a", server.base_url, 1)))

    result = await router.chat(USER, prompt_version="analysis_base@1a2b3c")

    assert result.prompt_version == "analysis_base@1a2b3c"
    await router.aclose()


@pytest.mark.parametrize(
    ("messages", "kwargs"),
    [
        ([], {}),
        ("hello", {}),
        ([{"role": "wizard", "content": "x"}], {}),
        (USER, {"task": "Bad Task"}),
        (USER, {"stream": True, "response_model": View}),
        (USER, {"response_model": dict}),
        (USER, {"symbol": "ES"}),
        (USER, {"deadline_s": 0}),
    ],
)
async def test_bad_arguments_are_rejected_at_the_door(messages: object, kwargs: dict[str, object]) -> None:
    router = LLMRouter.from_config(config(local("a", refused_url(), 1)))

    with pytest.raises(InvalidArgumentError):
        await router.chat(messages, **kwargs)  # type: ignore[arg-type]

    await router.aclose()


async def test_a_busy_provider_is_waited_for_until_the_deadline_without_counting_a_failure(
    server: ScriptedLLMServer, server2: ScriptedLLMServer
) -> None:
    server.set_latency(0.6)
    router = LLMRouter.from_config(
        config(local("a", server.base_url, 1, max_concurrency=1), local("b", server2.base_url, 2))
    )

    slow = asyncio.create_task(router.chat(USER))
    await await_until(lambda: router.status()[0].in_flight == 1, timeout_s=10, message="a's one slot is busy")
    rushed = await router.chat(USER, deadline_s=0.2)
    await slow

    assert [a.reason for a in rushed.attempts] == ["saturated", "deadline", "answered"]
    assert rushed.provider == "rules"  # the in-process rules analyst still answers after the deadline
    a = router.status()[0]
    assert a.breaker == "closed" and a.consecutive_failures == 0
    await router.aclose()


async def test_default_chain_with_no_backend_up_and_no_keys_ends_at_the_rules_analyst(
    nq_5m: pd.DataFrame,
) -> None:
    from nq_ray.llm import LLMConfig

    cfg = LLMConfig(base_urls={"serve": refused_url(), "ollama": refused_url()}, health_interval_s=3600)
    router = LLMRouter.from_config(cfg, bars_loader=lambda: nq_5m)

    async with router:
        result = await router.chat(USER, task="technical_analysis")
        status = {s.name: s for s in router.status()}

    assert result.provider == "rules" and not result.is_llm
    assert {a.provider: a.reason for a in result.attempts if a.outcome != "ok"}["openai"] == "not_configured"
    assert status["groq"].configured is False and "NQ_LLM__API_KEYS__GROQ" in status["groq"].health_detail
