"""``nq-ray up`` as a user runs it, in a subprocess of its own, for the runtime tests and the start-up
benchmark: start it, await ``/health``, take stock of its processes, memory and listening ports, send
Ctrl-C (once or twice), and report what it left behind.

Each instance gets its own HTTP port, data dir, token and Ray temp dir (``RAY_TMPDIR``), so two of them
on one host are two separate systems. The stock-taking covers the ``up`` process, every descendant of it
(Ray's GCS, raylet, workers, the Serve actors and HAProxy) and any process whose command line names the
instance's Ray temp dir (a worker re-parented to init after its raylet died).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from nq_ray.testing.wait import wait_until

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    """A TCP port free on loopback now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Snapshot:
    """The instance's processes (pid → name), their total RSS and the TCP ports they listen on."""

    processes: dict[int, str]
    rss_bytes: int
    listening: dict[int, str] = field(default_factory=dict)  # port → "address (process name)"

    @property
    def count(self) -> int:
        return len(self.processes)


class UpInstance:
    """One ``python -m nq_ray.cli up`` in a new session (its own process group)."""

    def __init__(
        self,
        *,
        port: int | None = None,
        token: str | None = None,
        root: Path | None = None,
        args: tuple[str, ...] = (),
        env: dict[str, str] | None = None,
    ) -> None:
        self.port = port or free_port()
        self.token = token
        self.root = Path(root or tempfile.mkdtemp(prefix="nqup", dir="/tmp"))
        self.data_dir = self.root / "data"
        # Ray puts its session under RAY_TMPDIR/ray; unix socket paths must stay short (108 bytes).
        self.ray_tmp = Path(tempfile.mkdtemp(prefix="nqr", dir="/tmp"))
        self.log_path = self.root / "up.log"
        self.args = args
        self.extra_env = env or {}
        self.proc: subprocess.Popen[bytes] | None = None
        self.started_at = 0.0
        self._seen: dict[int, tuple[float, str]] = {}  # pid → (create_time, name), every process seen
        self._ports: set[int] = set()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def environ(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("NQ_", "RAY_"))}
        env.update(
            PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT / "ui")]),
            NQ_SERVE__PORT=str(self.port),
            NQ_DATA__DATA_DIR=str(self.data_dir),
            RAY_TMPDIR=str(self.ray_tmp),
            RAY_USAGE_STATS_ENABLED="0",
            PYTHONUNBUFFERED="1",
        )
        if self.token:
            env["NQ_MCP__AUTH_TOKEN"] = self.token
        env.update(self.extra_env)
        return env

    def start(self) -> UpInstance:
        self.root.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("wb")
        self.started_at = time.monotonic()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "nq_ray.cli", "up", *self.args],
            cwd=ROOT,
            env=self.environ(),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        return self

    def output(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def health(self) -> int | None:
        """``/health``'s status code, or None while nothing answers."""
        import httpx

        try:
            return httpx.get(self.base + "/health", headers=self.headers, timeout=5).status_code
        except httpx.HTTPError:
            return None

    def wait_healthy(self, timeout_s: float = 120.0) -> float:
        """Seconds from ``start`` until ``/health`` answers 200 (fails early if ``up`` exits)."""

        def ready() -> bool:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"nq-ray up exited with {self.proc.returncode}:\n{self.output()[-4000:]}"
                )
            return self.health() == 200

        wait_until(ready, timeout_s=timeout_s, message=f"{self.base}/health answers 200", interval_s=0.1)
        return time.monotonic() - self.started_at

    def snapshot(self) -> Snapshot:
        """Every process of this instance now, with their RSS and listening ports (remembered for
        ``leftovers``)."""
        procs = self._processes()
        rss, names = 0, {}
        for p in procs:
            try:
                rss += p.memory_info().rss
                names[p.pid] = p.name()
                self._seen[p.pid] = (p.create_time(), p.name())
            except psutil.Error:
                continue
        listening = {}
        for c in psutil.net_connections(kind="tcp"):
            if c.status == psutil.CONN_LISTEN and c.pid in names:
                listening[c.laddr.port] = f"{c.laddr.ip} ({names[c.pid]})"
        self._ports |= set(listening)
        return Snapshot(names, rss, listening)

    def _processes(self) -> list[psutil.Process]:
        out: dict[int, psutil.Process] = {}
        if self.proc is not None:
            try:
                root = psutil.Process(self.proc.pid)
                out[root.pid] = root
                out.update({c.pid: c for c in root.children(recursive=True)})
            except psutil.NoSuchProcess:
                pass
        marker = str(self.ray_tmp)
        for p in psutil.process_iter(["pid", "cmdline"]):
            try:
                if any(marker in part for part in (p.info["cmdline"] or ())):
                    out.setdefault(p.pid, p)
            except psutil.Error:
                continue
        return list(out.values())

    def interrupt(self, times: int = 1, gap_s: float = 0.5) -> None:
        """Ctrl-C: SIGINT to the ``up`` process group (``times`` of them, ``gap_s`` apart)."""
        assert self.proc is not None
        for i in range(times):
            if self.proc.poll() is not None:
                return
            if i:
                time.sleep(gap_s)  # a user pressing Ctrl-C again: no event to await
            os.killpg(self.proc.pid, signal.SIGINT)  # what a terminal does: the whole foreground group

    def wait_exit(self, timeout_s: float = 60.0) -> float:
        """Seconds from now until the ``up`` process exits (raises ``subprocess.TimeoutExpired``)."""
        assert self.proc is not None
        t0 = time.monotonic()
        self.proc.wait(timeout=timeout_s)
        return time.monotonic() - t0

    def leftovers(self, timeout_s: float = 0.0) -> tuple[list[str], list[str]]:
        """Processes of this instance still alive and ports it listened on still listening, waiting up to
        ``timeout_s`` for them to go."""

        def remaining() -> tuple[list[str], list[str]]:
            alive = []
            for pid, (created, name) in self._seen.items():
                try:
                    if psutil.Process(pid).create_time() == created:
                        alive.append(f"{pid} {name}")
                except psutil.NoSuchProcess:
                    continue
            current = {p.pid for p in self._processes()}
            alive += [f"{pid} (new)" for pid in current - set(self._seen)]
            ours = current | {int(a.split()[0]) for a in alive}
            # a port this instance listened on, still listened on by one of its processes (or by a
            # process this user may not see); another Ray on the host may take Ray's fixed ports
            ports = sorted(
                f"{c.laddr.ip}:{c.laddr.port}"
                for c in psutil.net_connections(kind="tcp")
                if c.status == psutil.CONN_LISTEN
                and c.laddr.port in self._ports | {self.port}
                and (c.pid is None or c.pid in ours or c.laddr.port == self.port)
            )
            return alive, ports

        if timeout_s > 0:
            with contextlib.suppress(AssertionError):
                wait_until(
                    lambda: remaining() == ([], []),
                    timeout_s=timeout_s,
                    message="no process or port of the instance remains",
                    interval_s=0.2,
                )
        return remaining()

    def kill(self) -> None:
        """Hard clean-up after a test: SIGKILL every process of the instance still alive, then remove
        its run dir and Ray temp dir (its log, ``up.log``, stays in ``root``)."""
        procs = self._processes()
        for pid, (created, _name) in self._seen.items():
            try:
                p = psutil.Process(pid)
                if p.create_time() == created:
                    procs.append(p)
            except psutil.NoSuchProcess:
                continue
        for p in procs:
            try:
                p.kill()
            except psutil.Error:
                continue
        psutil.wait_procs(procs, timeout=10)
        # what a killed `up` could not remove: its run dir (if still its own), Ray's session files
        run_dir = Path(tempfile.gettempdir()) / f"nq-ray-{os.getuid()}" / str(self.port)
        with contextlib.suppress(OSError, ValueError):
            if self.proc and json.loads((run_dir / "up.json").read_text())["pid"] == self.proc.pid:
                shutil.rmtree(run_dir, ignore_errors=True)
        shutil.rmtree(self.ray_tmp, ignore_errors=True)

    def __enter__(self) -> UpInstance:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.kill()
