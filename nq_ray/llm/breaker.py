"""The circuit breaker each provider of ``LLMRouter`` has: consecutive failures open it, and after a reset
time one probe is let through to close it again (``settings.llm.breaker``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

BreakerState = Literal["closed", "open", "half_open"]


class CircuitBreaker:
    """Closed → open after ``threshold`` consecutive failures → half-open after ``reset_s`` (one probe
    allowed) → closed on a good probe, open again on a bad one."""

    def __init__(self, threshold: int, reset_s: float, clock: Callable[[], float]) -> None:
        self.threshold = threshold
        self.reset_s = reset_s
        self._clock = clock
        self._state: BreakerState = "closed"
        self.failures = 0
        self.opened_at: float | None = None
        self._probe_in_flight = False
        self.opens = 0

    @property
    def state(self) -> BreakerState:
        if (
            self._state == "open"
            and self.opened_at is not None
            and self._clock() - self.opened_at >= self.reset_s
        ):
            return "half_open"
        return self._state

    def allow(self) -> bool:
        state = self.state
        if state == "closed":
            return True
        if state == "open" or self._probe_in_flight:
            return False
        self._state = "half_open"
        self._probe_in_flight = True
        return True

    def success(self) -> None:
        self._state = "closed"
        self.failures = 0
        self.opened_at = None
        self._probe_in_flight = False

    def failure(self) -> None:
        self.failures += 1
        if self._state == "half_open" or self.failures >= self.threshold:
            if self._state != "open":
                self.opens += 1
            self._state = "open"
            self.opened_at = self._clock()
        self._probe_in_flight = False

    def release(self) -> None:
        """A probe ended without a verdict (cancelled, or a client-side error)."""
        self._probe_in_flight = False
