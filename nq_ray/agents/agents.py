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
import hashlib
import json
import math
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar

import pandas as pd
from pydantic import BaseModel, ValidationError

from nq_ray.agents.context import ContextManager, approx_tokens
from nq_ray.agents.memory import MemoryManager, UsageBook
from nq_ray.agents.models import (
    AgentConfig,
    AnalysisReport,
    ExecutionReport,
    MarketView,
    RiskAssessment,
    TaskReport,
    TradeProposal,
)
from nq_ray.domain.contracts import get_contract
from nq_ray.errors import InvalidArgumentError, NQRayError
from nq_ray.llm import rules
from nq_ray.llm.accounting import Budget
from nq_ray.llm.errors import AllProvidersFailedError, BudgetExceededError, LLMDeadlineError
from nq_ray.llm.router import LLMResult, LLMRouter
from nq_ray.tools.execution import OrderResult
from nq_ray.tools.registry import ToolRegistry
from nq_ray.tools.risk import LimitCheck, SizeOut

M = TypeVar("M", bound=BaseModel)


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
    """Base: an id, a config, the tools, memory, and the seed's
    ``execute_task({"type": ..., "parameters": {...}})``."""

    agent_id: str = "agent"
    agent_type: str = "agent"

    def __init__(
        self,
        tools: Tools,
        *,
        agent_id: str | None = None,
        config: AgentConfig | dict[str, Any] | None = None,
        memory: MemoryManager | None = None,
    ) -> None:
        self.tools = tools
        if agent_id is not None:
            self.agent_id = agent_id
        self.config = AgentConfig.model_validate(config or {})
        self.memory = memory or MemoryManager()

    def handlers(self) -> dict[str, Callable[..., Awaitable[BaseModel]]]:
        return {}

    async def execute_task(self, task: dict[str, Any]) -> dict[str, Any]:
        """Run one seed-style task; the answer is the typed result as JSON-able data."""
        handlers = self.handlers()
        kind = task.get("type") if isinstance(task, dict) else None
        if kind not in handlers:
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

    async def get_recent_memory(self, n: int = 10) -> list[dict[str, Any]]:
        return await self.memory.recent(self.agent_id, n)

    async def get_memory_by_type(self, type: str, n: int = 10) -> list[dict[str, Any]]:
        return await self.memory.recent(self.agent_id, n, kind=type)

    async def remember(self, kind: str, value: Any) -> int:
        return await self.memory.store_memory(self.agent_id, kind, value)

    def describe(self) -> dict[str, Any]:
        return {
            "agent_id": self.agent_id,
            "agent_type": self.agent_type,
            "config": self.config.model_dump(mode="json"),
            "tasks": sorted(self.handlers()),
        }


