"""The trading agents: analysis, risk and execution. They act only through the tool registry.

Each agent reaches the market, the risk gate and the broker through ``Tools`` — the in-process
``ToolRegistry`` (``LocalTools``) or the ``tool_registry`` Ray actor (``ActorTools``) — and never imports
the broker or the data loaders. The analysis agent reasons through the ``LLMRouter`` with
``response_model=MarketView``; when no LLM gives a valid view, the rules analyst answers and the report
says so (``is_llm=False``, ``fallback`` = why). Nothing is traded on an answer that did not validate.

These are plain classes (in-process); a later change wraps them as named Ray actors.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import pandas as pd
from pydantic import BaseModel, ValidationError

from nq_ray.agents.models import (
    AnalysisReport,
    ExecutionReport,
    MarketView,
    RiskAssessment,
    TradeProposal,
)
from nq_ray.domain.contracts import get_contract
from nq_ray.errors import InvalidArgumentError
from nq_ray.llm import rules
from nq_ray.llm.errors import AllProvidersFailedError, BudgetExceededError
from nq_ray.llm.router import LLMResult, LLMRouter
from nq_ray.tools.registry import ToolRegistry


class Tools(Protocol):
    """Where agents call tools: ``call(name, arguments, who=agent_id)`` → the tool's JSON output."""

    async def call(self, name: str, arguments: dict[str, Any], *, who: str) -> dict[str, Any]: ...


class LocalTools:
    """Tools through an in-process ``ToolRegistry`` (unit tests, the CLI)."""

    def __init__(self, registry: ToolRegistry) -> None:
        self.registry = registry

    async def call(self, name: str, arguments: dict[str, Any], *, who: str) -> dict[str, Any]:
        return await self.registry.call(name, arguments, who=who)


class ActorTools:
    """Tools through the ``tool_registry`` Ray actor (``nq_ray.tools.actor.get_or_create_registry``)."""

    def __init__(self, handle: Any) -> None:
        self.handle = handle

    async def call(self, name: str, arguments: dict[str, Any], *, who: str) -> dict[str, Any]:
        out: dict[str, Any] = await self.handle.call.remote(name, arguments, who)
        return out


class Agent:
    """Base: an id, the tools, and the seed's ``execute_task({"type": ..., "parameters": {...}})``."""

    agent_id: str = "agent"

    def __init__(self, tools: Tools, *, agent_id: str | None = None) -> None:
        self.tools = tools
        if agent_id is not None:
            self.agent_id = agent_id

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
        result = await handlers[kind](**params)
        return result.model_dump(mode="json")

    async def tool(self, name: str, **arguments: Any) -> dict[str, Any]:
        return await self.tools.call(name, arguments, who=self.agent_id)


SYSTEM_PROMPT = (
    "You are the market analyst of an NQ futures desk. Read the market data and answer ONLY with a JSON "
    "object matching this schema: {schema}. bias is long, short or flat; confidence is 0..1; "
    "invalidation is the price that proves the view wrong."
)


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


