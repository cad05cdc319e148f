"""The trading agents: analysis, risk and execution. They act only through the tool registry.

Each agent reaches the market, the risk gate and the broker through ``Tools`` — the in-process
``ToolRegistry`` (``LocalTools``) or the ``tool_registry`` Ray actor (``nq_ray.runtime.registry.RayTools``,
which the runtime hands in) — and never imports
the broker or the data loaders. An agent is built from an ``AgentConfig``: the router provider it may use,
the model and temperature, the tools it may call (others are refused with ``tool_not_allowed``) and a
daily token / USD budget. The analysis agent reasons through the ``LLMRouter`` with
``response_model=MarketView``; when no LLM gives a valid view (failure, garbage, timeout, budget), the
rules analyst answers and the report says so (``is_llm=False``, ``fallback`` = why). Nothing is traded on
an answer that did not validate. Memory (``MemoryManager``, in ``memory``, re-exported here) is
store-backed and fed into the prompt.

One idea at about 650 lines: what the agents do — the ``Tools`` port they act through, the base ``Agent``
and the three agents; the analysis agent's prompt, budget and fallback rules are most of it and read
best in one place.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar

import pandas as pd
from pydantic import BaseModel, ValidationError
from pydantic_core import PydanticSerializationError, to_jsonable_python

from nq_ray.agents import thinking
from nq_ray.agents.committee import Committee
from nq_ray.agents.context import ContextManager, ContextSource
from nq_ray.agents.memory import MemoryManager, UsageBook
from nq_ray.agents.models import (
    AgentConfig,
    AnalysisReport,
    CommitteeMemberAnswer,
    CommitteeRecord,
    ExecutionReport,
    MarketView,
    RiskAssessment,
    TaskReport,
    TradeProposal,
)
from nq_ray.agents.seed import ContextDict, MemoryList, SeedMemoryManager, run_blocking
from nq_ray.agents.sources import ANALYSIS_SOURCES, build_agent_context
from nq_ray.config import DeskSettings
from nq_ray.data.intervals import parse_interval
from nq_ray.domain.contracts import get_contract
from nq_ray.domain.orders import new_client_order_id
from nq_ray.errors import DuplicateClientOrderIdError, InvalidArgumentError, NQRayError, UnknownSymbolError
from nq_ray.llm import rules
from nq_ray.llm.config import ProviderConfig
from nq_ray.llm.errors import AllProvidersFailedError, BudgetExceededError, LLMDeadlineError
from nq_ray.llm.prompts.engine import PromptTemplateEngine, RenderedPrompt
from nq_ray.llm.router import LLMResult, LLMRouter
from nq_ray.risk.limits import RiskLimits
from nq_ray.tools.args import DEFAULT_SOURCE
from nq_ray.tools.execution import OrderResult
from nq_ray.tools.registry import ToolRegistry
from nq_ray.tools.risk import LimitCheck, SizeOut

M = TypeVar("M", bound=BaseModel)
log = logging.getLogger(__name__)
PROMPTS = PromptTemplateEngine()  # the templates every agent renders its prompts from
DESK_DEFAULTS = DeskSettings()  # the risk agent's sizing defaults are the settings' (desk.risk_pct, ...)


class ToolNotAllowedError(NQRayError):
    """An agent asked for a tool outside its configured ``tools`` list."""

    code = "tool_not_allowed"
    http_status = 403


class Tools(Protocol):
    """Where agents call tools: ``call(name, arguments, who=agent_id)`` → the tool's JSON output (the part
    of ``nq_ray.ports.ToolsPort`` agents use)."""

    async def call(self, name: str, arguments: dict[str, Any], *, who: str) -> dict[str, Any]: ...


class LocalTools:
    """``ToolsPort`` through an in-process ``ToolRegistry`` (the local adapter; unit tests, the CLI)."""

    def __init__(self, registry: ToolRegistry) -> None:
        self.registry = registry

    async def call(self, name: str, arguments: dict[str, Any], *, who: str) -> dict[str, Any]:
        return await self.registry.call(name, arguments, who=who)

    async def list_tools(self) -> list[dict[str, Any]]:
        return self.registry.list_tools()


# ------------------------------------------------------------------------------------------ agents
class Agent:
    """Base: an id, a config, the tools, memory and context, and the seed's
    ``execute_task({"type": ..., "parameters": {...}})``.

    Every agent runs the tasks ``update_context`` (parameters: the key/values to keep),
    ``get_recent_memory`` (``n``) and ``get_memory_by_type`` (``type``, ``n``) besides its own. The seed's
    plain calls ``update_context(...)``, ``get_recent_memory(n)``, ``get_memory_by_type(kind, n)`` block
    until done and answer a list/dict that is also awaitable (``nq_ray.agents.seed``), so they work with
    and without ``await``.

    The context is what a caller tells the agent to keep in mind (``{"last_analysis": report}``): JSON
    data, at most ``MAX_CONTEXT_BYTES`` in all, merged key by key and persisted as a memory of type
    ``context`` (its latest one is the context, so a rebuilt agent has it back). ``context_items()`` is
    its prompt form, one compact line per key.
    """

    agent_id: str = "agent"
    agent_type: str = "agent"

    def __init__(
        self,
        tools: Tools,
        *,
        agent_id: str | None = None,
        config: AgentConfig | dict[str, Any] | None = None,
        memory: MemoryManager | SeedMemoryManager | None = None,
    ) -> None:
        self.tools = tools
        if agent_id is not None:
            self.agent_id = agent_id
        self.config = AgentConfig.model_validate(config or {})
        # the seed's blocking MemoryManager (nq_ray.context) hands over its async core
        self.memory = memory.core if isinstance(memory, SeedMemoryManager) else memory or MemoryManager()
        self._context: dict[str, Any] | None = None  # None: not read from memory yet
        self._context_id: int | None = None  # the memory that holds it

    def handlers(self) -> dict[str, Callable[..., Awaitable[BaseModel]]]:
        return {}

    def _all_handlers(self) -> dict[str, Callable[..., Awaitable[BaseModel]]]:
        common: dict[str, Callable[..., Awaitable[BaseModel]]] = {
            "update_context": self._update_context_task,
            "get_recent_memory": self._recent_memory_task,
            "get_memory_by_type": self._memory_by_type_task,
        }
        return {**common, **self.handlers()}

    async def execute_task(self, task: dict[str, Any]) -> dict[str, Any]:
        """Run one seed-style task; the answer is the typed result as JSON-able data. An unknown type,
        unknown or missing parameters, or parameters of the wrong kind raise ``InvalidArgumentError``."""
        handlers = self._all_handlers()
        kind = task.get("type") if isinstance(task, dict) else None
        if not isinstance(kind, str) or kind not in handlers:
            raise InvalidArgumentError(
                f"{self.agent_id}: unknown task type {kind!r}; this agent runs {sorted(handlers)}"
            )
        params = task.get("parameters") or {}
        if not isinstance(params, dict):
            raise InvalidArgumentError(f"{self.agent_id}: task parameters must be an object")
        try:
            result = await handlers[kind](**params)
        except TypeError as exc:  # an unknown or missing parameter name
            raise InvalidArgumentError(f"{self.agent_id}: bad parameters for {kind}: {exc}") from exc
        except ValidationError as exc:  # a parameter of the wrong shape (a report that is not one)
            detail = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()[:5])
            raise InvalidArgumentError(f"{self.agent_id}: bad parameters for {kind}: {detail}") from None
        return result.model_dump(mode="json")

    async def tool(self, name: str, **arguments: Any) -> dict[str, Any]:
        allowed = self.config.tools
        if allowed is not None and name not in allowed:
            raise ToolNotAllowedError(
                f"{self.agent_id} may not call {name!r}; its tools are {sorted(allowed)} "
                "(change the agent's config to allow it)",
                agent_id=self.agent_id,
                tool=name,
            )
        return await self.tools.call(name, arguments, who=self.agent_id)

    async def tool_as(self, model: type[M], name: str, **arguments: Any) -> tuple[M, dict[str, Any]]:
        """A tool's answer parsed into its output model at the boundary (the agent reads fields, not
        dict keys), and the JSON itself for what is stored with a decision."""
        raw = await self.tool(name, **arguments)
        return model.model_validate(raw), raw

    # ------------------------------------------------------------------ memory and context (the seed's)
    def get_recent_memory(self, n: int = 10) -> MemoryList:
        """The ``n`` newest memories, newest first (blocking; the list may also be awaited)."""
        return MemoryList(run_blocking(self.memory, lambda m: m.recent(self.agent_id, n)))

    def get_memory_by_type(self, type: str, n: int = 10) -> MemoryList:
        """The ``n`` newest memories of one type, newest first (blocking; the list may also be awaited)."""
        return MemoryList(run_blocking(self.memory, lambda m: m.recent(self.agent_id, n, kind=type)))

    def update_context(self, values: dict[str, Any]) -> ContextDict:
        """Keep ``values`` (merged key by key into the context) and persist the context; the answer is
        the whole context (blocking; it may also be awaited). Refused with ``InvalidArgumentError``:
        non-JSON values, a context over ``MAX_CONTEXT_BYTES``."""
        updates = _context_values(values)
        return ContextDict(run_blocking(self.memory, lambda m: self._store_context(m, updates)))

    async def aupdate_context(self, values: dict[str, Any]) -> dict[str, Any]:
        """``update_context`` on the caller's event loop (what the ``update_context`` task runs)."""
        return await self._store_context(self.memory, _context_values(values))

    async def load_context(self) -> dict[str, Any]:
        """The context, read from memory on first use."""
        return dict(await self._loaded_context(self.memory))

    def context_items(self) -> list[str]:
        """The context as prompt lines, one per key (``key: compact JSON``, long values cut); empty until
        the context was set or read (``load_context``)."""
        return [f"{k}: {_brief(v)}" for k, v in (self._context or {}).items()]

    async def _loaded_context(self, memory: MemoryManager) -> dict[str, Any]:
        if self._context is None:
            rows = await memory.recent(self.agent_id, 1, kind=CONTEXT_KIND)
            value = rows[0]["value"] if rows else {}
            self._context = dict(value) if isinstance(value, dict) else {}
            self._context_id = rows[0]["id"] if rows else None
        return self._context

    async def _store_context(self, memory: MemoryManager, updates: dict[str, Any]) -> dict[str, Any]:
        merged = {**(await self._loaded_context(memory)), **updates}
        size = len(json.dumps(merged, separators=(",", ":")).encode())
        if size > MAX_CONTEXT_BYTES:
            raise InvalidArgumentError(
                f"{self.agent_id}: the context would be {size} bytes, over the {MAX_CONTEXT_BYTES}-byte "
                "limit; keep summaries (a view, a few numbers), not whole histories",
                size=size,
                limit=MAX_CONTEXT_BYTES,
            )
        self._context_id = await memory.store_memory(self.agent_id, CONTEXT_KIND, merged)
        self._context = merged
        return dict(merged)

    async def _update_context_task(self, **values: Any) -> TaskReport:
        ctx = await self.aupdate_context(values)
        return TaskReport(
            task="update_context",
            summary=f"context updated ({', '.join(sorted(values))}); it holds {', '.join(sorted(ctx))}",
            data={"context": ctx},
        )

    async def _recent_memory_task(self, n: int = 10) -> TaskReport:
        rows = await self.memory.recent(self.agent_id, _count(n))
        return TaskReport(task="get_recent_memory", summary=f"{len(rows)} memories", data={"memories": rows})

    async def _memory_by_type_task(self, type: str, n: int = 10) -> TaskReport:
        if not isinstance(type, str) or not type or len(type) > 32:
            raise InvalidArgumentError("type must be a memory type, a string of 1 to 32 characters")
        rows = await self.memory.recent(self.agent_id, _count(n), kind=type)
        return TaskReport(
            task="get_memory_by_type", summary=f"{len(rows)} memories of type {type}", data={"memories": rows}
        )

    async def remember(self, kind: str, value: Any) -> int:
        return await self.memory.store_memory(self.agent_id, kind, value)

    def render_prompt(
        self, template: str, context: dict[str, Any], *, tools: list[str] | None = None
    ) -> RenderedPrompt:
        """This agent's prompt from one of the seed's templates (``analysis_base``, ``risk_assessment``,
        ...), or from its own text for it (``config.prompts``, rendered by an engine of its own so it
        reaches no other agent): the name and version of what was rendered are in the answer, to record
        with the decision."""
        engine = _engine_for(tuple(sorted(self.config.prompts.items())))
        return engine.generate_prompt(template, context, agent_type=self.agent_type, tools=tools)

    def task_prompt(self, template: str, context: dict[str, Any]) -> dict[str, str]:
        """A tool-backed task's seed template rendered on its data, as ``TaskReport`` fields: what a model
        would be asked about it."""
        r = self.render_prompt(template, context)
        return {"prompt": r.text, "template": r.name, "template_version": r.version}

    def describe(self) -> dict[str, Any]:
        return {
            "agent_id": self.agent_id,
            "agent_type": self.agent_type,
            "config": self.config.model_dump(mode="json"),
            "tasks": sorted(self._all_handlers()),
        }


