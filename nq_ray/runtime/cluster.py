"""Ray for nq-ray: ``connect`` joins a cluster or starts a local Ray with the project's defaults (the one
``ray.init`` in ``nq_ray``), and ``named_actor`` is the one recipe for the project's named actors.

Defaults, in one place (``settings.ray``, ``nq_ray.config.RaySettings``):
- namespace ``nq`` (every named actor lives there); ``RAY_USAGE_STATS_ENABLED=0``;
- a local Ray (no address) has Ray's token authentication on: the token is made on first start
  (``secrets.token_urlsafe``) in ``<data_dir>/ray_auth_token`` (mode 0600, its directory 0700 when new) and
  handed to Ray as ``RAY_AUTH_MODE=token`` + ``RAY_AUTH_TOKEN_PATH``, which every Ray process inherits;
  a process without the token cannot join the cluster or call its actors;
- a local Ray listens on loopback only (``ray.host`` 127.0.0.1): GCS, raylet, object manager, workers,
  dashboard and its agents. Ray binds its gRPC servers to 127.0.0.1 when the node IP is loopback, which
  Ray itself picks only where it does not run clusters (``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``), so that
  is what is set. GCS, dashboard and metrics ports come from settings (0: a free port);
- joining (``RAY_ADDRESS``): the address is probed first (TCP, then the GCS's ``GetClusterId`` with a
  deadline), so a wrong address or a missing token is a ``ConfigError`` within seconds, not a hang; a
  cluster that asks for a token gets ``RAY_AUTH_TOKEN``, else the settings' token file;
- a local start records its Ray processes in ``<data_dir>/ray_sessions/<pid>.json``; the next start
  stops a Ray whose owner died without shutting it down (``nq_ray.runtime.sessions``);
- ``log_to_driver=False`` and ``configure_logging=False``: workers' logs stay in Ray's session logs and
  Ray leaves this process's logging alone (the stdio MCP server writes nothing but protocol on stdout);
- idempotent: when Ray is already up in this process, ``connect`` changes nothing and says so.

Actors: named, in namespace ``nq``, ``lifetime="detached"`` (they outlive the driver that made them),
``get_if_exists=True`` (every caller gets the same one), ``max_restarts=-1`` (a restart re-runs
``__init__``, which reads the state back from the store; see DESIGN.md "Actors").
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import os
import secrets
import socket
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nq_ray.errors import ConfigError
from nq_ray.runtime.sessions import clean_stale_sessions, forget_sessions, record_session

if TYPE_CHECKING:
    from nq_ray.config import Settings

NAMESPACE = "nq"
TOKEN_FILE = "ray_auth_token"
_TOKEN_KEY = "NQ_RAY__TOKEN_PATH"
log = logging.getLogger(__name__)

# The environment variables (and one Ray constant) ``connect`` changed, with their values before, so that
# ``shutdown`` puts them back: a later Ray in this process starts from the caller's environment.
_saved_env: dict[str, str | None] = {}
_saved_cluster_flag: list[bool] = []


@dataclass(frozen=True)
class Connection:
    """What ``connect`` did: ``started`` a local Ray, ``joined`` a cluster at an address, or found Ray
    ``already`` up in this process; the dashboard URL when one was started; the GCS address; whether
    the cluster uses token ``auth`` and where the token came from (``token_source``); the Rays left by
    killed nq-ray processes that a local start stopped first (``stopped_stale``, one line each)."""

    started: bool
    joined: bool
    already: bool
    address: str | None = None
    dashboard_url: str | None = None
    gcs_address: str | None = None
    auth: bool = False
    token_source: str | None = None
    stopped_stale: tuple[str, ...] = ()


def ray_address(address: str | None = None) -> str | None:
    """``address``, else ``RAY_ADDRESS`` from the environment, else None (start a local Ray)."""
    return address or os.environ.get("RAY_ADDRESS") or None


def is_loopback(host: str) -> bool:
    """``localhost`` or a loopback IP address (127.0.0.0/8, ::1); a name or anything else is not."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# ---- the cluster token ----------------------------------------------------------------------------------


