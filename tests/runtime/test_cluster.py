"""``nq_ray.runtime.cluster``: ``connect`` is the one ``ray.init`` and is idempotent; ``named_actor`` makes
named, detached, restartable actors."""

from __future__ import annotations

import re
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

from nq_ray.runtime.cluster import NAMESPACE, actor_options, connect, named_actor

ROOT = Path(__file__).resolve().parents[2]


def test_ray_init_is_called_in_one_place_only() -> None:
    out = subprocess.run(
        ["grep", "-rn", "ray.init(", "nq_ray", "ui"], cwd=ROOT, capture_output=True, text=True
    ).stdout
    places = [line for line in out.splitlines() if line.strip()]
    code = [p for p in places if not p.startswith("nq_ray/testing/vllm_cpu.py:")]  # another venv's script
    assert [re.sub(r":\d+:.*", "", p) for p in code] == ["nq_ray/runtime/cluster.py"], places


def test_connect_is_idempotent_when_ray_is_up(ray_session: Any) -> None:
    first = connect()
    second = connect("some-address-it-must-not-dial")

    assert first.already and second.already
    assert not (first.started or first.joined or second.started or second.joined)
    assert ray_session.is_initialized()


def test_actor_options_are_the_project_recipe() -> None:
    opts = actor_options("paper_broker", max_task_retries=5, num_cpus=0)

    assert opts == {
        "name": "paper_broker",
        "namespace": NAMESPACE,
        "lifetime": "detached",
        "get_if_exists": True,
        "max_restarts": -1,
        "max_task_retries": 5,
        "num_cpus": 0,
    }
    assert "max_task_retries" not in actor_options("x")


def test_named_actor_is_detached_restartable_and_shared(ray_session: Any) -> None:
    import threading

    import ray
    from ray._private.state import actors  # the GCS actor table (the state API needs the dashboard)

    cls = ray.remote(num_cpus=0)(threading.Event)  # importable: worker processes load it by name
    name = f"recipe_test_{uuid.uuid4().hex[:8]}"
    a = named_actor(cls, name)
    try:
        b = named_actor(cls, name)  # get_if_exists: the same actor
        ray.get(a.set.remote())
        assert ray.get(b.is_set.remote()) is True
        assert ray.get_actor(name, namespace=NAMESPACE)._actor_id == a._actor_id
        assert actors(a._actor_id.hex())["IsDetached"] is True
        ray.kill(a, no_restart=False)  # max_restarts=-1: it comes back, a fresh __init__
        deadline = time.monotonic() + 60

        def restarted() -> bool:
            row = actors(a._actor_id.hex())
            return row["NumRestarts"] >= 1 and row["State"] == "ALIVE"

        while not restarted() and time.monotonic() < deadline:
            time.sleep(0.1)  # polls the GCS actor table for the restart (the condition, not a guess)
        assert restarted()
        assert ray.get(a.is_set.remote(), timeout=60) is False
    finally:
        ray.kill(a, no_restart=True)
