"""The local Ray's processes, recorded so that a Ray left running by a killed nq-ray process is found and
stopped: each local start (``nq_ray.runtime.cluster.connect``) writes ``<data_dir>/ray_sessions/<pid>.json``
— its own pid and the Ray processes it started, with their start times — and removes it on a clean stop.
The next start with the same data dir finds records whose owner is gone but some of whose processes are
not (``stale_sessions``) and stops them (``clean_stale_sessions``); see docs/deployment.md."""

from __future__ import annotations

import atexit
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nq_ray.errors import ConfigError

if TYPE_CHECKING:
    from nq_ray.config import Settings

SESSIONS_DIR = "ray_sessions"
log = logging.getLogger(__name__)
_session_records: list[Path] = []  # the records this process wrote


@dataclass(frozen=True)
class StaleSession:
    """A Ray that an nq-ray process (``owner_pid``, now gone) started for this data dir and never shut
    down: its processes still alive (``pids``, ``names``)."""

    record: Path
    owner_pid: int
    gcs_address: str | None
    session_dir: str | None
    pids: tuple[int, ...] = field(default_factory=tuple)
    names: tuple[str, ...] = field(default_factory=tuple)

    def describe(self) -> str:
        procs = ", ".join(f"{n} {p}" for n, p in zip(self.names, self.pids, strict=True))
        return f"a Ray left by nq-ray pid {self.owner_pid} (GCS {self.gcs_address}): {procs}"


# ---- the local Ray's processes --------------------------------------------------------------------------


def _sessions_dir(settings: Settings) -> Path:
    return settings.data.data_dir / SESSIONS_DIR


def record_session(settings: Settings, gcs_address: str | None, session_dir: str | None) -> Path:
    """``<data_dir>/ray_sessions/<pid>.json``: this process and the Ray processes it started."""
    import psutil

    me = psutil.Process()
    procs = [
        {"pid": p.pid, "create_time": p.create_time(), "name": p.name()} for p in me.children(recursive=True)
    ]
    record = {
        "owner": {"pid": me.pid, "create_time": me.create_time()},
        "gcs_address": gcs_address,
        "session_dir": session_dir,
        "processes": procs,
    }
    path = _sessions_dir(settings) / f"{me.pid}.json"
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.write_text(json.dumps(record), encoding="utf-8")
    atexit.register(_forget_session, path)
    _session_records.append(path)
    return path


def _forget_session(path: Path) -> None:
    path.unlink(missing_ok=True)


def forget_sessions() -> None:
    """Remove the records this process wrote (its Ray was shut down cleanly)."""
    while _session_records:
        _forget_session(_session_records.pop())


def _alive(pid: int, create_time: float) -> Any | None:
    """The ``psutil.Process`` ``pid`` if it is still the process recorded (same start time), else None."""
    import psutil

    try:
        proc = psutil.Process(pid)
        if abs(proc.create_time() - create_time) > 0.01 or proc.status() == psutil.STATUS_ZOMBIE:
            return None
        return proc
    except psutil.Error:
        return None


def stale_sessions(settings: Settings) -> list[StaleSession]:
    """The Rays that nq-ray processes started for this data dir and left running when they died
    (SIGKILL, a crash): the owner is gone, some of its Ray processes are not. Records with nothing left
    alive are removed; live owners' Rays are not stale."""
    out: list[StaleSession] = []
    folder = _sessions_dir(settings)
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
            owner = record["owner"]
            procs = record["processes"]
        except (OSError, ValueError, KeyError, TypeError):
            path.unlink(missing_ok=True)
            continue
        if _alive(owner["pid"], owner["create_time"]) is not None:
            continue
        alive = [(p["pid"], p["name"]) for p in procs if _alive(p["pid"], p["create_time"]) is not None]
        if not alive:
            path.unlink(missing_ok=True)
            continue
        out.append(
            StaleSession(
                record=path,
                owner_pid=owner["pid"],
                gcs_address=record.get("gcs_address"),
                session_dir=record.get("session_dir"),
                pids=tuple(p for p, _ in alive),
                names=tuple(n for _, n in alive),
            )
        )
    return out


def clean_stale_sessions(settings: Settings, *, timeout_s: float = 10.0) -> list[StaleSession]:
    """Stop the ``stale_sessions`` of this data dir (SIGTERM, then SIGKILL after ``timeout_s``) and drop
    their records; what was stopped. ``ConfigError`` naming the pids when they cannot be stopped."""
    import psutil

    stopped = []
    for stale in stale_sessions(settings):
        procs = [p for p in (psutil.Process(pid) for pid in stale.pids if psutil.pid_exists(pid))]
        try:
            for p in procs:
                p.terminate()
            _, left = psutil.wait_procs(procs, timeout=timeout_s)
            for p in left:
                p.kill()
            psutil.wait_procs(left, timeout=timeout_s)
        except psutil.AccessDenied:
            pids = " ".join(map(str, stale.pids))
            raise ConfigError(
                f"{stale.describe()} is still running and cannot be stopped from here; stop it with "
                f"`kill {pids}`",
                pids=list(stale.pids),
            ) from None
        except psutil.NoSuchProcess:
            pass
        stale.record.unlink(missing_ok=True)
        log.warning("stopped %s", stale.describe())
        stopped.append(stale)
    return stopped
