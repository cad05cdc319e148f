"""What ``build_app`` hands to the route modules it includes (``tools_api``, ``jobs_api``, ``operations_api``,
``ws_api``, ``agents_api``, ``config_api``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from nq_ray.config import Settings
from nq_ray.serve.events import EventBus
from nq_ray.serve.metrics import Metrics
from nq_ray.tools.registry import ToolRegistry


@dataclass(frozen=True)
class AppDeps:
    """One replica's parts: settings, the in-process registry, the ``tool_registry`` actor (None without
        Ray), the event bus (``await bus.publish(event, data)``), the metrics, and the ``ray`` module when Ray
        is initialised here (else None); the names of the actors this app uses (tests run several sets); the
        runtime's exchange clock and its market (``MarketFeed``: the replay's driver and how its updates reach
        this replica); ``desk()``, the runtime's one desk (``Runtime.shared_desk``: the agents API's and the
    ``agents`` tools')."""

    settings: Settings
    registry: ToolRegistry
    registry_actor: Any
    bus: EventBus
    metrics: Metrics
    ray: Any
    broker_name: str = "paper_broker"
    registry_name: str = "tool_registry"
    desk_name: str = "trading_desk"
    clock: Any = None
    feed: Any = None
    desk: Callable[[], Any] | None = None

    @property
    def clock_mode(self) -> str:
        """``wall`` or ``replay``: the ``clock`` of results that carry a time."""
        return str(getattr(self.clock, "mode", "wall"))
