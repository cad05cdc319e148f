"""Store-backed accounting and response cache, on real SQLite and PostgreSQL databases."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import BaseModel, Field

from nq_ray.errors import InvalidArgumentError
from nq_ray.llm import Budget, LLMRouter, UsageLedger
from nq_ray.llm.cache import cache_key
from nq_ray.llm.protocol import ChatResponse, Usage
from nq_ray.llm.stored import StoreResponseCache, StoreUsageSink, attach_store, open_store_router
from nq_ray.store import llm as store_llm
from nq_ray.store.db import migrate_async
from nq_ray.store.repository import Repository
from nq_ray.testing import ScriptedLLMServer

from .helpers import RULES, USER, config, local

pytestmark = pytest.mark.timeout(120)


class View(BaseModel):
    bias: str = Field(pattern="^(bullish|bearish|neutral)$")
    confidence: float = Field(ge=0, le=1)


def record(ledger: UsageLedger, caller: str, tokens: int = 1000) -> None:
    ledger.record(
        provider="serve",
        model="m",
        caller=caller,
        task="technical_analysis",
        prompt_tokens=tokens,
        completion_tokens=tokens,
        latency_s=0.25,
        cost_usd=0.01,
        ok=True,
    )


async def test_usage_is_queued_on_the_chat_path_and_written_by_the_sink(db_url: str) -> None:
    repo = await Repository.connect(db_url)
    ledger = UsageLedger()
    sink = await attach_store(ledger, repo)
    try:
        record(ledger, "analysis-1")
        queued = sink.pending  # nothing awaited yet: the record is only queued
        await sink.flush()
        rows = await store_llm.usage_rows(repo)
    finally:
        await sink.aclose()
        await repo.close()

    assert queued == 1 and sink.pending == 0 and sink.written == 1
    assert len(rows) == 1
    row = rows[0]
    assert (row["provider"], row["model"], row["caller"], row["task"]) == (
        "serve",
        "m",
        "analysis-1",
        "technical_analysis",
    )
    assert (row["prompt_tokens"], row["completion_tokens"], row["ok"], row["cached"]) == (
        1000,
        1000,
        True,
        False,
    )
    assert row["latency_s"] == pytest.approx(0.25) and row["cost_usd"] == pytest.approx(0.01)
    assert row["at"].tzinfo is not None


async def test_budget_survives_a_restart_and_counts_only_today(db_url: str) -> None:
    repo = await Repository.connect(db_url)
    yesterday = datetime.now(UTC) - timedelta(days=1, hours=1)
    await store_llm.insert_usage(
        repo,
        [
            {
                "at": yesterday,
                "provider": "serve",
                "model": "m",
                "caller": "risk-1",
                "task": "t",
                "prompt_tokens": 50_000,
                "completion_tokens": 0,
                "latency_s": 1.0,
                "cost_usd": 5.0,
                "ok": True,
                "cached": False,
            }
        ],
    )
    first = UsageLedger()
    sink = await attach_store(first, repo)
    record(first, "risk-1")  # 2000 tokens today
    record(first, "risk-1")
    await sink.aclose()
    await repo.close()

    repo2 = await Repository.connect(db_url)  # "restart": new connection, new ledger
    second = UsageLedger()
    sink2 = await attach_store(second, repo2)
    second.set_budget("risk-1", Budget(max_tokens=3500))
    try:
        restored = second.totals(caller="risk-1")
        reason = second.over_budget("risk-1")
    finally:
        await sink2.aclose()
        await repo2.close()

    assert restored.requests == 2 and restored.total_tokens == 4000
    assert restored.cost_usd == pytest.approx(0.02)
    assert reason is not None and "4000 of 3500 tokens" in reason


async def test_sink_keeps_records_while_the_store_fails_and_writes_them_after(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'late.db'}"
    repo = await Repository.connect(url, migrate=False)  # no tables yet: every insert fails
    ledger = UsageLedger()
    sink = await StoreUsageSink(repo, retry_s=0.05, retry_max_s=0.1).start()
    ledger.sinks.append(sink)
    try:
        record(ledger, "exec-1")
        for _ in range(200):
            await asyncio.sleep(0.01)
            if sink.failures:
                break
        failed_pending = sink.pending
        await migrate_async(repo.engine)
        for _ in range(300):
            await asyncio.sleep(0.01)
            if sink.written:
                break
        rows = await store_llm.usage_rows(repo)
    finally:
        await sink.aclose()
        await repo.close()

    assert sink.failures >= 1 and failed_pending == 1 and "store_unavailable" in sink.last_error
    assert sink.written == 1 and len(rows) == 1 and rows[0]["caller"] == "exec-1"


async def test_cache_rows_are_keyed_by_provider_model_params_and_messages(db_url: str) -> None:
    repo = await Repository.connect(db_url)
    cache = StoreResponseCache(repo)
    key = cache_key("serve", "org/model|v2", {"temperature": 0}, USER)
    try:
        await cache.aput(key, ChatResponse(text="hi", model="org/model|v2", usage=Usage(3, 1)))
        fresh = StoreResponseCache(repo)  # empty memory layer: must read the store
        hit = await fresh.aget(key)
        miss = await fresh.aget(cache_key("serve", "org/model|v2", {"temperature": 1}, USER))
        async with repo.sessions() as s:
            from nq_ray.store.models import LLMCacheRow

            row = await s.get(LLMCacheRow, key)
    finally:
        await repo.close()

    assert hit is not None and hit.text == "hi" and hit.usage == Usage(3, 1) and miss is None
    assert row is not None and (row.provider, row.model) == ("serve", "org/model|v2")
    assert len(row.params_hash) == 16 and len(row.messages_hash) == 64
    assert key.endswith(row.messages_hash)


async def test_replay_after_restart_comes_from_the_stored_cache(db_url: str) -> None:
    cfg = None
    with ScriptedLLMServer(default_text='{"bias": "bullish", "confidence": 0.7}') as srv:
        cfg = config(local("serve", srv.base_url, 1), RULES, cache="store")
        repo = await Repository.connect(db_url)
        router, sink = await open_store_router(cfg, repo)
        first = await router.chat(USER, task="technical_analysis", response_model=View, caller="a1")
        await router.aclose()
        assert isinstance(router.cache, StoreResponseCache)
        await router.cache.flush()
        await sink.aclose()
        await repo.close()

        repo2 = await Repository.connect(db_url)
        router2, sink2 = await open_store_router(cfg, repo2)
        replay = await router2.chat(USER, task="technical_analysis", response_model=View, caller="a1")
        totals = router2.ledger.totals(caller="a1")
        await router2.aclose()
        await sink2.aclose()
        rows = await store_llm.usage_rows(repo2, caller="a1")
        await repo2.close()
        calls = len(srv.requests)

    assert not first.cached and replay.cached and calls == 1
    assert isinstance(replay.parsed, View) and replay.parsed == first.parsed
    assert replay.text == first.text and replay.provider == "serve"
    assert totals.requests == 2 and totals.prompt_tokens == first.usage.prompt_tokens
    assert sorted(r["cached"] for r in rows) == [False, True]


def test_store_cache_setting_without_a_store_is_a_clear_error() -> None:
    with pytest.raises(InvalidArgumentError, match="open_store_router"):
        LLMRouter.from_config(config(local("serve", "http://127.0.0.1:1/v1", 1), RULES, cache="store"))
