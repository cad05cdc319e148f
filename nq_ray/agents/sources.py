"""Context sources: what an agent's prompt knows besides price, gathered through its tools, point in time.

``build_agent_context(agent, symbol, sources=[...])`` asks each named source for its content and hands the
lot to the agent's ``ContextManager`` (token budget and priority: ``nq_ray.agents.context``). Sources:

- ``current_market_data`` — the agent's timeframe and the higher ones (``HIGHER``) resampled from the
  same closed bars: nothing a higher bar shows can come after the last closed base bar; a higher bar still
  forming is marked so.
- ``indicators_levels`` — the latest indicator values, nearest support / resistance, prior day, pivots.
- ``open_positions`` and ``working_orders`` — ``manage_position(action="status")``: the paper book.
- ``recent_trades`` — round trips rebuilt from the book's fills (entry, exit, P&L net of commission).
- ``risk_parameters`` — the limits in force (``assess_portfolio_risk``) and the room left under each:
  contracts per symbol and in total, notional, margin use, today's loss, the trailing drawdown
  (estimated from closed trades: the book does not report its intraday equity high), consecutive losses.
- ``agent_memory`` — the agent's recent memories, oldest first.
- ``scheduled_events`` — the economic calendar's releases from an hour before ``as_of`` to a day after
  it, each with its countdown ("CPI in 35 minutes") and blackout window, when an event calendar tool
  exists (``EVENT_TOOLS``: ``get_economic_calendar``, docs/calendar.md); otherwise it contributes nothing.

Point in time: ``as_of`` is the tools' "now" (``get_market_hours``: the point-in-time ``as_of`` of a replay
or backtest, the replay clock, or the wall clock), or the close of the last bar when that tool is not
allowed. Every item with a time after ``as_of`` — a fill, a memory, an event's outcome — is left out, and
the bars come from the tools, which never return a bar that had not closed by then.

A source with nothing to say says so in one line ("no open positions"); a source whose tool the agent may
not call, or whose tool fails, says that instead — the prompt never silently lacks a section.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pandas as pd

from nq_ray.agents.context import SEED_SOURCES, BuiltContext, ContextManager, bind_sources
from nq_ray.data.intervals import interval_length
from nq_ray.errors import InvalidArgumentError, NQRayError
from nq_ray.market.calendar import KIND_LABELS, countdown_text
from nq_ray.market.sessions import session_date, session_dates
from nq_ray.tools.context import PointInTimeError

HIGHER: dict[str, tuple[str, ...]] = {
    "1m": ("5m", "15m", "1h"),
    "2m": ("15m", "1h"),
    "5m": ("15m", "1h", "4h"),
    "15m": ("1h", "4h", "1d"),
    "30m": ("1h", "4h", "1d"),
    "1h": ("4h", "1d"),
    "4h": ("1d",),
}
HIGHER_BARS = 3  # bars shown per higher timeframe
BASE_BARS = 6  # bars shown of the agent's own timeframe
MAX_BASE_ROWS = 5000
EVENT_TOOLS = ("get_economic_calendar", "get_scheduled_events")
EVENT_OUTCOME_KEYS = ("actual", "result", "surprise", "outcome", "revised")
DEFAULT_TOKEN_BUDGET = 2000
RECENT_TRADES = 10
SESSION_OPEN = pd.Timedelta(hours=18)  # Globex opens at 18:00 New York


@dataclass
class SourceRequest:
    """What a source needs: the agent (its tools and memory), the market and the decision's time."""

    agent: Any
    symbol: str
    interval: str
    source: str
    as_of: datetime
    memories: list[dict[str, Any]] | None = None
    _status: asyncio.Task[dict[str, Any]] | None = field(default=None, repr=False)

    async def tool(self, name: str, **arguments: Any) -> dict[str, Any]:
        out: dict[str, Any] = await self.agent.tool(name, **arguments)
        return out

    async def book(self) -> dict[str, Any]:
        """``manage_position(action="status")``, asked once per build (the sources run concurrently)."""
        if self._status is None:
            self._status = asyncio.ensure_future(self.tool("manage_position", action="status"))
        return await self._status


