"""The seed's agent API as its design document writes it: ``create_agent`` and the memory and context
calls that the seed makes *without* ``await``.

The seed writes ``agent.update_context({...})``, ``agent.get_recent_memory(10)``,
``agent.get_memory_by_type("llm_analysis", 5)``, ``memory_manager.store_memory(...)`` and
``memory_manager.get_memory(..., days=7)`` as plain calls; nq-ray's memory is async. Both spellings work:

- **the call is blocking and finishes before it returns** — its answer is a real ``list`` / ``dict`` /
  ``int`` (``MemoryList``, ``ContextDict``, ``MemoryId``), so the seed's lines run as written, from sync
  code and from inside a running event loop alike;
- **that answer is also awaitable** (awaiting it gives the same object back), so
  ``await agent.get_recent_memory(10)`` keeps working.

How a blocking call reaches an async store: the coroutine runs on one daemon thread with its own event
loop (``run_blocking``); a store-backed memory gets there its own ``Repository`` over the same URL
(opened once, without migrating), so a write made by a blocking call is committed before the call
returns and the next read — blocking or awaited — sees it. The calling thread waits for that one store
query; an agent's own hot paths (its analysis, its decisions) use the async ``MemoryManager`` methods
and never block the loop. An in-memory SQLite store cannot be shared with a second engine: blocking
calls on one are refused (``ConfigError``) — use ``await`` there.
"""

from __future__ import annotations

import asyncio
import atexit
import threading
from collections.abc import Awaitable, Callable, Generator
from typing import TYPE_CHECKING, Any, Self, TypeVar

from nq_ray.errors import ConfigError, InvalidArgumentError, StoreUnavailableError

if TYPE_CHECKING:
    from nq_ray.agents.agents import Agent
    from nq_ray.agents.memory import MemoryManager
    from nq_ray.llm.router import LLMRouter
    from nq_ray.store.repository import Repository

T = TypeVar("T")
BLOCKING_TIMEOUT_S = 30.0  # one store query; a store that does not answer in this fails the call


async def _itself(x: T) -> T:
    return x


class _Ready:
    """An answer that is already there and may also be awaited (``await x`` is ``x``)."""

    __slots__ = ()

    def __await__(self) -> Generator[Any, None, Self]:
        return _itself(self).__await__()


class MemoryList(_Ready, list):  # type: ignore[type-arg]
    """Memories, newest first: a list, also awaitable."""


class ContextDict(_Ready, dict):  # type: ignore[type-arg]
    """An agent's context after an update: a dict, also awaitable."""


class MemoryId(_Ready, int):
    """The id of a stored memory: an int, also awaitable."""


class _Bridge:
    """One daemon thread with its own event loop, where blocking calls run their coroutine."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._repos: dict[str, Repository] = {}

    def _ensure(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                thread = threading.Thread(target=loop.run_forever, name="nq-seed-blocking", daemon=True)
                thread.start()
                self._loop, self._thread = loop, thread
            return self._loop

    def run(self, make: Callable[[], Awaitable[T]], timeout_s: float = BLOCKING_TIMEOUT_S) -> T:
        if threading.current_thread() is self._thread:
            raise RuntimeError("a blocking seed call from the seed's own worker thread would deadlock")

        async def go() -> T:
            return await make()

        future = asyncio.run_coroutine_threadsafe(go(), self._ensure())
        try:
            return future.result(timeout_s)
        except TimeoutError:
            future.cancel()
            raise StoreUnavailableError(
                f"the agent memory's store did not answer within {timeout_s:.0f} s (a blocking seed call); "
                "check the store, or await the async methods"
            ) from None

    async def repo_like(self, repo: Repository) -> Repository:
        """This thread's own ``Repository`` over ``repo``'s URL (opened once)."""
        from nq_ray.store.repository import Repository

        url = repo.engine.url
        if url.drivername.startswith("sqlite") and url.database in (None, "", ":memory:"):
            raise ConfigError(
                "the seed's blocking memory calls cannot reach an in-memory SQLite store (a second "
                "connection sees another database): await the call, or use a file or server store"
            )
        key = url.render_as_string(hide_password=False)
        if key not in self._repos:
            self._repos[key] = await Repository.connect(key, migrate=False)
        return self._repos[key]

    def close(self) -> None:
        """Close this thread's repositories and stop its loop (at exit; tests)."""
        loop = self._loop
        if loop is None:
            return
        repos, self._repos = list(self._repos.values()), {}

        async def dispose() -> None:
            for r in repos:
                await r.close()

        try:
            asyncio.run_coroutine_threadsafe(dispose(), loop).result(BLOCKING_TIMEOUT_S)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            if self._thread is not None:
                self._thread.join(BLOCKING_TIMEOUT_S)
            loop.close()
            self._loop = self._thread = None


_BRIDGE = _Bridge()
atexit.register(_BRIDGE.close)


def run_blocking(memory: MemoryManager, work: Callable[[MemoryManager], Awaitable[T]]) -> T:
    """Run ``work(m)`` to completion on the worker thread and return its answer, where ``m`` is
    ``memory`` itself (in process) or a ``MemoryManager`` over the worker's own connection to the same
    store (same clock). Blocks the calling thread until it is done."""
    from nq_ray.agents.memory import MemoryManager

    async def go() -> T:
        if memory.repo is None:
            return await work(memory)
        return await work(MemoryManager(await _BRIDGE.repo_like(memory.repo), clock=memory.clock))

    return _BRIDGE.run(go)


