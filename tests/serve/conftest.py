"""Fixtures for the Serve tests: settings with a token, the app in-process (no Ray), free ports."""

from __future__ import annotations

import contextlib
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from nq_ray.config import Settings

TOKEN = "test-token-123"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(autouse=True)
def _wall_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """The Serve tests that build apps by hand run on the wall clock unless they ask for a replay
    (``replay.clock="replay"`` after ``prepare_replay``, as ``nq-ray up`` does before it deploys); the
    tests that start ``nq-ray up`` itself (``UpInstance``) get the command's own default."""
    monkeypatch.setenv("NQ_REPLAY__CLOCK", "wall")


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data={"data_dir": str(tmp_path / "data")}, mcp={"auth_token": TOKEN})


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    """The whole app in this process without Ray: jobs in-process, audit straight to the temp store."""
    from nq_ray.serve.app import build_app

    app = build_app(settings, use_actors=False, cors_origins=["https://ui.example"])
    with TestClient(app, base_url="http://127.0.0.1") as c:
        yield c


class Running:
    """The Serve app deployed by ``deployed``: its base URL, settings and actor names."""

    def __init__(self, base: str, settings: Settings, names: dict[str, str]) -> None:
        self.base, self.settings, self.names = base, settings, names

    @property
    def mcp_url(self) -> str:
        return self.base + "/mcp/"

    def post(self, path: str, body: Any) -> Any:
        import httpx

        return httpx.post(self.base + path, json=body, headers=AUTH, timeout=60)

    def get(self, path: str) -> Any:
        import httpx

        return httpx.get(self.base + path, headers=AUTH, timeout=60)


@contextlib.contextmanager
def deployed(ray_session: Any, tmp: Path, tag: str, **settings: Any) -> Iterator[Running]:
    """The real Serve app (2 replicas, a token) on a free loopback port with actors of its own, named
    ``<actor>_<tag>_<suffix>``; afterwards the app is deleted and every actor with that suffix killed (the
    desk's agent actors too). ``settings`` are extra ``Settings`` sections."""
    from ray import serve

    from nq_ray.serve.runtime import APP_NAME, deploy

    port = free_port()
    s = Settings(
        data={"data_dir": str(tmp / "data")},
        mcp={"auth_token": TOKEN},
        serve={"host": "127.0.0.1", "port": port, "api_replicas": 2, "replica_num_cpus": 0.1},
        **({"replay": {"clock": "wall"}} | settings),  # a replay test prepares its replay first
    )
    suffix = uuid.uuid4().hex[:8]
    names = {
        "broker_name": f"paper_broker_{tag}_{suffix}",
        "registry_name": f"tool_registry_{tag}_{suffix}",
        "desk_name": f"trading_desk_{tag}_{suffix}",
    }
    serve.shutdown()  # a Serve left by an earlier test module would keep its own port
    deploy(s, **names)
    try:
        yield Running(f"http://127.0.0.1:{port}", s, names)
    finally:
        serve.delete(APP_NAME)
        serve.shutdown()
        named = {a["name"] for a in ray_session.util.list_named_actors(all_namespaces=True)}
        for name in {n for n in named if suffix in n}:
            with contextlib.suppress(ValueError):
                ray_session.kill(ray_session.get_actor(name, namespace="nq"))