SourceFn = Callable[[SourceRequest], Awaitable[Any]]


def _at(value: Any) -> pd.Timestamp:
    ts = pd.Timestamp(value)
    return ts.tz_localize("America/New_York") if ts.tzinfo is None else ts


def _ny(ts: Any) -> str:
    return _at(ts).tz_convert("America/New_York").strftime("%Y-%m-%d %H:%M")


def _px(x: Any) -> str:
    return "n/a" if x is None else f"{float(x):.2f}"


def _outcome(pnl_usd: float) -> str:
    return "win" if pnl_usd > 0 else "loss" if pnl_usd < 0 else "scratch"


def _usd(x: float) -> str:
    return f"-${-x:,.2f}" if x < 0 else f"${x:,.2f}"


# ------------------------------------------------------------------------------------ market data
def resample_bars(bars: pd.DataFrame, interval: str) -> pd.DataFrame:
    """``bars`` (closed bars, New York index) as ``interval`` bars: intraday by clock buckets aligned to
    the 18:00 session open, ``1d`` by CME session date. Column ``n`` counts the base bars in each."""
    agg = {"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"}
    if interval == "1d":
        keys = pd.DatetimeIndex(session_dates(bars.index))
    else:  # buckets of New York wall time counted from 18:00, so a 4h bar starts at 18, 22, 2, 6, 10, 14
        wall = bars.index.tz_convert("America/New_York").tz_localize(None)
        keys = (wall - SESSION_OPEN).floor(interval_length(interval)) + SESSION_OPEN
    grouped = bars.groupby(keys)
    out = grouped.agg(agg)
    out["n"] = grouped["close"].count()
    return out.loc[out["n"] > 0]


async def current_market_data(req: SourceRequest) -> dict[str, str]:
    base_len = interval_length(req.interval)
    higher = HIGHER.get(req.interval, ())
    spans = [interval_length("1d") * 1.2 if h == "1d" else interval_length(h) for h in higher]
    span = max(spans, default=base_len)
    need = min(MAX_BASE_ROWS, int(span * (HIGHER_BARS + 1) / base_len) + BASE_BARS)
    hist = await req.tool(
        "get_historical_data", symbol=req.symbol, interval=req.interval, source=req.source, limit=need
    )
    frame = pd.DataFrame(hist["bars"])
    index = pd.to_datetime(frame.pop("time"), utc=True).dt.tz_convert("America/New_York")
    bars = frame.set_axis(pd.DatetimeIndex(index, name="time")).astype("float64")
    bars = bars.loc[bars.index + base_len <= pd.Timestamp(req.as_of)]  # closed by as_of (the tools agree)
    if bars.empty:
        return {req.interval: f"no {req.symbol} {req.interval} bar had closed by {_ny(req.as_of)}"}
    last_close = bars.index[-1] + base_len
    out = {
        f"{req.interval} (this agent's timeframe)": _bar_lines(bars.tail(BASE_BARS), req.interval)
        + f"; last bar closed {_ny(last_close)}"
    }
    for h in higher:
        out[h] = _bar_lines(resample_bars(bars, h).tail(HIGHER_BARS), h, last_close)
    return out


def _bar_lines(bars: pd.DataFrame, interval: str, last_close: pd.Timestamp | None = None) -> str:
    """``time O H L C`` per bar; with ``last_close``, the last bar is marked forming when its period
    (a session: until 17:00) ends after the close of the last base bar."""
    parts = []
    for i, (t, r) in enumerate(bars.iterrows()):
        label, forming = _ny(t), ""
        if interval == "1d":
            label = _at(t).strftime("%Y-%m-%d")
            end = _at(t) + pd.Timedelta(hours=17)
        else:
            end = _at(t) + interval_length(interval)
        if last_close is not None and i == len(bars) - 1 and end > last_close:
            forming = " (forming)"
        parts.append(
            f"{label} O {_px(r['open'])} H {_px(r['high'])} L {_px(r['low'])} C {_px(r['close'])}{forming}"
        )
    return " | ".join(parts)


