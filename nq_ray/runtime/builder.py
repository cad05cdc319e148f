"""``Runtime``: the one composition root. It builds the services for a mode and hands out typed ports.

- ``in_process``: no Ray. Paper broker ``LocalBroker`` (this process, journaled to the store); agents'
  tools ``LocalTools``; audit ``StoreAuditor``; the desk a ``DeskService`` here.
- ``local``: joins Ray when it is up in this process, else starts a local one. Paper broker ``RayBroker``
  (the ``paper_broker`` actor); tools ``RayTools`` (the ``tool_registry`` actor); audit
  ``ForwardingAuditor`` to the registry actor; the desk ``RayDesk`` (the ``trading_desk`` actor).
- ``cluster``: as ``local``, joining ``address`` (default ``RAY_ADDRESS``).

Ray is joined lazily, on the first thing that needs it (the stdio MCP server starts no Ray until a tool
needs the broker). Entry points (``nq-ray`` commands, the stdio MCP server, ``nq_ray.scale``, Serve's
``build_app``) make one ``Runtime`` and take their collaborators from it; nothing below calls
``ray.init`` or builds a tool context of its own.
"""

from __future__ import annotations

import asyncio
import os
from typing import TYPE_CHECKING, Any, Literal

from nq_ray.config import Settings
from nq_ray.errors import ConfigError
from nq_ray.ports import Auditor, Clock, PaperBrokerPort, ToolsPort
from nq_ray.runtime.cluster import Connection, connect, ray_address
from nq_ray.tools.context import EventSink, ToolContext, set_default_context
from nq_ray.tools.registry import CallHook, ToolRegistry, build_registry

if TYPE_CHECKING:
    from nq_ray.agents.service import DeskService, Publish
    from nq_ray.runtime.desk import RayDesk

Mode = Literal["in_process", "local", "cluster"]
MODES: tuple[Mode, ...] = ("in_process", "local", "cluster")


