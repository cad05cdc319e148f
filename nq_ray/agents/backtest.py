"""Agent backtest: the desk's analysis → risk decision run over past bars, point in time at each step,
turned into trades by the backtest engine and reported as a normal ``BacktestReport``.

Every ``every_bars`` bars the analysis agent and the risk agent run exactly as on the live desk, through
the same tool registry, but with a ``ToolContext.point_in_time(as_of)`` (``as_of`` = the close of that
step's bar): each tool sees only the bars that had closed by then, and the broker is a flat in-memory
book whose gate judges at ``as_of`` and which sends nothing. An approved proposal becomes an entry signal
on that bar's close with the desk's own stop and target (absolute prices); a view of the other side
exits. The kernel fills them like any backtest (next bar's open, brackets, commission, slippage, session
rules), with ``contracts`` per entry (the kernel trades a fixed size; the desk's sizing decides only
whether a trade is allowed). With an LLM, answers are cached by (provider, model, parameters, prompt
hash), in the store when ``llm.cache`` is ``store``: a re-run asks the model nothing and reproduces
every decision.

Under a prop-firm rule pack (``pack``: a name or a YAML path, or a ``RulePack``), the run is the backtest
under the pack (``nq_ray.backtest.propfirm.PackSession``): at each decision the account's state under the
pack at that bar's close (from the decisions before it) goes to the point-in-time broker's gate
(``check_order(prop=(pack, state))``), so the desk's orders are refused as the firm would refuse them
(``prop_failed``, ``prop_stopped_day``, ``prop_flat_by``, ``prop_max_contracts``...); the kernel enforces the
same pack on the fills (flat-by, news windows, stop for the day, fail), and a failed account ends the run.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from nq_ray.agents.agents import AnalysisAgent, LocalTools, RiskAgent
from nq_ray.agents.models import AgentConfig
from nq_ray.backtest import BacktestConfig, BacktestReport, Signals
from nq_ray.backtest.engine import prepare_market, report_from_signals
from nq_ray.backtest.propfirm import PackRun, PackSession
from nq_ray.config import FillCosts, Settings
from nq_ray.data.intervals import interval_length
from nq_ray.errors import DataUnavailableError, InvalidArgumentError, InvalidBarsError
from nq_ray.llm.router import LLMRouter
from nq_ray.propfirm.model import RulePack
from nq_ray.tools.context import ToolContext
from nq_ray.tools.data import load
from nq_ray.tools.registry import build_registry


class AgentBacktestConfig(FillCosts):
    """What to run: the market, the decision cadence, the agents' settings and the trading costs
    (``FillCosts``; commission and slippage not given here come from the settings' ``execution.*``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    symbol: str = Field(default="NQ", min_length=1, max_length=16)
    interval: str = Field(default="5m", max_length=8)
    source: str = Field(default="sample", max_length=512)
    start: str | None = Field(default=None, max_length=40, description="first bar traded (ISO; naive = NY)")
    end: str | None = Field(default=None, max_length=40, description="last bar traded")
    every_bars: int = Field(default=12, ge=1, le=100_000, description="one desk decision every N bars")
    warmup_bars: int = Field(
        default=100, ge=0, le=100_000, description="bars of the range before the first decision"
    )
    max_decisions: int = Field(default=2000, ge=1, le=100_000)
    window_bars: int = Field(default=600, ge=50, le=5000, description="bars the analyst reads")
    provider: str | None = Field(default=None, max_length=40, description="router provider (default: chain)")
    model: str | None = Field(default=None, max_length=256)
    temperature: float | None = Field(default=None, ge=0, le=2)
    min_confidence: float = Field(default=0.5, ge=0, le=1)
    risk_pct: float = Field(default=1.0, gt=0, le=100)
    atr_multiple: float = Field(default=2.0, gt=0, le=50)
    reward_risk: float = Field(default=2.0, gt=0, le=50)
    contracts: int = Field(default=1, ge=1, le=1000, description="contracts per entry")
    initial_capital: float = Field(default=100_000.0, gt=0, le=1e10)
    pack: str | None = Field(
        default=None, max_length=512, description="a prop-firm rule pack to run under (name or YAML path)"
    )


class StepDecision(BaseModel):
    """One desk decision of the backtest, as it was taken at ``as_of``."""

    as_of: str
    bar_time: str
    price: float
    bias: str
    confidence: float
    provider: str
    is_llm: bool
    fallback: str | None
    approved: bool
    side: str | None = None
    entry: float | None = None
    stop: float | None = None
    target: float | None = None
    reasons: list[str] = Field(default_factory=list)
    window_sha256: str


@dataclass
class AgentBacktest:
    """The backtest report (the engine's own type), every decision, and what the LLMs cost."""

    report: BacktestReport
    bars: pd.DataFrame
    decisions: list[StepDecision]
    config: AgentBacktestConfig
    llm: dict[str, Any] = field(default_factory=dict)
    skipped: list[dict[str, str]] = field(default_factory=list)
    seconds: float = 0.0
    prop: PackRun | None = None  # the run under the pack, when there is one

    def summary(self) -> dict[str, Any]:
        """JSON-able: the tools' ``BacktestResult`` of the report, plus decisions and LLM use."""
        from nq_ray.tools.backtesting import backtest_result

        res = backtest_result(
            self.report, self.bars, interval=self.config.interval, source=self.config.source
        )
        approved = [d for d in self.decisions if d.approved]
        return {
            "backtest": res.model_dump(mode="json"),
            "decisions": len(self.decisions),
            "skipped": self.skipped[:20],
            "skipped_count": len(self.skipped),
            "approved": len(approved),
            "by_bias": {b: sum(d.bias == b for d in self.decisions) for b in ("long", "short", "flat")},
            "llm": self.llm,
            "seconds": round(self.seconds, 2),
            "challenge": self.prop.summary() if self.prop is not None else None,
        }


def format_summary(summary: dict[str, Any]) -> str:
    """``AgentBacktest.summary()`` as two readable lines."""
    bt, m = summary["backtest"], summary["backtest"]["metrics"]
    return (
        f"{bt['strategy']} on {bt['symbol']} {bt['interval']} ({bt['first_bar_time']} → "
        f"{bt['last_bar_time']}, {bt['origin']['source']}): {summary['decisions']} decisions "
        f"({summary['approved']} approved, {summary['by_bias']}, {summary['skipped_count']} skipped for "
        f"too little history), {bt['n_trades']} trades, "
        f"net ${m['net_pnl_usd'] or 0:,.2f}, win rate {100 * (m['win_rate'] or 0):.1f}%, "
        f"Sharpe {m['sharpe'] or 0:.2f}, max drawdown {100 * (m['max_drawdown_pct'] or 0):.1f}%\n"
        f"llm: {summary['llm']}; {summary['seconds']} s"
    )


def decision_signals(index: pd.DatetimeIndex, steps: list[tuple[int, StepDecision]]) -> Signals:
    """Entry/exit signals from the decisions: an approved proposal enters on its bar's close with the
    desk's stop and target; a view of the other side exits an open position."""
    n = len(index)
    long_entry, long_exit = np.zeros(n, np.bool_), np.zeros(n, np.bool_)
    short_entry, short_exit = np.zeros(n, np.bool_), np.zeros(n, np.bool_)
    stop, target = np.full(n, np.nan), np.full(n, np.nan)
    for i, d in steps:
        if d.bias == "short":
            long_exit[i] = True
        elif d.bias == "long":
            short_exit[i] = True
        if d.approved and d.side is not None:
            (long_entry if d.side == "buy" else short_entry)[i] = True
            stop[i] = d.stop if d.stop is not None else np.nan
            target[i] = d.target if d.target is not None else np.nan
    return Signals(long_entry, long_exit, short_entry, short_exit, stop, target)


async def run_agent_backtest(
    settings: Settings,
    config: AgentBacktestConfig | dict[str, Any] | None = None,
    *,
    router: LLMRouter | None = None,
    progress: Callable[[int, int, StepDecision], None] | None = None,
    pack: RulePack | None = None,
    calendar: Any | None = None,
) -> AgentBacktest:
    """Run the desk's decisions over past bars (see the module docstring). ``router`` defaults to
    ``settings.llm``'s chain (with its response cache, ``llm.cache``). ``pack`` (or ``config.pack``):
    run under a prop-firm rule pack; ``calendar``: the economic calendar of its news rules."""
    cfg = (
        config
        if isinstance(config, AgentBacktestConfig)
        else AgentBacktestConfig.model_validate(config or {})
    )
    t0 = time.perf_counter()
    bars = await asyncio.to_thread(load, settings, cfg.symbol, cfg.interval, cfg.source, cfg.start, cfg.end)
    length = interval_length(cfg.interval)
    points = list(range(cfg.warmup_bars, len(bars) - 1, cfg.every_bars))[: cfg.max_decisions]
    if not points:
        raise InvalidArgumentError(
            f"{len(bars)} bars leave no decision point after {cfg.warmup_bars} warm-up bars; "
            "widen start/end or lower warmup_bars",
            bars=len(bars),
        )
    if pack is None and cfg.pack is not None:
        pack = load_rule_pack(settings, cfg.pack)
    costs = settings.execution.costs().model_dump() | cfg.costs().model_dump(include=cfg.model_fields_set)
    bt = BacktestConfig(
        symbol=cfg.symbol, contracts=cfg.contracts, initial_capital=cfg.initial_capital, **costs
    )
    market = prepare_market(bars, bt)
    session = PackSession(market, bt, pack, calendar=calendar) if pack is not None else None
    base = ToolContext.at(settings, bars.index[points[0]] + length)  # re-timed at each decision point
    registry = build_registry(base)
    tools = LocalTools(registry)
    repo = None
    own_router = router is None
    if router is None:
        router, repo = await _router(settings)
    agent_cfg = AgentConfig(provider=cfg.provider, model=cfg.model, temperature=cfg.temperature)
    analysis = AnalysisAgent(
        tools,
        router,
        agent_id="backtest_analysis",
        config=agent_cfg,
        interval=cfg.interval,
        source=cfg.source,
        window_bars=cfg.window_bars,
    )
    risk = RiskAgent(
        tools,
        agent_id="backtest_risk",
        min_confidence=cfg.min_confidence,
        risk_pct=cfg.risk_pct,
        atr_multiple=cfg.atr_multiple,
        reward_risk=cfg.reward_risk,
        interval=cfg.interval,
        source=cfg.source,
    )
    steps: list[tuple[int, StepDecision]] = []
    skipped: list[dict[str, str]] = []
    try:
        for k, i in enumerate(points):
            as_of = bars.index[i] + length  # the close of bar i: the first moment it is known
            prop = None
            if session is not None and pack is not None:
                state = session.advance(decision_signals(bars.index, steps), i)
                if state.failed is not None:
                    break  # the account failed under the pack: no more decisions
                prop = (pack, state)
            registry.context = base.point_in_time(as_of, prop)
            try:
                report = await analysis.analyze_market(cfg.symbol)
                assessment = await risk.assess_trade(report)
            except (InvalidArgumentError, InvalidBarsError, DataUnavailableError) as exc:
                # too little history at this point for a tool (e.g. pivots need a prior session)
                skipped.append({"as_of": as_of.isoformat(), "reason": exc.message[:300]})
                continue
            p = assessment.proposal
            step = StepDecision(
                as_of=as_of.isoformat(),
                bar_time=report.bar_time,
                price=report.last_price,
                bias=report.view.bias,
                confidence=report.view.confidence,
                provider=report.provider,
                is_llm=report.is_llm,
                fallback=report.fallback,
                approved=assessment.approved,
                side=p.side if p is not None and assessment.approved else None,
                entry=p.entry if p is not None else None,
                stop=p.stop if p is not None else None,
                target=p.target if p is not None else None,
                reasons=assessment.reasons,
                window_sha256=report.inputs["window"]["sha256"],
            )
            steps.append((i, step))
            if progress is not None:
                progress(k + 1, len(points), step)
        llm = _llm_use(router, analysis.agent_id)
        if not steps:
            raise InvalidArgumentError(
                f"no decision could be taken at any of the {len(points)} points: {skipped[0]['reason']}",
                skipped=len(skipped),
            )
    finally:
        if own_router:
            await router.aclose()
        if repo is not None:
            flush = getattr(router.cache, "flush", None)
            if flush is not None:
                await flush()
            await repo.close()
    signals = decision_signals(bars.index, steps)
    name = f"agent:{cfg.provider or 'chain'}" + (f"/{cfg.model}" if cfg.model else "")
    params = {"every_bars": cfg.every_bars, "min_confidence": cfg.min_confidence, "risk_pct": cfg.risk_pct}
    prop_run = None
    if session is not None:
        prop_run = session.finish(signals, name=name, params=params)
        result = prop_run.report
    else:
        result = report_from_signals(market, signals, bt, name, params)
    return AgentBacktest(
        report=result,
        bars=bars,
        decisions=[d for _, d in steps],
        config=cfg,
        llm=llm,
        skipped=skipped,
        seconds=time.perf_counter() - t0,
        prop=prop_run,
    )


def load_rule_pack(settings: Settings, name: str) -> RulePack:
    """A pack by name or path, the user's ``propfirm.packs_dir`` included."""
    from nq_ray.propfirm.packs import load_pack

    extra = [settings.propfirm.packs_dir] if settings.propfirm.packs_dir is not None else []
    return load_pack(name, extra_dirs=extra)


async def _router(settings: Settings) -> tuple[LLMRouter, Any]:
    """The settings' chain, and the store it caches in when ``llm.cache == "store"`` (``llm_cache``
    table: answers survive the process, so a re-run is free)."""
    config = settings.llm.model_copy(update={"health_interval_s": 0})
    if config.cache == "store":
        from nq_ray.llm.stored import StoreResponseCache
        from nq_ray.store.repository import Repository

        repo = await Repository.connect(settings.store_url)
        return LLMRouter.from_config(config, cache=StoreResponseCache(repo)), repo
    return LLMRouter.from_config(config), None


def _llm_use(router: LLMRouter, caller: str) -> dict[str, Any]:
    """Calls answered by an LLM, how many came from the cache, and the tokens and dollars spent."""
    recs = [r for r in router.ledger.records(caller) if r.ok]
    llm = [r for r in recs if r.provider in _llm_names(router)]
    return {
        "answers": len(recs),
        "llm_answers": len(llm),
        "cache_hits": sum(1 for r in llm if r.cached),
        "tokens": sum(r.prompt_tokens + r.completion_tokens for r in llm if not r.cached),
        "cost_usd": round(sum(r.cost_usd for r in llm if not r.cached), 6),
    }


def _llm_names(router: LLMRouter) -> set[str]:
    return {p.name for p in router.config.resolved() if p.is_llm}