SYSTEM_PROMPT = (
    "You are the market analyst of an NQ futures desk. Read the market data and answer ONLY with a JSON "
    "object matching this schema: {schema}. bias is long, short or flat; confidence is 0..1; "
    "invalidation is the price that proves the view wrong."
)
DEPTH_BARS = {"quick": 200, "standard": 600, "deep": 1500}
DEFAULT_MAX_TOKENS = 512
MIN_COMPLETION_TOKENS = 32
REPAIR_MARGIN_TOKENS = 400  # the repair prompt's instruction and validation message


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
        source: str = "sample",
        window_bars: int = 600,
    ) -> None:
        super().__init__(tools, agent_id=agent_id, config=config, memory=memory)
        self.base_router = router
        self.router = router_for(router, self.config)
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

    async def analyze_market(self, symbol: str = "NQ", analysis_depth: str = "standard") -> AnalysisReport:
        if analysis_depth not in DEPTH_BARS:
            raise InvalidArgumentError(
                f"analysis_depth must be one of {sorted(DEPTH_BARS)}, got {analysis_depth!r}"
            )
        window_bars = self.window_bars if analysis_depth == "standard" else DEPTH_BARS[analysis_depth]
        common = {"symbol": symbol, "interval": self.interval, "source": self.source}
        price = await self.tool("get_nq_price", **common)
        history = await self.tool("get_historical_data", **common, limit=window_bars)
        indicators = await self.tool("calculate_technical_indicators", **common, tail=1)
        levels = (await self.tool("find_support_resistance", **common, max_zones=6))["levels"]
        rows = history["bars"]
        memories = await self.get_recent_memory(self.config.memory_items)
        inputs = {
            "window": {
                "interval": self.interval,
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
            "levels": {
                "nearest_support": levels.get("nearest_support"),
                "nearest_resistance": levels.get("nearest_resistance"),
                "prior_day": levels.get("prior_day"),
                "pivots": levels.get("pivots", {}).get("classic"),
            },
            "memory_ids": [m["id"] for m in memories],
            "analysis_depth": analysis_depth,
        }
        schema = json.dumps(MarketView.model_json_schema(), separators=(",", ":"))
        user = json.dumps({"symbol": symbol, **{k: inputs[k] for k in ("price", "indicators", "levels")}})
        if memories:
            items = [_memory_line(m) for m in reversed(memories)]  # oldest first
            built = self.context.build_context(["agent_memory"], data={"agent_memory": items})
            user += "\n\n" + built.text
        messages = [
            {"role": "system", "content": SYSTEM_PROMPT.format(schema=schema)},
            {"role": "user", "content": user},
        ]
        bars = _bars_frame(rows)
        view, result, fallback, params = await self._view(messages, bars, symbol)
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
            raw_output=result.text if result else view.reasoning,
            inputs=inputs,
            params=params,
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

    async def _allowance(self, messages: list[dict[str, str]]) -> tuple[int | None, str | None]:
        """The completion cap for this call, or why the agent may not call an LLM now (its budget). The
        cap is chosen so that even the worst case — every LLM in the chain answering, each twice (one
        repair), at the cap — stays inside what is left of the day's budget."""
        cap = self.config.max_tokens or DEFAULT_MAX_TOKENS
        b = self.config.budget
        if b is None:
            return self.config.max_tokens, None
        used_tok, used_usd = await self.usage.used(self.agent_id)
        llms = [p for p in self.router.config.resolved() if p.enabled and p.is_llm]
        n = max(1, len(llms))
        schema_tok = approx_tokens(json.dumps(MarketView.model_json_schema()))
        p_tok = sum(approx_tokens(m["content"]) + 8 for m in messages) + schema_tok + 16
        reasons: list[str] = []
        rem_tok = rem_usd = None
        if b.tokens_per_day is not None:
            rem_tok = b.tokens_per_day - used_tok
            cap = min(cap, (rem_tok // n - 2 * p_tok - REPAIR_MARGIN_TOKENS) // 3)
            reasons.append(f"{used_tok} of {b.tokens_per_day} tokens used today")
        if b.usd_per_day is not None:
            rem_usd = b.usd_per_day - used_usd
            pp = max((p.cost_per_1k_prompt_usd for p in llms), default=0.0) / 1000
            pc = max((p.cost_per_1k_completion_usd for p in llms), default=0.0) / 1000
            if pp + pc > 0:
                room = rem_usd / n - (2 * p_tok + REPAIR_MARGIN_TOKENS) * pp
                cap = min(cap, math.floor(room / (pp + 2 * pc)) if room > 0 else 0)
            reasons.append(f"${used_usd:.4f} of ${b.usd_per_day:.4f} spent today")
        # the router's ledger enforces the same limit: what it has counted so far plus what is left today
        t = self.router.ledger.totals(caller=self.agent_id)
        self.router.ledger.set_budget(
            self.agent_id,
            Budget(
                max_tokens=None if rem_tok is None else t.total_tokens + max(0, rem_tok),
                max_cost_usd=None if rem_usd is None else t.cost_usd + max(0.0, rem_usd),
            ),
        )
        over = self.router.ledger.over_budget(self.agent_id)
        if over is not None or cap < MIN_COMPLETION_TOKENS:
            return None, (f"{self.agent_id} daily budget: {'; '.join(reasons)}; a call could exceed it")
        return cap, None

    async def _view(
        self, messages: list[dict[str, str]], bars: pd.DataFrame, symbol: str
    ) -> tuple[MarketView, LLMResult | None, str | None, dict[str, Any]]:
        """The router's validated view, else the rules analyst's, with the reason it fell back."""
        params: dict[str, Any] = {}
        if self.config.temperature is not None:
            params["temperature"] = self.config.temperature
        cap, budget_reason = await self._allowance(messages)
        record = {
            "temperature": self.config.temperature,
            "max_tokens": self.config.max_tokens,
            "provider": self.config.provider,
            "model": self.config.model,
        }
        if budget_reason is not None:
            view = await self._rules_view(bars, symbol)
            return view, None, f"budget: {budget_reason}; rules analyst called directly", record
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
            return view, None, f"no provider answered ({exc.code}); rules analyst called directly", record
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
            return result.parsed, result, fallback, record
        try:  # a provider's parsed answer of another shape: validate it, never trade on it unchecked
            return (
                MarketView.model_validate(result.parsed.model_dump() if result.parsed else {}),
                result,
                None,
                record,
            )
        except ValidationError:
            view = await self._rules_view(bars, symbol)
            return (
                view,
                result,
                f"{result.provider}'s answer did not validate as MarketView; rules analyst",
                record,
            )

    async def _rules_view(self, bars: pd.DataFrame, symbol: str) -> MarketView:
        view = await asyncio.to_thread(rules.assess, bars, symbol)
        return MarketView.model_validate(view.model_dump())

    async def recognize_patterns(self, symbol: str = "NQ", min_confidence: float = 0.0) -> TaskReport:
        out = await self.tool(
            "detect_patterns",
            symbol=symbol,
            interval=self.interval,
            source=self.source,
            min_confidence=min_confidence,
        )
        candles = out.get("candlestick") or out.get("candles") or []
        charts = out.get("chart") or out.get("chart_patterns") or []
        summary = f"{symbol}: {len(candles)} candlestick and {len(charts)} chart patterns found"
        return TaskReport(task="pattern_recognition", symbol=symbol, summary=summary, data=out)

    async def market_summary(self, symbol: str = "NQ") -> TaskReport:
        common = {"symbol": symbol, "interval": self.interval, "source": self.source}
        price = await self.tool("get_nq_price", **common)
        momentum = await self.tool("analyze_momentum", **common)
        levels = (await self.tool("find_support_resistance", **common, max_zones=4))["levels"]
        summary = (
            f"{symbol} {price['price']} ({price.get('change_pts', 0):+} pts) at {price['bar_time']}; "
            f"support {levels.get('nearest_support')}, resistance {levels.get('nearest_resistance')}"
        )
        return TaskReport(
            task="market_summary",
            symbol=symbol,
            summary=summary,
            data={"price": price, "momentum": momentum.get("report"), "levels": levels},
        )


def _memory_line(m: dict[str, Any]) -> str:
    v = m["value"]
    body = json.dumps(v, sort_keys=True, default=str) if not isinstance(v, str) else v
    return f"{m['at']} [{m['kind']}] {body}"


class RiskAgent(Agent):
    """Turns a view into a proposal (ATR stop, 2R target), sizes it and checks it against the risk gate."""

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
        risk_pct: float = 1.0,
        atr_multiple: float = 2.0,
        reward_risk: float = 2.0,
        interval: str = "5m",
        source: str = "sample",
    ) -> None:
        super().__init__(tools, agent_id=agent_id, config=config, memory=memory)
        self.min_confidence = min_confidence
        self.risk_pct = risk_pct
        self.atr_multiple = atr_multiple
        self.reward_risk = reward_risk
        self.interval = interval
        self.source = source

    def handlers(self) -> dict[str, Callable[..., Awaitable[BaseModel]]]:
        return {"assess_risk": self.assess_trade}

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
        contracts = verdict.adjusted_contracts
        return RiskAssessment(
            symbol=symbol,
            approved=verdict.approved and contracts > 0,
            contracts=contracts,
            reasons=[r.message for r in verdict.reasons],
            proposal=proposal,
            verdict=verdict.model_dump(mode="json"),
            sizing=sizing,
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
    """Places the approved bracket order (a limit at the proposal's entry, as risk checked it) through
    ``place_order``; does nothing for a denied one."""

    agent_id = "execution_agent"
    agent_type = "execution"

    def handlers(self) -> dict[str, Callable[..., Awaitable[BaseModel]]]:
        return {"place_trade": self.execute_trade, "manage_position": self.manage_position}

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

    async def execute_trade(
        self, assessment: RiskAssessment | dict[str, Any], client_order_id: str | None = None
    ) -> ExecutionReport:
        r = RiskAssessment.model_validate(assessment)
        if not r.approved or r.proposal is None or r.contracts == 0:
            return ExecutionReport(placed=False, note="not approved: " + "; ".join(r.reasons))
        p = r.proposal
        out, raw = await self.tool_as(
            OrderResult,
            "place_order",
            symbol=p.symbol,
            side=p.side,
            contracts=r.contracts,
            order_type="limit",
            price=p.entry,
            stop_loss=p.stop,
            take_profit=p.target,
            client_order_id=client_order_id,
        )
        return ExecutionReport(placed=out.accepted, orders=[raw["order"]], note=out.note)
