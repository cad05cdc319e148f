"""MCP resources and prompts of the nq-ray server: what a client can read without calling a tool, and
the seed's prompt templates.

Resources (``application/json``), read in the registry's ``ToolContext`` — the runtime's clock, settings
and paper broker, the ones the tools use — so they answer the same over stdio and on Serve:

| URI | what |
| --- | --- |
| ``nq://contracts`` | every contract's spec and calendar (``get_contract_info`` for each) |
| ``nq://contracts/{symbol}`` | one contract (NQ, MNQ, ES, MES, ..., ``NQ=F``, ``NQH26``) |
| ``nq://calendar/session`` | the session of "now" on the runtime's clock: open, close, halt, next open |
| ``nq://calendar/{date}`` | one exchange session date (``YYYY-MM-DD``): open and close, or closed and why |
| ``nq://risk/limits`` | the gate's limits (the paper broker's), the prop-firm pack's rules, event blackouts |
| ``nq://decisions/recent`` | the desk's last 20 recorded decisions, newest first (from the store) |
| ``nq://decisions/recent/{limit}`` | the last ``limit`` (1..200) |
| ``nq://orders/book`` | the paper book: working orders, positions and P&L, fills summary, last fills |

A read with bad input (an unknown symbol, a date that is not one, a limit out of range) is a JSON-RPC
error -32602 whose message is ``[code] message`` like a tool error's; a part of the server that is down
(the store, the broker) is -32603 with the code and no server detail. Values that look like paths
(``../../etc/passwd``) are refused by FastMCP's resource security before any of this runs ("Resource not
found").

Prompts: the six seed templates (``nq_ray.llm.prompts.SEED_TEMPLATES``), rendered by the project's own
``PromptTemplateEngine`` (sandboxed, strict); each argument is a string (MCP prompt arguments are), and
the two list arguments (``patterns``, ``orders``) take a JSON array or one item a line. A missing
required argument or an unknown one is error -32602 naming them.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from fastmcp import FastMCP
from fastmcp.exceptions import ResourceError, ValidationError
from fastmcp.prompts import Prompt, PromptArgument, PromptResult
from fastmcp.resources import Resource, ResourceTemplate
from pydantic import PrivateAttr

from nq_ray.errors import ConfigError, InvalidArgumentError, NQRayError, UnknownSymbolError
from nq_ray.tools.context import ToolContext, bind
from nq_ray.tools.registry import ToolRegistry
from nq_ray.tools.wire import as_nq_error, json_safe, tool_error_text

log = logging.getLogger(__name__)

JSON = "application/json"
DESK_AGENT = "trading_desk"  # the agent id the desk records its decisions under (TradingDesk.agent_id)
DECISIONS_DEFAULT = 20
DECISIONS_MAX = 200
RECENT_FILLS = 20
FIRST_YEAR, LAST_YEAR = 2000, 2100
MAX_ARGUMENT_CHARS = 20_000
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DIGITS = re.compile(r"^\d{1,6}$")
RULE_PACK_NOTE = (
    "no prop-firm rule pack is active (settings propfirm.pack): the limits above and the event blackouts "
    "are everything the gate enforces (trailing drawdown and daily loss included)"
)
PACK_NOTE = (
    "the prop-firm rule pack the paper broker's gate enforces now (settings propfirm.pack, live): each "
    "rule's value, limit and distance (room left; <= 0 breached), its state and consequence"
)
NO_BROKER_PACK_NOTE = (
    "this server has no paper broker: the configured pack's name only (settings propfirm.pack); its "
    "rules' values need the paper broker"
)


def _client_error(err: NQRayError) -> ValidationError:
    """Input the client must fix: -32602 with ``[code] message`` (logged at DEBUG: not a server failure)."""
    return ValidationError(tool_error_text(err), log_level=logging.DEBUG)


def _server_error(what: str, err: NQRayError) -> ResourceError:
    """A part of the server that failed: -32603 naming the code, without its detail (a store's URL or a
    file's path stays in the server's log)."""
    log.warning("MCP resource %s failed: %s", what, err)
    return ResourceError(f"[{err.code}] {what} is not available right now; the server's log has the detail")


async def _answer(what: str, read: Awaitable[dict[str, Any]]) -> str:
    """The JSON text of ``read``, with nq-ray's typed errors mapped to MCP errors (module docstring)."""
    try:
        out = await read
    except Exception as exc:  # cancellation (a BaseException) passes through
        err = as_nq_error(exc)  # a Ray wrapper unwrapped; anything untyped is internal_error (and logged)
        assert err is not None
        if isinstance(err, InvalidArgumentError | UnknownSymbolError):
            raise _client_error(err) from None
        raise _server_error(what, err) from None
    return json.dumps(json_safe(out), allow_nan=False)