@functools.lru_cache(maxsize=64)
def _engine_for(overrides: tuple[tuple[str, str], ...]) -> PromptTemplateEngine:
    """The shared engine, or one with an agent's overrides (one per distinct set, kept)."""
    return PROMPTS.with_overrides(dict(overrides)) if overrides else PROMPTS


CONTEXT_KIND = "context"
MAX_CONTEXT_BYTES = 64 * 1024
MAX_CONTEXT_KEYS = 64


def _count(n: Any) -> int:
    if isinstance(n, bool) or not isinstance(n, int) or not 0 <= n <= 1000:
        raise InvalidArgumentError(f"n must be an integer from 0 to 1000, got {n!r}", n=repr(n)[:40])
    return n


def _context_values(values: Any) -> dict[str, Any]:
    """``values`` as strict JSON data (models dumped), or ``InvalidArgumentError`` saying what is wrong."""
    if not isinstance(values, dict) or not values:
        raise InvalidArgumentError("update_context takes a non-empty object of key/values")
    if len(values) > MAX_CONTEXT_KEYS:
        raise InvalidArgumentError(f"update_context takes at most {MAX_CONTEXT_KEYS} keys at once")
    for k in values:
        if not isinstance(k, str) or not 1 <= len(k) <= 64:
            raise InvalidArgumentError(f"context keys are strings of 1 to 64 characters, got {k!r:.80}")
    try:
        data = to_jsonable_python(values)
        json.dumps(data, allow_nan=False)
    except (PydanticSerializationError, ValueError, TypeError) as exc:
        raise InvalidArgumentError(f"context values must be JSON data (or pydantic models): {exc}") from None
    if len(json.dumps(data, separators=(",", ":")).encode()) > MAX_CONTEXT_BYTES:
        raise InvalidArgumentError(f"context values are over the {MAX_CONTEXT_BYTES}-byte limit")
    out: dict[str, Any] = data
    return out


