"""Ray for nq-ray: ``connect`` joins a cluster or starts a local Ray with the project's defaults (the one
``ray.init`` in ``nq_ray``), and ``named_actor`` is the one recipe for the project's named actors.

Defaults, in one place:
- namespace ``nq`` (every named actor lives there);
- ``RAY_USAGE_STATS_ENABLED=0``; a local Ray (no address) also gets ``RAY_AUTH_MODE=disabled`` unless the
  environment says otherwise (Ray 2.60 turns token auth on by default and would write
  ``~/.ray/auth_token``); a cluster you join keeps its own auth mode;
- ``log_to_driver=False`` and ``configure_logging=False``: workers' logs stay in Ray's session logs and
  Ray leaves this process's logging alone (the stdio MCP server writes nothing but protocol on stdout);
- idempotent: when Ray is already up in this process, ``connect`` changes nothing and says so.

Actors: named, in namespace ``nq``, ``lifetime="detached"`` (they outlive the driver that made them),
``get_if_exists=True`` (every caller gets the same one), ``max_restarts=-1`` (a restart re-runs
``__init__``, which reads the state back from the store; see DESIGN.md "Actors").
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

NAMESPACE = "nq"


@dataclass(frozen=True)
class Connection:
    """What ``connect`` did: ``started`` a local Ray, ``joined`` a cluster at an address, or found Ray
    ``already`` up in this process; the dashboard URL when one was started."""

    started: bool
    joined: bool
    already: bool
    address: str | None = None
    dashboard_url: str | None = None


def ray_address(address: str | None = None) -> str | None:
    """``address``, else ``RAY_ADDRESS`` from the environment, else None (start a local Ray)."""
    return address or os.environ.get("RAY_ADDRESS") or None


def connect(
    address: str | None = None,
    *,
    num_cpus: int | None = None,
    dashboard: bool | None = None,
    temp_dir: str | None = None,
    namespace: str = NAMESPACE,
) -> Connection:
    """Join the cluster at ``address`` (or ``RAY_ADDRESS``), or start a local Ray when there is none;
    nothing when Ray is already up here. ``num_cpus``, ``dashboard`` and ``temp_dir`` apply to a local
    start only (``dashboard=None``: Ray's own default)."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import ray

    address = ray_address(address)
    if ray.is_initialized():
        return Connection(started=False, joined=False, already=True, address=address)
    kwargs: dict[str, Any] = {"namespace": namespace, "log_to_driver": False, "configure_logging": False}
    if address is None:
        os.environ.setdefault("RAY_AUTH_MODE", "disabled")
        kwargs["num_cpus"] = num_cpus
        if dashboard is not None:
            kwargs["include_dashboard"] = dashboard
        if temp_dir:
            kwargs["_temp_dir"] = temp_dir
    ctx = ray.init(address=address, **kwargs)
    url = getattr(ctx, "dashboard_url", None)
    return Connection(
        started=address is None,
        joined=address is not None,
        already=False,
        address=address,
        dashboard_url=f"http://{url}" if url else None,
    )


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