class AnalysisAgent(Agent):
    """Reads price, indicators and levels through the tools and asks the router for a ``MarketView``."""

    agent_id = "analysis_agent"

    def __init__(
        self,
        tools: Tools,
        router: LLMRouter,
        *,
        agent_id: str | None = None,
        interval: str = "5m",
        source: str = "sample",
        window_bars: int = 600,
    ) -> None:
        super().__init__(tools, agent_id=agent_id)
        self.router = router
        self.interval = interval
        self.source = source
        self.window_bars = window_bars

    def handlers(self) -> dict[str, Callable[..., Awaitable[BaseModel]]]:
        return {"market_analysis": self.analyze_market}

    async def analyze_market(self, symbol: str = "NQ") -> AnalysisReport:
        common = {"symbol": symbol, "interval": self.interval, "source": self.source}
        price = await self.tool("get_nq_price", **common)
        history = await self.tool("get_historical_data", **common, limit=self.window_bars)
        indicators = await self.tool("calculate_technical_indicators", **common, tail=1)
        levels = (await self.tool("find_support_resistance", **common, max_zones=6))["levels"]
        rows = history["bars"]
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
        }
        schema = json.dumps(MarketView.model_json_schema(), separators=(",", ":"))
        user = json.dumps({"symbol": symbol, **{k: inputs[k] for k in ("price", "indicators", "levels")}})
        messages = [
            {"role": "system", "content": SYSTEM_PROMPT.format(schema=schema)},
            {"role": "user", "content": user},
        ]
        bars = _bars_frame(rows)
        view, result, fallback = await self._view(messages, bars, symbol)
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
        )

    async def _view(
        self, messages: list[dict[str, str]], bars: pd.DataFrame, symbol: str
    ) -> tuple[MarketView, LLMResult | None, str | None]:
        """The router's validated view, else the rules analyst's, with the reason it fell back."""
        try:
            result = await self.router.chat(
                messages, task="market_analysis", response_model=MarketView, caller=self.agent_id, bars=bars
            )
        except (AllProvidersFailedError, BudgetExceededError) as exc:
            view = await self._rules_view(bars, symbol)
            return view, None, f"no provider answered ({exc.code}); rules analyst called directly"
        failed = [f"{a.provider}: {a.reason}" for a in result.attempts if a.outcome != "ok"]
        if isinstance(result.parsed, MarketView):
            fallback = (
                None
                if result.is_llm
                else "rules analyst answered" + (f" after {'; '.join(failed)}" if failed else "")
            )
            return result.parsed, result, fallback
        try:  # a provider's parsed answer of another shape: validate it, never trade on it unchecked
            return (
                MarketView.model_validate(result.parsed.model_dump() if result.parsed else {}),
                result,
                None,
            )
        except ValidationError:
            view = await self._rules_view(bars, symbol)
            return view, result, f"{result.provider}'s answer did not validate as MarketView; rules analyst"

    async def _rules_view(self, bars: pd.DataFrame, symbol: str) -> MarketView:
        view = await asyncio.to_thread(rules.assess, bars, symbol)
        return MarketView.model_validate(view.model_dump())


class RiskAgent(Agent):
    """Turns a view into a proposal (ATR stop, 2R target), sizes it and checks it against the risk gate."""

    agent_id = "risk_agent"

    def __init__(
        self,
        tools: Tools,
        *,
        agent_id: str | None = None,
        min_confidence: float = 0.5,
        risk_pct: float = 1.0,
        atr_multiple: float = 2.0,
        reward_risk: float = 2.0,
        interval: str = "5m",
        source: str = "sample",
    ) -> None:
        super().__init__(tools, agent_id=agent_id)
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
        sizing = await self.tool(
            "calculate_position_size",
            symbol=symbol,
            method="atr_stop",
            risk_pct=self.risk_pct,
            atr_multiple=self.atr_multiple,
            interval=self.interval,
            source=self.source,
        )
        proposal = self.propose(a, float(sizing["atr_pts"]), int(sizing["size"]["contracts"]))
        if proposal.contracts == 0:
            return RiskAssessment(
                symbol=symbol,
                approved=False,
                contracts=0,
                reasons=[f"sizing allows 0 contracts: {sizing['size']['detail']}"],
                proposal=proposal,
                sizing=sizing,
            )
        check = await self.tool(
            "check_risk_limits",
            symbol=symbol,
            side=proposal.side,
            contracts=proposal.contracts,
            order_type="limit",
            price=proposal.entry,
        )
        verdict = check["verdict"]
        contracts = int(verdict["adjusted_contracts"])
        return RiskAssessment(
            symbol=symbol,
            approved=bool(verdict["approved"]) and contracts > 0,
            contracts=contracts,
            reasons=[r["message"] for r in verdict["reasons"]],
            proposal=proposal,
            verdict=verdict,
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

    def handlers(self) -> dict[str, Callable[..., Awaitable[BaseModel]]]:
        return {"place_trade": self.execute_trade}

    async def execute_trade(
        self, assessment: RiskAssessment | dict[str, Any], client_order_id: str | None = None
    ) -> ExecutionReport:
        r = RiskAssessment.model_validate(assessment)
        if not r.approved or r.proposal is None or r.contracts == 0:
            return ExecutionReport(placed=False, note="not approved: " + "; ".join(r.reasons))
        p = r.proposal
        out = await self.tool(
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
        return ExecutionReport(placed=bool(out["accepted"]), orders=[out["order"]], note=out.get("note", ""))
