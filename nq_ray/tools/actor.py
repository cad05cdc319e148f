"""``RegistryActor``: the tool registry as a named Ray actor (``tool_registry``, namespace ``nq``).

Agents call tools here; it owns the jobs (so every Serve replica sees the same job ids) and the audit
log connection (replicas forward their audit records to it). Detached and restartable: a restart loses
running jobs (they are reported unknown) but no orders (the broker journals those)."""

from __future__ import annotations

from typing import Any

import ray

from nq_ray.config import Settings
from nq_ray.tools.audit import StoreAuditor
from nq_ray.tools.context import ToolContext
from nq_ray.tools.jobs import JobManager
from nq_ray.tools.registry import build_registry

ACTOR_NAME = "tool_registry"
NAMESPACE = "nq"


@ray.remote(num_cpus=0, max_concurrency=64)
class RegistryActor:
    """Remote face of ``ToolRegistry`` + ``JobManager``; typed errors come back as the Ray task error's
    cause (``nq_ray.tools.wire.as_nq_error`` unwraps them)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.auditor = StoreAuditor(settings.store_url)
        self.registry = build_registry(ToolContext(settings=settings), auditor=self.auditor)
        self.jobs = JobManager(self.registry)

    async def ping(self) -> dict[str, Any]:
        return {"tools": len(self.registry.specs), "jobs_running": self.jobs.running()}

    async def list_tools(self) -> list[dict[str, Any]]:
        return self.registry.list_tools()

    async def call(
        self, name: str, arguments: dict[str, Any] | None = None, who: str = "agent"
    ) -> dict[str, Any]:
        return await self.registry.call(name, arguments, who=who)

    async def submit(
        self, name: str, arguments: dict[str, Any] | None = None, who: str = "agent"
    ) -> dict[str, Any]:
        return self.jobs.submit(name, arguments, who).model_dump(mode="json")

    async def job(self, job_id: str) -> dict[str, Any]:
        return self.jobs.get(job_id).model_dump(mode="json")

    async def cancel(self, job_id: str) -> dict[str, Any]:
        return self.jobs.cancel(job_id).model_dump(mode="json")

    async def list_jobs(self) -> list[dict[str, Any]]:
        return [j.model_dump(mode="json") for j in self.jobs.list()]

    async def job_counts(self) -> dict[str, int]:
        return dict(self.jobs.counts) | {"running": self.jobs.running()}

    async def audit(self, **record: Any) -> None:
        await self.auditor.audit(**record)

    async def audit_log(self, limit: int = 100) -> list[dict[str, Any]]:
        return await self.auditor.recent(limit)


def get_or_create_registry(settings: Settings, *, name: str = ACTOR_NAME, namespace: str = NAMESPACE) -> Any:
    """The handle of the named registry actor, created (detached, restartable) when it does not exist."""
    return RegistryActor.options(  # type: ignore[attr-defined]
        name=name,
        namespace=namespace,
        lifetime="detached",
        get_if_exists=True,
        max_restarts=-1,
    ).remote(settings)
