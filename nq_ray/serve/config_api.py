"""The live config API: ``GET /api/config``, ``PATCH /api/config``, ``GET /api/config/changes``.

``PATCH`` takes a JSON merge patch (RFC 7396; ``null`` sets an optional value such as a limit to none)
limited to what can change while running (``nq_ray.config.LIVE_KEYS``: risk limits and margins, LLM
providers by name — enabled, priority, timeouts, retries —, router timeouts, the data source, tool
settings). It is validated against ``Settings`` as a whole; on any error the answer is a 422 problem
listing every refused field and nothing changes. An accepted patch is applied by the ``tool_registry``
actor (the one copy of the effective settings every replica syncs from): journaled, recorded in
``config_changes``, pushed to the paper broker's risk gate (in force for the next order) and to the
``trading_desk`` actor when it runs; this replica takes it at once, the others within a second; a
``system_notification`` event announces it. Without Ray the app applies it to itself the same way.

The change is durable: it is the store's live settings overlay (``nq_ray.store.live``), which every actor
and replica reads when it (re)starts, so ``version`` and the settings shown here are the ones the paper
broker's gate enforces, across restarts of any actor or of the whole runtime.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Request

from nq_ray.config import Settings
from nq_ray.serve.deps import AppDeps
from nq_ray.tools.wire import as_nq_error


def config_router(deps: AppDeps) -> APIRouter:
    router = APIRouter(prefix="/api/config", tags=["config"])
    local = None
    if deps.registry_actor is None:
        from nq_ray.runtime.registry import LiveSettings

        local = LiveSettings(deps.registry.context.settings, deps.registry.context.settings.store_url)

    def sync_version(request: Request, version: int, settings: Settings) -> None:
        deps.registry.context.settings = settings
        sync = getattr(request.app.state, "sync", None)
        if sync is not None:
            sync.take(version, settings)

    restored: list[bool] = []

    async def take_store() -> None:
        """Without Ray: read the live overlay from the store once (what a restart picked up)."""
        assert local is not None
        if not restored:
            restored.append(True)
            await local.restore()
            deps.registry.context.settings = local.settings

    async def current() -> tuple[int, Settings]:
        if deps.registry_actor is not None:
            return await deps.registry_actor.settings.remote()
        await take_store()
        assert local is not None
        return local.version, local.settings

    @router.get("", summary="The effective settings (secrets redacted) and which keys can change live")
    async def get_config(request: Request) -> dict[str, Any]:
        from nq_ray.config import LIVE_KEYS

        version, settings = await current()
        sync = getattr(request.app.state, "sync", None)
        replica = {  # this replica's view: it catches up with ``version`` within a second
            "id": deps.metrics.replica,
            "version": sync.version if sync is not None and deps.registry_actor is not None else version,
            "risk_limits": deps.registry.context.settings.risk.limits.model_dump(mode="json"),
        }
        return {
            "version": version,
            "settings": settings.redacted(),
            "live_keys": _paths(LIVE_KEYS),
            "replica": replica,
        }

    @router.patch(
        "",
        summary="Change settings live (JSON merge patch of the live keys); 422 problem lists refused keys",
        responses={422: {"description": "refused: nothing was applied"}},
    )
    async def patch_config(
        request: Request,
        patch: Annotated[
            Any,
            Body(
                media_type="application/merge-patch+json",
                examples=[{"risk": {"limits": {"max_contracts_per_symbol": 2}}}],
            ),
        ],
    ) -> dict[str, Any]:
        who = "http"
        if deps.registry_actor is not None:
            broker = deps.broker_name
            try:
                out = await deps.registry_actor.update_settings.remote(patch, who, broker, deps.desk_name)
            except Exception as exc:
                raise (as_nq_error(exc) or exc) from None
            version, settings = await deps.registry_actor.settings.remote()
        else:
            await take_store()
            assert local is not None
            out = await local.apply(patch, who) | {"applied_to": ["this process"]}
            version, settings = local.version, local.settings
        sync_version(request, version, settings)
        await deps.bus.publish(
            "system_notification",
            {
                "message": "settings changed",
                "kind": "config_changed",
                "version": version,
                "patch": out["patch"],
                "applied_to": out.get("applied_to", []),
            },
        )
        return {"version": version, "change": out, "settings": settings.redacted()}

    @router.get("/changes", summary="Recorded settings changes, newest first")
    async def changes(limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> list[dict[str, Any]]:
        if deps.registry_actor is not None:
            return await deps.registry_actor.config_changes.remote(limit)
        assert local is not None
        return await local.changes(limit)

    return router


def _paths(tree: Any, prefix: str = "") -> list[str]:
    if not isinstance(tree, dict):
        suffix = ".<provider>.{" + ",".join(sorted(tree)) + "}" if isinstance(tree, set) else ""
        return [prefix + suffix]
    out: list[str] = []
    for k, v in tree.items():
        out.extend(_paths(v, f"{prefix}.{k}" if prefix else k))
    return out
