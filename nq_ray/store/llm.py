"""Store access for the LLM layer: usage rows (accounting that survives restarts) and the response cache
(answers keyed by provider, model, parameters hash and messages hash, for reproducible replays).

Functions take a ``Repository`` and run one transaction each; rows go in and out as plain dicts so the
store does not import the LLM layer.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.exc import IntegrityError

from nq_ray.store.models import LLMCacheRow, LLMUsageRow
from nq_ray.store.repository import Repository

USAGE_FIELDS = (
    "provider",
    "model",
    "caller",
    "task",
    "prompt_tokens",
    "completion_tokens",
    "latency_s",
    "cost_usd",
    "ok",
    "cached",
)


async def insert_usage(repo: Repository, rows: Iterable[Mapping[str, Any]]) -> int:
    """Insert usage rows (each with ``at`` — a timezone-aware datetime — and ``USAGE_FIELDS``) in one
    transaction; returns how many were written."""
    batch = [LLMUsageRow(at=r["at"], **{k: r[k] for k in USAGE_FIELDS}) for r in rows]
    if not batch:
        return 0
    async with repo.sessions() as s, s.begin():
        s.add_all(batch)
    return len(batch)


async def usage_totals(
    repo: Repository, *, since: datetime | None = None, caller: str | None = None
) -> list[dict[str, Any]]:
    """Sums per (provider, model, caller) of the rows at or after ``since``: requests, errors, tokens,
    cost and latency."""
    q = select(
        LLMUsageRow.provider,
        LLMUsageRow.model,
        LLMUsageRow.caller,
        func.count(),
        func.sum(case((LLMUsageRow.ok.is_(False), 1), else_=0)),
        func.sum(LLMUsageRow.prompt_tokens),
        func.sum(LLMUsageRow.completion_tokens),
        func.sum(LLMUsageRow.cost_usd),
        func.sum(LLMUsageRow.latency_s),
    ).group_by(LLMUsageRow.provider, LLMUsageRow.model, LLMUsageRow.caller)
    if since is not None:
        q = q.where(LLMUsageRow.at >= since)
    if caller is not None:
        q = q.where(LLMUsageRow.caller == caller)
    async with repo.sessions() as s:
        result = (await s.execute(q)).all()
    return [
        {
            "provider": p,
            "model": m,
            "caller": c,
            "requests": int(n),
            "errors": int(e or 0),
            "prompt_tokens": int(pt or 0),
            "completion_tokens": int(ct or 0),
            "cost_usd": float(cost or 0.0),
            "latency_s": float(lat or 0.0),
        }
        for p, m, c, n, e, pt, ct, cost, lat in result
    ]


async def usage_rows(
    repo: Repository, *, caller: str | None = None, since: datetime | None = None, limit: int = 1000
) -> list[dict[str, Any]]:
    """The newest usage rows (newest first), optionally for one caller and after ``since``."""
    q = select(LLMUsageRow).order_by(LLMUsageRow.at.desc(), LLMUsageRow.id.desc()).limit(limit)
    if caller is not None:
        q = q.where(LLMUsageRow.caller == caller)
    if since is not None:
        q = q.where(LLMUsageRow.at >= since)
    async with repo.sessions() as s:
        rows = (await s.scalars(q)).all()
    return [{"at": r.at, **{k: getattr(r, k) for k in USAGE_FIELDS}} for r in rows]


async def cache_get(repo: Repository, key: str) -> dict[str, Any] | None:
    """The stored response for ``key`` (a JSON dict), or ``None``."""
    async with repo.sessions() as s:
        row = await s.get(LLMCacheRow, key)
    return None if row is None else dict(row.response)


async def cache_put(
    repo: Repository,
    key: str,
    *,
    provider: str,
    model: str,
    params_hash: str,
    messages_hash: str,
    response: Mapping[str, Any],
) -> None:
    """Store (or replace) the response for ``key``."""
    now = datetime.now(UTC)
    fields = {
        "provider": provider,
        "model": model,
        "params_hash": params_hash,
        "messages_hash": messages_hash,
        "created_at": now,
        "response": dict(response),
    }
    for _ in range(2):  # an insert that loses a race with another writer becomes an update
        async with repo.sessions() as s:
            try:
                async with s.begin():
                    row = await s.get(LLMCacheRow, key)
                    if row is None:
                        s.add(LLMCacheRow(key=key, **fields))
                    else:
                        for k, v in fields.items():
                            setattr(row, k, v)
                return
            except IntegrityError:
                continue


async def cache_count(repo: Repository) -> int:
    async with repo.sessions() as s:
        return int(await s.scalar(select(func.count()).select_from(LLMCacheRow)) or 0)