class Resources:
    """The reads behind each resource, over one registry's context."""

    def __init__(self, registry: ToolRegistry) -> None:
        self.registry = registry

    @property
    def ctx(self) -> ToolContext:
        return self.registry.context

    def _stamp(self) -> dict[str, Any]:
        ctx = self.ctx
        return {"as_of": ctx.now().isoformat(), "clock": "replay" if ctx.replay else "wall"}

    # ---- contracts ------------------------------------------------------------------------------
    async def contracts(self) -> dict[str, Any]:
        from nq_ray.domain.contracts import CONTRACTS

        return {**self._stamp(), "contracts": [await self._contract(s) for s in CONTRACTS]}

    async def contract(self, symbol: str) -> dict[str, Any]:
        if not 1 <= len(symbol) <= 16:
            raise InvalidArgumentError("symbol must be 1 to 16 characters, e.g. NQ, MNQ, NQ=F or NQH26")
        return {**self._stamp(), "contract": await self._contract(symbol)}

    async def _contract(self, symbol: str) -> dict[str, Any]:
        from nq_ray.tools.data import get_contract_info

        with bind(self.ctx):  # the tool's own code: margins overrides, front month on the runtime's clock
            out = await get_contract_info(symbol)
        return out.model_dump(mode="json")

    # ---- calendar -------------------------------------------------------------------------------
    async def session(self) -> dict[str, Any]:
        from nq_ray.tools.compute import in_thread
        from nq_ray.tools.data import get_market_hours

        with bind(self.ctx):
            hours = await get_market_hours()
        st = hours.status
        day = await in_thread(_session_day, st.session_date)
        now = {
            "state": st.state.value,
            "is_open": st.is_open,
            "is_rth": st.is_rth,
            "next_open": st.next_open.isoformat(),
            "next_close": st.next_close.isoformat(),
            "description": hours.description,
        }
        return {**self._stamp(), "now": now, "session": day}

    async def day(self, date: str) -> dict[str, Any]:
        from nq_ray.tools.compute import in_thread

        return {**self._stamp(), "session": await in_thread(_session_day, parse_session_date(date))}

    # ---- risk -----------------------------------------------------------------------------------
    async def risk_limits(self) -> dict[str, Any]:
        from nq_ray.risk.limits import RiskLimits

        ctx = self.ctx
        settings = ctx.settings
        limits, source = settings.risk.limits.model_dump(mode="json"), "settings"
        note = "the configured limits (settings risk.limits)"
        try:
            broker = ctx.broker()
        except ConfigError:
            broker = None
            note = "this server has no paper broker: the configured limits (settings risk.limits)"
        gate = getattr(broker, "limits", None)
        if callable(gate):
            limits = RiskLimits.model_validate(await gate()).model_dump(mode="json")
            source, note = (
                "paper_broker",
                "what the paper broker's pre-trade gate enforces now (live settings)",
            )
        pack: dict[str, Any] | None = None
        pack_note = RULE_PACK_NOTE
        events: dict[str, Any] = {"event_blackout": None, "upcoming_events": None}
        prop = getattr(broker, "prop_status", None)
        if callable(prop):
            status = await prop()
            events = {"event_blackout": status["blackout"], "upcoming_events": status["upcoming_events"]}
            if status.get("pack") is not None:
                pack, pack_note = status, PACK_NOTE
        elif settings.propfirm.pack:
            pack, pack_note = {"pack": {"name": settings.propfirm.pack}, "rules": []}, NO_BROKER_PACK_NOTE
        return {
            **self._stamp(),
            "limits": limits,
            "source": source,
            "note": note,
            "account_size_usd": settings.risk.account_size_usd,
            "margin_overrides_usd": dict(settings.risk.margins),
            "rule_pack": pack,
            "rule_pack_note": pack_note,
            **events,
        }

    # ---- decisions ------------------------------------------------------------------------------
    async def decisions(self) -> dict[str, Any]:
        return await self._decisions(DECISIONS_DEFAULT)

    async def decisions_limit(self, limit: str) -> dict[str, Any]:
        return await self._decisions(parse_limit(limit))

    async def _decisions(self, limit: int) -> dict[str, Any]:
        from nq_ray.store.desk import DeskStore
        from nq_ray.store.repository import shared_repository

        repo = await shared_repository(self.ctx.settings.store_url)
        rows = await DeskStore(repo).decisions(agent=DESK_AGENT, limit=limit)
        return {**self._stamp(), "agent": DESK_AGENT, "limit": limit, "count": len(rows), "decisions": rows}

    # ---- the order book -------------------------------------------------------------------------
    async def order_book(self) -> dict[str, Any]:
        from nq_ray.tools.execution import FillOut

        broker = self.ctx.broker()
        portfolio = await broker.portfolio()
        orders_of, fills_of = getattr(broker, "orders", None), getattr(broker, "fills", None)
        working = list(await orders_of(open_only=True)) if callable(orders_of) else []
        fills = sorted(await fills_of() if callable(fills_of) else [], key=lambda r: r.fill.time)
        by_symbol: dict[str, dict[str, float]] = {}
        for r in fills:
            s = by_symbol.setdefault(
                r.fill.symbol, {"fills": 0, "contracts": 0, "commission_usd": 0.0, "realized_pnl_usd": 0.0}
            )
            s["fills"] += 1
            s["contracts"] += r.fill.quantity
            s["commission_usd"] += r.fill.commission_usd
            s["realized_pnl_usd"] += r.realized_pnl_usd
        recent = [FillOut.of(r).model_dump(mode="json") for r in fills[-RECENT_FILLS:]]
        return {
            **self._stamp(),
            "mode": self.ctx.settings.execution.mode,
            "working_orders": [o.model_dump(mode="json") for o in working],
            "positions": portfolio.get("positions", {}),
            "portfolio": portfolio,
            "fills_summary": {
                "fills": len(fills),
                "contracts": sum(s["contracts"] for s in by_symbol.values()),
                "commission_usd": sum(s["commission_usd"] for s in by_symbol.values()),
                "realized_pnl_usd": sum(s["realized_pnl_usd"] for s in by_symbol.values()),
                "by_symbol": by_symbol,
            },
            "recent_fills": recent,
        }


