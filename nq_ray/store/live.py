"""The one durable source of the running system's live state: the settings overlay and the halt.

**Settings.** Every accepted live patch (``PATCH /api/config`` → ``tool_registry`` actor) is recorded by
``record_live_change`` in one transaction: its ``config_changes`` row (secrets redacted) and the
``live_settings`` row — all live patches merged into one JSON merge patch, with a version that only ever
grows. Every actor (the paper broker, the tool registry, the desk and its agents) and every Serve replica
reads it when it starts or restarts (``read_live`` / ``read_live_sync``) and runs with
``effective_settings(start-up settings, overlay)``; the broker re-reads it before each order decision, so
the limits its gate enforces are the ones ``/api/config`` shows, whichever process died in between.

**How long a patch lives.** An operator who lowers a limit live expects it to hold until they change it
again — through an actor restart *and* a restart of the whole runtime (a crash, a reboot): a limit that
quietly springs back to the file's value after a crash is the failure this module exists to prevent. So
the overlay is durable across runs, not tied to one ``nq-ray up``. But an operator who then edits the
config file and starts again means the file: each patched key remembers the start-up value it overrode
(``base``), and a patched key is applied only while the start-up value of that key is still the one it
overrode. Edit the file's value of a key, and the file wins for that key (the stale patch is reported,
``stale``); leave the file alone, and every patch made on the running system stays in force.

**Halt.** The desk's halt (automatic halts and the kill switch) is the desk's persisted state
(``desk_state``, key ``desk``); ``read_halt`` reads it, and the paper broker reads it at start and before
each order decision: while halted, its gate refuses every order that opens or adds to a position.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from nq_ray.config import redact
from nq_ray.store.db import run_sync
from nq_ray.store.models import ConfigChangeRow, DeskStateRow, LiveSettingsRow
from nq_ray.store.repository import Repository

if TYPE_CHECKING:
    from nq_ray.config import Settings

log = logging.getLogger(__name__)

LIVE_KEY = "live"
DESK_STATE_KEY = "desk"  # the trading desk's persisted state (``nq_ray.agents.service.state``)
_ABSENT = "<absent>"


@dataclass(frozen=True)
class LiveOverlay:
    """The merged live patch (``patch``, the form ``PATCH /api/config`` takes), the start-up value each
    patched key had when it was patched (``base``, by dotted path) and the overlay's ``version`` (0: none)."""

    version: int = 0
    patch: dict[str, Any] = field(default_factory=dict)
    base: dict[str, Any] = field(default_factory=dict)
    change_id: int | None = None
    updated_at: datetime | None = None


@dataclass(frozen=True)
class Halt:
    """Whether the desk is halted (kill switch or automatic halt) and why."""

    halted: bool = False
    reason: str | None = None
    by: str | None = None
    at: str | None = None


@dataclass(frozen=True)
class LiveState:
    overlay: LiveOverlay
    halt: Halt


# ---- patches as leaves ---------------------------------------------------------------------------