class Runtime:
    """The services of one process for ``mode`` (see the module docstring). ``address`` names the cluster
    for ``cluster`` (default ``RAY_ADDRESS``); ``broker_name`` / ``registry_name`` / ``desk_name`` name the
    actors (tests use unique names); ``feed`` prices the paper broker's market orders from the data
    source; ``clock`` is the tools' "now"."""

    def __init__(
        self,
        settings: Settings,
        mode: Mode = "in_process",
        *,
        address: str | None = None,
        broker_name: str = "paper_broker",
        registry_name: str = "tool_registry",
        desk_name: str = "trading_desk",
        market_name: str = "market_replay",
        feed: bool = True,
        clock: Clock | None = None,
        num_cpus: int | None = None,
        dashboard: bool | None = False,
    ) -> None:
        if mode not in MODES:
            raise ConfigError(f"unknown runtime mode {mode!r}; use one of {', '.join(MODES)}")
        if mode == "cluster" and ray_address(address) is None:
            raise ConfigError("runtime mode 'cluster' needs an address: pass address= or set RAY_ADDRESS")
        self.settings = settings
        self.mode: Mode = mode
        self.address = ray_address(address) if mode == "cluster" else None
        self.broker_name, self.registry_name, self.desk_name = broker_name, registry_name, desk_name
        self.market_name = market_name
        self.feed = feed
        self._clock = clock
        self._market: Any = None
        self._ray_opts: dict[str, Any] = {"num_cpus": num_cpus, "dashboard": dashboard}
        self.connection: Connection | None = None
        self._broker: PaperBrokerPort | None = None
        self._registry_actor: Any = None
        self._desk: DeskService | RayDesk | None = None

    @classmethod
    def from_env(cls, settings: Settings, *, default: Mode = "in_process", **kwargs: Any) -> Runtime:
        """``cluster`` when ``RAY_ADDRESS`` is set, else ``default``."""
        mode: Mode = "cluster" if os.environ.get("RAY_ADDRESS") else default
        return cls(settings, mode, **kwargs)

    @property
    def on_ray(self) -> bool:
        return self.mode != "in_process"

    def connect(self) -> Connection:
        """Join or start Ray for this mode (once; idempotent when Ray is already up here)."""
        if not self.on_ray:
            raise ConfigError("an in_process runtime does not use Ray")
        if self.connection is None:
            self.connection = connect(self.address, settings=self.settings, **self._ray_opts)
        return self.connection

    # ---- the clock and the market -------------------------------------------------------------------

    @property
    def clock(self) -> Any:
        """The exchange clock every service of this runtime runs on (``nq_ray.market.clock``): the one
        given, else the settings' (the wall clock, or the replay's, followed in the store)."""
        if self._clock is None:
            from nq_ray.runtime.replay import clock_for

            self._clock = clock_for(self.settings)
        return self._clock

    @property
    def replay(self) -> bool:
        return getattr(self.clock, "mode", "wall") == "replay"

    def market(self, *, publish: EventSink | None = None) -> Any:
        """The market replay's driver (``None`` on the wall clock): the ``market_replay`` actor on Ray
        (``RayMarket``), else a ``MarketReplay`` here over this runtime's broker and clock (started by
        ``await market.start()``)."""
        if not self.replay:
            return None
        if self._market is None:
            if self.on_ray:
                from nq_ray.runtime.replay import RayMarket, get_or_create_market

                self.connect()
                self._market = RayMarket(
                    get_or_create_market(
                        self.settings,
                        name=self.market_name,
                        broker_name=self.broker_name,
                        desk_name=self.desk_name,
                    )
                )
            else:
                from nq_ray.runtime.replay import MarketReplay

                self._market = MarketReplay(
                    self.settings, broker=self.broker(), publish=publish, clock=self.clock
                )
        return self._market

    # ---- the paper broker -------------------------------------------------------------------------

    def broker_handle(self) -> Any:
        """The ``paper_broker`` actor's handle (Ray modes)."""
        from nq_ray.runtime.broker import get_or_create_broker

        self.connect()
        return get_or_create_broker(self.settings, name=self.broker_name, feed=self.feed)

    def broker(self) -> PaperBrokerPort:
        """The paper broker for this mode (one per runtime)."""
        if self._broker is None:
            if self.on_ray:
                from nq_ray.runtime.broker import RayBroker

                self._broker = RayBroker(self.broker_handle())
            else:
                from nq_ray.runtime.broker import LocalBroker

                self._broker = LocalBroker(self.settings, feed=self.feed, clock=self.clock)
        return self._broker

    def _broker_for(self, _settings: Settings) -> PaperBrokerPort:
        return self.broker()

    # ---- tools ------------------------------------------------------------------------------------

    def tool_context(self, *, publish: EventSink | None = None) -> ToolContext:
        """A ``ToolContext`` over this runtime's broker (made on first use), clock and event sink."""
        return ToolContext(
            settings=self.settings, broker_factory=self._broker_for, publish=publish, clock=self.clock
        )

    def registry(
        self,
        *,
        auditor: Auditor | None = None,
        publish: EventSink | None = None,
        on_call: CallHook | None = None,
    ) -> ToolRegistry:
        """Every tool, in this process, over ``tool_context(publish=...)``; its ``agents`` tools run on this
        runtime's one desk (``shared_desk``; in process, the first registry that needs it is its tools)."""
        context = self.tool_context(publish=publish)
        registry = build_registry(context, auditor=auditor, on_call=on_call)
        announce = context.emit if publish is not None else None  # the desk's events, on the same sink
        context.desk_factory = lambda: self.shared_desk(tools=registry, publish=announce)
        return registry

    def registry_actor(self) -> Any:
        """The ``tool_registry`` actor's handle (Ray modes)."""
        if self._registry_actor is None:
            from nq_ray.runtime.registry import get_or_create_registry

            self.connect()
            self._registry_actor = get_or_create_registry(
                self.settings, name=self.registry_name, broker_name=self.broker_name
            )
        return self._registry_actor

    def tools(self) -> ToolsPort:
        """Where agents call tools: the registry actor on Ray, an in-process registry otherwise."""
        if self.on_ray:
            from nq_ray.runtime.registry import RayTools

            return RayTools(self.registry_actor())
        from nq_ray.agents.agents import LocalTools

        return LocalTools(self.registry())

    def auditor(self) -> Auditor:
        """The audit sink: batches forwarded to the registry actor on Ray, the store directly otherwise."""
        from nq_ray.tools.audit import ForwardingAuditor, StoreAuditor

        if self.on_ray:
            from nq_ray.runtime.registry import RayAuditLog

            return ForwardingAuditor(RayAuditLog(self.registry_actor()))
        return StoreAuditor(self.settings.store_url)

    def make_default(self) -> None:
        """Let tool functions called outside a registry call (the Python API) run in this runtime."""
        set_default_context(self.tool_context)

    # ---- the desk ---------------------------------------------------------------------------------

    def desk(
        self, *, publish: Publish | None = None, tools: ToolsPort | None = None
    ) -> DeskService | RayDesk:
        """The trading desk: the ``trading_desk`` actor on Ray (``RayDesk``), else a ``DeskService`` here
        over ``tools`` (default: an in-process registry on this runtime's broker)."""
        if self.on_ray:
            from nq_ray.runtime.desk import RayDesk, get_or_create_desk

            self.connect()
            return RayDesk(
                get_or_create_desk(self.settings, name=self.desk_name, registry_name=self.registry_name)
            )
        from nq_ray.agents.agents import LocalTools
        from nq_ray.agents.service import DeskService

        return DeskService(
            self.settings,
            tools=tools or LocalTools(self.registry()),
            publish=publish,
            clock=self.clock.now if hasattr(self.clock, "now") else self.clock,
            sleep=getattr(self.clock, "sleep", asyncio.sleep),
        )

    def shared_desk(
        self, *, tools: ToolRegistry | None = None, publish: Publish | None = None
    ) -> DeskService | RayDesk:
        """The one desk of this runtime, made on first use: what the agents API and the ``agents`` tools
        both use, so they share its state (agents, approvals, halt). On Ray the ``trading_desk`` actor
        (``RayDesk``); in process a ``DeskService`` here whose agents call ``tools`` (a registry; default
        a new one) and which announces on ``publish`` (the arguments of the first call count)."""
        if self._desk is None:
            if self.on_ray:
                self._desk = self.desk()
            else:
                from nq_ray.agents.agents import LocalTools

                self._desk = self.desk(
                    publish=publish, tools=LocalTools(tools) if tools is not None else None
                )
        return self._desk

    # ---- shutdown ---------------------------------------------------------------------------------

    def close(self) -> None:
        """Close the in-process broker; shut Ray down when this runtime started it."""
        close = getattr(self._broker, "close", None)
        if callable(close):
            close()
        self._broker = None
        follower = getattr(self._clock, "follower", None)
        if follower is not None:
            follower.stop()
        if self.connection is not None and self.connection.started:
            import ray

            ray.shutdown()
            self.connection = None