def token_path(settings: Settings) -> Path:
    """Where the cluster token lives: ``ray.token_path``, default ``<data_dir>/ray_auth_token``."""
    return Path(settings.ray.token_path or settings.data.data_dir / TOKEN_FILE).expanduser()


def _check_token_file(path: Path) -> None:
    """A regular file of this user, readable by no one else (a looser mode is tightened to 0600)."""
    st = path.lstat()
    if not stat.S_ISREG(st.st_mode):
        raise ConfigError(
            f"the Ray token path {path} is not a regular file; remove it or set NQ_RAY__TOKEN_PATH"
        )
    if st.st_uid != os.getuid():
        raise ConfigError(
            f"the Ray token file {path} belongs to another user; remove it or set NQ_RAY__TOKEN_PATH"
        )
    if st.st_mode & 0o077:
        os.chmod(path, 0o600)
        log.warning(
            "the Ray token file %s was readable by others (mode %o); now 0600", path, st.st_mode & 0o777
        )


def ensure_token(settings: Settings) -> Path:
    """The token file of a Ray that nq-ray starts: made on first start (``secrets.token_urlsafe(32)``,
    mode 0600; its directory 0700 when new), checked afterwards (see ``_check_token_file``)."""
    path = token_path(settings)
    if not path.parent.exists():
        path.parent.mkdir(mode=0o700, parents=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        _check_token_file(path)
        if len(path.read_text(encoding="utf-8").strip()) < 32:
            raise ConfigError(
                f"the Ray token in {path} is shorter than 32 characters; delete the file (a new one is made "
                "on the next start) or put a longer one there"
            ) from None
        return path
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(secrets.token_urlsafe(32))
    log.info("made the Ray cluster token %s", path)
    return path


def token_candidates(settings: Settings) -> list[tuple[str, str]]:
    """The tokens a joining process may send, in order, each with where it came from: ``RAY_AUTH_TOKEN``,
    an explicit ``ray.token_path``, ``RAY_AUTH_TOKEN_PATH``, ``<data_dir>/ray_auth_token``, Ray's
    ``~/.ray/auth_token`` (files that exist; each checked like the token file nq-ray makes)."""
    out: list[tuple[str, str]] = []
    if os.environ.get("RAY_AUTH_TOKEN"):
        out.append((os.environ["RAY_AUTH_TOKEN"].strip(), "RAY_AUTH_TOKEN"))
    paths = [Path(settings.ray.token_path).expanduser()] if settings.ray.token_path else []
    if os.environ.get("RAY_AUTH_TOKEN_PATH"):
        paths.append(Path(os.environ["RAY_AUTH_TOKEN_PATH"]).expanduser())
    paths += [settings.data.data_dir / TOKEN_FILE, Path.home() / ".ray" / "auth_token"]
    seen: set[Path] = set()
    for path in paths:
        if path.resolve() in seen or not path.is_file():
            continue
        seen.add(path.resolve())
        _check_token_file(path)
        out.append((path.read_text(encoding="utf-8").strip(), str(path)))
    return out


# ---- the environment Ray reads --------------------------------------------------------------------------


def _set_env(name: str, value: str | None) -> None:
    if name not in _saved_env:
        _saved_env[name] = os.environ.get(name)
    if value is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = value


def _restore_env() -> None:
    for name, value in _saved_env.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    _saved_env.clear()
    if _saved_cluster_flag:
        from ray._private import ray_constants

        ray_constants.ENABLE_RAY_CLUSTER = _saved_cluster_flag.pop()


def use_auth(mode: str, token_file: Path | None = None) -> None:
    """Ray's auth mode (and token file) for this process and every Ray process it starts. Ray caches its
    config and the token when first imported, so both are re-read (what ``ray.init`` does itself when it
    turns token auth on)."""
    _set_env("RAY_AUTH_MODE", mode)
    if token_file is not None:
        _set_env("RAY_AUTH_TOKEN_PATH", str(token_file))
        _set_env("RAY_AUTH_TOKEN", None)  # it would win over the file
    from ray._raylet import AuthenticationTokenLoader, Config  # type: ignore[attr-defined]

    Config.initialize("")
    AuthenticationTokenLoader.instance().reset_cache()


def _pin_loopback() -> None:
    """Make Ray take 127.0.0.1 as this node's IP (Ray's own non-cluster mode, as on macOS): its processes
    then bind 127.0.0.1 instead of every interface. The constant is read when Ray resolves the node IP;
    the variable reaches the processes Ray starts."""
    from ray._private import ray_constants

    _set_env("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    if not _saved_cluster_flag:
        _saved_cluster_flag.append(ray_constants.ENABLE_RAY_CLUSTER)
    ray_constants.ENABLE_RAY_CLUSTER = False


def _free_port(host: str) -> int:
    with contextlib.closing(socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _check_port_free(host: str, port: int, key: str) -> None:
    try:
        with contextlib.closing(socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)) as s:
            s.bind((host, port))
    except OSError as exc:
        raise ConfigError(
            f"{key}={port}: port {port} on {host} is taken ({exc.strerror}); a Ray started earlier may still "
            f"hold it (`ray stop --address {host}:{port}` stops one you started with `ray start`), or set "
            f"{key}=0 for a free port",
            port=port,
        ) from None


# ---- joining a cluster ----------------------------------------------------------------------------------


def _split_address(address: str) -> tuple[str, int] | None:
    """``(host, port)`` of a ``host:port`` / ``[v6]:port`` / ``ray://host:port`` address; None for Ray's
    own words (``auto``, ``local``)."""
    rest = address.removeprefix("ray://")
    if rest in ("auto", "local"):
        return None
    host, sep, port = rest.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit():
        raise ConfigError(
            f"RAY_ADDRESS={address!r} is not host:port (e.g. 127.0.0.1:6379); fix it, or unset it to start "
            "a local Ray",
            address=address,
        )
    return host, int(port)


def _gcs_cluster_id(target: str, token: str | None, timeout_s: float) -> Any:
    """The GCS's answer to ``GetClusterId`` (the first call a joining process makes), or the gRPC error."""
    import grpc
    from ray.core.generated import gcs_service_pb2, gcs_service_pb2_grpc

    metadata = [("authorization", f"Bearer {token}")] if token else []
    with grpc.insecure_channel(target) as channel:
        stub = gcs_service_pb2_grpc.NodeInfoGcsServiceStub(channel)
        return stub.GetClusterId(
            gcs_service_pb2.GetClusterIdRequest(),  # type: ignore[attr-defined]
            timeout=timeout_s,
            metadata=metadata,
        )


def probe(address: str, settings: Settings) -> tuple[bool, str | None]:
    """Check that a Ray cluster answers at ``address`` before ``ray.init`` (which retries for minutes):
    whether it needs token auth, and where the token comes from. ``ConfigError`` naming the address and
    what to do when nothing listens there, it is not a GCS, or it refuses the token."""
    import grpc

    hostport = _split_address(address)
    if hostport is None:
        return False, None
    host, port = hostport
    timeout_s = settings.ray.connect_timeout_s
    hint = "start it (`ray start --head`), fix RAY_ADDRESS, or unset RAY_ADDRESS to start a local Ray"
    try:
        socket.create_connection((host, port), timeout=timeout_s).close()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ConfigError(
            f"cannot reach the Ray cluster at {address}: {reason}; {hint}", address=address
        ) from None
    if address.startswith("ray://") or os.environ.get("RAY_USE_TLS", "0") not in ("", "0"):
        return False, None  # the Ray Client port and TLS clusters: reachable is all we check
    target = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    refused: list[str] = []
    for token, source in [(None, None), *token_candidates(settings)]:
        try:
            _gcs_cluster_id(target, token, timeout_s)
            return token is not None, source
        except grpc.RpcError as exc:
            code = exc.code()
            if code != grpc.StatusCode.UNAUTHENTICATED:
                raise ConfigError(
                    f"no Ray GCS answers at {address} within {timeout_s:g} s ({code.name}); {hint}",
                    address=address,
                ) from None
            if source is not None:
                refused.append(source)
    what = f"refused the token from {', '.join(refused)}" if refused else "requires a token"
    raise ConfigError(
        f"the Ray cluster at {address} {what} (Ray token authentication); put the cluster's token in "
        f"{token_path(settings)} (mode 0600) or set RAY_AUTH_TOKEN",
        address=address,
    )


def _loopback_only(host: str, port: int) -> bool:
    """Whether the Ray at ``host:port`` is a loopback-only one: a loopback address that does not also
    answer at this host's outward IP (Ray dials that IP instead of 127.0.0.1 unless told otherwise)."""
    if not is_loopback(host):
        return False
    from ray._common.network_utils import node_ip_address_from_perspective

    outward = node_ip_address_from_perspective(None)
    if is_loopback(outward):
        return True
    try:
        socket.create_connection((outward, port), timeout=2).close()
    except OSError:
        return True
    return False


def shutdown() -> None:
    """``ray.shutdown()``, then forget this process's session record and put back the environment
    ``connect`` changed. Safe to call when Ray is not up."""
    import ray

    ray.shutdown()
    forget_sessions()
    if _saved_env or _saved_cluster_flag:
        _restore_env()


# ---- connect --------------------------------------------------------------------------------------------


def connect(
    address: str | None = None,
    *,
    settings: Settings | None = None,
    num_cpus: int | None = None,
    dashboard: bool | None = None,
    temp_dir: str | None = None,
    namespace: str = NAMESPACE,
) -> Connection:
    """Join the cluster at ``address`` (or ``RAY_ADDRESS``), or start a local Ray when there is none;
    nothing when Ray is already up here. ``settings`` (default: from the environment) gives the token,
    host and ports (see the module docstring). ``num_cpus``, ``dashboard`` and ``temp_dir`` apply to a
    local start only (``dashboard=None``: Ray's own default)."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import ray

    address = ray_address(address)
    if ray.is_initialized():
        return Connection(started=False, joined=False, already=True, address=address)
    if settings is None:
        from nq_ray.config import load_settings

        settings = load_settings()
    kwargs: dict[str, Any] = {"namespace": namespace, "log_to_driver": False, "configure_logging": False}
    auth, source, stopped = False, None, []
    if address is None:
        stopped = clean_stale_sessions(settings)
        try:
            auth, source = _prepare_local(settings, kwargs, dashboard)
        except ConfigError:
            _restore_env()
            raise
        kwargs["num_cpus"] = num_cpus
        if dashboard is not None:
            kwargs["include_dashboard"] = dashboard
        if temp_dir:
            kwargs["_temp_dir"] = temp_dir
    else:
        auth, source = probe(address, settings)
        hostport = _split_address(address)
        if hostport is not None and _loopback_only(*hostport):
            _pin_loopback()  # else Ray swaps 127.0.0.1 for the host's outward IP, where this Ray is not
        if auth:
            use_auth("token", None if source == "RAY_AUTH_TOKEN" else Path(str(source)))
        elif _split_address(address) is not None and not address.startswith("ray://"):
            use_auth("disabled")
    try:
        ctx = ray.init(address=address, **kwargs)
    except Exception as exc:
        from ray.exceptions import AuthenticationError

        _restore_env()
        if isinstance(exc, AuthenticationError):
            raise ConfigError(f"Ray refused this process's token: {exc.message}", address=address) from None
        raise
    info = getattr(ctx, "address_info", {}) or {}
    gcs = info.get("gcs_address")
    if address is None:
        record_session(settings, gcs, info.get("session_dir"))
    url = getattr(ctx, "dashboard_url", None)
    return Connection(
        started=address is None,
        joined=address is not None,
        already=False,
        address=address,
        dashboard_url=f"http://{url}" if url else None,
        gcs_address=gcs,
        auth=auth,
        token_source=source,
        stopped_stale=tuple(s.describe() for s in stopped),
    )


def _prepare_local(
    settings: Settings, kwargs: dict[str, Any], dashboard: bool | None
) -> tuple[bool, str | None]:
    """Auth, node IP and ports set for a local start; (auth, token file)."""
    rs = settings.ray
    loopback = is_loopback(rs.host)
    if rs.auth == "disabled" and not loopback:
        raise ConfigError(
            f"refusing to start Ray on {rs.host} with token auth disabled: anyone who reaches it could run "
            "code and place orders. Set NQ_RAY__AUTH=token or NQ_RAY__HOST=127.0.0.1",
            host=rs.host,
        )
    if rs.port:
        _check_port_free(rs.host, rs.port, "NQ_RAY__PORT")
    _set_env("RAY_GCS_SERVER_PORT", str(rs.port) if rs.port else None)
    # Ray's fixed defaults (44217, 44227): a free port each, so two Rays on one host do not collide
    for name in ("AUTOSCALER_METRIC_PORT", "DASHBOARD_METRIC_PORT"):
        if name not in os.environ:
            _set_env(name, str(_free_port(rs.host)))
    if loopback:
        _pin_loopback()
        kwargs["_node_ip_address"] = "127.0.0.1"
    else:
        kwargs["_node_ip_address"] = rs.host
    kwargs["dashboard_host"] = "127.0.0.1" if loopback else rs.host
    if dashboard is not False:
        kwargs["dashboard_port"] = rs.dashboard_port or _free_port(rs.host)
    if rs.metrics_export_port:
        kwargs["_metrics_export_port"] = rs.metrics_export_port
    if rs.auth == "token":
        path = ensure_token(settings)
        use_auth("token", path)
        return True, str(path)
    use_auth("disabled")
    return False, None


def actor_options(
    name: str,
    *,
    namespace: str = NAMESPACE,
    max_task_retries: int | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """The options of a named project actor (see the module docstring); ``extra`` adds or overrides
    (``num_cpus``, ``max_concurrency``, ...)."""
    opts: dict[str, Any] = {
        "name": name,
        "namespace": namespace,
        "lifetime": "detached",
        "get_if_exists": True,
        "max_restarts": -1,
    }
    if max_task_retries is not None:
        opts["max_task_retries"] = max_task_retries
    return opts | extra


def named_actor(
    actor_class: Any,
    name: str,
    *args: Any,
    namespace: str = NAMESPACE,
    max_task_retries: int | None = None,
    options: dict[str, Any] | None = None,
    **kwargs: Any,
) -> Any:
    """The handle of the named actor ``name`` of ``actor_class`` (a ``ray.remote`` class), created with
    ``args``/``kwargs`` when it does not exist yet (an existing one keeps its own arguments)."""
    opts = actor_options(name, namespace=namespace, max_task_retries=max_task_retries, **(options or {}))
    return actor_class.options(**opts).remote(*args, **kwargs)


def find_actor(name: str, *, namespace: str = NAMESPACE) -> Any | None:
    """The handle of the running actor ``name``, or None when there is none."""
    import ray

    try:
        return ray.get_actor(name, namespace=namespace)
    except ValueError:
        return None


class RemoteMethods:
    """Base of the Ray adapters: ``await self._call("m", *args)`` is ``await handle.m.remote(*args)``,
    with a typed nq-ray error from the actor raised as itself (not wrapped in Ray's task error)."""

    def __init__(self, handle: Any) -> None:
        self.handle = handle

    async def _call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        from nq_ray.errors import NQRayError

        try:
            return await getattr(self.handle, method).remote(*args, **kwargs)
        except Exception as exc:  # a typed error comes back as the Ray task error's cause
            cause = getattr(exc, "cause", None)
            if isinstance(cause, NQRayError):
                raise cause from exc
            raise