def parse_session_date(text: str) -> date:
    """An exchange session date ``YYYY-MM-DD`` in the calendar's years; ``InvalidArgumentError`` else."""
    day = None
    if _DATE.match(text):
        try:
            day = date.fromisoformat(text)
        except ValueError:
            day = None
    if day is None:
        shown = text if len(text) <= 40 else text[:40] + "…"
        raise InvalidArgumentError(
            f"date {shown!r} is not a date; use YYYY-MM-DD (an exchange session date), e.g. 2026-03-10"
        )
    if not FIRST_YEAR <= day.year <= LAST_YEAR:
        raise InvalidArgumentError(f"date {text} is outside the calendar's years {FIRST_YEAR}..{LAST_YEAR}")
    return day


def parse_limit(text: str) -> int:
    """A decision count 1..``DECISIONS_MAX``; ``InvalidArgumentError`` else."""
    n = int(text) if _DIGITS.match(text) else 0
    if not 1 <= n <= DECISIONS_MAX:
        shown = text if len(text) <= 20 else text[:20] + "…"
        raise InvalidArgumentError(f"limit must be an integer from 1 to {DECISIONS_MAX}, not {shown!r}")
    return n


def _session_day(day: date) -> dict[str, Any]:
    """The CME Globex session that closes on ``day`` (the session date), or why there is none."""
    import pandas as pd

    from nq_ray.market import sessions

    sched = sessions.schedule(day, day)
    out: dict[str, Any] = {"date": day.isoformat(), "weekday": day.strftime("%A")}
    if sched.empty:
        after = sessions.schedule(day + timedelta(days=1), day + timedelta(days=10))
        nxt = after.iloc[0] if len(after) else None
        out |= {
            "trading": False,
            "reason": "weekend" if day.weekday() >= 5 else "holiday",
            "next_session_date": after.index[0].date().isoformat() if nxt is not None else None,
            "next_open": nxt["open"].isoformat() if nxt is not None else None,
        }
        return out
    opens, closes = sched.iloc[0]["open"], sched.iloc[0]["close"]
    nxt_open = sessions.next_open(closes)
    rth_start = pd.Timestamp(datetime.combine(day, sessions.RTH_OPEN), tz=opens.tz)
    rth_end = min(pd.Timestamp(datetime.combine(day, sessions.RTH_CLOSE), tz=opens.tz), closes)
    halt = None
    if nxt_open - closes <= pd.Timedelta(hours=1) + pd.Timedelta(minutes=1):
        halt = {"start": closes.isoformat(), "end": nxt_open.isoformat()}
    out |= {
        "trading": True,
        "open": opens.isoformat(),
        "close": closes.isoformat(),
        "early_close": closes.time() != sessions.GLOBEX_CLOSE,
        "rth": {"start": rth_start.isoformat(), "end": rth_end.isoformat()} if rth_start < rth_end else None,
        "daily_halt": halt,
        "next_open": nxt_open.isoformat(),
        "timezone": "America/New_York",
    }
    return out


