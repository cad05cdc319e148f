"""Store helpers for jobs (``jobs`` table): the durable copy of every background tool call.

The registry actor writes a job when it is submitted, when it starts, on progress (throttled) and when it
ends, so a restart keeps results and terminal states; ``interrupt_unfinished`` settles the jobs that were
pending or running in the process that died.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select, update

from nq_ray.config import redact
from nq_ray.store.models import JobRow
from nq_ray.store.repository import Repository

UNFINISHED = ("pending", "running")
_FIELDS = (
    "id",
    "tool",
    "status",
    "progress",
    "total",
    "message",
    "created_at",
    "started_at",
    "finished_at",
    "result",
    "error",
)


def _as_dict(row: JobRow) -> dict[str, Any]:
    return {name: getattr(row, name) for name in _FIELDS}


async def insert_job(
    repo: Repository,
    *,
    job_id: str,
    tool: str,
    who: str,
    arguments: dict[str, Any] | None,
    created_at: datetime,
) -> None:
    """Record a submitted job (status ``pending``); its arguments are stored with secrets redacted."""
    row = JobRow(
        id=job_id,
        tool=tool,
        who=who[:64],
        status="pending",
        arguments=redact(arguments) if arguments is not None else None,
        created_at=created_at,
    )
    async with repo.sessions() as s, s.begin():
        s.add(row)


async def update_job(repo: Repository, job_id: str, **fields: Any) -> None:
    """Set ``fields`` (status, progress, total, message, started_at, finished_at, result, error)."""
    unknown = set(fields) - set(_FIELDS)
    if unknown:
        raise ValueError(f"not job fields: {sorted(unknown)}")
    async with repo.sessions() as s, s.begin():
        await s.execute(update(JobRow).where(JobRow.id == job_id).values(**fields))


async def get_job(repo: Repository, job_id: str) -> dict[str, Any] | None:
    async with repo.sessions() as s:
        row = await s.get(JobRow, job_id)
        return _as_dict(row) if row is not None else None


async def list_jobs(repo: Repository, *, limit: int = 100) -> list[dict[str, Any]]:
    """The newest jobs first."""
    async with repo.sessions() as s:
        rows = await s.scalars(select(JobRow).order_by(JobRow.created_at.desc()).limit(limit))
        return [_as_dict(r) for r in rows]


async def interrupt_unfinished(repo: Repository, *, at: datetime, message: str) -> list[str]:
    """Mark every pending/running job ``failed`` with code ``interrupted``; the ids it settled."""
    error = {"code": "interrupted", "message": message}
    async with repo.sessions() as s, s.begin():
        ids = list(await s.scalars(select(JobRow.id).where(JobRow.status.in_(UNFINISHED))))
        if ids:
            await s.execute(
                update(JobRow)
                .where(JobRow.id.in_(ids))
                .values(status="failed", error=error, message=message, finished_at=at)
            )
        return ids


async def config_changes(
    repo: Repository, *, since: datetime | None = None, limit: int = 100
) -> list[dict[str, Any]]:
    """Recorded live settings changes (``config_changes``), newest first: the history behind the live
    overlay (``nq_ray.store.live``), which is what the runtime starts from."""
    from nq_ray.store.models import ConfigChangeRow

    q = select(ConfigChangeRow).order_by(ConfigChangeRow.id.desc()).limit(limit)
    if since is not None:
        q = q.where(ConfigChangeRow.at >= since)
    async with repo.sessions() as s:
        rows = await s.scalars(q)
        return [{"id": r.id, "at": r.at, "actor": r.actor, "patch": r.patch} for r in rows]
