"""The web UI as its own Serve application: ``nq-ui`` at ``/ui``, one replica.

Gradio's queue keeps per-session state in the replica that served the page, and Serve has no session
affinity, so the UI runs as exactly one replica beside the multi-replica API app (with two replicas
``queue/data`` 404s). ``serve.ingress`` takes a builder: each replica mounts the Gradio app with
``gr.mount_gradio_app`` itself (Ray's ``GradioServer`` answers 500 with gradio 6.31). The UI talks to the
API over HTTP (``api_url``, by default the API of these settings), never to the core. When the API has a
bearer token the UI asks for it too (any user name, the token as password), so serving the UI does not
open the API to people who could not call it.
"""

from __future__ import annotations

import threading
from typing import Any

from ray import serve

from nq_ray.config import Settings, load_settings

UI_APP_NAME = "nq-ui"
UI_ROUTE_PREFIX = "/ui"
UI_DEPLOYMENT_NAME = "NQUi"


def api_url_for(settings: Settings) -> str:
    """Where the UI finds the API: the Serve HTTP address of these settings (0.0.0.0 → loopback)."""
    host = settings.serve.host
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    if ":" in shown and not shown.startswith("["):
        shown = f"[{shown}]"
    return f"http://{shown}:{settings.serve.port}"


def _builder(api_url: str, token: str | None) -> Any:
    def make() -> Any:
        import hmac

        from fastapi import FastAPI
        from nq_ray_ui import mount

        from nq_ray.serve.deployments import grpc_on_loopback

        grpc_on_loopback()

        def auth(_user: str, password: str) -> bool:  # Gradio's login form; constant-time compare
            return token is not None and hmac.compare_digest(password.encode(), token.encode())

        return mount(FastAPI(), api_url, token, path="/", auth=auth if token else None)

    return make


def ui_deployment(settings: Settings | None = None, api_url: str | None = None) -> Any:
    """The bound UI deployment: one replica of ``serve.replica_num_cpus`` CPUs."""
    settings = settings or load_settings()
    token = settings.mcp.auth_token.get_secret_value() if settings.mcp.auth_token else None

    @serve.deployment(
        name=UI_DEPLOYMENT_NAME,
        num_replicas=1,
        ray_actor_options={"num_cpus": settings.serve.replica_num_cpus},
        max_ongoing_requests=100,
        health_check_period_s=10,
        graceful_shutdown_wait_loop_s=0.5,
        graceful_shutdown_timeout_s=2,
    )
    @serve.ingress(_builder(api_url or api_url_for(settings), token))
    class NQUi:
        """The Gradio web UI (a client of the API app)."""

    return NQUi.bind()


def deploy_ui(settings: Settings, api_url: str | None = None, *, blocking: bool = True) -> str:
    """Deploy (or update) ``nq-ui`` at ``/ui`` on the running Serve instance; its URL. With
    ``blocking=False`` it returns once Serve has the app, without waiting for the replica (Gradio takes
    seconds to import): ``nq-ray up`` answers ``/health`` meanwhile and ``/ui/`` a little later."""
    from ray.serve.api import _run
    from ray.serve.schema import LoggingConfig

    _run(
        ui_deployment(settings, api_url),
        name=UI_APP_NAME,
        route_prefix=UI_ROUTE_PREFIX,
        logging_config=LoggingConfig(log_level="WARNING", enable_access_log=False),
        _blocking=blocking,
    )
    return api_url_for(settings) + UI_ROUTE_PREFIX + "/"


STARTING_PAGE = (
    b"<!doctype html><html><head><meta http-equiv='refresh' content='3'><title>nq-ray</title></head>"
    b"<body><p>The nq-ray web UI is starting; this page reloads itself.</p></body></html>"
)


class UiOnDemand:
    """The API app, plus the UI started on its first visit (``nq-ray up``): a request for ``/ui`` reaches
    the API app only while no ``nq-ui`` app serves that route; it deploys ``nq-ui`` (once per replica,
    in a thread, not waiting for its replica) and answers 503 with ``Retry-After`` and a page that
    reloads itself. Everything else, lifespan included, goes to the API app unchanged. The UI's replica
    (Gradio, about 270 MB) is then only there for people who open it."""

    def __init__(self, app: Any, settings: Settings) -> None:
        self.app, self.settings = app, settings
        self._started = threading.Event()
        self._lock = threading.Lock()

    def _start(self) -> None:
        with self._lock:
            if self._started.is_set():
                return
            self._started.set()
        threading.Thread(target=self._deploy, name="nq-ui-deploy", daemon=True).start()

    def _deploy(self) -> None:
        try:
            deploy_ui(self.settings, blocking=False)
        except Exception:  # the next visit tries again
            import logging

            logging.getLogger(__name__).exception("starting the web UI failed")
            self._started.clear()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        path = scope.get("path", "")
        if scope["type"] == "http" and (path == UI_ROUTE_PREFIX or path.startswith(UI_ROUTE_PREFIX + "/")):
            self._start()
            from starlette.responses import HTMLResponse

            headers = {"retry-after": "3", "cache-control": "no-store"}
            await HTMLResponse(STARTING_PAGE, status_code=503, headers=headers)(scope, receive, send)
            return
        await self.app(scope, receive, send)


def app_builder(args: dict[str, Any] | None = None) -> Any:
    """``import_path: nq_ray.serve.ui_app:app_builder`` for ``serve run`` / ``serve deploy``
    (``args.api_url`` overrides the API address; everything else comes from the settings)."""
    args = dict(args or {})
    return ui_deployment(load_settings(), api_url=args.get("api_url"))