def _brief(v: Any, limit: int = 300) -> str:
    """One line for a context value: an analysis report as its view, anything else as compact JSON."""
    if isinstance(v, dict) and isinstance(v.get("view"), dict) and "symbol" in v:
        view = v["view"]
        text = (
            f"{v['symbol']} {view.get('bias')} (confidence {view.get('confidence')}) at {v.get('last_price')}"
            f", {v.get('bar_time')}, by {v.get('provider')}: {str(view.get('reasoning', ''))[:150]}"
        )
    else:
        text = json.dumps(v, separators=(",", ":"), sort_keys=True)
    return text if len(text) <= limit else text[: limit - 1] + "…"


DEPTHS = ("quick", "standard", "comprehensive")  # see AnalysisAgent.analyze_market
DEPTH_BARS = {"quick": 200, "standard": 600, "comprehensive": 1500}
TIMEFRAMES = ("1m", "5m", "15m", "30m", "1h", "4h", "1d")
HIGHER_TIMEFRAME = {"1m": "5m", "5m": "1h", "15m": "1h", "30m": "4h", "1h": "4h", "4h": "1d", "1d": "1wk"}
DEBATE_MARGIN_TOKENS = 1000  # a committee debate's extra prompt: the member's answer and two arguments


def _bars_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """The ``get_historical_data`` rows as an OHLCV frame indexed by New York time."""
    frame = pd.DataFrame(rows)
    index = pd.to_datetime(frame.pop("time"), utc=True).dt.tz_convert("America/New_York")
    frame.index = pd.DatetimeIndex(index, name="time")
    return frame.astype("float64")