async def indicators_levels(req: SourceRequest) -> dict[str, Any]:
    common = {"symbol": req.symbol, "interval": req.interval, "source": req.source}
    ind = await req.tool("calculate_technical_indicators", **common, tail=1)
    found = await req.tool("find_support_resistance", **common, max_zones=6)
    for out in (ind, found):  # computed on a bar that had not closed by as_of: not this decision's data
        last = (out.get("origin") or {}).get("last_bar_time")
        if last is not None and _at(last) + interval_length(req.interval) > pd.Timestamp(req.as_of):
            raise PointInTimeError(
                f"the {req.interval} bars reach {_ny(last)}, after the decision time {_ny(req.as_of)}; "
                "run the tools point in time (ToolContext.point_in_time) for a past decision"
            )
    lv = found["levels"]
    latest = {k: round(v, 4) for k, v in (ind.get("latest") or {}).items() if v is not None}
    return {
        "indicators": latest,
        "nearest support": lv.get("nearest_support"),
        "nearest resistance": lv.get("nearest_resistance"),
        "prior day": lv.get("prior_day"),
        "pivots (classic)": (lv.get("pivots") or {}).get("classic"),
    }


# --------------------------------------------------------------------------------------- the book
def _fills(status: dict[str, Any], as_of: datetime) -> list[dict[str, Any]]:
    """The book's fills up to ``as_of``, oldest first."""
    fills = [f for f in status.get("recent_fills") or [] if _at(f["time"]) <= pd.Timestamp(as_of)]
    return sorted(fills, key=lambda f: _at(f["time"]))


async def book_as_of(req: SourceRequest) -> dict[str, Any]:
    """The book's status, when it has not moved past ``as_of``: a fill after it means the positions,
    orders and P&L shown now are not what the book held then (``PointInTimeError``)."""
    status = await req.book()
    later = [f for f in status.get("recent_fills") or [] if _at(f["time"]) > pd.Timestamp(req.as_of)]
    if later:
        raise PointInTimeError(  # saying when, or what, would itself leak into the prompt
            f"the paper book has fills after the decision time {_ny(req.as_of)}; its state then is not known"
        )
    return status


async def open_positions(req: SourceRequest) -> list[str] | str:
    pf = (await book_as_of(req)).get("portfolio") or {}
    rows = [
        f"{sym}: {'long' if r['quantity'] > 0 else 'short'} {abs(r['quantity'])} "
        f"@ {_px(r.get('avg_price'))}, "
        f"mark {_px(r.get('mark'))}, unrealised {_usd(float(r.get('unrealized_pnl_usd') or 0))}"
        for sym, r in (pf.get("positions") or {}).items()
        if r.get("quantity")
    ]
    equity = pf.get("equity_usd")
    if not rows:
        return "no open positions" + (f" (equity {_usd(float(equity))})" if equity is not None else "")
    return rows


async def working_orders(req: SourceRequest) -> list[str] | str:
    cutoff = pd.Timestamp(req.as_of)
    rows = []
    for o in (await book_as_of(req)).get("working_orders") or []:
        if _at(o["created_at"]) > cutoff:
            continue
        px = o.get("limit_price") or o.get("stop_price")
        role = o.get("role") or "entry"
        rows.append(
            f"{o['client_order_id']}: {o['side']} {o.get('quantity')} {o['symbol']} {o['order_type']}"
            + (f" @ {_px(px)}" if px else "")
            + f" ({role}, {o.get('status')}, placed {_ny(o['created_at'])})"
        )
    return rows or "no working orders"


