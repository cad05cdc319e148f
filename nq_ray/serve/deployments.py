"""The Serve deployment of the app and the builders ``serve run`` / ``serve deploy`` import.

``serve.ingress(build_app)`` takes the builder, not an app object: a FastAPI app with a mounted FastMCP
app does not pickle, so each replica builds its own (stateless MCP, so any replica answers any call).
"""

from __future__ import annotations

from typing import Any

from ray import serve

from nq_ray.config import Settings, load_settings
from nq_ray.errors import ConfigError

APP_NAME = "nq"
DEPLOYMENT_NAME = "NQApi"


def grpc_on_loopback() -> bool:
    """In a replica on a loopback-only node, pin the replica's inter-deployment gRPC server to 127.0.0.1.

    Serve 2.60 starts it on ``[::]:0`` — every interface — with no setting (``Replica._on_initialized``
    calls ``add_port_to_grpc_server(server, "[::]:0")`` after the app is built). When the node itself is
    on loopback (``ray.host``, the default; see ``nq_ray.runtime.cluster``) no other node can call it, so
    the name the replica module calls is wrapped, in this replica process only, to bind 127.0.0.1. On a
    node with a routable IP (a real cluster) it stays as Serve has it. Whether it pinned."""
    import ray
    from ray.serve._private import replica

    from nq_ray.runtime.cluster import is_loopback

    original = replica.add_port_to_grpc_server
    if getattr(original, "nq_loopback", False):
        return True
    if not is_loopback(ray.util.get_node_ip_address()):
        return False

    def add_port(server: Any, address: str) -> Any:
        if address.startswith("[::]:"):
            address = "127.0.0.1:" + address.rsplit(":", 1)[1]
        return original(server, address)

    add_port.nq_loopback = True  # type: ignore[attr-defined]
    replica.add_port_to_grpc_server = add_port
    return True


def _builder(settings: Settings, app_kwargs: dict[str, Any], ui_on_demand: bool = False) -> Any:
    def make() -> Any:
        from nq_ray.serve.app import build_app  # here, in the replica: the driver need not import it

        grpc_on_loopback()
        app = build_app(settings, **app_kwargs)
        if ui_on_demand:
            from nq_ray.serve.ui_app import UiOnDemand

            return UiOnDemand(app, settings)
        return app

    return make


def api_deployment(settings: Settings | None = None, *, ui_on_demand: bool = False, **app_kwargs: Any) -> Any:
    """The bound deployment: ``serve.api_replicas`` replicas of ``serve.replica_num_cpus`` CPUs each;
    ``app_kwargs`` go to ``build_app`` in each replica (cors_origins, mcp_responses, actor names). With
    ``ui_on_demand`` the web UI app is deployed on the first visit to ``/ui`` (``UiOnDemand``)."""
    settings = settings or load_settings()

    @serve.deployment(
        name=DEPLOYMENT_NAME,
        num_replicas=settings.serve.api_replicas,
        ray_actor_options={"num_cpus": settings.serve.replica_num_cpus},
        max_ongoing_requests=200,
        health_check_period_s=10,
        graceful_shutdown_wait_loop_s=0.5,
        graceful_shutdown_timeout_s=2,
    )
    @serve.ingress(_builder(settings, app_kwargs, ui_on_demand))
    class NQApi:
        """Ingress replica: REST API, WebSocket, health, metrics and MCP at /mcp/."""

    return NQApi.bind()


def app_builder(args: dict[str, Any] | None = None) -> Any:
    """``import_path: nq_ray.serve.deployments:app_builder`` for ``serve run`` / ``serve deploy``.

    ``args`` (from the Serve config) may hold ``cors_origins`` and ``mcp_responses`` (auto | json | sse);
    every other setting comes from the environment / ``NQ_CONFIG_FILE`` as usual."""
    args = dict(args or {})
    return api_deployment(
        load_settings(),
        cors_origins=args.get("cors_origins"),
        mcp_responses=_mcp_responses(args.get("mcp_responses", "auto")),
    )


def _mcp_responses(value: Any) -> Any:
    from nq_ray.serve.mcp_http import MCP_RESPONSES

    if value not in MCP_RESPONSES:
        raise ConfigError(
            f"serve config args.mcp_responses must be one of {', '.join(MCP_RESPONSES)}, not {value!r}",
            field="mcp_responses",
        )
    return value
