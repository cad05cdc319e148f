"""``RegistryActor``: the tool registry as a named Ray actor (``tool_registry``, namespace ``nq``).

Agents call tools here. It owns, for every Serve replica:
- the jobs (one set of job ids; every job is in the store's ``jobs`` table, so results and terminal
  states survive a restart; a job running when the actor died becomes ``failed``, "interrupted by
  restart" — see ``nq_ray.tools.jobs``);
- the audit log connection (replicas forward their records in batches, ``audit_many``);
- the effective settings (``LiveSettings``): ``update_settings`` validates a live patch, journals it,
  records it in ``config_changes`` and pushes it to the paper broker and the trading desk; replicas pick it
  up through ``sync`` (about once a second), which also collects their metrics for cluster totals.
Detached and restartable: a restart reads the live settings overlay from the store (``nq_ray.store.live``,
the one copy every actor and replica starts from) and settles the jobs it left unfinished; orders are the
broker's (journaled there).

The ports over it: ``RayTools`` (``ToolsPort``: agents call tools here) and ``RayAuditLog`` (the batch
sink ``ForwardingAuditor`` sends Serve replicas' audit records to)."""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime
from typing import Any

import ray

from nq_ray.config import Settings, live_patch
from nq_ray.domain.audit import AuditRecord
from nq_ray.runtime.broker import RayBroker, get_or_create_broker
from nq_ray.runtime.cluster import NAMESPACE, RemoteMethods, find_actor, named_actor
from nq_ray.runtime.metrics import Metrics
from nq_ray.runtime.propfirm import check_live_pack
from nq_ray.runtime.replay import clock_for
from nq_ray.tools.audit import StoreAuditor
from nq_ray.tools.context import ToolContext
from nq_ray.tools.jobs import JobManager
from nq_ray.tools.registry import build_registry

log = logging.getLogger(__name__)

ACTOR_NAME = "tool_registry"
BROKER_NAME = "paper_broker"
DESK_NAME = "trading_desk"


class LiveSettings:
    """The running system's effective settings: the start-up settings plus the live overlay in the store
    (``nq_ray.store.live``), changed only by validated live patches (``nq_ray.config.live_patch``).
    ``version`` is the overlay's version in the store: it only grows, across restarts of this actor and
    of the whole runtime, so every replica and actor can tell whether it runs the latest settings."""

    def __init__(self, settings: Settings, store_url: str | None = None) -> None:
        self.start = settings  # the start-up settings (config file + environment)
        self.settings = settings
        self.store_url = store_url
        self.version = 0
        self.stale: list[str] = []  # patched keys the start-up config has changed since (not applied)
        self._repo: Any = None
        self._lock = asyncio.Lock()

    async def _store(self) -> Any:
        if self.store_url is None:
            return None
        if self._repo is None:
            from nq_ray.store.repository import Repository

            self._repo = await Repository.connect(self.store_url)
        return self._repo

    async def restore(self) -> int:
        """Take the store's live overlay (what every actor reads when it starts): its version."""
        repo = await self._store()
        if repo is None:
            return 0
        from nq_ray.store.live import effective_settings, read_overlay

        async with self._lock:
            overlay = await read_overlay(repo)
            self.settings, self.stale = effective_settings(self.start, overlay)
            self.version = overlay.version
        return self.version

    async def apply(self, patch: Any, actor: str = "api") -> dict[str, Any]:
        """Validate and apply ``patch``; ``ConfigError`` (nothing applied, nothing recorded) otherwise.
        Order: validate → ``config_changes`` row and overlay (one transaction) → journal file → effect."""
        async with self._lock:
            normal = live_patch(self.settings, patch)
            new = self.settings.merged(normal)  # raises before anything is written
            check_live_pack(patch, new)  # an unknown or broken rule pack is refused, naming the known ones
            repo = await self._store()
            change_id = None
            at = datetime.now(UTC)
            if repo is not None:
                from nq_ray.store.live import base_values, record_live_change

                change_id, self.version = await record_live_change(
                    repo, at=at, actor=actor[:64], patch=patch, base=base_values(self.start, patch)
                )
            else:
                self.version += 1
            self.settings.update(normal, actor=actor, journal=new.data.data_dir / "config_journal.jsonl")
            self.settings = new
            # ``patch``: as the client sent it (JSON; ``llm.providers`` by name), for the answer and the
            # event; ``merge``: the form ``Settings.merged`` takes (whole provider list), for the desk.
            out = {"version": self.version, "change_id": change_id, "at": at.isoformat(), "patch": patch}
            return out | {"merge": normal}

    async def changes(self, limit: int = 100) -> list[dict[str, Any]]:
        repo = await self._store()
        if repo is None:
            return []
        from nq_ray.store.jobs import config_changes

        return await config_changes(repo, limit=limit)


