"""``LLMRouter``: priority per task, health checks, circuit breakers, retries, deadlines and failover.

Rules, in order, for one ``chat()``:
1. Candidates are the enabled providers serving the task, by ``priority_for(task)`` (lower first). Among
   equal priority they are ordered round-robin or by least latency (``load_balancing``), providers with
   a free concurrency slot first.
2. A candidate is skipped (and the skip recorded in ``attempts``) when it is not configured (no key), its
   last health check failed, its breaker is open, the caller is over budget (LLMs only) or the deadline
   has passed (LLMs only: the in-process rules analyst always gets its turn).
3. A provider at its ``max_concurrency`` is waited for (never past the deadline; that wait is not held
   against it). Each call has a per-request timeout (``timeout_s``, cut to what is left of the deadline).
   5xx and 429 are retried on the same provider (``max_retries``, exponential back-off with jitter; a
   429's Retry-After is honoured when ≤ ``max_retry_after_s``, else it fails over at once); refused
   connections and timeouts fail over at once (``connect_retries`` = 0 by default). Nothing else is retried.
4. A failed provider (after its retries), malformed structured output (after one repair) or a non-retryable
   error moves on to the next candidate. Failures count towards the provider's circuit breaker.
5. The first answer wins; tokens, latency and estimated cost go to the ledger under (provider, model,
   caller). When nothing answers: ``BudgetExceededError``, ``LLMDeadlineError`` or
   ``AllProvidersFailedError``, each with every attempt in ``details``.

This module is the routing policy, the rules above, and is over 600 lines because each rule is written
out once here; the pieces it uses live beside it: ``breaker`` (the circuit breaker), ``stream`` (streamed
answers) and ``results`` (``Attempt``, ``LLMResult``, ``ProviderStatus``, re-exported here).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import random
import re
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any, Literal, TypeVar, overload

import pandas as pd
from pydantic import BaseModel, ValidationError
from tenacity import AsyncRetrying, RetryCallState

from nq_ray.errors import InvalidArgumentError
from nq_ray.llm import structured
from nq_ray.llm.accounting import UsageLedger, estimate_cost
from nq_ray.llm.breaker import BreakerState, CircuitBreaker
from nq_ray.llm.cache import MemoryResponseCache, ResponseCache, cache_key
from nq_ray.llm.config import LLMConfig, ProviderConfig
from nq_ray.llm.errors import (
    AllProvidersFailedError,
    BudgetExceededError,
    LLMDeadlineError,
    ProviderCallError,
    StructuredOutputError,
)
from nq_ray.llm.protocol import ChatResponse, HealthReport, LLMProvider, Message, Usage, check_messages
from nq_ray.llm.results import Attempt, LLMResult, ProviderStatus
from nq_ray.llm.stream import LLMStream, open_stream

__all__ = [
    "LLM_PARAMS",
    "NOT_PROVIDER_FAULTS",
    "Attempt",
    "BreakerState",
    "CircuitBreaker",
    "LLMResult",
    "LLMRouter",
    "LLMStream",
    "ProviderStatus",
    "params_fingerprint",
]

log = logging.getLogger(__name__)
T = TypeVar("T")
# Outcomes that say nothing about the provider's health: they do not count towards its breaker.
NOT_PROVIDER_FAULTS = frozenset({"bad_request", "saturated", "deadline"})
_TASK = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
# Sampling parameters passed through to LLM backends (the rules analyst ignores them).
LLM_PARAMS = frozenset(
    {
        "temperature",
        "max_tokens",
        "top_p",
        "seed",
        "stop",
        "presence_penalty",
        "frequency_penalty",
        "user",
        "extra_body",
    }
)
_EWMA = 0.3


@dataclass
class _Slot:
    config: ProviderConfig
    provider: LLMProvider
    breaker: CircuitBreaker
    semaphore: asyncio.Semaphore
    configured: bool
    not_configured_reason: str
    healthy: bool | None = None
    health_detail: str = "not checked yet"
    health_at: float | None = None
    latency_ewma_s: float | None = None
    in_flight: int = 0
    calls: int = 0
    errors: int = 0
    last_error: str = ""

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def saturated(self) -> bool:
        return self.in_flight >= self.config.max_concurrency


class LLMRouter:
    """Routes chat requests over a chain of ``LLMProvider``s (see the module docstring for the rules)."""

    def __init__(
        self,
        providers: Sequence[tuple[ProviderConfig, LLMProvider]],
        config: LLMConfig,
        *,
        ledger: UsageLedger | None = None,
        cache: ResponseCache | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not providers:
            raise InvalidArgumentError("LLMRouter needs at least one provider")
        self.config = config
        self.ledger = ledger or UsageLedger()
        if cache is None and config.cache == "store":
            raise InvalidArgumentError(
                "llm.cache is 'store' but no store-backed cache was given: build the router with "
                "nq_ray.llm.stored.open_store_router(config, repo) or pass cache=StoreResponseCache(repo)"
            )
        self.cache = (
            cache
            if cache is not None
            else (MemoryResponseCache(config.cache_max_items) if config.cache == "memory" else None)
        )
        self._clock = clock
        self._slots: list[_Slot] = []
        for pc, prov in providers:
            info = prov.info()
            self._slots.append(
                _Slot(
                    config=pc,
                    provider=prov,
                    breaker=CircuitBreaker(
                        config.breaker.failure_threshold, config.breaker.reset_timeout_s, clock
                    ),
                    semaphore=asyncio.Semaphore(pc.max_concurrency),
                    configured=info.configured,
                    not_configured_reason=info.not_configured_reason,
                )
            )
        self._rr: dict[tuple[str, int], int] = defaultdict(int)
        self._health_task: asyncio.Task[None] | None = None

    @classmethod
    def from_config(
        cls,
        config: LLMConfig,
        *,
        bars_loader: Callable[[], pd.DataFrame] | None = None,
        ledger: UsageLedger | None = None,
        cache: ResponseCache | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> LLMRouter:
        """Build every provider of ``config`` (``settings.llm``); disabled ones are left out."""
        from nq_ray.llm.providers import make_provider
        from nq_ray.llm.rules import RulesAnalyst

        def rules(pc: ProviderConfig) -> RulesAnalyst:
            return RulesAnalyst(pc, bars_loader=bars_loader, rules=config.rules)

        pairs = [(pc, make_provider(pc, rules_factory=rules)) for pc in config.resolved() if pc.enabled]
        return cls(pairs, config, ledger=ledger, cache=cache, clock=clock)

    # ---------------------------------------------------------------- lifecycle and health
    async def start(self) -> None:
        """Start background health checks (every ``health_interval_s``; 0 = off)."""
        if self.config.health_interval_s > 0 and (self._health_task is None or self._health_task.done()):
            self._health_task = asyncio.create_task(self._health_loop(), name="llm-health")

    async def _health_loop(self) -> None:
        while True:
            await self.check_health()
            await asyncio.sleep(self.config.health_interval_s)

    async def check_health(self) -> dict[str, HealthReport]:
        """Check every provider now (concurrently) and record the verdicts."""

        async def one(slot: _Slot) -> HealthReport:
            if not slot.configured:
                return HealthReport(False, slot.not_configured_reason)
            try:
                async with asyncio.timeout(self.config.health_timeout_s + 0.5):
                    return await slot.provider.health(self.config.health_timeout_s)
            except TimeoutError:
                return HealthReport(False, "health check timed out")
            except Exception as exc:
                return HealthReport(False, f"health check failed: {type(exc).__name__}")

        reports = await asyncio.gather(*(one(s) for s in self._slots))
        now = self._clock()
        for slot, rep in zip(self._slots, reports, strict=True):
            slot.healthy, slot.health_detail, slot.health_at = rep.healthy, rep.detail, now
        return {s.name: r for s, r in zip(self._slots, reports, strict=True)}

    async def aclose(self) -> None:
        if self._health_task is not None:
            self._health_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._health_task
            self._health_task = None
        for slot in self._slots:
            with contextlib.suppress(Exception):
                await slot.provider.aclose()

    async def __aenter__(self) -> LLMRouter:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # ---------------------------------------------------------------- selection
    def candidates(self, task: str, *, rotate: bool = True) -> list[_Slot]:
        """Providers serving ``task`` in the order they would be tried now (``rotate=False`` peeks without
        advancing the round-robin)."""
        serving = [s for s in self._slots if s.config.serves(task)]
        groups: dict[int, list[_Slot]] = defaultdict(list)
        for s in serving:
            groups[s.config.priority_for(task)].append(s)
        ordered: list[_Slot] = []
        for prio in sorted(groups):
            group = groups[prio]
            if len(group) > 1:
                if self.config.load_balancing == "least_latency":
                    group = sorted(group, key=lambda s: s.latency_ewma_s or 0.0)
                else:
                    i = self._rr[(task, prio)] % len(group)
                    if rotate:
                        self._rr[(task, prio)] += 1
                    group = group[i:] + group[:i]
                group = sorted(group, key=lambda s: s.saturated)
            ordered.extend(group)
        return ordered

    def _skip_reason(self, slot: _Slot) -> tuple[str, str] | None:
        if not slot.configured:
            return "not_configured", slot.not_configured_reason
        if slot.healthy is False:
            return "unhealthy", slot.health_detail
        if slot.breaker.state == "open":
            return "circuit_open", f"{slot.breaker.failures} consecutive failures"
        return None

    def get_best_model_for_task(self, task: str) -> tuple[str, str] | None:
        """(provider, model) that would be tried first for ``task`` now, or ``None``."""
        for slot in self.candidates(task, rotate=False):
            if self._skip_reason(slot) is None:
                return slot.name, slot.config.model
        return None

    # ---------------------------------------------------------------- calls
    def _backoff(self, exc: BaseException | None, attempt: int) -> float:
        """Seconds to wait after failed call number ``attempt``: Retry-After if the server sent one,
        else exponential back-off (``backoff_s`` doubling, capped) with jitter."""
        if isinstance(exc, ProviderCallError) and exc.retry_after_s is not None:
            return exc.retry_after_s
        base = min(self.config.backoff_max_s, self.config.backoff_s * 2 ** (attempt - 1))
        return base * (0.5 + random.random() / 2)

    async def _call(
        self, slot: _Slot, fn: Callable[[float], Awaitable[T]], deadline: float, enforce_deadline: bool
    ) -> tuple[T, int]:
        """Run ``fn(timeout_s)`` under the slot's concurrency limit, timeout and retry policy."""
        cfg = slot.config
        calls = 0

        def remaining() -> float:
            return deadline - self._clock() if enforce_deadline else cfg.timeout_s

        def retryable(exc: BaseException | None, attempt: int) -> bool:
            if not isinstance(exc, ProviderCallError):
                return False
            if exc.kind in ("server_error", "rate_limited"):
                allowed = cfg.max_retries
            elif exc.kind in ("connect", "timeout"):
                allowed = cfg.connect_retries
            else:
                return False
            if exc.retry_after_s is not None and exc.retry_after_s > self.config.max_retry_after_s:
                return False
            if attempt > allowed:
                return False
            wait = exc.retry_after_s if exc.retry_after_s is not None else self.config.backoff_s
            return remaining() > wait + 0.01

        async def attempt() -> T:
            nonlocal calls
            left = remaining()
            if left <= 0:
                raise ProviderCallError(f"{slot.name}: deadline passed", provider=slot.name, kind="deadline")
            if slot.semaphore.locked():  # wait for a slot, but not past the deadline (not a failure)
                try:
                    async with asyncio.timeout(left):
                        await slot.semaphore.acquire()
                except TimeoutError:
                    raise ProviderCallError(
                        f"{slot.name}: all {cfg.max_concurrency} slots busy until the deadline",
                        provider=slot.name,
                        kind="saturated",
                    ) from None
            else:
                await slot.semaphore.acquire()
            slot.in_flight += 1
            slot.calls += 1
            calls += 1
            try:
                timeout_s = min(cfg.timeout_s, remaining())
                try:
                    async with asyncio.timeout(timeout_s):
                        return await fn(timeout_s)
                except TimeoutError:
                    raise ProviderCallError(
                        f"{slot.name}: no answer within {timeout_s:.2f}s", provider=slot.name, kind="timeout"
                    ) from None
            finally:
                slot.in_flight -= 1
                slot.semaphore.release()

        guarded = attempt

        # Fast path: most calls succeed first time, so tenacity is entered only for a retry.
        try:
            return await guarded(), calls
        except ProviderCallError as exc:
            if not retryable(exc, 1):
                raise
            first = exc
        await asyncio.sleep(self._backoff(first, 1))

        def outcome(rs: RetryCallState) -> BaseException | None:
            return rs.outcome.exception() if rs.outcome else None

        retrying = AsyncRetrying(
            retry=lambda rs: retryable(outcome(rs), rs.attempt_number + 1),
            wait=lambda rs: self._backoff(outcome(rs), rs.attempt_number + 1),
            reraise=True,
        )
        result: T = await retrying(guarded)
        return result, calls

    def _finish_success(
        self,
        slot: _Slot,
        resp: ChatResponse,
        *,
        latency_s: float,
        attempts: list[Attempt],
        task: str,
        caller: str,
        cached: bool,
        prompt_version: str | None,
        calls: int,
    ) -> LLMResult:
        cfg = slot.config
        usage = Usage() if cached else resp.usage
        cost = estimate_cost(
            usage.prompt_tokens,
            usage.completion_tokens,
            cfg.cost_per_1k_prompt_usd,
            cfg.cost_per_1k_completion_usd,
        )
        if not cached:
            slot.breaker.success()
            slot.healthy = True if slot.healthy is False else slot.healthy
            slot.latency_ewma_s = (
                latency_s
                if slot.latency_ewma_s is None
                else (1 - _EWMA) * slot.latency_ewma_s + _EWMA * latency_s
            )
        self.ledger.record(
            provider=slot.name,
            model=resp.model,
            caller=caller,
            task=task,
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
            latency_s=latency_s,
            cost_usd=cost,
            ok=True,
            cached=cached,
        )
        attempts.append(Attempt(slot.name, "ok", "cache_hit" if cached else "answered", "", latency_s, calls))
        return LLMResult(
            text=resp.text,
            parsed=resp.parsed,
            provider=slot.name,
            model=resp.model,
            kind=cfg.kind,
            is_llm=cfg.is_llm,
            usage=usage,
            latency_s=latency_s,
            attempts=tuple(attempts),
            task=task,
            caller=caller,
            cost_usd=cost,
            cached=cached,
            repaired=resp.repaired,
            prompt_version=prompt_version,
        )

    async def _cache_get(self, key: str, response_model: type[BaseModel] | None) -> ChatResponse | None:
        """A cached answer (a store-backed cache's ``aget`` reads through to the store). Its text is
        re-validated against ``response_model`` when the cache kept no parsed object; an entry that no
        longer validates is a miss."""
        assert self.cache is not None
        aget = getattr(self.cache, "aget", None)
        hit = await aget(key) if aget is not None else self.cache.get(key)
        if hit is None or response_model is None or isinstance(hit.parsed, response_model):
            return hit
        try:
            return replace(hit, parsed=structured.parse(hit.text, response_model))
        except ValidationError:
            return None

    def _record_failure(
        self, slot: _Slot, exc: Exception, *, latency_s: float, task: str, caller: str
    ) -> Attempt:
        kind = exc.kind if isinstance(exc, ProviderCallError) else "bad_output"
        if kind in NOT_PROVIDER_FAULTS:
            slot.breaker.release()
        else:
            slot.breaker.failure()
        slot.errors += 1
        slot.last_error = str(exc)[:200]
        log.warning(
            "llm provider %s failed (%s) for task %s, caller %s; breaker %s",
            slot.name,
            kind,
            task,
            caller,
            slot.breaker.state,
        )
        details = getattr(exc, "details", {}) or {}
        p_tok, c_tok = (
            int(details.get("prompt_tokens", 0) or 0),
            int(details.get("completion_tokens", 0) or 0),
        )
        cfg = slot.config
        self.ledger.record(
            provider=slot.name,
            model=cfg.model,
            caller=caller,
            task=task,
            prompt_tokens=p_tok,
            completion_tokens=c_tok,
            latency_s=latency_s,
            cost_usd=estimate_cost(p_tok, c_tok, cfg.cost_per_1k_prompt_usd, cfg.cost_per_1k_completion_usd),
            ok=False,
        )
        return Attempt(slot.name, "error", kind, str(exc)[:300], latency_s)

    def _check_call(
        self, task: str, response_model: type[BaseModel] | None, stream: bool, params: Mapping[str, Any]
    ) -> None:
        unknown = sorted(set(params) - LLM_PARAMS)
        if unknown:
            raise InvalidArgumentError(
                f"unknown chat parameters {unknown}; allowed: {sorted(LLM_PARAMS)}", unknown=unknown
            )
        if not isinstance(task, str) or not _TASK.match(task):
            raise InvalidArgumentError(
                f"task must be a lower-case task type such as 'technical_analysis', got {task!r}"
            )
        if response_model is not None and not (
            isinstance(response_model, type) and issubclass(response_model, BaseModel)
        ):
            raise InvalidArgumentError("response_model must be a pydantic BaseModel subclass")
        if stream and response_model is not None:
            raise InvalidArgumentError(
                "stream=True cannot be combined with response_model; stream text or ask for a model"
            )

    def _no_answer(
        self, attempts: list[Attempt], task: str, deadline_hit: bool, budget_reason: str | None
    ) -> Exception:
        info = [asdict(a) for a in attempts]
        if not attempts:
            return AllProvidersFailedError(
                f"no provider serves task {task!r}; add it to a provider's tasks", task=task, attempts=info
            )
        if budget_reason and all(a.reason in ("budget", "not_configured") for a in attempts):
            return BudgetExceededError(
                f"{budget_reason}; raise the budget or keep the rules analyst in the chain",
                task=task,
                attempts=info,
            )
        summary = ", ".join(f"{a.provider}: {a.reason}" for a in attempts)
        if deadline_hit:
            return LLMDeadlineError(
                f"no provider answered task {task!r} before the deadline ({summary})",
                task=task,
                attempts=info,
            )
        return AllProvidersFailedError(
            f"every provider failed for task {task!r} ({summary})", task=task, attempts=info
        )

    @overload
    async def chat(
        self,
        messages: Sequence[Message],
        *,
        task: str = ...,
        response_model: type[BaseModel] | None = ...,
        stream: Literal[False] = ...,
        caller: str = ...,
        deadline_s: float | None = ...,
        bars: pd.DataFrame | None = ...,
        prompt_version: str | None = ...,
        **params: Any,
    ) -> LLMResult: ...

    @overload
    async def chat(
        self,
        messages: Sequence[Message],
        *,
        task: str = ...,
        response_model: None = ...,
        stream: Literal[True],
        caller: str = ...,
        deadline_s: float | None = ...,
        bars: pd.DataFrame | None = ...,
        prompt_version: str | None = ...,
        **params: Any,
    ) -> LLMStream: ...

    async def chat(
        self,
        messages: Sequence[Message],
        *,
        task: str = "general",
        response_model: type[BaseModel] | None = None,
        stream: bool = False,
        caller: str = "anonymous",
        deadline_s: float | None = None,
        bars: pd.DataFrame | None = None,
        prompt_version: str | None = None,
        **params: Any,
    ) -> LLMResult | LLMStream:
        """Answer ``messages`` for ``task``: an ``LLMResult`` (or an ``LLMStream`` with ``stream=True``).

        ``bars`` is read only by the rules analyst (LLMs see the market through the prompt);
        ``params`` (temperature, max_tokens, seed, ...) go to the LLM backends."""
        msgs = check_messages(messages)
        self._check_call(task, response_model, stream, params)
        if deadline_s is not None and not deadline_s > 0:
            raise InvalidArgumentError(f"deadline_s must be > 0 seconds, got {deadline_s!r}")
        if self._health_task is None and self.config.health_interval_s > 0:
            await self.start()
        t_start = self._clock()
        deadline = t_start + (deadline_s if deadline_s is not None else self.config.deadline_s)
        budget_reason = self.ledger.over_budget(caller)
        attempts: list[Attempt] = []
        deadline_hit = False
        for slot in self.candidates(task):
            cfg = slot.config
            if budget_reason and cfg.is_llm:
                attempts.append(Attempt(slot.name, "skipped", "budget", budget_reason))
                continue
            key = None
            if self.cache is not None and not stream and cfg.is_llm and slot.configured:
                schema = response_model.model_json_schema() if response_model else None
                key = cache_key(
                    slot.name,
                    cfg.model,
                    {
                        **params,
                        "response_model": schema,
                        "temperature": params.get("temperature", cfg.temperature),
                    },
                    msgs,
                )
                hit = await self._cache_get(key, response_model)
                if hit is not None:
                    return self._finish_success(
                        slot,
                        hit,
                        latency_s=self._clock() - t_start,
                        attempts=attempts,
                        task=task,
                        caller=caller,
                        cached=True,
                        prompt_version=prompt_version,
                        calls=0,
                    )
            skip = self._skip_reason(slot)
            if skip is not None:
                attempts.append(Attempt(slot.name, "skipped", *skip))
                continue
            if cfg.is_llm and deadline - self._clock() <= 0:
                deadline_hit = True
                attempts.append(Attempt(slot.name, "skipped", "deadline", "overall deadline passed"))
                continue
            if not slot.breaker.allow():
                attempts.append(
                    Attempt(slot.name, "skipped", "circuit_open", "half-open probe already in flight")
                )
                continue
            extra: dict[str, Any] = dict(params)
            if not cfg.is_llm:
                extra["bars"] = bars
            t0 = self._clock()
            try:
                if stream:
                    return await open_stream(
                        self, slot, msgs, extra, deadline, attempts, task, caller, prompt_version, t0
                    )

                async def run(
                    timeout_s: float, slot: _Slot = slot, extra: dict[str, Any] = extra
                ) -> ChatResponse:
                    kw = dict(extra)
                    if slot.config.is_llm:
                        kw["timeout"] = timeout_s
                    return await slot.provider.chat(msgs, response_model=response_model, **kw)

                resp, calls = await self._call(slot, run, deadline, enforce_deadline=cfg.is_llm)
            except (ProviderCallError, StructuredOutputError) as exc:
                attempts.append(
                    self._record_failure(slot, exc, latency_s=self._clock() - t0, task=task, caller=caller)
                )
                if cfg.is_llm and deadline - self._clock() <= 0:
                    deadline_hit = True
                continue
            except BaseException:
                slot.breaker.release()
                raise
            if key is not None and self.cache is not None:
                self.cache.put(key, resp)
            return self._finish_success(
                slot,
                resp,
                latency_s=self._clock() - t_start,
                attempts=attempts,
                task=task,
                caller=caller,
                cached=False,
                prompt_version=prompt_version,
                calls=calls,
            )
        raise self._no_answer(attempts, task, deadline_hit, budget_reason)

    # ---------------------------------------------------------------- reporting
    def status(self) -> list[ProviderStatus]:
        """Health, latency, error rate, breaker state, tokens and cost so far, per provider."""
        out = []
        for s in self._slots:
            t = self.ledger.totals(provider=s.name)
            out.append(
                ProviderStatus(
                    name=s.name,
                    kind=s.config.kind,
                    model=s.config.model,
                    is_llm=s.config.is_llm,
                    priority=s.config.priority,
                    tasks=list(s.config.tasks),
                    configured=s.configured,
                    healthy=s.healthy,
                    health_detail=s.health_detail if s.configured else s.not_configured_reason,
                    breaker=s.breaker.state,
                    consecutive_failures=s.breaker.failures,
                    in_flight=s.in_flight,
                    max_concurrency=s.config.max_concurrency,
                    latency_ewma_s=s.latency_ewma_s,
                    calls=s.calls,
                    errors=s.errors,
                    error_rate=(s.errors / s.calls) if s.calls else 0.0,
                    prompt_tokens=t.prompt_tokens,
                    completion_tokens=t.completion_tokens,
                    cost_usd=round(t.cost_usd, 6),
                    last_error=s.last_error,
                )
            )
        return out

    def provider(self, name: str) -> LLMProvider:
        for s in self._slots:
            if s.name == name:
                return s.provider
        raise InvalidArgumentError(f"no provider named {name!r}; known: {[s.name for s in self._slots]}")


def params_fingerprint(params: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(dict(params), sort_keys=True, default=str).encode()).hexdigest()[:12]
