"""Store-backed LLM accounting and response cache.

- ``StoreUsageSink``: a ``UsageLedger`` sink that writes every ``UsageRecord`` to the ``llm_usage`` table
  from a background task (the chat path only appends to a queue), in batches, retrying with back-off
  while the store is down (records wait in memory, bounded; the oldest are dropped past ``max_pending``
  and counted in ``dropped``).
- ``attach_store(ledger, repo)``: load the day's totals (UTC, or from ``since``) into the ledger, so
  per-caller budgets survive restarts, then add a started ``StoreUsageSink``.
- ``StoreResponseCache``: the response cache kept in the ``llm_cache`` table, keyed by
  (provider, model, parameters hash, messages hash), with an in-memory LRU in front; a replay after a
  restart gets the stored answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections import deque
from dataclasses import asdict
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from nq_ray.llm.accounting import UsageLedger, UsageRecord
from nq_ray.llm.cache import MemoryResponseCache
from nq_ray.llm.protocol import ChatResponse, Usage
from nq_ray.store import llm as store_llm
from nq_ray.store.repository import Repository

if TYPE_CHECKING:
    from nq_ray.llm.config import LLMConfig
    from nq_ray.llm.router import LLMRouter

log = logging.getLogger(__name__)


def start_of_utc_day(now: datetime | None = None) -> datetime:
    now = now or datetime.now(UTC)
    return now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def _row(rec: UsageRecord) -> dict[str, Any]:
    d = asdict(rec)
    d["at"] = datetime.fromtimestamp(d.pop("at"), UTC)
    return d


class StoreUsageSink:
    """Writes usage records to the store without blocking the caller (see the module docstring)."""

    def __init__(
        self,
        repo: Repository,
        *,
        batch_size: int = 500,
        max_pending: int = 100_000,
        retry_s: float = 1.0,
        retry_max_s: float = 30.0,
        close_timeout_s: float = 10.0,
    ) -> None:
        self.repo = repo
        self.close_timeout_s = close_timeout_s
        self._closing = False
        self.batch_size = batch_size
        self.max_pending = max_pending
        self.retry_s = retry_s
        self.retry_max_s = retry_max_s
        self._pending: deque[UsageRecord] = deque()
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._write_lock: asyncio.Lock | None = None
        self._task: asyncio.Task[None] | None = None
        self.written = 0
        self.dropped = 0
        self.failures = 0
        self.last_error = ""

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._pending)

    async def start(self) -> StoreUsageSink:
        """Start the writer task on the running event loop."""
        if self._task is None or self._task.done():
            self._loop = asyncio.get_running_loop()
            self._wake = asyncio.Event()
            self._write_lock = asyncio.Lock()
            self._closing = False
            self._task = asyncio.create_task(self._run(), name="llm-usage-writer")
        return self

    def record(self, rec: UsageRecord) -> None:
        """Queue ``rec`` for the writer (thread-safe, never waits on the database)."""
        with self._lock:
            self._pending.append(rec)
            if len(self._pending) > self.max_pending:
                self._pending.popleft()
                self.dropped += 1
        loop, wake = self._loop, self._wake
        if loop is None or wake is None or loop.is_closed():
            return  # not started: records wait for start()/flush()
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            wake.set()
        else:
            loop.call_soon_threadsafe(wake.set)

    async def _drain(self) -> None:
        """Write everything pending; on a store error the batch goes back to the front and it raises."""
        assert self._write_lock is not None
        async with self._write_lock:
            while True:
                with self._lock:
                    batch = [self._pending.popleft() for _ in range(min(self.batch_size, len(self._pending)))]
                if not batch:
                    return
                try:
                    await store_llm.insert_usage(self.repo, [_row(r) for r in batch])
                except BaseException:
                    with self._lock:
                        self._pending.extendleft(reversed(batch))
                    raise
                self.written += len(batch)

    async def _run(self) -> None:
        assert self._wake is not None
        delay = self.retry_s
        retry_in: float | None = None
        while not self._closing:
            if retry_in is None:
                await self._wake.wait()
            else:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(retry_in):
                        await self._wake.wait()
            self._wake.clear()
            try:
                await self._drain()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.failures += 1
                self.last_error = f"{type(exc).__name__}: {str(exc)[:200]}"
                log.warning("llm usage not stored yet (%s); retrying in %.1fs", self.last_error, delay)
                retry_in, delay = delay, min(self.retry_max_s, delay * 2)
            else:
                retry_in, delay = None, self.retry_s

    async def flush(self) -> None:
        """Write what is pending now (raises the store's error if it cannot)."""
        if self._write_lock is None:
            await self.start()
        await self._drain()

    async def aclose(self) -> None:
        """Stop the writer after a last flush (a store that is down leaves the records unwritten; they
        are counted in ``pending``)."""
        if self._task is not None:
            # Let a write in progress finish: cancelling it after its commit would re-queue (and later
            # write twice) rows that are already stored.
            self._closing = True
            if self._wake is not None:
                self._wake.set()
            try:
                async with asyncio.timeout(self.close_timeout_s):
                    await asyncio.shield(self._task)
            except TimeoutError:
                self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None
        if self._write_lock is not None:
            try:
                await self._drain()
            except Exception as exc:
                log.warning("llm usage: %d records not stored at close (%s)", self.pending, exc)


async def attach_store(
    ledger: UsageLedger, repo: Repository, *, since: datetime | None = None
) -> StoreUsageSink:
    """Restore the ledger's totals from the store (rows at or after ``since``, default the start of the
    UTC day) and add a started ``StoreUsageSink`` to it."""
    rows = await store_llm.usage_totals(repo, since=since or start_of_utc_day())
    ledger.restore(rows)
    sink = await StoreUsageSink(repo).start()
    ledger.sinks.append(sink)
    return sink


def _split_key(key: str) -> tuple[str, str, str, str]:
    """``provider|model|params_hash|messages_hash`` (``cache_key``'s layout; a model may hold '|')."""
    head, params_hash, messages_hash = key.rsplit("|", 2)
    provider, model = head.split("|", 1)
    return provider, model, params_hash, messages_hash


def _dump(resp: ChatResponse) -> dict[str, Any]:
    return {
        "text": resp.text,
        "model": resp.model,
        "prompt_tokens": resp.usage.prompt_tokens,
        "completion_tokens": resp.usage.completion_tokens,
        "finish_reason": resp.finish_reason,
        "repaired": resp.repaired,
    }


def _load(d: dict[str, Any]) -> ChatResponse:
    return ChatResponse(
        text=str(d["text"]),
        model=str(d["model"]),
        usage=Usage(int(d.get("prompt_tokens", 0)), int(d.get("completion_tokens", 0))),
        finish_reason=d.get("finish_reason"),
        repaired=bool(d.get("repaired", False)),
    )


class StoreResponseCache:
    """Response cache in the store's ``llm_cache`` table with an LRU in front. ``aget`` reads through to
    the store; ``put`` fills the LRU at once and writes the row from a background task (``flush``
    waits for those writes). Parsed objects are not stored: the router re-validates the cached text
    against the caller's ``response_model``."""

    def __init__(self, repo: Repository, *, memory_items: int = 512) -> None:
        self.repo = repo
        self._memory = MemoryResponseCache(memory_items)
        self._writes: set[asyncio.Task[None]] = set()
        self.hits = 0
        self.misses = 0
        self.write_errors = 0

    def get(self, key: str) -> ChatResponse | None:
        """The in-memory layer only (sync callers); ``aget`` also reads the store."""
        return self._memory.get(key)

    async def aget(self, key: str) -> ChatResponse | None:
        hit = self._memory.get(key)
        if hit is None:
            stored = await store_llm.cache_get(self.repo, key)
            if stored is not None:
                hit = _load(stored)
                self._memory.put(key, hit)
        if hit is None:
            self.misses += 1
        else:
            self.hits += 1
        return hit

    def put(self, key: str, value: ChatResponse) -> None:
        self._memory.put(key, value)
        task = asyncio.get_running_loop().create_task(self._write(key, value))
        self._writes.add(task)
        task.add_done_callback(self._writes.discard)

    async def aput(self, key: str, value: ChatResponse) -> None:
        self._memory.put(key, value)
        await self._write(key, value)

    async def _write(self, key: str, value: ChatResponse) -> None:
        provider, model, params_hash, messages_hash = _split_key(key)
        try:
            await store_llm.cache_put(
                self.repo,
                key,
                provider=provider,
                model=model,
                params_hash=params_hash,
                messages_hash=messages_hash,
                response=_dump(value),
            )
        except Exception as exc:  # a cache write that fails costs a replay, never the answer
            self.write_errors += 1
            log.warning("llm cache row not stored (%s: %s)", type(exc).__name__, str(exc)[:200])

    async def flush(self) -> None:
        """Wait for the background writes started so far."""
        if self._writes:
            await asyncio.gather(*list(self._writes), return_exceptions=True)


async def open_store_router(
    config: LLMConfig,
    repo: Repository,
    *,
    since: datetime | None = None,
    **kwargs: Any,
) -> tuple[LLMRouter, StoreUsageSink]:
    """``LLMRouter.from_config`` with store-backed accounting (totals restored, records written) and,
    when ``config.cache == "store"``, the store-backed response cache. Close the sink after the router."""
    from nq_ray.llm.router import LLMRouter

    ledger = kwargs.pop("ledger", None) or UsageLedger()
    sink = await attach_store(ledger, repo, since=since)
    cache = kwargs.pop("cache", None)
    if cache is None and config.cache == "store":
        cache = StoreResponseCache(repo, memory_items=config.cache_max_items)
    return LLMRouter.from_config(config, ledger=ledger, cache=cache, **kwargs), sink