@ray.remote(num_cpus=0, max_concurrency=64)  # type: ignore[call-overload]
class RegistryActor:
    """Remote face of ``ToolRegistry`` + ``JobManager`` + ``LiveSettings``; typed errors come back as the
    Ray task error's cause (``nq_ray.tools.wire.as_nq_error`` unwraps them)."""

    def __init__(
        self, settings: Settings, created_at: datetime | None = None, broker_name: str = BROKER_NAME
    ) -> None:
        self.created_at = created_at or datetime.now(UTC)
        self.broker_name = broker_name
        self.live = LiveSettings(settings, settings.store_url)
        self.auditor = StoreAuditor(settings.store_url)
        self.metrics = Metrics(replica="tool_registry")
        # the tools here reach the ``paper_broker`` actor (the one ``nq-ray up`` starts with its feed)
        self.context = ToolContext(
            settings=settings,
            broker_factory=lambda s: RayBroker(get_or_create_broker(s, name=broker_name)),
            clock=clock_for(settings),
        )
        self.registry = build_registry(self.context, auditor=self.auditor, on_call=self.metrics.on_call)
        self.jobs = JobManager(
            self.registry,
            store_url=settings.store_url,
            max_running=settings.tools.max_running_jobs,
            progress_every_s=settings.tools.job_progress_every_s,
        )
        self._snapshots: dict[str, tuple[float, dict[str, Any]]] = {}
        self._started: asyncio.Task[None] | None = None

    async def _ready(self) -> None:
        """Once per process: settle jobs a previous process left running, take the live settings."""
        if self._started is None:
            self._started = asyncio.get_running_loop().create_task(self._start())
        await asyncio.shield(self._started)

    async def _start(self) -> None:
        await self.jobs.recover()
        await self.live.restore()
        self._take(self.live.settings)

    def _take(self, settings: Settings) -> None:
        self.context.settings = settings
        self.jobs.max_running = settings.tools.max_running_jobs
        self.jobs.progress_every_s = settings.tools.job_progress_every_s

    async def ping(self) -> dict[str, Any]:
        await self._ready()
        return {"tools": len(self.registry.specs), "jobs_running": self.jobs.running()}

    async def list_tools(self) -> list[dict[str, Any]]:
        return self.registry.list_tools()

    async def call(
        self, name: str, arguments: dict[str, Any] | None = None, who: str = "agent"
    ) -> dict[str, Any]:
        await self._ready()
        return await self.registry.call(name, arguments, who=who)

    # ---- jobs -----------------------------------------------------------------------------------

    async def submit(
        self, name: str, arguments: dict[str, Any] | None = None, who: str = "agent"
    ) -> dict[str, Any]:
        await self._ready()
        return (await self.jobs.submit(name, arguments, who)).model_dump(mode="json")

    async def job(self, job_id: str) -> dict[str, Any]:
        await self._ready()
        return (await self.jobs.get(job_id)).model_dump(mode="json")

    async def cancel(self, job_id: str) -> dict[str, Any]:
        await self._ready()
        return (await self.jobs.cancel(job_id)).model_dump(mode="json")

    async def list_jobs(self, limit: int = 100) -> list[dict[str, Any]]:
        await self._ready()
        return [j.model_dump(mode="json") for j in await self.jobs.list(limit)]

    async def job_counts(self) -> dict[str, int]:
        return dict(self.jobs.counts) | {"running": self.jobs.running()}

    # ---- audit ----------------------------------------------------------------------------------

    async def audit(self, record: AuditRecord) -> None:
        await self.auditor.audit(record)

    async def audit_many(self, records: list[AuditRecord]) -> int:
        return await self.auditor.audit_many(records)

    async def audit_log(self, limit: int = 100) -> list[dict[str, Any]]:
        return await self.auditor.recent(limit)

    # ---- settings and metrics -------------------------------------------------------------------

    async def settings(self) -> tuple[int, Settings]:
        await self._ready()
        return self.live.version, self.live.settings

    async def update_settings(
        self,
        patch: dict[str, Any],
        actor: str = "api",
        broker_name: str | None = None,
        desk_name: str = DESK_NAME,
    ) -> dict[str, Any]:
        """Apply a live patch here (recorded in the store first: an actor that starts later reads it
        there), then in the paper broker (its risk gate) and the trading desk (when they exist); the result
        says which took it."""
        await self._ready()
        out = await self.live.apply(patch, actor)
        merge = out.pop("merge")
        settings = self.live.settings
        self._take(settings)
        applied = ["tool_registry"]
        for name, call in ((broker_name or self.broker_name, "broker"), (desk_name, "desk")):
            handle = find_actor(name)
            if handle is None:
                continue  # not running: it reads the settings when it starts
            try:
                if call == "broker":
                    await handle.apply_settings.remote(settings, self.live.version)
                else:
                    await handle.apply_settings.remote(merge)
                applied.append(name)
            except Exception as exc:  # reported, not raised: the change is in force here already
                log.error("%s did not take the settings change: %s", name, exc)
                out.setdefault("not_applied", {})[name] = f"{type(exc).__name__}: {exc}"[:300]
        return out | {"applied_to": applied}

    async def config_changes(self, limit: int = 100) -> list[dict[str, Any]]:
        return await self.live.changes(limit)

    async def sync(
        self, replica: str, snapshot: dict[str, Any] | None, version: int
    ) -> tuple[int, Settings | None]:
        """A replica's heartbeat: store its metrics snapshot; the settings when ``version`` is behind."""
        await self._ready()
        if snapshot is not None:
            self._snapshots[replica[:128]] = (time.monotonic(), snapshot)
        if version == self.live.version:
            return version, None
        return self.live.version, self.live.settings

    async def metrics_snapshots(self) -> list[tuple[str, float, dict[str, Any]]]:
        """Every replica's latest snapshot (with its age in seconds), this actor's own included."""
        now = time.monotonic()
        out = [(r, now - t, s) for r, (t, s) in self._snapshots.items()]
        return [*out, ("tool_registry", 0.0, self.metrics.snapshot())]


def get_or_create_registry(
    settings: Settings,
    *,
    name: str = ACTOR_NAME,
    namespace: str = NAMESPACE,
    broker_name: str = BROKER_NAME,
) -> Any:
    """The handle of the named registry actor, created (detached, restartable) when it does not exist;
    its tools reach the paper broker actor ``broker_name``."""
    return named_actor(RegistryActor, name, settings, datetime.now(UTC), broker_name, namespace=namespace)


class RayTools(RemoteMethods):
    """``ToolsPort`` over the ``tool_registry`` actor; a typed tool error is raised as itself."""

    async def call(self, name: str, arguments: dict[str, Any], *, who: str) -> dict[str, Any]:
        out: dict[str, Any] = await self._call("call", name, arguments, who)
        return out

    async def list_tools(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = await self._call("list_tools")
        return out


class RayAuditLog(RemoteMethods):
    """``AuditLog`` over the ``tool_registry`` actor's ``audit_many`` (``ForwardingAuditor`` sends here)."""

    async def audit_many(self, records: list[AuditRecord]) -> int:
        out: int = await self._call("audit_many", records)
        return out
