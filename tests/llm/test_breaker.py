"""``nq_ray.llm.breaker``: the breaker on its own (a hand-driven clock), and inside ``LLMRouter`` against
real local OpenAI-compatible servers: it opens after the threshold, a half-open probe closes it when the
provider is back and reopens it when not."""

from __future__ import annotations

import pytest

from nq_ray.llm import LLMRouter
from nq_ray.llm.breaker import CircuitBreaker
from nq_ray.llm.config import BreakerConfig
from nq_ray.testing import ScriptedLLMServer, Step
from tests.llm.helpers import USER, config, local, refused_url

pytestmark = pytest.mark.timeout(60)


class Clock:
    """A hand-driven monotonic clock for breaker timing."""

    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_breaker_opens_after_threshold_lets_one_probe_through_and_closes_on_success() -> None:
    clock = Clock()
    breaker = CircuitBreaker(threshold=2, reset_s=30, clock=clock)

    breaker.failure()
    assert breaker.state == "closed" and breaker.allow()
    breaker.failure()
    assert breaker.state == "open" and not breaker.allow() and breaker.opens == 1
    clock.t += 30
    assert breaker.state == "half_open"
    assert breaker.allow() and not breaker.allow()  # one probe at a time
    breaker.success()

    assert breaker.state == "closed" and breaker.failures == 0 and breaker.allow()


def test_a_failed_probe_reopens_and_a_released_probe_frees_the_slot() -> None:
    clock = Clock()
    breaker = CircuitBreaker(threshold=1, reset_s=10, clock=clock)
    breaker.failure()
    clock.t += 10

    assert breaker.allow()
    breaker.release()  # cancelled: no verdict, the next caller may probe
    assert breaker.allow()
    breaker.failure()

    assert breaker.state == "open" and breaker.opens == 2 and breaker.opened_at == clock.t


async def test_breaker_opens_after_threshold_and_skips_the_provider(server2: ScriptedLLMServer) -> None:
    router = LLMRouter.from_config(
        config(
            local("down", refused_url(), 1),
            local("b", server2.base_url, 2),
            breaker=BreakerConfig(failure_threshold=2, reset_timeout_s=60),
        )
    )

    for _ in range(2):
        await router.chat(USER)
    result = await router.chat(USER)

    assert result.attempts[0].reason == "circuit_open" and result.attempts[0].outcome == "skipped"
    status = {s.name: s for s in router.status()}
    assert status["down"].breaker == "open" and status["down"].errors == 2
    await router.aclose()


async def test_breaker_half_open_probe_closes_it_when_the_provider_is_back(
    server: ScriptedLLMServer, server2: ScriptedLLMServer
) -> None:
    clock = Clock()
    server.set_default(Step(status=500, text="down"))
    router = LLMRouter.from_config(
        config(
            local("a", server.base_url, 1, max_retries=0),
            local("b", server2.base_url, 2),
            breaker=BreakerConfig(failure_threshold=1, reset_timeout_s=30),
        ),
        clock=clock,
    )
    await router.chat(USER)
    assert router.status()[0].breaker == "open"
    server.set_default(Step(text="recovered"))
    clock.t += 31

    assert router.status()[0].breaker == "half_open"
    result = await router.chat(USER)

    assert result.provider == "a" and result.text == "recovered"
    assert router.status()[0].breaker == "closed"
    await router.aclose()


async def test_breaker_failed_probe_reopens_it(server: ScriptedLLMServer, server2: ScriptedLLMServer) -> None:
    clock = Clock()
    server.set_default(Step(status=500, text="down"))
    router = LLMRouter.from_config(
        config(
            local("a", server.base_url, 1, max_retries=0),
            local("b", server2.base_url, 2),
            breaker=BreakerConfig(failure_threshold=1, reset_timeout_s=30),
        ),
        clock=clock,
    )
    await router.chat(USER)
    clock.t += 31

    result = await router.chat(USER)
    again = await router.chat(USER)

    assert result.provider == "b" and result.attempts[0].reason == "server_error"
    assert router.status()[0].breaker == "open" and again.attempts[0].reason == "circuit_open"
    assert len(server.requests) == 2
    await router.aclose()
