"""Shared fixtures: one small Ray instance per test session, offline by default, the sample bars."""

from __future__ import annotations

import os
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("RAY_DEDUP_LOGS", "0")

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def _no_internet(host: object, *args: object, **kwargs: object) -> object:
    raise OSError(f"tests run offline: connection to {host!r} blocked by tests/conftest.py")


# pytest-xdist (`make test` runs `-n 2 --dist loadfile`): each test file stays on one worker, so its
# module-scoped fixtures are built once, and the files in SERIAL_PATHS form one unit that one worker runs
# one test after another, because they start Ray Serve (HAProxy and replica ports from fixed ranges),
# `nq-ray up`, Chromium or a Ray cluster of their own; that unit is handed out first. (A scheduler of our
# own, not `--dist loadgroup`: xdist 3.8 marks a group by rewriting `item._nodeid`, which pytest 9 no
# longer reads.) Every worker has its own Ray session (`ray_session`, its own temp dir) and its own
# tmp_path tree; PostgreSQL databases and Redis namespaces are unique per test.
SERIAL_UNIT = "serve"
SERIAL_PATHS = (
    "tests/serve/",
    "tests/ui/",
    "tests/test_cli.py",
    "tests/test_cli_trade.py",
    "tests/deploy/test_multinode.py",
    "tests/llm/test_serve_llm_cpu.py",
)


SUMMARY_PROPERTY = "summary"  # record_property("summary", line): shown at the end of the run (fault matrix)
_summaries: list[str] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Collect the ``summary`` lines tests record (also from xdist workers, whose reports carry them)."""
    if report.when == "call":
        _summaries.extend(f"{report.nodeid}: {v}" for k, v in report.user_properties if k == SUMMARY_PROPERTY)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Print the recorded summaries (the fault matrix's counts) whatever the verbosity."""
    if _summaries:
        terminalreporter.section("recorded summaries")
        for line in _summaries:
            terminalreporter.write_line(line)


def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object | None:
    if config.getvalue("dist") != "loadfile":
        return None  # xdist's own scheduler
    from xdist.scheduler import LoadScopeScheduling

    class FilesWithSerialUnit(LoadScopeScheduling):
        """``--dist loadfile`` with the SERIAL_PATHS files as one unit of work."""

        def _split_scope(self, nodeid: str) -> str:
            path = nodeid.split("::", 1)[0]
            return SERIAL_UNIT if path.startswith(SERIAL_PATHS) else path

        def _assign_work_unit(self, node: Any) -> None:
            if SERIAL_UNIT in self.workqueue:  # the longest unit first; the other workers fill in around it
                self.workqueue.move_to_end(SERIAL_UNIT, last=False)
            super()._assign_work_unit(node)

    return FilesWithSerialUnit(config, log)


@pytest.fixture(autouse=True)
def _block_remote_hosts(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Refuse DNS look-ups of anything but loopback unless the test is marked ``network``."""
    if request.node.get_closest_marker("network"):
        return
    real = socket.getaddrinfo

    def guarded(host, *args, **kwargs):  # type: ignore[no-untyped-def]
        if host in (None, "localhost", "127.0.0.1", "::1", "0.0.0.0") or str(host).startswith("127."):
            return real(host, *args, **kwargs)
        return _no_internet(host)

    monkeypatch.setattr(socket, "getaddrinfo", guarded)


@pytest.fixture(scope="session")
def ray_session() -> Iterator[object]:
    """One local Ray instance (2 CPUs) shared by every test that asks for it, started as nq-ray starts one
    (``connect``: Ray's token auth on, the token in a temp data dir, every port on loopback)."""
    import ray

    from nq_ray.config import Settings
    from nq_ray.runtime.cluster import connect, shutdown

    if not ray.is_initialized():
        tmp = tempfile.mkdtemp(prefix="nqr", dir="/tmp")
        settings = Settings(data={"data_dir": f"{tmp}/data"})
        connect(settings=settings, num_cpus=2, dashboard=False, temp_dir=tmp)
    yield ray
    shutdown()


@pytest.fixture(scope="session")
def nq_5m() -> pd.DataFrame:
    """The bundled real NQ 5-minute bars (13,767 rows, 2026-02-17 → 2026-04-28)."""
    from nq_ray.data import load_bars

    return load_bars("NQ", "5m", source="sample")


@pytest.fixture(scope="session")
def es_5m() -> pd.DataFrame:
    from nq_ray.data import load_bars

    return load_bars("ES", "5m", source="sample")


@pytest.fixture(scope="session")
def nq_daily() -> pd.DataFrame:
    from nq_ray.data import load_bars

    return load_bars("NQ", "1d", source="sample")


@pytest.fixture(scope="session")
def postgres_server() -> None:
    """The local PostgreSQL (127.0.0.1:5432), started with ``../shared/services.sh`` when it is down."""
    from nq_ray.store.testing import ensure_postgres

    ensure_postgres()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty real database: a SQLite file, or a throw-away PostgreSQL database dropped afterwards."""
    from nq_ray.store.testing import temp_database

    if request.param == "postgresql":
        request.getfixturevalue("postgres_server")
    with temp_database(request.param, tmp_path) as url:
        yield url