def leaves(patch: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """The leaf values of a merge patch by dotted path (a list or ``None`` is a leaf, a dict is not)."""
    out: dict[str, Any] = {}
    for k, v in patch.items():
        path = f"{prefix}.{k}" if prefix else str(k)
        if isinstance(v, dict) and v:
            out.update(leaves(v, path))
        else:
            out[path] = v
    return out


def _nest(flat: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for path, v in flat.items():
        node = out
        *head, last = path.split(".")
        for k in head:
            node = node.setdefault(k, {})
        node[last] = v
    return out


def merge_patches(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """``new`` merged into ``old`` key by key (``None`` is kept: in a live patch it sets a value to none)."""
    return _nest(leaves(old) | leaves(new))


def start_value(settings: Settings, path: str) -> Any:
    """The JSON value of ``path`` in ``settings`` (``llm.providers.<name>.<field>`` by provider name)."""
    node: Any = settings.model_dump(mode="json")
    keys = path.split(".")
    if keys[:2] == ["llm", "providers"] and len(keys) >= 3:
        match = [p for p in node["llm"]["providers"] if p.get("name") == keys[2]]
        node, keys = (match[0] if match else _ABSENT), keys[3:]
    for k in keys:
        if not isinstance(node, dict) or k not in node:
            return _ABSENT
        node = node[k]
    return node


def base_values(settings: Settings, patch: dict[str, Any]) -> dict[str, Any]:
    """For each leaf of ``patch``: its start-up value in ``settings`` (what the patch overrides)."""
    return {path: start_value(settings, path) for path in leaves(patch)}


def effective_settings(start: Settings, overlay: LiveOverlay) -> tuple[Settings, list[str]]:
    """``start`` (the start-up settings) with the overlay's patches applied, and the dotted paths left out
    because the start-up value changed since they were patched (the config file wins) or they no longer
    validate (e.g. a provider that is no longer configured)."""
    from nq_ray.config import live_patch

    if not overlay.patch:
        return start, []
    keep: dict[str, Any] = {}
    stale: list[str] = []
    for path, value in leaves(overlay.patch).items():
        if path in overlay.base and overlay.base[path] != start_value(start, path):
            stale.append(path)
        else:
            keep[path] = value
    try:
        out = start.merged(live_patch(start, _nest(keep))) if keep else start
    except Exception:  # one leaf no longer validates: apply them one by one and leave that one out
        out = start
        for path, value in keep.items():
            try:
                out = out.merged(live_patch(out, _nest({path: value})))
            except Exception as exc:
                log.warning("live setting %s=%r no longer applies: %s", path, value, exc)
                stale.append(path)
    if stale:
        log.warning("live settings left out (the start-up config changed them since): %s", sorted(stale))
    return out, sorted(stale)


# ---- the store -----------------------------------------------------------------------------------


def _overlay(row: LiveSettingsRow | None) -> LiveOverlay:
    if row is None:
        return LiveOverlay()
    return LiveOverlay(
        version=row.version,
        patch=dict(row.patch or {}),
        base=dict(row.base or {}),
        change_id=row.change_id,
        updated_at=row.updated_at,
    )


def _halt(value: dict[str, Any] | None) -> Halt:
    v = value or {}
    return Halt(
        halted=bool(v.get("halted")),
        reason=v.get("halt_reason"),
        by=v.get("halted_by"),
        at=v.get("halted_at"),
    )


async def read_overlay(repo: Repository) -> LiveOverlay:
    async with repo.sessions() as s:
        return _overlay(await s.get(LiveSettingsRow, LIVE_KEY))


async def read_halt(repo: Repository) -> Halt:
    async with repo.sessions() as s:
        row = await s.get(DeskStateRow, DESK_STATE_KEY)
        return _halt(row.value if row is not None else None)


async def read_live(repo: Repository) -> LiveState:
    """The overlay and the halt, read in one session."""
    async with repo.sessions() as s:
        live = await s.get(LiveSettingsRow, LIVE_KEY)
        desk = await s.get(DeskStateRow, DESK_STATE_KEY)
        return LiveState(overlay=_overlay(live), halt=_halt(desk.value if desk is not None else None))


async def live_version(repo: Repository) -> tuple[int, Halt]:
    """The overlay's version and the halt: what the broker reads before each order decision."""
    async with repo.sessions() as s:
        version = await s.scalar(select(LiveSettingsRow.version).where(LiveSettingsRow.key == LIVE_KEY))
        desk = await s.get(DeskStateRow, DESK_STATE_KEY)
        return int(version or 0), _halt(desk.value if desk is not None else None)


async def record_live_change(
    repo: Repository, *, at: datetime, actor: str, patch: dict[str, Any], base: dict[str, Any]
) -> tuple[int, int]:
    """Record an accepted live patch: its ``config_changes`` row and the merged overlay (``base``: the
    start-up value of each of its keys, ``base_values``), in one transaction. Returns (change id, the
    overlay's new version)."""
    async with repo.sessions() as s, s.begin():
        change = ConfigChangeRow(at=at, actor=actor[:64], patch=redact(patch))
        s.add(change)
        await s.flush()
        row = await s.get(LiveSettingsRow, LIVE_KEY, with_for_update=True)
        if row is None:
            row = LiveSettingsRow(key=LIVE_KEY, version=0, patch={}, base={}, updated_at=at)
            s.add(row)
        row.version = row.version + 1
        row.patch = merge_patches(dict(row.patch or {}), patch)
        row.base = {**dict(row.base or {}), **base}
        row.change_id = change.id
        row.updated_at = at
        return change.id, row.version


def read_live_sync(url: str) -> LiveState:
    """``read_live`` from sync code (an actor's ``__init__``; ``run_sync``); the store is migrated first
    (a fresh one has no overlay and no halt)."""

    async def go() -> LiveState:
        repo = await Repository.connect(url)
        try:
            return await read_live(repo)
        finally:
            await repo.close()

    return run_sync(go)