def window_hash(rows: list[dict[str, Any]]) -> str:
    """sha256 of the bars' canonical JSON: the same window always hashes the same."""
    blob = json.dumps(rows, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def router_for(base: LLMRouter, config: AgentConfig) -> LLMRouter:
    """``base`` itself, or — when the agent names a provider or a model — a router over that provider
    (with the model override) and the rules analyst, sharing ``base``'s ledger so budgets see every call."""
    if config.provider is None and config.model is None:
        return base
    from nq_ray.llm.providers import make_provider
    from nq_ray.llm.rules import RulesAnalyst

    resolved = [p for p in base.config.resolved() if p.enabled]
    names = [p.name for p in resolved]
    if config.provider is not None and config.provider not in names:
        raise InvalidArgumentError(
            f"unknown provider {config.provider!r} for this agent; the router has {names}",
            provider=config.provider,
        )
    chosen = [p for p in resolved if (p.name == config.provider) or (config.provider is None and p.is_llm)]
    if config.model is not None:
        chosen = [p.model_copy(update={"model": config.model}) if p.is_llm else p for p in chosen]
    chain = chosen + [p for p in resolved if not p.is_llm and p.name not in {c.name for c in chosen}]

    def rules_factory(pc: Any) -> RulesAnalyst:
        return RulesAnalyst(pc, rules=base.config.rules)

    pairs = [
        (
            pc,
            base.provider(pc.name)
            if config.model is None or not pc.is_llm
            else make_provider(pc, rules_factory=rules_factory),
        )
        for pc in chain
    ]
    cfg = base.config.model_copy(update={"providers": chain})
    return LLMRouter(pairs, cfg, ledger=base.ledger, cache=base.cache)


class AnalysisAgent(Agent):
    """Reads price, indicators and levels through the tools and asks the router for a ``MarketView``."""

    agent_id = "analysis_agent"
    agent_type = "analysis"

    def __init__(
        self,
        tools: Tools,
        router: LLMRouter,
        *,
        agent_id: str | None = None,
        config: AgentConfig | dict[str, Any] | None = None,
        memory: MemoryManager | None = None,
        usage: UsageBook | None = None,
        interval: str = "5m",
        source: str = DEFAULT_SOURCE,
        window_bars: int = 600,
    ) -> None:
        super().__init__(tools, agent_id=agent_id, config=config, memory=memory)
        self.base_router = router
        self.router = router_for(router, self.config)
        self.committee = Committee.build(self.config.committee, router)
        self.usage = usage or UsageBook()
        self.interval = interval
        self.source = source
        self.window_bars = window_bars
        self.context = ContextManager(token_budget=1200)

    def handlers(self) -> dict[str, Callable[..., Awaitable[BaseModel]]]:
        return {
            "market_analysis": self.analyze_market,
            "pattern_recognition": self.recognize_patterns,
            "market_summary": self.market_summary,
        }

    async def analyze_market(
        self, symbol: str = "NQ", analysis_depth: str = "standard", timeframe: str | None = None
    ) -> AnalysisReport:
        """The market view of ``symbol`` (a root, a Yahoo alias such as ``NQ=F``, or a contract code) on
        ``timeframe`` bars (``1m 5m 15m 30m 1h 4h 1d``; default the agent's interval), gathered at one of
        three depths, each doing more work than the one before:

        - ``quick``: the latest price and the indicators (RSI, MACD, Bollinger, ATR) over the last 200
          bars — no levels, no patterns;
        - ``standard`` (default): over the agent's window (600 bars) — plus support/resistance (nearest
          levels, prior day, classic pivots) and the candlestick and chart patterns of the recent bars;
        - ``comprehensive``: over 1500 bars — plus momentum (rate of change, RSI, MACD histogram, ADX
          trend, divergences) and multi-timeframe confirmation: the trend of the next higher timeframe
          (``HIGHER_TIMEFRAME``) and whether it agrees with this one.

        What was gathered is in the report's ``inputs`` (with the timeframe and the depth); ``deep`` is
        the old name of ``comprehensive``."""
        root = _root_symbol(symbol)
        interval = _timeframe(timeframe) if timeframe is not None else self.interval
        depth = "comprehensive" if analysis_depth == "deep" else analysis_depth
        if depth not in DEPTHS:
            raise InvalidArgumentError(
                f"analysis_depth must be one of {list(DEPTHS)}, got {analysis_depth!r}"
            )
        window_bars = self.window_bars if depth == "standard" else DEPTH_BARS[depth]
        common = {"symbol": root, "interval": interval, "source": self.source}
        price = await self.tool("get_nq_price", **common)
        history = await self.tool("get_historical_data", **common, limit=window_bars)
        indicators = await self.tool("calculate_technical_indicators", **common, tail=1)
        rows = history["bars"]
        memories = [
            m
            for m in await self.memory.recent(self.agent_id, min(1000, 3 * self.config.memory_items + 1))
            if m["kind"] != CONTEXT_KIND  # the context goes in on its own (context_items)
        ][: self.config.memory_items]
        await self.load_context()
        inputs: dict[str, Any] = {
            "window": {
                "interval": interval,
                "source": self.source,
                "bars": len(rows),
                "first": rows[0]["time"],
                "last": rows[-1]["time"],
                "sha256": window_hash(rows),
            },
            "price": {
                k: price[k] for k in ("price", "bar_time", "change_pts", "session_high", "session_low")
            },
            "indicators": indicators["latest"],
            "levels": None,
            # the memories in the prompt, and the context's own (a replay pins them all)
            "memory_ids": [m["id"] for m in memories]
            + ([self._context_id] if self._context and self._context_id is not None else []),
            "agent_context": self.context_items(),
            "analysis_depth": depth,
            "timeframe": interval,
            "requested_symbol": symbol,
        }
        if depth != "quick":
            levels = (await self.tool("find_support_resistance", **common, max_zones=6))["levels"]
            inputs["levels"] = {
                "nearest_support": levels.get("nearest_support"),
                "nearest_resistance": levels.get("nearest_resistance"),
                "prior_day": levels.get("prior_day"),
                "pivots": levels.get("pivots", {}).get("classic"),
            }
            inputs["patterns"] = _pattern_brief(await self.tool("detect_patterns", **common))
        if depth == "comprehensive":
            momentum = (await self.tool("analyze_momentum", **common))["report"]
            inputs["momentum"] = _momentum_brief(momentum)
            higher = HIGHER_TIMEFRAME.get(interval)
            if higher is not None:
                htf = (await self.tool("analyze_momentum", **{**common, "interval": higher}))["report"]
                inputs["higher_timeframe"] = {
                    "interval": higher,
                    "trend": htf["trend"]["direction"],
                    "strength": htf["trend"]["strength"],
                    "adx": round(htf["trend"]["adx"], 2),
                    "agrees": htf["trend"]["direction"] == momentum["trend"]["direction"],
                }
        symbol = root
        schema = json.dumps(MarketView.model_json_schema(), separators=(",", ":"))
        market = {"symbol": symbol, **{k: inputs[k] for k in ("price", "indicators", "levels")}}
        ctx = await build_agent_context(  # a replay pins the recorded decision time (context_as_of)
            self, symbol, ANALYSIS_SOURCES, memories=memories, as_of=getattr(self, "context_as_of", None)
        )
        inputs["context"] = ctx.record()
        context_text = ctx.text
        if inputs["agent_context"]:  # what the caller asked this agent to keep in mind (update_context)
            kept = ContextSource("agent_context", inputs["agent_context"], 30, "Context (update_context)")
            context_text += "\n\n" + self.context.build_context([kept]).text
        rendered = self.render_prompt(
            "analysis_base",
            {
                "symbol": symbol,
                "timeframe": interval,
                "market": market,
                "context": context_text,
                "schema": schema,
            },
        )
        messages = rendered.as_messages(f"Your view of {symbol} now, as the JSON object only.")
        bars = _bars_frame(rows)
        view, result, fallback, params, committee = await self._view(messages, bars, symbol)
        return AnalysisReport(
            symbol=symbol,
            view=view,
            last_price=float(price["price"]),
            bar_time=str(price["bar_time"]),
            provider=result.provider if result else "rules",
            model=result.model if result else "nq-rules (direct)",
            is_llm=bool(result and result.is_llm and fallback is None),
            fallback=fallback,
            prompt=json.dumps(messages),
            template=rendered.name,
            template_version=rendered.version,
            raw_output=result.text if result else view.reasoning,
            inputs=inputs,
            params=params,
            committee=committee,
        )

    async def llm_status(self) -> list[dict[str, Any]]:
        """The router's providers as this agent sees them (health, breaker, tokens, cost)."""
        from dataclasses import asdict

        return [asdict(p) for p in self.router.status()]

    async def remember_decision(self, decision_id: int, report: AnalysisReport | dict[str, Any]) -> int:
        """One memory per desk decision: what was seen and concluded (fed into later prompts)."""
        r = AnalysisReport.model_validate(report)
        return await self.remember(
            "decision",
            {
                "decision_id": decision_id,
                "symbol": r.symbol,
                "bar_time": r.bar_time,
                "price": r.last_price,
                "bias": r.view.bias,
                "confidence": r.view.confidence,
                "by": r.provider,
            },
        )

    async def _allowance(
        self,
        messages: list[dict[str, str]],
        llms: list[ProviderConfig] | None = None,
        rounds: int = 1,
    ) -> tuple[int | None, str | None]:
        """The completion cap for this call, or why the agent may not call an LLM now (its budget). The
        cap is chosen so that even the worst case — every LLM in the chain (or every LLM member of the
        committee, ``llms``, in each of ``rounds``) answering, each twice (one repair), at the cap — stays
        inside what is left of the day's budget."""
        if llms is None:
            llms = [p for p in self.router.config.resolved() if p.enabled and p.is_llm]
        return await thinking.budget_allowance(
            self.agent_id,
            self.config,
            self.usage,
            self.router,
            messages,
            json.dumps(MarketView.model_json_schema()),
            llms=llms,
            rounds=rounds,
            # a debate's prompt adds the member's answer and both sides' arguments
            extra_prompt_tokens=DEBATE_MARGIN_TOKENS if rounds > 1 else 0,
            what=f" for {len(llms)} committee member(s) × {rounds} round(s)" if self.committee else "",
        )

    async def _view(
        self, messages: list[dict[str, str]], bars: pd.DataFrame, symbol: str
    ) -> tuple[MarketView, LLMResult | None, str | None, dict[str, Any], CommitteeRecord | None]:
        """The router's validated view, else the rules analyst's, with the reason it fell back — or, with
        a committee configured, the committee's combined view and its record."""
        params: dict[str, Any] = {}
        if self.config.temperature is not None:
            params["temperature"] = self.config.temperature
        record: dict[str, Any] = {
            "temperature": self.config.temperature,
            "max_tokens": self.config.max_tokens,
            "provider": self.config.provider,
            "model": self.config.model,
        }
        if self.committee is not None:
            return await self._committee_view(messages, bars, symbol, record)
        cap, budget_reason = await self._allowance(messages)
        if budget_reason is not None:
            view = await self._rules_view(bars, symbol)
            return view, None, f"budget: {budget_reason}; rules analyst called directly", record, None
        if cap is not None:
            params["max_tokens"] = cap
            record["max_tokens"] = cap
        before = self.router.ledger.totals(caller=self.agent_id)
        try:
            result = await self.router.chat(
                messages,
                task="market_analysis",
                response_model=MarketView,
                caller=self.agent_id,
                bars=bars,
                **params,
            )
        except (AllProvidersFailedError, BudgetExceededError, LLMDeadlineError) as exc:
            view = await self._rules_view(bars, symbol)
            return (
                view,
                None,
                f"no provider answered ({exc.code}); rules analyst called directly",
                record,
                None,
            )
        finally:
            after = self.router.ledger.totals(caller=self.agent_id)
            await self.usage.add(
                self.agent_id, after.total_tokens - before.total_tokens, after.cost_usd - before.cost_usd
            )
        failed = [f"{a.provider}: {a.reason}" for a in result.attempts if a.outcome != "ok"]
        if isinstance(result.parsed, MarketView):
            fallback = (
                None
                if result.is_llm
                else "rules analyst answered" + (f" after {'; '.join(failed)}" if failed else "")
            )
            return result.parsed, result, fallback, record, None
        try:  # a provider's parsed answer of another shape: validate it, never trade on it unchecked
            return (
                MarketView.model_validate(result.parsed.model_dump() if result.parsed else {}),
                result,
                None,
                record,
                None,
            )
        except ValidationError:
            view = await self._rules_view(bars, symbol)
            return (
                view,
                result,
                f"{result.provider}'s answer did not validate as MarketView; rules analyst",
                record,
                None,
            )

    async def _committee_view(
        self, messages: list[dict[str, str]], bars: pd.DataFrame, symbol: str, record: dict[str, Any]
    ) -> tuple[MarketView, LLMResult | None, str | None, dict[str, Any], CommitteeRecord | None]:
        """Ask the committee (``nq_ray.agents.committee``). Its LLM members must fit the budget's worst
        case together: members are left out from the last until they do; when none fits, the rules
        analyst answers directly and the record says why each member was left out."""
        committee = self.committee
        assert committee is not None
        llm_members = [s for s in committee.specs if s.is_llm]
        left_out: dict[str, str] = {}
        cap: int | None = None
        reason: str | None = None
        while llm_members:
            cap, reason = await self._allowance(messages, [s.provider for s in llm_members], committee.rounds)
            if reason is None:
                break
            left_out[llm_members.pop().name] = reason
        note = (
            f"left out for the budget: {', '.join(left_out)} ({next(iter(left_out.values()))})"
            if left_out
            else None
        )
        record["committee"] = {  # the whole configuration, so a replay can ask the same committee
            **committee.config.model_dump(mode="json"),
            "left_out": sorted(left_out),
        }
        if reason is not None:  # not even one LLM member fits: the rules analyst, as without a committee
            view = await self._rules_view(bars, symbol)
            absent = [
                CommitteeMemberAnswer(
                    name=s.name,
                    provider=s.provider.name,
                    model=s.provider.model,
                    ok=False,
                    error=f"budget: {left_out.get(s.name, reason)}",
                )
                for s in committee.specs
            ]
            rec = CommitteeRecord(
                members=absent,
                rule=committee.config.rule,
                quorum=committee.config.effective_quorum,
                decision=view.bias,
                budget_note=note,
            )
            return view, None, f"budget: {reason}; rules analyst called directly", record, rec
        record["max_tokens"] = cap
        outcome = await committee.decide(
            messages, bars, caller=self.agent_id, cap=cap, left_out=left_out, budget_note=note
        )
        await self.usage.add(self.agent_id, outcome.tokens, outcome.cost_usd)
        return outcome.view, outcome.result, None, record, outcome.record

    async def _rules_view(self, bars: pd.DataFrame, symbol: str) -> MarketView:
        view = await asyncio.to_thread(rules.assess, bars, symbol)
        return MarketView.model_validate(view.model_dump())

    async def recognize_patterns(
        self, symbol: str = "NQ", min_confidence: float = 0.0, timeframe: str | None = None
    ) -> TaskReport:
        """The ``detect_patterns`` tool on ``timeframe`` bars: the candlestick patterns of the last bars
        and the chart patterns of the recent ones, counted and listed in the summary."""
        root = _root_symbol(symbol)
        interval = _timeframe(timeframe) if timeframe is not None else self.interval
        out = await self.tool(
            "detect_patterns",
            symbol=root,
            interval=interval,
            source=self.source,
            min_confidence=min_confidence,
        )
        report = out["report"]
        candles, charts = report["candlesticks"], report["chart_patterns"]
        found = [f"{c['name']} ({c['direction']}, {_clock(c['time'])})" for c in candles] + [
            f"{p['kind']} ({p['direction']}, {p['status']}, confidence {p['confidence']:.2f})" for p in charts
        ]
        summary = (
            f"{root} {interval}: {len(candles)} candlestick and {len(charts)} chart patterns as of "
            f"{_clock(report['as_of'])}" + (": " + "; ".join(found) if found else "")
        )
        prompt = self.task_prompt(
            "pattern_recognition",
            {"symbol": root, "timeframe": interval, "patterns": [*candles, *charts], "market": summary},
        )
        return TaskReport(
            task="pattern_recognition",
            symbol=root,
            summary=summary,
            data={
                **out,
                "timeframe": interval,
                "counts": {"candlestick": len(candles), "chart": len(charts)},
            },
            **prompt,
        )

    async def market_summary(self, symbol: str = "NQ", timeframe: str | None = None) -> TaskReport:
        """A few readable sentences on ``symbol``: last price and change, the session's range, momentum
        and trend on ``timeframe`` bars, and the nearest support and resistance."""
        root = _root_symbol(symbol)
        interval = _timeframe(timeframe) if timeframe is not None else self.interval
        common = {"symbol": root, "interval": interval, "source": self.source}
        price = await self.tool("get_nq_price", **common)
        momentum = (await self.tool("analyze_momentum", **common))["report"]
        levels = (await self.tool("find_support_resistance", **common, max_zones=4))["levels"]
        trend = momentum["trend"]
        origin = price.get("origin") or {}
        note = f" ({origin['note']})" if origin.get("note") else ""
        lines = [
            f"{root} on {interval} bars{note}: last {price['price']:.2f} at {_clock(price['bar_time'])}, "
            f"{price['change_pts']:+.2f} points ({price['change_pct']:+.2f} %) on the previous session's "
            f"close; session range {price['session_low']:.2f} to {price['session_high']:.2f}.",
            f"Momentum: RSI {_num(momentum.get('rsi'), '.1f')}, MACD histogram "
            f"{_num(momentum.get('macd_hist'), '+.2f')}; trend {trend['strength']} {trend['direction']} "
            f"(ADX {trend['adx']:.1f}).",
            f"Nearest support {_level(levels.get('nearest_support'))}; nearest resistance "
            f"{_level(levels.get('nearest_resistance'))}.",
        ]
        data = {"timeframe": interval, "price": price, "momentum": momentum, "levels": levels}
        prompt = self.task_prompt("market_summary", {"symbol": root, "market": data})
        return TaskReport(task="market_summary", symbol=root, summary=" ".join(lines), data=data, **prompt)


def _root_symbol(symbol: Any) -> str:
    """The contract root of a user's symbol (``NQ=F`` → ``NQ``); an unknown one is a bad argument."""
    if not isinstance(symbol, str) or not 1 <= len(symbol) <= 16:
        raise InvalidArgumentError(f"symbol must be a string of 1 to 16 characters, got {symbol!r:.40}")
    try:
        return get_contract(symbol).symbol
    except UnknownSymbolError as exc:
        raise InvalidArgumentError(exc.message, symbol=symbol) from None


def _timeframe(timeframe: Any) -> str:
    """A bar interval of ``TIMEFRAMES`` (aliases such as ``60m`` accepted), else a bad argument."""
    if isinstance(timeframe, str):
        with contextlib.suppress(InvalidArgumentError):
            tf = parse_interval(timeframe)
            if tf in TIMEFRAMES:
                return tf
    raise InvalidArgumentError(f"timeframe must be one of {', '.join(TIMEFRAMES)}, got {timeframe!r:.40}")


def _clock(iso: Any) -> str:
    """``2026-04-28T16:55:00-04:00`` → ``2026-04-28 16:55 ET`` (the tools' times are New York time)."""
    text = str(iso)
    return f"{text[:10]} {text[11:16]} ET" if len(text) >= 16 and text[10] == "T" else text


def _num(x: Any, fmt: str) -> str:
    return "n/a" if x is None else format(float(x), fmt)


def _level(level: Any) -> str:
    if not isinstance(level, dict):
        return "none found"
    return f"{level['price']:.2f} ({level['name']}, {level['source']})"


def _pattern_brief(out: dict[str, Any]) -> dict[str, Any]:
    """The ``detect_patterns`` answer as counts and names, for the analysis inputs."""
    report = out["report"]
    return {
        "candlestick": [f"{c['name']} {c['direction']} {c['time']}" for c in report["candlesticks"]],
        "chart": [
            f"{p['kind']} {p['direction']} {p['status']} {p['confidence']:.2f}"
            for p in report["chart_patterns"]
        ],
    }


def _momentum_brief(m: dict[str, Any]) -> dict[str, Any]:
    return {
        "roc_pct": m["roc_pct"],
        "rsi": m["rsi"],
        "macd_hist": m["macd_hist"],
        "trend": m["trend"],
        "alignment": m["alignment"],
        "divergences": [f"{d['indicator']} {d['kind']} {d['end']}" for d in m["divergences"][-3:]],
    }


class RiskAgent(Agent):
    """Turns a view into a proposal (ATR stop, 2R target), sizes it, checks it against the risk gate, and
    asks a model (``risk_assessment`` template) for a narrative and concerns that can only make the trade
    smaller (``thinking.apply_narrative``). Also assesses a given or the live book (the seed's
    ``assess_risk`` with ``portfolio`` and ``market_conditions``)."""

    agent_id = "risk_agent"
    agent_type = "risk"

    def __init__(
        self,
        tools: Tools,
        *,
        agent_id: str | None = None,
        config: AgentConfig | dict[str, Any] | None = None,
        memory: MemoryManager | None = None,
        min_confidence: float = 0.5,
        risk_pct: float = DESK_DEFAULTS.risk_pct,
        atr_multiple: float = DESK_DEFAULTS.atr_multiple,
        reward_risk: float = 2.0,
        interval: str = "5m",
        source: str = DEFAULT_SOURCE,
        router: LLMRouter | None = None,
        usage: UsageBook | None = None,
    ) -> None:
        super().__init__(tools, agent_id=agent_id, config=config, memory=memory)
        self.min_confidence = min_confidence
        self.risk_pct = risk_pct
        self.atr_multiple = atr_multiple
        self.reward_risk = reward_risk
        self.interval = interval
        self.source = source
        self.thinker = thinking.Thinker(
            self.agent_id, self.config, thinking.model_router(router, self.config), usage or UsageBook()
        )

    def handlers(self) -> dict[str, Callable[..., Awaitable[BaseModel]]]:
        return {"assess_risk": self.assess_risk}

    async def assess_risk(
        self,
        analysis: AnalysisReport | dict[str, Any] | None = None,
        portfolio: Any = None,
        market_conditions: Any = None,
        confidence: float = 0.95,
    ) -> RiskAssessment:
        """The seed's ``assess_risk``: a trade from an ``analysis``, else the book — ``portfolio`` (see
        ``thinking.parse_portfolio`` for its shapes) valued at ``market_conditions``, or the live book."""
        if analysis is not None:
            if portfolio is not None or market_conditions is not None:
                raise InvalidArgumentError(
                    "assess_risk takes an analysis, or a portfolio and market_conditions"
                )
            return await self.assess_trade(analysis)
        return await self.assess_portfolio(portfolio, market_conditions, confidence=confidence)

    async def assess_trade(self, analysis: AnalysisReport | dict[str, Any]) -> RiskAssessment:
        a = AnalysisReport.model_validate(analysis)
        view, symbol = a.view, a.symbol
        if view.bias == "flat":
            return RiskAssessment(
                symbol=symbol, approved=False, contracts=0, reasons=["view is flat: no trade"]
            )
        if view.confidence < self.min_confidence:
            return RiskAssessment(
                symbol=symbol,
                approved=False,
                contracts=0,
                reasons=[f"confidence {view.confidence:.2f} below {self.min_confidence:.2f}: no trade"],
            )
        size, sizing = await self.tool_as(
            SizeOut,
            "calculate_position_size",
            symbol=symbol,
            method="atr_stop",
            risk_pct=self.risk_pct,
            atr_multiple=self.atr_multiple,
            interval=self.interval,
            source=self.source,
        )
        if size.atr_pts is None:
            raise InvalidArgumentError("calculate_position_size gave no ATR for an atr_stop sizing")
        proposal = self.propose(a, size.atr_pts, size.size.contracts)
        if proposal.contracts == 0:
            return RiskAssessment(
                symbol=symbol,
                approved=False,
                contracts=0,
                reasons=[f"sizing allows 0 contracts: {size.size.detail}"],
                proposal=proposal,
                sizing=sizing,
            )
        check, _ = await self.tool_as(
            LimitCheck,
            "check_risk_limits",
            symbol=symbol,
            side=proposal.side,
            contracts=proposal.contracts,
            order_type="limit",
            price=proposal.entry,
        )
        verdict = check.verdict
        code_contracts = verdict.adjusted_contracts if verdict.approved else 0
        reasons = [r.message for r in verdict.reasons]
        rules_n = thinking.rules_narrative(
            proposal, code_contracts, reasons, equity_usd=size.equity_usd, risk_pct=self.risk_pct
        )
        context = {
            "symbol": symbol,
            "proposal": json.dumps(
                {**proposal.model_dump(mode="json"), "contracts_after_gate": code_contracts},
                indent=1,
                ensure_ascii=False,
            ),
            "risk_parameters": json.dumps(
                {
                    "limits": check.limits.model_dump(mode="json"),
                    "equity_usd": size.equity_usd,
                    "risk_pct_per_trade": self.risk_pct,
                    "gate": {"approved": verdict.approved, "reasons": reasons},
                },
                indent=1,
                ensure_ascii=False,
            ),
            "positions": await self._book_text(),
        }
        narrative, thought, contracts = await self._think(context, rules_n, code_contracts, symbol)
        if code_contracts > 0 and contracts == 0:
            reasons = [*reasons, f"risk model: {narrative.stance}: {narrative.narrative[:200]}"]
        return RiskAssessment(
            symbol=symbol,
            approved=verdict.approved and contracts > 0,
            contracts=contracts,
            reasons=reasons,
            proposal=proposal,
            verdict=verdict.model_dump(mode="json"),
            sizing=sizing,
            code_contracts=code_contracts,
            narrative=narrative,
            thought=thought,
        )

    async def _book_text(self) -> str:
        """The open positions for the prompt ("unavailable" when this agent cannot see the broker); not
        read when no model will be asked (a backtest's risk agent makes no extra tool call)."""
        if self.thinker.router is None:
            return "not read (no model to ask)"
        try:
            out = await self.tool("manage_position", action="status")
        except NQRayError as exc:
            return f"unavailable ({exc.code})"
        return json.dumps((out.get("portfolio") or {}).get("positions") or "none", default=str)

    async def _think(
        self, context: dict[str, Any], rules_n: thinking.RiskNarrative, code_contracts: int, symbol: str
    ) -> tuple[thinking.RiskNarrative, thinking.Thought, int]:
        """The model's narrative (only when there is a trade to make smaller) applied to the code's
        contracts, else the rules' — with the prompt, template version and who answered."""
        rendered = self.render_prompt("risk_assessment", {"symbol": symbol, **context})
        user = thinking.schema_instruction(
            thinking.RiskNarrative,
            "Assess the risk above. You may only make it smaller: stance proceed, reduce or stand_aside, "
            "suggested_contracts at most the contracts after the gate.",
        )
        messages = rendered.as_messages(user)
        asked: thinking.Asked[thinking.RiskNarrative]
        if code_contracts > 0:
            asked = await self.thinker.ask(
                messages,
                thinking.RiskNarrative,
                task="risk_assessment",
                prompt_version=rendered.prompt_version,
            )
        else:
            asked = thinking.Asked(None, fallback="no contracts to assess: the code refused the trade")
        narrative = asked.answer or rules_n
        contracts, notes = thinking.apply_narrative(narrative, code_contracts)
        thought = thinking.thought_of(
            rendered,
            messages,
            asked,
            used=asked.answer is not None,
            raw_output=asked.raw_output or narrative.narrative,
            notes=notes,
        )
        return narrative, thought, contracts

    async def assess_portfolio(
        self, portfolio: Any = None, market_conditions: Any = None, *, confidence: float = 0.95
    ) -> RiskAssessment:
        """A book's exposure, margin use, VaR and distance to each limit, with a narrative; ``approved`` is
        true when no size limit is breached (and the model did not say stand aside)."""
        given = None if portfolio is None else thinking.parse_portfolio(portfolio)
        prices, vol = thinking.parse_market_conditions(market_conditions)
        raw = await self.tool(
            "assess_portfolio_risk",
            **({"positions": given[0]} if given is not None else {}),
            confidence=confidence,
            source=self.source,
        )
        review = thinking.review_book(
            raw, given[1] if given is not None else None, prices, vol, confidence=confidence
        )
        book, distances, var = review.positions, review.distances, review.var
        limits = RiskLimits.model_validate(review.limits)
        breaches = [f"{d.limit}: {d.value:g} > {d.limit_value:g} {d.unit}" for d in distances if d.breached]
        var_usd = float(var["var_usd"]) if var else None
        rules_n = thinking.rules_narrative(
            None,
            0,
            breaches,
            distances=distances,
            var_usd=var_usd,
            daily_loss_limit_usd=limits.max_daily_loss_usd,
        )
        symbol = ",".join(sorted(book)) or "NQ"
        context = {
            "proposal": "none: assess the book as it stands "
            "(stance: proceed = hold, reduce, stand_aside = flatten)",
            "risk_parameters": json.dumps(
                {
                    "limits": limits.model_dump(mode="json"),
                    "distances": [d.model_dump(mode="json") for d in distances],
                    "var_usd": var_usd,
                    "volatility_var_usd": review.volatility_var_usd,
                    "equity_usd": review.equity_usd,
                },
                indent=1,
                ensure_ascii=False,
            ),
            "positions": json.dumps(
                {"contracts": book, "avg_prices": review.avg_prices, "prices": review.prices}
            ),
        }
        narrative, thought, _ = await self._think(context, rules_n, 1 if book else 0, symbol)
        thought = thought.model_copy(update={"notes": []})  # a book's narrative sizes no order
        approved = not breaches and narrative.stance != "stand_aside"
        reasons = breaches + (
            [f"risk model: stand aside: {narrative.narrative[:200]}"]
            if narrative.stance == "stand_aside"
            else []
        )
        return RiskAssessment(
            symbol="portfolio",
            approved=approved,
            contracts=0,
            reasons=reasons,
            narrative=narrative,
            thought=thought,
            portfolio=review,
        )

    def propose(self, a: AnalysisReport, atr_pts: float, contracts: int) -> TradeProposal:
        """Entry at the last price, stop ``atr_multiple`` × ATR away, target ``reward_risk`` × the risk."""
        c = get_contract(a.symbol)
        sign = 1.0 if a.view.bias == "long" else -1.0
        entry = c.round_price(a.last_price)
        risk_pts = self.atr_multiple * atr_pts
        return TradeProposal(
            symbol=a.symbol,
            side="buy" if sign > 0 else "sell",
            contracts=contracts,
            entry=entry,
            stop=c.round_price(entry - sign * risk_pts),
            target=c.round_price(entry + sign * self.reward_risk * risk_pts),
            rationale=f"{a.view.bias} ({a.view.confidence:.2f}, {a.provider}): {a.view.reasoning[:300]}",
        )


class ExecutionAgent(Agent):
    """Places the approved bracket order through ``place_order``. A model may plan how (``execution_base``
    template → ``OrderPlan``: entry type, stop and target placement, scale-outs); the plan is checked by
    code (``thinking.check_order_plan``) and a plan that fails is replaced by the deterministic one — a limit
    at the proposal's entry (``entry_order="limit"``, the default) or a market order (``"market"``: the next
    bar's open plus slippage, as a backtest enters). Nothing is sent for a denied assessment. Also the
    seed's manual ``place_trade`` (action, quantity, price, stop_loss, take_profit) through the same gate."""

    agent_id = "execution_agent"
    agent_type = "execution"

    def __init__(
        self,
        tools: Tools,
        *,
        agent_id: str | None = None,
        config: AgentConfig | dict[str, Any] | None = None,
        memory: MemoryManager | None = None,
        entry_order: str = "limit",
        router: LLMRouter | None = None,
        usage: UsageBook | None = None,
    ) -> None:
        super().__init__(tools, agent_id=agent_id, config=config, memory=memory)
        if entry_order not in ("limit", "market"):
            raise InvalidArgumentError(f"entry_order must be limit or market, got {entry_order!r}")
        self.entry_order = entry_order
        self.thinker = thinking.Thinker(
            self.agent_id, self.config, thinking.model_router(router, self.config), usage or UsageBook()
        )

    def handlers(self) -> dict[str, Callable[..., Awaitable[BaseModel]]]:
        return {"place_trade": self.place_trade, "manage_position": self.manage_position}

    async def place_trade(
        self,
        assessment: RiskAssessment | dict[str, Any] | None = None,
        client_order_id: str | None = None,
        **order: Any,
    ) -> ExecutionReport:
        """The seed's ``place_trade``: an approved ``assessment`` (the desk's path), or a manual order —
        ``action`` BUY|SELL, ``quantity``, ``price`` (a limit; market without), ``stop_loss``,
        ``take_profit``, ``order_type``, ``symbol`` (see ``thinking.ManualTrade``)."""
        if assessment is not None:
            if order:
                raise InvalidArgumentError(
                    f"place_trade takes an assessment or a manual order, not both (got {sorted(order)})"
                )
            return await self.execute_trade(assessment, client_order_id=client_order_id)
        if not order:
            raise InvalidArgumentError("place_trade needs an assessment, or action and quantity")
        return await self.place_manual(thinking.manual_trade({**order, "client_order_id": client_order_id}))

    async def place_manual(self, t: thinking.ManualTrade) -> ExecutionReport:
        """A manual order with its bracket, checked (tick grid, sides) and sent through the gate; a gate
        refusal is a ``refusal`` in the report, not an exception."""
        reference = None
        if t.kind == "market" and (t.stop_loss is not None or t.take_profit is not None):
            reference = float((await self.tool("get_nq_price", symbol=t.symbol))["price"])
        problems = t.problems(reference)
        if problems:
            raise InvalidArgumentError("place_trade: " + "; ".join(problems), problems=problems)
        coid = t.client_order_id or new_client_order_id()
        out, raw = await self._send(
            t.symbol, t.action, t.quantity, t.kind, t.price, t.stop_loss, t.take_profit, coid
        )
        refusal = None if out.accepted else _refusal(raw["order"])
        return ExecutionReport(
            placed=out.accepted,
            orders=[raw["order"]],
            note=refusal.message if refusal else out.note,
            refusal=refusal,
            client_order_ids=[coid],
        )

    async def _send(
        self,
        symbol: str,
        side: str,
        contracts: int,
        order_type: str,
        price: float | None,
        stop_loss: float | None,
        take_profit: float | None,
        client_order_id: str,
    ) -> tuple[OrderResult, dict[str, Any]]:
        """One bracketed order through ``place_order`` (the broker's gate decides)."""
        return await self.tool_as(
            OrderResult,
            "place_order",
            symbol=symbol,
            side=side,
            contracts=contracts,
            order_type=order_type,
            **({"price": price} if order_type == "limit" else {}),
            stop_loss=stop_loss,
            take_profit=take_profit,
            client_order_id=client_order_id,
        )

    async def manage_position(
        self,
        action: str = "status",
        symbol: str | None = None,
        price: float | None = None,
        quantity: int | None = None,
        client_order_id: str | None = None,
    ) -> TaskReport:
        """The seed's position management (status, move_stop, move_target, partial_close, flatten,
        flatten_all) through the ``manage_position`` tool."""
        args = {
            k: v
            for k, v in (
                ("action", action),
                ("symbol", symbol),
                ("price", price),
                ("quantity", quantity),
                ("client_order_id", client_order_id),
            )
            if v is not None
        }
        out = await self.tool("manage_position", **args)
        n = len(out.get("orders") or [])
        return TaskReport(
            task="manage_position", symbol=symbol, summary=f"{action}: {n} order(s) touched", data=out
        )

    async def plan_order(
        self, r: RiskAssessment
    ) -> tuple[thinking.OrderPlan, thinking.Thought, thinking.OrderPlan | None]:
        """The model's plan when it passes every check, else the deterministic one (and the rejected plan)."""
        assert r.proposal is not None
        p = r.proposal
        c = get_contract(p.symbol)
        risk_pts = abs(p.entry - p.stop)
        rendered = self.render_prompt(
            "execution_base",
            {
                "symbol": p.symbol,
                "idea": json.dumps(
                    {**p.model_dump(mode="json"), "approved_contracts": r.contracts},
                    indent=1,
                    ensure_ascii=False,
                ),
                "risk_parameters": json.dumps(
                    {
                        "max_risk_per_contract_pts": risk_pts,
                        "max_risk_per_contract_usd": c.pnl_usd(risk_pts),
                        "tick_size": c.tick_size,
                        "contracts": r.contracts,
                        "limits": (r.verdict or {}).get("limits"),
                    },
                    indent=1,
                    ensure_ascii=False,
                ),
            },
        )
        user = thinking.schema_instruction(
            thinking.OrderPlan,
            "Plan the order: entry_type limit or market, stop and target on the tick grid, the stop no "
            "farther from the entry than the approved risk per contract, scale_out fractions summing ≤ 1.",
        )
        messages = rendered.as_messages(user)
        asked = await self.thinker.ask(
            messages, thinking.OrderPlan, task="execution", prompt_version=rendered.prompt_version
        )
        fallback, rejected_plan, rejected = asked.fallback, None, []
        plan = asked.answer
        if plan is not None:
            rejected = thinking.check_order_plan(plan, p, r.contracts)
            if rejected:
                log.warning("%s: model plan rejected: %s", self.agent_id, "; ".join(rejected))
                rejected_plan, plan = plan, None
                fallback = "model plan rejected by the checks; deterministic plan used"
        final = plan or thinking.rules_plan(p, self.entry_order)
        thought = thinking.thought_of(
            rendered, messages, asked, used=plan is not None, fallback=fallback, rejected=rejected
        )
        return final, thought, rejected_plan

    async def execute_trade(
        self, assessment: RiskAssessment | dict[str, Any], client_order_id: str | None = None
    ) -> ExecutionReport:
        r = RiskAssessment.model_validate(assessment)
        if not r.approved or r.proposal is None or r.contracts == 0:
            return ExecutionReport(placed=False, note="not approved: " + "; ".join(r.reasons))
        p = r.proposal
        plan, thought, rejected_plan = await self.plan_order(r)
        legs, notes = thinking.plan_legs(plan, r.contracts)
        if notes:
            thought = thought.model_copy(update={"notes": notes})
        base = client_order_id or new_client_order_id()
        orders: list[dict[str, Any]] = []
        coids: list[str] = []
        note, refusal = "", None
        for leg in legs:
            coid = base + leg.suffix
            try:
                out, raw = await self._send(
                    p.symbol,
                    p.side,
                    leg.contracts,
                    plan.entry_type,
                    plan.entry_price,
                    plan.stop_price,
                    leg.take_profit,
                    coid,
                )
            except DuplicateClientOrderIdError as exc:
                # a retried cycle whose model planned differently the first time: the first order stands,
                # nothing new is sent (the same plan again would have been returned as a duplicate)
                refusal = thinking.Refusal(code=exc.code, message=str(exc))
                note = f"{coid} was already sent with another plan; nothing new was sent"
                break
            orders.append(raw["order"])
            coids.append(coid)
            note = out.note
            if not out.accepted:
                refusal = _refusal(raw["order"])
                note = refusal.message
                break  # the gate said no: no further leg
        return ExecutionReport(
            placed=any(o.get("status") != "rejected" for o in orders),
            orders=orders,
            note=note,
            plan=plan,
            rejected_plan=rejected_plan,
            thought=thought,
            refusal=refusal,
            client_order_ids=coids,
        )


def _refusal(order: dict[str, Any]) -> thinking.Refusal:
    """The gate's no, as data: its reasons from the rejected order record."""
    verdict = order.get("verdict") or {}
    reasons = list(verdict.get("reasons") or order.get("reasons") or [])
    text = "; ".join(str(x.get("message", x)) if isinstance(x, dict) else str(x) for x in reasons)
    return thinking.Refusal(
        code="risk_denied",
        message=f"the risk gate refused the order: {text or order.get('status')}",
        reasons=reasons,
    )
