"""Fixtures for the Serve tests: settings with a token, the app in-process (no Ray), free ports."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from nq_ray.config import Settings

TOKEN = "test-token-123"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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