@dataclass(frozen=True)
class ResourceSpec:
    uri: str
    name: str
    title: str
    description: str
    read: str  # the Resources method


RESOURCES: tuple[ResourceSpec, ...] = (
    ResourceSpec(
        "nq://contracts",
        "contracts",
        "Contract specifications",
        "Every equity-index future nq-ray knows (NQ, MNQ, ES, MES, YM, MYM, RTY, M2K): tick size and value, "
        "point value, margins (with the risk.margins overrides), front month, expiry and next roll.",
        "contracts",
    ),
    ResourceSpec(
        "nq://calendar/session",
        "calendar_session",
        "Today's CME Globex session",
        "The session of now on the server's clock (wall or replay): its open, close, early close, RTH "
        "and daily halt; whether the market is open now, and the next open and close.",
        "session",
    ),
    ResourceSpec(
        "nq://risk/limits",
        "risk_limits",
        "Active risk limits",
        "The limits the pre-trade gate enforces now (the paper broker's, with live settings): position, "
        "notional, margin, daily loss, trailing drawdown, order rate, trading windows; and the rule pack.",
        "risk_limits",
    ),
    ResourceSpec(
        "nq://decisions/recent",
        "decisions_recent",
        "Recent desk decisions",
        f"The trading desk's last {DECISIONS_DEFAULT} recorded decisions, newest first: agent, symbol, "
        "action, bias, confidence, risk approval, model. Empty when the desk has decided nothing.",
        "decisions",
    ),
    ResourceSpec(
        "nq://orders/book",
        "order_book",
        "Paper order book",
        "The paper broker's book: working orders, positions with P&L, a summary of the fills by symbol "
        f"and the last {RECENT_FILLS} fills.",
        "order_book",
    ),
)

TEMPLATES: tuple[ResourceSpec, ...] = (
    ResourceSpec(
        "nq://contracts/{symbol}",
        "contract",
        "One contract's specification",
        "One contract by root symbol, Yahoo alias or dated code (NQ, MNQ, ES, NQ=F, NQH26). An unknown "
        "symbol is an error naming the known ones.",
        "contract",
    ),
    ResourceSpec(
        "nq://calendar/{date}",
        "calendar_day",
        "A CME Globex session date",
        "The session that closes on date (YYYY-MM-DD): open, close, early close, RTH and daily halt; on a "
        "weekend or holiday, closed with the reason and the next session.",
        "day",
    ),
    ResourceSpec(
        "nq://decisions/recent/{limit}",
        "decisions_recent_limit",
        "Recent desk decisions (count)",
        f"The desk's last limit recorded decisions (1 to {DECISIONS_MAX}), newest first.",
        "decisions_limit",
    ),
)


