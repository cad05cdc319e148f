"""``nq_ray.serve.replica_sync``: a replica pushes its metrics snapshot and takes newer settings only."""

from __future__ import annotations

from typing import Any

from nq_ray.config import Settings
from nq_ray.serve.metrics import Metrics
from nq_ray.serve.replica_sync import ReplicaSync


class Context:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings


class Actor:
    """The ``tool_registry`` actor's ``sync`` as an awaitable ``.remote``: records pushes, answers a
    scripted (version, settings)."""

    def __init__(self, answers: list[tuple[int, Settings | None]]) -> None:
        self.answers, self.pushes = answers, []
        self.sync = self

    async def remote(self, replica: str, snapshot: Any, version: int) -> tuple[int, Settings | None]:
        self.pushes.append((replica, version))
        return self.answers.pop(0)


async def test_push_sends_the_snapshot_and_takes_only_newer_settings() -> None:
    old, new, stale = Settings(), Settings(data={"data_dir": "/tmp/new"}), Settings(data={"data_dir": "/x"})
    context, metrics = Context(old), Metrics()
    actor = Actor([(2, new), (1, stale), (2, None)])
    sync = ReplicaSync(actor, context, metrics)  # type: ignore[arg-type]

    await sync.push()
    taken = context.settings
    await sync.push()
    await sync.push()

    assert taken is new and context.settings is new and sync.version == 2
    assert actor.pushes == [(metrics.replica, 0), (metrics.replica, 2), (metrics.replica, 2)]


async def test_without_the_actor_start_is_a_no_op() -> None:
    sync = ReplicaSync(None, Context(Settings()), Metrics())  # type: ignore[arg-type]

    sync.start()
    await sync.stop()

    assert sync._task is None
