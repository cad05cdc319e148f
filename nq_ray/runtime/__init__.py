"""The composition root: Ray start-up with the project's defaults, the named actors (paper broker, tool
registry, trading desk, agents), the broker's journal and market feed, the Ray and local adapters of the
ports (``nq_ray.ports``), and ``Runtime``, which builds the services for a mode.

| module | what |
| --- | --- |
| ``cluster`` | ``connect`` (the one ``ray.init``; token auth, loopback), ``shutdown``, ``named_actor`` |
| ``sessions`` | the local Ray's processes on record; a Ray a killed owner left is found and stopped |
| ``builder`` | ``Runtime(settings, mode="in_process" | "local" | "cluster")`` |
| ``broker`` | ``BrokerService``, ``BrokerActor``, ``RayBroker``, ``LocalBroker`` |
| ``journal`` | the SQL order journal (``Journal``), ``open_paper_broker`` |
| ``feed`` | marks for the paper broker from the configured data source |
| ``registry`` | ``RegistryActor`` (tools, jobs, audit, live settings), ``RayTools``, ``RayAuditLog`` |
| ``desk`` | ``DeskActor``, ``AgentActor``, ``RayDesk`` |
| ``metrics`` | the per-process counters (``Metrics``) |
"""

from typing import TYPE_CHECKING, Any

from nq_ray.runtime.cluster import NAMESPACE, Connection, actor_options, connect, named_actor

if TYPE_CHECKING:
    from nq_ray.runtime.builder import MODES, Mode, Runtime

__all__ = ["MODES", "NAMESPACE", "Connection", "Mode", "Runtime", "actor_options", "connect", "named_actor"]


def __getattr__(name: str) -> Any:
    """``Runtime`` and friends load on first use: ``nq_ray.runtime.cluster`` (what a Ray Job's entry
    point needs) stays light, without the tool registry the builder imports."""
    if name in ("MODES", "Mode", "Runtime"):
        from nq_ray.runtime import builder

        return getattr(builder, name)
    raise AttributeError(f"module 'nq_ray.runtime' has no attribute {name!r}")