def round_trips(fills: Sequence[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Closed trades (flat → position → flat, a reversal closes one and opens the next) from fills in
    time order, each with side, contracts, average entry / exit and net P&L (realised − commission); and
    the fills of the trades still open."""
    trades: list[dict[str, Any]] = []
    open_by: dict[str, dict[str, Any]] = {}
    for f in fills:
        sym, sign = f["symbol"], 1 if f["side"] == "buy" else -1
        left = int(f["quantity"])
        realized = float(f["realized_pnl_usd"])  # all of it from the contracts this fill closes
        per_contract_fee = float(f["commission_usd"]) / left if left else 0.0
        while left:
            t = open_by.get(sym)
            if t is None or t["pos"] == 0:
                t = open_by[sym] = {
                    "symbol": sym, "side": "long" if sign > 0 else "short", "pos": 0, "entry_qty": 0,
                    "entry_cost": 0.0, "exit_qty": 0, "exit_cost": 0.0, "pnl_usd": 0.0,
                    "opened": f["time"], "closed": None,
                }  # fmt: skip
            if t["pos"] == 0 or (t["pos"] > 0) == (sign > 0):  # opening or adding
                t["pos"] += sign * left
                t["entry_qty"] += left
                t["entry_cost"] += left * float(f["price"])
                t["pnl_usd"] -= left * per_contract_fee
                left = 0
            else:  # reducing: up to the open size, the rest opens the other way
                n = min(left, abs(t["pos"]))
                t["pos"] += sign * n
                t["exit_qty"] += n
                t["exit_cost"] += n * float(f["price"])
                t["pnl_usd"] += realized - n * per_contract_fee
                realized = 0.0
                left -= n
                if t["pos"] == 0:
                    t["closed"] = f["time"]
                    trades.append(t)
                    del open_by[sym]
    out = [
        {
            "symbol": t["symbol"],
            "side": t["side"],
            "contracts": t["entry_qty"],
            "entry": t["entry_cost"] / t["entry_qty"],
            "exit": t["exit_cost"] / t["exit_qty"],
            "opened": t["opened"],
            "closed": t["closed"],
            "pnl_usd": round(t["pnl_usd"], 2),
        }
        for t in trades
    ]
    return out, list(open_by.values())


async def recent_trades(req: SourceRequest) -> list[str] | str:
    trades, _ = round_trips(_fills(await req.book(), req.as_of))
    if not trades:
        return f"no trades closed by {_ny(req.as_of)}"
    return [
        f"{_ny(t['opened'])} → {_ny(t['closed'])} {t['side']} {t['contracts']} {t['symbol']} "
        f"{_px(t['entry'])} → {_px(t['exit'])}: {_outcome(t['pnl_usd'])} {_usd(t['pnl_usd'])}"
        for t in trades[-RECENT_TRADES:]
    ]


async def risk_parameters(req: SourceRequest) -> dict[str, str]:
    risk = await req.tool("assess_portfolio_risk")
    limits, pf = risk.get("limits") or {}, risk.get("portfolio") or {}
    positions = {s: int(q) for s, q in (risk.get("positions") or {}).items()}
    equity = float(risk.get("equity_usd") or 0.0)
    fills = _fills(await book_as_of(req), req.as_of)
    today = str(session_date(req.as_of))
    trades, _ = round_trips(fills)
    realized_today = sum(
        float(f["realized_pnl_usd"]) - float(f["commission_usd"]) for f in fills if f["session_date"] == today
    )
    unrealized = float((pf.get("total") or {}).get("unrealized_pnl_usd") or 0.0)
    out: dict[str, str] = {}
    root = req.symbol.upper().removesuffix("=F")
    held = abs(positions.get(root, 0))
    if limits.get("max_contracts_per_symbol") is not None:
        lim = int(limits["max_contracts_per_symbol"])
        out["max contracts per symbol"] = f"{lim}; {root} holds {held}, room {max(0, lim - held)}"
    if limits.get("max_total_contracts") is not None:
        lim, total = int(limits["max_total_contracts"]), sum(abs(q) for q in positions.values())
        out["max total contracts"] = f"{lim}; held {total}, room {max(0, lim - total)}"
    if limits.get("max_notional_usd") is not None:
        lim_usd, gross = float(limits["max_notional_usd"]), float(risk.get("gross_exposure_usd") or 0.0)
        out["max notional"] = f"{_usd(lim_usd)}; gross {_usd(gross)}, room {_usd(max(0.0, lim_usd - gross))}"
    if limits.get("max_margin_use_pct") is not None:
        lim_pct, used = 100 * float(limits["max_margin_use_pct"]), float(risk.get("margin_use_pct") or 0.0)
        out["max margin use"] = (
            f"{lim_pct:.1f}% of equity; used {used:.1f}%, room {max(0.0, lim_pct - used):.1f}%"
        )
    daily = realized_today + unrealized
    if limits.get("max_daily_loss_usd") is not None:
        lim_usd = float(limits["max_daily_loss_usd"])
        out["max daily loss"] = (
            f"{_usd(lim_usd)}; today's P&L {_usd(daily)} (session {today}), "
            f"room {_usd(max(0.0, lim_usd + daily))}"
        )
    if limits.get("trailing_drawdown_usd") is not None:
        dd = float(limits["trailing_drawdown_usd"])
        closed_pnl = sum(float(f["realized_pnl_usd"]) - float(f["commission_usd"]) for f in fills)
        start = float(pf.get("balance_usd") or equity) - closed_pnl
        high, run = max(start, equity), start
        for t in trades:
            run += t["pnl_usd"]
            high = max(high, run)
        floor = high - dd
        if limits.get("trailing_lock_at_start", True):
            floor = min(floor, start)
        out["trailing drawdown"] = (
            f"{_usd(dd)}; floor {_usd(floor)} (estimated from closed trades), equity {_usd(equity)}, "
            f"room {_usd(max(0.0, equity - floor))}"
        )
    if limits.get("max_consecutive_losses") is not None:
        streak = 0
        for t in reversed([t for t in trades if str(session_date(t["closed"])) == today]):
            if t["pnl_usd"] >= 0:
                break
            streak += 1
        lim = int(limits["max_consecutive_losses"])
        out["max consecutive losses"] = f"{lim}; {streak} in a row today, room {max(0, lim - streak)}"
    if limits.get("max_orders_per_minute") is not None:
        out["max orders per minute"] = str(limits["max_orders_per_minute"])
    out["rules"] = (
        f"stop-loss required: {'yes' if limits.get('require_stop_loss') else 'no'}; "
        f"trade only while Globex is open: {'yes' if limits.get('trade_only_when_open', True) else 'no'}"
        + (f"; windows {limits['allowed_windows']}" if limits.get("allowed_windows") else "")
    )
    out["enforced by"] = "the risk gate (code): a proposal beyond any room above is reduced or refused"
    return out


# ------------------------------------------------------------------------------ memory and events
def memory_line(m: dict[str, Any]) -> str:
    v = m["value"]
    body = json.dumps(v, sort_keys=True, default=str) if not isinstance(v, str) else v
    return f"{m['at']} [{m['kind']}] {body}"


async def agent_memory(req: SourceRequest) -> list[str] | str:
    rows = req.memories
    if rows is None:
        rows = await req.agent.get_recent_memory(req.agent.config.memory_items)
    kept = [m for m in rows if _at(m["at"]) <= pd.Timestamp(req.as_of)]
    if not kept:
        return f"no memories recorded by {_ny(req.as_of)}"
    return [memory_line(m) for m in reversed(kept)]  # oldest first


_EVENT_TOOL: weakref.WeakKeyDictionary[Any, str | None] = weakref.WeakKeyDictionary()


async def _event_tool(tools: Any) -> str | None:
    """The event calendar tool that ``tools`` offers (the first of ``EVENT_TOOLS``), or None; looked up
    once per tools adapter (a tool listing carries every tool's schemas: too dear for every cycle)."""
    try:
        return _EVENT_TOOL[tools]
    except (KeyError, TypeError):
        pass
    listing = getattr(tools, "list_tools", None)
    names = {t.get("name") for t in await listing()} if listing is not None else set()
    name = next((n for n in EVENT_TOOLS if n in names), None)
    with contextlib.suppress(TypeError):  # an adapter that takes no weak reference is asked each time
        _EVENT_TOOL[tools] = name
    return name


EVENTS_BEHIND = pd.Timedelta(hours=1)  # a release this recent still moves the market: shown "… ago"
EVENTS_AHEAD = pd.Timedelta(hours=24)


def event_line(event: dict[str, Any], as_of: datetime, blackouts: Sequence[dict[str, Any]] = ()) -> str:
    """One calendar event as the prompt shows it: ``"CPI in 35 minutes: Consumer Price Index for
    February 2026 at 2026-03-11 08:30 EDT; blackout 08:25–08:35 ET (block)"``; any other field as
    ``key=value``, an outcome (``EVENT_OUTCOME_KEYS``) only once the event is past ``as_of``."""
    when = _at(event["time"]).tz_convert("America/New_York") if event.get("time") else None
    kind = str(event.get("kind") or "")
    label = KIND_LABELS.get(kind) or kind or str(event.get("name") or event.get("title") or "event")
    head = label if when is None else f"{label} {countdown_text(when.to_pydatetime(), as_of)}"
    title = event.get("title") or event.get("name")
    parts = [f"{head}: {title}" if title and title != label else head]
    if when is not None:
        parts[0] += f" at {when:%Y-%m-%d %H:%M %Z}"
    for rule in blackouts:
        if when is not None and kind and kind in (rule.get("kinds") or []):
            lo = when - pd.Timedelta(minutes=int(rule.get("before_min", 0)))
            hi = when + pd.Timedelta(minutes=int(rule.get("after_min", 0)))
            parts.append(f"blackout {lo:%H:%M}–{hi:%H:%M} ET ({rule.get('action', 'block')})")
    later = when is not None and when > pd.Timestamp(as_of)
    shown = {
        k: v
        for k, v in event.items()
        if k not in ("kind", "time", "title", "name", "source") and not (later and k in EVENT_OUTCOME_KEYS)
    }
    parts += [f"{k}={v}" for k, v in shown.items()]
    return "; ".join(parts)


async def scheduled_events(req: SourceRequest) -> list[str] | None:
    """The calendar's releases from an hour before ``as_of`` to a day after it ("CPI in 35 minutes"),
    with the blackout window around each and outcomes after ``as_of`` removed; ``None`` (nothing) when
    no calendar tool exists."""
    name = await _event_tool(req.agent.tools)
    allowed = req.agent.config.tools
    if name is None or (allowed is not None and name not in allowed):
        return None
    now = pd.Timestamp(req.as_of).tz_convert("America/New_York")
    lo, hi = (now - EVENTS_BEHIND).isoformat(), (now + EVENTS_AHEAD).isoformat()
    out = await req.tool(name, start=lo, end=hi)
    rules = out.get("blackouts") or []
    rows = [event_line(e, req.as_of, rules) for e in out.get("events") or []]
    return rows or [f"no scheduled releases in the hour before or the 24 hours after {_ny(now)} (New York)"]


SOURCES: dict[str, SourceFn] = {
    "current_market_data": current_market_data,
    "indicators_levels": indicators_levels,
    "open_positions": open_positions,
    "working_orders": working_orders,
    "recent_trades": recent_trades,
    "risk_parameters": risk_parameters,
    "agent_memory": agent_memory,
    "scheduled_events": scheduled_events,
}
# what the analysis agent's prompt adds to its own price / indicator / level data
ANALYSIS_SOURCES = (
    "current_market_data",
    "open_positions",
    "working_orders",
    "recent_trades",
    "risk_parameters",
    "agent_memory",
    "scheduled_events",
)
# the risk and execution agents: the book and the limits first
DECISION_SOURCES = (
    "risk_parameters",
    "open_positions",
    "working_orders",
    "recent_trades",
    "current_market_data",
    "indicators_levels",
    "scheduled_events",
)
assert set(SOURCES) == set(SEED_SOURCES), "every source has a priority in nq_ray.agents.context"


@dataclass(frozen=True)
class AgentContext:
    """What the sources said (``contents``, JSON-able) and the context built from it under the budget."""

    as_of: datetime
    built: BuiltContext
    contents: dict[str, Any]
    memory_ids: tuple[int, ...] = ()

    @property
    def text(self) -> str:
        return self.built.text

    def record(self) -> dict[str, Any]:
        """What to store with a decision: the time, the sources used, what was trimmed."""
        return {
            "as_of": self.as_of.isoformat(),
            "sources": list(self.built.sections),
            "tokens": self.built.tokens,
            "token_budget": self.built.token_budget,
            "dropped": [{"source": d.source, "what": d.what, "tokens": d.tokens} for d in self.built.dropped],
            "memory_ids": list(self.memory_ids),
        }


async def decision_time(agent: Any, symbol: str, interval: str, source: str) -> datetime:
    """The tools' "now" (``get_market_hours``), or the close of the last bar when that tool is not allowed."""
    allowed = agent.config.tools
    if allowed is None or "get_market_hours" in allowed:
        hours = await agent.tool("get_market_hours")
        return _at(hours["status"]["as_of"]).tz_convert("UTC").to_pydatetime()
    quote = await agent.tool("get_nq_price", symbol=symbol, interval=interval, source=source)
    return (_at(quote["bar_time"]) + interval_length(interval)).tz_convert("UTC").to_pydatetime()


async def gather_sources(
    agent: Any,
    symbol: str,
    sources: Sequence[str],
    *,
    as_of: datetime | None = None,
    interval: str | None = None,
    source: str | None = None,
    memories: list[dict[str, Any]] | None = None,
) -> tuple[datetime, dict[str, Any]]:
    """Each named source's content for ``agent`` on ``symbol`` at ``as_of`` (default: the tools' now). A
    source that has nothing to add (no calendar) is left out; one that fails says why in its content."""
    unknown = [s for s in sources if s not in SOURCES]
    if unknown:
        raise InvalidArgumentError(f"unknown context sources {unknown}; known: {sorted(SOURCES)}")
    from nq_ray.tools.args import DEFAULT_SOURCE

    tf = str(interval or getattr(agent, "interval", "5m"))
    src = str(source or getattr(agent, "source", DEFAULT_SOURCE))
    when = as_of if as_of is not None else await decision_time(agent, symbol, tf, src)
    req = SourceRequest(agent, symbol, tf, src, when, memories)

    async def one(name: str) -> Any:
        try:
            return await SOURCES[name](req)
        except NQRayError as exc:  # not allowed, no broker, no data: the section says so
            return f"not available: {exc.message} ({exc.code})"

    got = await asyncio.gather(*(one(name) for name in sources))  # concurrently, in the given order
    return when, {name: content for name, content in zip(sources, got, strict=True) if content is not None}


async def build_agent_context(
    agent: Any,
    symbol: str,
    sources: Sequence[str] = ANALYSIS_SOURCES,
    *,
    as_of: datetime | None = None,
    token_budget: int | None = None,
    manager: ContextManager | None = None,
    memories: list[dict[str, Any]] | None = None,
) -> AgentContext:
    """The context an agent's prompt gets: ``sources`` gathered through its tools point in time, built
    under the token budget (``manager``, else the agent's ``context`` manager, else a new one of
    ``DEFAULT_TOKEN_BUDGET``). The risk and execution agents call it with ``DECISION_SOURCES``."""
    when, contents = await gather_sources(agent, symbol, sources, as_of=as_of, memories=memories)
    cm = manager or getattr(agent, "context", None)
    if not isinstance(cm, ContextManager):
        cm = ContextManager(token_budget=DEFAULT_TOKEN_BUDGET)
    built = cm.build_context(list(contents), data=contents, token_budget=token_budget)
    ids: tuple[int, ...] = ()
    if "agent_memory" in built.sections:
        rows = memories if memories is not None else []
        ids = tuple(int(m["id"]) for m in rows if _at(m["at"]) <= pd.Timestamp(when))
    return AgentContext(when, built, contents, ids)


@contextlib.asynccontextmanager
async def bound_sources(
    agent: Any,
    symbol: str = "NQ",
    sources: Sequence[str] = tuple(SOURCES),
    *,
    as_of: datetime | None = None,
) -> AsyncIterator[dict[str, Any]]:
    """Gather ``sources`` for ``agent`` and bind them, so the seed's plain
    ``ContextManager().build_context(["current_market_data", ...])`` inside the block reads them."""
    _, contents = await gather_sources(agent, symbol, sources, as_of=as_of)
    with bind_sources(contents):
        yield contents