def close_blocking() -> None:
    """Close the worker thread's store connections and stop it (it restarts on the next blocking call)."""
    _BRIDGE.close()


class SeedMemoryManager:
    """The seed's ``MemoryManager`` (``nq_ray.context.MemoryManager``): ``store_memory(agent_id, kind,
    value)`` and ``get_memory(agent_id, kind, days=7)`` block until done and answer an int / a list that
    may also be awaited; ``recent`` likewise. Over the agents' async ``MemoryManager`` (``core``), in
    process by default or over a store ``Repository``; handing it to an agent gives the agent its core."""

    def __init__(
        self, repo: Repository | None = None, *, core: MemoryManager | None = None, **kwargs: Any
    ) -> None:
        from nq_ray.agents.memory import MemoryManager

        self.core = core if core is not None else MemoryManager(repo, **kwargs)

    def store_memory(self, agent_id: str, kind: str, value: Any) -> MemoryId:
        """Keep ``value`` (text or JSON data) as a memory of ``kind``; its id."""
        return MemoryId(run_blocking(self.core, lambda m: m.store_memory(agent_id, kind, _plain(value))))

    def get_memory(self, agent_id: str, kind: str, days: int = 7) -> MemoryList:
        """``agent_id``'s memories of ``kind`` from the last ``days`` days, newest first."""
        return MemoryList(run_blocking(self.core, lambda m: m.get_memory(agent_id, kind, days=days)))

    def recent(self, agent_id: str, n: int = 10, kind: str | None = None) -> MemoryList:
        """The ``n`` newest memories of ``agent_id`` (optionally of one kind), newest first."""
        return MemoryList(run_blocking(self.core, lambda m: m.recent(agent_id, n, kind=kind)))


def _plain(value: Any) -> Any:
    """A pydantic model (an agent's report) as its JSON data; anything else as given."""
    return value.model_dump(mode="json") if hasattr(value, "model_dump") else value


# --------------------------------------------------------------------------------------- the factory
AGENT_KINDS = ("analysis", "execution", "risk")


def create_agent(
    kind: str,
    config: Any = None,
    mcp_server: Any = None,
    provider_manager: LLMRouter | None = None,
) -> Agent:
    """The seed's factory: ``create_agent("analysis" | "execution" | "risk", config, mcp_server,
    provider_manager)``.

    - ``config``: an ``AgentConfig``, a dict of its fields, ``None`` (defaults), or nq-ray ``Settings``
      (the agent gets default ``AgentConfig`` and the settings' desk options; its tools read those
      settings when ``mcp_server`` is ``None``);
    - ``mcp_server``: where the agent calls tools (nq-ray's tool registry is its MCP server's tools) —
      a ``ToolRegistry``, an object with ``call(name, arguments, *, who=...)`` (``LocalTools``, the
      runtime's ``RayTools``), or ``None``: a new in-process registry over the settings, which reads
      market data and checks risk but has no broker (its order tools answer ``config_error``): to trade,
      pass the runtime's registry (``nq_ray.runtime.Runtime.registry()``);
    - ``provider_manager``: the ``LLMRouter`` the analysis agent reasons with, or ``None``: one built
      from the settings' ``llm`` chain.
    """
    from pydantic import ValidationError

    from nq_ray.agents.agents import AnalysisAgent, ExecutionAgent, RiskAgent
    from nq_ray.agents.models import AgentConfig
    from nq_ray.config import Settings
    from nq_ray.llm.router import LLMRouter

    if kind not in AGENT_KINDS:
        raise InvalidArgumentError(f"agent kind must be one of {list(AGENT_KINDS)}, got {kind!r}", kind=kind)
    settings = config if isinstance(config, Settings) else None
    try:
        agent_config = AgentConfig() if settings is not None else AgentConfig.model_validate(config or {})
    except ValidationError as exc:
        detail = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()[:5])
        raise InvalidArgumentError(
            f"config must be an AgentConfig (or its fields) or nq-ray Settings: {detail}"
        ) from None
    tools = _tools_of(mcp_server, settings)
    desk = (settings or Settings()).desk
    if kind == "analysis":
        router = provider_manager or LLMRouter.from_config((settings or Settings()).llm)
        return AnalysisAgent(tools, router, config=agent_config)
    if kind == "risk":
        return RiskAgent(tools, config=agent_config, risk_pct=desk.risk_pct, atr_multiple=desk.atr_multiple)
    return ExecutionAgent(tools, config=agent_config, entry_order=desk.entry_order)


def _tools_of(mcp_server: Any, settings: Any) -> Any:
    from nq_ray.agents.agents import LocalTools
    from nq_ray.config import Settings
    from nq_ray.tools.context import ToolContext
    from nq_ray.tools.registry import ToolRegistry, build_registry

    if mcp_server is None:
        return LocalTools(build_registry(ToolContext(settings=settings or Settings())))
    if isinstance(mcp_server, ToolRegistry):
        return LocalTools(mcp_server)
    if callable(getattr(mcp_server, "call", None)):
        return mcp_server
    raise InvalidArgumentError(
        "mcp_server must be a ToolRegistry, an object with "
        f"call(name, arguments, *, who=...), or None; got {type(mcp_server).__name__}"
    )