def add_resources(mcp: FastMCP, registry: ToolRegistry) -> Resources:
    """Add the resources and resource templates above to ``mcp``, read over ``registry``'s context."""
    reads = Resources(registry)

    def static(spec: ResourceSpec) -> Callable[[], Awaitable[str]]:
        async def read() -> str:
            return await _answer(spec.title, getattr(reads, spec.read)())

        return read

    async def contract(symbol: str) -> str:
        return await _answer("the contract", reads.contract(symbol))

    async def calendar_day(date: str) -> str:
        return await _answer("the calendar", reads.day(date))

    async def decisions_recent(limit: str) -> str:
        return await _answer("the decision log", reads.decisions_limit(limit))

    for r in RESOURCES:
        mcp.add_resource(
            Resource.from_function(
                static(r), r.uri, name=r.name, title=r.title, description=r.description, mime_type=JSON
            )
        )
    for t, fn in zip(TEMPLATES, (contract, calendar_day, decisions_recent), strict=True):
        mcp.add_template(
            ResourceTemplate.from_function(
                fn, t.uri, name=t.name, title=t.title, description=t.description, mime_type=JSON
            )
        )
    return reads


# ------------------------------------------------------------------------------------------- prompts
@dataclass(frozen=True)
class Arg:
    name: str
    description: str
    required: bool = False
    is_list: bool = False


@dataclass(frozen=True)
class PromptSpec:
    template: str
    title: str
    description: str
    agent_type: str
    arguments: tuple[Arg, ...]


_SYMBOL = Arg("symbol", "the contract, e.g. NQ (default NQ where the template has one)")
_MARKET = Arg("market", "the market data the model works from (bars, quote, levels), as text or JSON", True)
_POSITIONS = Arg("positions", "open positions, as text or JSON (default: none)")
_RISK = Arg("risk_parameters", "the risk limits and account figures that apply, as text or JSON", True)

PROMPTS: tuple[PromptSpec, ...] = (
    PromptSpec(
        "analysis_base",
        "Technical analysis",
        "Core technical analysis prompt: trend, momentum, key levels and the bias they support, with a "
        "confidence between 0 and 1.",
        "analysis",
        (
            _SYMBOL,
            Arg("timeframe", "the timeframe the analysis is about, e.g. 5m or 1h"),
            _MARKET,
            Arg("technical_indicators", "indicator values, as text or JSON"),
            Arg("context", "positions, orders, recent trades, risk limits, memory or events to consider"),
            Arg("question", "what to answer (default: the bias for the next session and the levels)"),
        ),
    ),
    PromptSpec(
        "pattern_recognition",
        "Chart pattern analysis",
        "Chart pattern analysis: which detected patterns are credible, their breakout and target levels, "
        "and what would invalidate them.",
        "analysis",
        (
            Arg("symbol", "the contract, e.g. NQ", True),
            Arg("timeframe", "the timeframe of the patterns, e.g. 1h", True),
            Arg("patterns", "the detected patterns: a JSON array, or one a line", True, True),
            _MARKET,
        ),
    ),
    PromptSpec(
        "market_summary",
        "Market summary",
        "Concise market overview for a trader: the session so far, price against VWAP, the prior day and "
        "the overnight range, what to watch next (five sentences at most).",
        "analysis",
        (
            Arg("symbol", "the contract, e.g. NQ", True),
            Arg("session", "which session (default: the current Globex session)"),
            _MARKET,
        ),
    ),
    PromptSpec(
        "execution_base",
        "Order plan",
        "Trade execution instructions: turn an approved trade idea into an order plan (type, entry, stop "
        "and target in points and ticks, quantity within the limits).",
        "execution",
        (
            Arg("symbol", "the contract, e.g. NQ", True),
            Arg("idea", "the approved trade idea (side, levels, reasoning), as text or JSON", True),
            _RISK,
            _POSITIONS,
        ),
    ),
    PromptSpec(
        "risk_assessment",
        "Risk assessment",
        "Risk evaluation prompt: a proposed trade against the account and its limits (size, stop distance "
        "in ticks and dollars, exposure, correlation) with approve, reduce or reject. The risk engine has "
        "the final word.",
        "risk",
        (
            Arg("symbol", "the contract, e.g. NQ", True),
            Arg("proposal", "the proposed trade, as text or JSON", True),
            _RISK,
            _POSITIONS,
            Arg("recent_trades", "recent trades, as text or JSON (default: none)"),
        ),
    ),
    PromptSpec(
        "order_management",
        "Order management",
        "Order handling guidance: which stops to trail and which working orders to cancel or modify, each "
        "change naming its client order id.",
        "execution",
        (
            Arg("symbol", "the contract, e.g. NQ", True),
            Arg("orders", "the working orders: a JSON array ([] for none), or one a line", True, True),
            _POSITIONS,
            _MARKET,
        ),
    ),
)


