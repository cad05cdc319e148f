"""The ports: what tools, agents and the Serve app need from their collaborators, as ``typing.Protocol``s.

Pure typing, no behaviour. Callers use plain async methods (``await ctx.broker().place_order(order)``);
``nq_ray.runtime`` provides the adapters: a Ray one that forwards each call to a named actor's method
(``handle.<method>.remote(...)``) and a local one that runs the same service in this process.

- ``BrokerPort``: the paper broker as tools see it. Ray: ``runtime.broker.RayBroker``; local:
  ``runtime.broker.LocalBroker``, and ``tools.context.PointInTimeBroker`` for replays.
- ``PaperBrokerPort``: the broker's whole face (health, marks, settings). ``RayBroker`` / ``LocalBroker``.
- ``ToolsPort``: the tool registry (call a tool by name, list the tools). Ray: ``runtime.registry.RayTools``;
  local: ``agents.agents.LocalTools``.
- ``Auditor``: where each tool call is recorded. Ray: ``tools.audit.ForwardingAuditor`` over an
  ``AuditLog`` (``runtime.registry.RayAuditLog``); local: ``tools.audit.StoreAuditor``.
- ``AgentsPort``: the desk's agents as the ``agents`` tools see them (list them, run a seed task on one).
  Ray: ``runtime.desk.RayDesk``; in process: ``agents.service.DeskService``. ``runtime.Runtime`` hands
  the one desk of a runtime to its tool context (``ToolContext.desk_factory``).
- ``DeskPort``: the trading desk's loop controls (and its agents). Ray: ``runtime.desk.RayDesk``; in
  process the loop uses ``agents.service.DeskService`` itself.
- ``Clock``: "now", a function returning an aware ``datetime``.

Record types in the signatures (``RiskVerdict``, ``OrderRecord``, ...) are imported for type checkers
only, so this module stays at the bottom of the layers.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from nq_ray.domain.audit import AuditRecord
    from nq_ray.domain.orders import Order
    from nq_ray.execution.broker import ManagePosition
    from nq_ray.execution.records import FillRecord, OrderRecord
    from nq_ray.risk.gate import RiskVerdict

Clock = Callable[[], datetime]
"""``clock()`` → "now", timezone-aware (the wall clock, a replay's bar time, or a test's fixed time)."""


@runtime_checkable
class BrokerPort(Protocol):
    """The paper broker as the tools use it: check an order with the risk gate, place it (checked, then
    submitted, one call), manage a position, read the portfolio."""

    async def check_order(self, order: Order | Mapping[str, Any]) -> RiskVerdict: ...

    async def place_order(
        self, order: Order | Mapping[str, Any], source: str | None = None
    ) -> OrderRecord: ...

    async def manage_position(self, request: ManagePosition | Mapping[str, Any]) -> list[OrderRecord]: ...

    async def portfolio(self) -> dict[str, Any]: ...


@runtime_checkable
class PaperBrokerPort(BrokerPort, Protocol):
    """The whole paper broker: ``BrokerPort`` plus what operators, health checks and tests use."""

    async def ready(self) -> dict[str, Any]: ...

    async def cancel_order(self, client_order_id: str) -> OrderRecord: ...

    async def order(self, client_order_id: str) -> OrderRecord: ...

    async def orders(self, open_only: bool = False, symbol: str | None = None) -> list[OrderRecord]: ...

    async def fills(self, symbol: str | None = None) -> list[FillRecord]: ...

    async def on_price(self, symbol: str, price: float, time: datetime) -> list[Any]: ...

    async def on_bar(self, symbol: str, bar: Any) -> list[Any]: ...

    async def refresh_marks(self) -> dict[str, Any]: ...

    async def apply_settings(self, settings: Any) -> dict[str, Any]: ...

    async def limits(self) -> dict[str, Any]: ...


@runtime_checkable
class ToolsPort(Protocol):
    """The tool registry: ``call(name, arguments, who=...)`` → the tool's JSON output; ``list_tools()`` →
    each tool's name, description and schemas."""

    async def call(self, name: str, arguments: dict[str, Any], *, who: str) -> dict[str, Any]: ...

    async def list_tools(self) -> list[dict[str, Any]]: ...


@runtime_checkable
class Auditor(Protocol):
    """Where each tool call is recorded (``audit_log``)."""

    async def audit(self, record: AuditRecord) -> None: ...


@runtime_checkable
class AuditLog(Protocol):
    """A sink that takes audit records in batches (the ``tool_registry`` actor's ``audit_many``)."""

    async def audit_many(self, records: list[AuditRecord]) -> int: ...


@runtime_checkable
class AgentsPort(Protocol):
    """The desk's agents: ``list_agents()`` → each agent's ``agent_id``, ``agent_type``, ``tasks`` (the task
    types it runs), ``config``, ``created_at``, ``default``; ``agent_task(agent_id, task)`` runs the seed
    task ``{"type": ..., "parameters": {...}}`` on one agent and records it → ``agent_id``, ``type``,
    ``record_id``, ``result``. An unknown agent is ``NotFoundError``, a bad task ``InvalidArgumentError``,
    an order task on a halted desk ``DeskHaltedError``."""

    async def list_agents(self) -> list[dict[str, Any]]: ...

    async def agent_task(self, agent_id: str, task: dict[str, Any]) -> dict[str, Any]: ...


@runtime_checkable
class DeskPort(AgentsPort, Protocol):
    """The trading desk actor as the ``nq-ray trade`` loop drives it (``DeskService`` has the same
    methods, with ``ensure`` for ``ready``)."""

    async def ready(self) -> dict[str, Any]: ...

    async def start(
        self, symbols: list[str] | None = None, cadence_s: float | None = None
    ) -> dict[str, Any]: ...

    async def stop(self) -> dict[str, Any]: ...

    async def set_windows(self, windows: str) -> dict[str, Any]: ...

    async def set_approval_mode(self, on: bool) -> dict[str, Any]: ...

    async def events_since(self, seq: int = 0) -> list[dict[str, Any]]: ...

    async def decision(self, decision_id: int) -> dict[str, Any]: ...
