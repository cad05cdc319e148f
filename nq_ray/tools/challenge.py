"""``run_challenge``: a prop-firm evaluation for a strategy on historical bars, as a tool (and so as a REST
job: ``POST /api/jobs {"tool": "run_challenge", ...}`` runs any registered tool in the background).

A thin shell over ``nq_ray.backtest.challenge.run_challenge``: the run under the pack (pass, or the rule,
time and balances of the failure; the daily P&L against each rule) and the Monte Carlo pass probability.
The challenge for an agent is ``nq-ray challenge --agent`` (``nq_ray.agents.challenge``): the agents sit
above the tools, so a tool cannot run the desk's agents itself."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

from nq_ray.config import Settings
from nq_ray.propfirm.model import RuleStatus
from nq_ray.tools.args import BarsQuery, DataOrigin, PackName, Params, Strategy, origin, resolve_source
from nq_ray.tools.backtesting import Costs, _common, _config, costs_of
from nq_ray.tools.compute import offload
from nq_ray.tools.context import current, report
from nq_ray.tools.data import load


class ChallengeReport(BaseModel):
    """A prop-firm evaluation of one strategy: the outcome, where it passed or failed, every rule's final
    value, the daily P&L against the rules, and the Monte Carlo pass probability."""

    pack: str
    firm: str
    program: str
    strategy: str
    params: dict[str, Any]
    outcome: Literal["passed", "failed", "in_progress"]
    passed: dict[str, Any] | None = Field(description="session day, time and balance of the pass")
    failed: dict[str, Any] | None = Field(description="rule, time, balance and equity of the failure")
    stopped_days: list[dict[str, Any]] = Field(description="days a stop-for-the-day rule hit")
    start_balance_usd: float
    balance_usd: float
    equity_usd: float
    trading_days: int
    session_days: int
    contracts: int = Field(description="contracts per entry after the pack's cap")
    blocked_entries: int
    n_trades: int
    net_pnl_usd: float
    rules: list[RuleStatus] = Field(description="every rule's value, limit and room at the end")
    daily: list[dict[str, Any]] = Field(
        description="per session day: P&L, end balance, low equity, room to the daily loss and max-loss floor"
    )
    pass_probability: dict[str, Any] | None = Field(
        description="Monte Carlo over resampled session days: probability, 95% interval, outcome counts"
    )
    windows: list[dict[str, str]] = Field(description="news windows of the pack's rules in the range")
    first_bar_time: str | None
    last_bar_time: str | None
    text: str = Field(description="the report as plain text")
    origin: DataOrigin


def challenge_report(
    settings: Settings,
    common: dict[str, Any],
    pack: str,
    strategy: str,
    params: dict[str, Any] | None,
    costs: dict[str, Any],
    n_sims: int,
    seed: int,
) -> ChallengeReport:
    from nq_ray.backtest.challenge import format_challenge, run_challenge
    from nq_ray.propfirm.packs import settings_pack

    rules = settings_pack(pack, settings)  # an unknown name lists the known ones
    bars = load(settings, **common)
    out = run_challenge(
        bars,
        rules,
        strategy,
        params,
        _config(common["symbol"], costs),
        n_sims=n_sims,
        seed=seed,
        source=resolve_source(settings, common["source"]),
        interval=common["interval"],
    )
    s = out.summary()
    fields = set(ChallengeReport.model_fields) - {"text", "origin"}
    return ChallengeReport(
        **{k: v for k, v in s.items() if k in fields},
        text=format_challenge(s),
        origin=origin(common["source"], bars),
    )


async def run_challenge(
    query: BarsQuery,
    pack: PackName = "topstep-50k",
    strategy: Strategy = "sma_cross",
    params: Params = None,
    costs: Costs = None,
    n_sims: Annotated[
        int, Field(ge=0, le=100_000, description="Monte Carlo paths for the pass probability (0: none)")
    ] = 1000,
    seed: Annotated[int, Field(ge=0, le=2**32 - 1)] = 0,
) -> ChallengeReport:
    """Run a prop-firm evaluation (Topstep, Apex, Take Profit Trader rule packs) for a strategy on past
    bars: pass or fail with the rule, time and balances, the daily P&L against each rule, and the pass
    probability from resampling trading days. Long: prefer submitting it as a job (POST /api/jobs)."""
    ctx = current()
    c = costs_of(costs, ctx.settings)
    report(0, 1, f"challenge {pack}: run and {n_sims} Monte Carlo paths")
    out = await offload(
        challenge_report,
        ctx.settings,
        _common(query, ctx.data_as_of),
        pack,
        strategy,
        params,
        c,
        n_sims,
        seed,
    )
    report(1, 1, "done")
    return out