class SeedPrompt(Prompt):
    """One seed template as an MCP prompt, rendered by ``PromptTemplateEngine``."""

    _spec: PromptSpec | None = PrivateAttr(default=None)

    @classmethod
    def of(cls, spec: PromptSpec) -> SeedPrompt:
        prompt = cls(
            name=spec.template,
            title=spec.title,
            description=spec.description,
            arguments=[
                PromptArgument(name=a.name, description=a.description, required=a.required)
                for a in spec.arguments
            ],
            tags={spec.agent_type},
        )
        prompt._spec = spec
        return prompt

    async def render(self, arguments: dict[str, Any] | None = None) -> PromptResult:
        from nq_ray.llm.prompts.engine import builtin_engine

        spec = self._spec
        assert spec is not None
        context = prompt_context(spec, arguments or {})
        try:
            out = builtin_engine().generate_prompt(spec.template, context, agent_type=spec.agent_type)
        except NQRayError as err:
            raise ValidationError(
                f"{spec.template}: {tool_error_text(err)}", log_level=logging.DEBUG
            ) from None
        return PromptResult(
            out.text,
            description=spec.description,
            meta={"template": out.name, "version": out.version, "prompt_version": out.prompt_version},
        )


def prompt_context(spec: PromptSpec, arguments: dict[str, Any]) -> dict[str, Any]:
    """The engine's context for ``arguments``; ``ValidationError`` (-32602) naming what is missing,
    unknown or too long."""
    known = {a.name: a for a in spec.arguments}
    unknown = sorted(set(arguments) - set(known))
    missing = [a.name for a in spec.arguments if a.required and not str(arguments.get(a.name) or "").strip()]
    problems = []
    if missing:
        problems.append(f"missing required argument(s): {', '.join(missing)}")
    if unknown:
        names = ", ".join(repr(u[:40]) for u in unknown[:8])
        problems.append(f"unknown argument(s) {names}; the arguments are {', '.join(known)}")
    too_long = [k for k, v in arguments.items() if k in known and len(str(v)) > MAX_ARGUMENT_CHARS]
    if too_long:
        problems.append(f"argument(s) over {MAX_ARGUMENT_CHARS} characters: {', '.join(too_long)}")
    if problems:
        raise ValidationError(f"prompt {spec.template!r}: {'; '.join(problems)}", log_level=logging.DEBUG)
    context: dict[str, Any] = {}
    for name, value in arguments.items():
        text = value if isinstance(value, str) else json.dumps(value)
        context[name] = _as_list(text) if known[name].is_list else text
    return context


def _as_list(text: str) -> list[Any]:
    """A list argument: a JSON array, else one item a non-empty line."""
    stripped = text.strip()
    if stripped.startswith("["):
        try:
            value = json.loads(stripped)
        except ValueError:
            value = None
        if isinstance(value, list):
            return value
    return [line.strip() for line in stripped.splitlines() if line.strip()]


def add_prompts(mcp: FastMCP) -> None:
    """Add the seed's six prompt templates to ``mcp`` as MCP prompts."""
    for spec in PROMPTS:
        mcp.add_prompt(SeedPrompt.of(spec))
