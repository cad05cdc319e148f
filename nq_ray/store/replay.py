"""The market replay's shared state (``nq_ray.market.clock.ReplayState``) in the store: one
``desk_state`` row, key ``replay_clock``. The process that drives the replay writes it on every change
(start, pause, resume, speed, jump, each bar released); every other process reads it to tell the same
time (``nq_ray.market.clock.ReplayClock``), and a restarted runtime reads it to continue the replay where
it stopped."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from nq_ray.market.clock import ReplayState
from nq_ray.store.models import DeskStateRow
from nq_ray.store.repository import Repository

KEY = "replay_clock"


async def read_replay(repo: Repository) -> tuple[ReplayState | None, dict[str, Any]]:
    """The stored replay state (``None`` when no replay ever ran on this store) and the driver's
    progress stored beside it (``released``: the last released bar time per symbol)."""
    async with repo.sessions() as s:
        row = await s.get(DeskStateRow, KEY)
        if row is None:
            return None, {}
        value = dict(row.value)
    progress = value.pop("progress", {}) or {}
    return ReplayState.model_validate(value), progress


async def read_replay_state(repo: Repository) -> ReplayState | None:
    return (await read_replay(repo))[0]


async def write_replay(repo: Repository, state: ReplayState, progress: dict[str, Any] | None = None) -> None:
    """Store ``state`` (and the driver's ``progress`` when given; else the stored progress is kept)."""
    async with repo.sessions() as s, s.begin():
        row = await s.get(DeskStateRow, KEY)
        value: dict[str, Any] = state.model_dump(mode="json")
        if progress is not None:
            value["progress"] = progress
        elif row is not None:
            value["progress"] = dict(row.value).get("progress", {})
        now = datetime.now(UTC)
        if row is None:
            s.add(DeskStateRow(key=KEY, value=value, updated_at=now))
        else:
            row.value, row.updated_at = value, now
