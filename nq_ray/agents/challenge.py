"""The challenge for an agent: the agent backtest (``nq_ray.agents.backtest``) run under a prop-firm rule
pack, reported like a strategy's challenge (``nq_ray.backtest.challenge.format_challenge``).

The desk's risk agent sees the pack at each decision: the point-in-time broker's gate gets the account's
state under the pack at that bar's close (``check_order(prop=(pack, state))``), so its orders are refused
where the firm would refuse them; the backtest kernel enforces the pack on the fills. There is no pass
probability for an agent: its decisions depend on the path, so resampling its days would not be the same
agent (a strategy's signals do not; ``nq_ray.backtest.challenge`` resamples those).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from nq_ray.agents.backtest import (
    AgentBacktest,
    AgentBacktestConfig,
    StepDecision,
    load_rule_pack,
    run_agent_backtest,
)
from nq_ray.config import Settings
from nq_ray.llm.router import LLMRouter
from nq_ray.propfirm.model import RulePack
from nq_ray.tools.args import resolve_source


@dataclass(frozen=True)
class AgentChallenge:
    """The agent backtest under the pack, and how many of its decisions the pack refused."""

    backtest: AgentBacktest
    pack: RulePack

    def summary(self) -> dict[str, Any]:
        """The challenge summary (as a strategy's) plus the agent's decisions and LLM use."""
        bt = self.backtest
        assert bt.prop is not None
        out = bt.prop.summary()
        denied = [d for d in bt.decisions if any(self.pack.name in r for r in d.reasons)]
        out.update(
            source=bt.config.source,
            interval=bt.config.interval,
            first_bar_time=bt.bars.index[0].isoformat(),
            last_bar_time=bt.bars.index[-1].isoformat(),
            pass_probability=None,
            agent={
                "decisions": len(bt.decisions),
                "approved": sum(d.approved for d in bt.decisions),
                "denied_by_pack": len(denied),
                "pack_reasons": sorted({r for d in denied for r in d.reasons if self.pack.name in r})[:10],
                "skipped_count": len(bt.skipped),
                "llm": bt.llm,
                "seconds": round(bt.seconds, 2),
            },
        )
        return out


async def run_agent_challenge(
    settings: Settings,
    pack: RulePack | str,
    config: AgentBacktestConfig | dict[str, Any] | None = None,
    *,
    router: LLMRouter | None = None,
    progress: Callable[[int, int, StepDecision], None] | None = None,
    calendar: Any | None = None,
) -> AgentChallenge:
    """The agent backtest of ``config`` under ``pack`` (a ``RulePack``, a bundled name or a YAML path)."""
    rules = load_rule_pack(settings, pack) if isinstance(pack, str) else pack
    data = {"source": resolve_source(settings, "default")} if _source_of(config) == "default" else {}
    cfg = (
        config.model_copy(update=data)
        if isinstance(config, AgentBacktestConfig)
        else AgentBacktestConfig.model_validate({**(config or {}), **data})
    )
    out = await run_agent_backtest(
        settings, cfg, router=router, progress=progress, pack=rules, calendar=calendar
    )
    return AgentChallenge(backtest=out, pack=rules)


def _source_of(config: AgentBacktestConfig | dict[str, Any] | None) -> str | None:
    if isinstance(config, AgentBacktestConfig):
        return config.source
    return (config or {}).get("source")


def format_agent_challenge(summary: dict[str, Any]) -> str:
    """``AgentChallenge.summary()`` as the challenge report, with a line on the agent's decisions."""
    from nq_ray.backtest.challenge import format_challenge

    a = summary["agent"]
    return (
        format_challenge(summary)
        + f"\nagent: {a['decisions']} decisions, {a['approved']} approved, {a['denied_by_pack']} refused by "
        f"the pack's rules at the gate, {a['skipped_count']} skipped; llm {a['llm']}; {a['seconds']} s"
    )
