"""Token, latency and cost accounting per provider, model and caller (agent id), with per-caller budgets.

Totals live in memory; every record is also handed to the ledger's sinks: ``StoreUsageSink``
(``nq_ray/llm/stored.py``) keeps them in the store's ``llm_usage`` table and ``restore()`` loads the
day's totals back on start, so budgets survive restarts; ``RayMetricsSink`` exports them as metrics.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from nq_ray.errors import InvalidArgumentError


@dataclass(frozen=True)
class UsageRecord:
    at: float
    provider: str
    model: str
    caller: str
    task: str
    prompt_tokens: int
    completion_tokens: int
    latency_s: float
    cost_usd: float
    ok: bool
    cached: bool = False


class UsageSink(Protocol):
    """Where records go besides memory (the store, metrics)."""

    def record(self, rec: UsageRecord) -> None: ...


@dataclass(frozen=True)
class Budget:
    """A caller's limits; ``None`` means unlimited."""

    max_tokens: int | None = None
    max_cost_usd: float | None = None

    def __post_init__(self) -> None:
        if self.max_tokens is not None and self.max_tokens < 0:
            raise InvalidArgumentError("Budget.max_tokens must be ≥ 0", max_tokens=self.max_tokens)
        if self.max_cost_usd is not None and self.max_cost_usd < 0:
            raise InvalidArgumentError("Budget.max_cost_usd must be ≥ 0", max_cost_usd=self.max_cost_usd)


@dataclass
class Totals:
    requests: int = 0
    errors: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    latency_s: float = 0.0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def add(self, rec: UsageRecord) -> None:
        self.requests += 1
        self.errors += 0 if rec.ok else 1
        self.prompt_tokens += rec.prompt_tokens
        self.completion_tokens += rec.completion_tokens
        self.cost_usd += rec.cost_usd
        self.latency_s += rec.latency_s


def estimate_cost(
    prompt_tokens: int, completion_tokens: int, per_1k_prompt: float, per_1k_completion: float
) -> float:
    return prompt_tokens / 1000.0 * per_1k_prompt + completion_tokens / 1000.0 * per_1k_completion


@dataclass
class UsageLedger:
    """Thread-safe in-memory totals by (provider, model, caller), plus the last ``keep`` records."""

    sinks: list[UsageSink] = field(default_factory=list)
    keep: int = 10_000
    _records: list[UsageRecord] = field(default_factory=list)
    _totals: dict[tuple[str, str, str], Totals] = field(default_factory=lambda: defaultdict(Totals))
    _budgets: dict[str, Budget] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def record(
        self,
        *,
        provider: str,
        model: str,
        caller: str,
        task: str,
        prompt_tokens: int,
        completion_tokens: int,
        latency_s: float,
        cost_usd: float,
        ok: bool,
        cached: bool = False,
    ) -> UsageRecord:
        rec = UsageRecord(
            time.time(),
            provider,
            model,
            caller,
            task,
            prompt_tokens,
            completion_tokens,
            latency_s,
            cost_usd,
            ok,
            cached,
        )
        with self._lock:
            self._records.append(rec)
            if len(self._records) > self.keep:
                del self._records[: len(self._records) - self.keep]
            self._totals[(provider, model, caller)].add(rec)
        for sink in self.sinks:
            sink.record(rec)
        return rec

    def restore(self, rows: Iterable[Mapping[str, Any]]) -> None:
        """Add stored totals (``nq_ray.store.llm.usage_totals`` rows: provider, model, caller, requests,
        errors, prompt/completion tokens, cost_usd, latency_s) to memory without passing them to sinks."""
        with self._lock:
            for r in rows:
                t = self._totals[(str(r["provider"]), str(r["model"]), str(r["caller"]))]
                t.requests += int(r.get("requests", 0))
                t.errors += int(r.get("errors", 0))
                t.prompt_tokens += int(r.get("prompt_tokens", 0))
                t.completion_tokens += int(r.get("completion_tokens", 0))
                t.cost_usd += float(r.get("cost_usd", 0.0))
                t.latency_s += float(r.get("latency_s", 0.0))

    def set_budget(self, caller: str, budget: Budget | None) -> None:
        with self._lock:
            if budget is None:
                self._budgets.pop(caller, None)
            else:
                self._budgets[caller] = budget

    def totals(
        self, *, provider: str | None = None, model: str | None = None, caller: str | None = None
    ) -> Totals:
        out = Totals()
        with self._lock:
            items = list(self._totals.items())
        for (p, m, c), t in items:
            if (provider in (None, p)) and (model in (None, m)) and (caller in (None, c)):
                out.requests += t.requests
                out.errors += t.errors
                out.prompt_tokens += t.prompt_tokens
                out.completion_tokens += t.completion_tokens
                out.cost_usd += t.cost_usd
                out.latency_s += t.latency_s
        return out

    def breakdown(self) -> list[dict[str, object]]:
        """One row per (provider, model, caller), for status pages and metrics export."""
        with self._lock:
            items = sorted(self._totals.items())
        return [
            {
                "provider": p,
                "model": m,
                "caller": c,
                "requests": t.requests,
                "errors": t.errors,
                "prompt_tokens": t.prompt_tokens,
                "completion_tokens": t.completion_tokens,
                "cost_usd": round(t.cost_usd, 6),
            }
            for (p, m, c), t in items
        ]

    def over_budget(self, caller: str) -> str | None:
        """Why ``caller`` is over budget, or ``None``."""
        with self._lock:
            b = self._budgets.get(caller)
        if b is None:
            return None
        t = self.totals(caller=caller)
        if b.max_tokens is not None and t.total_tokens >= b.max_tokens:
            return f"caller {caller!r} used {t.total_tokens} of {b.max_tokens} tokens"
        if b.max_cost_usd is not None and t.cost_usd >= b.max_cost_usd:
            return f"caller {caller!r} spent ${t.cost_usd:.4f} of ${b.max_cost_usd:.4f}"
        return None

    def records(self, caller: str | None = None) -> Iterable[UsageRecord]:
        with self._lock:
            return [r for r in self._records if caller in (None, r.caller)]
