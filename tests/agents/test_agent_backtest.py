"""Agent backtest: the desk's decisions over past bars, point in time, reported by the backtest engine."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from nq_ray.agents.backtest import AgentBacktestConfig, run_agent_backtest
from nq_ray.backtest import BacktestReport
from nq_ray.config import Settings
from nq_ray.errors import InvalidArgumentError
from nq_ray.llm.config import LLMConfig, ProviderConfig
from nq_ray.llm.router import LLMRouter
from nq_ray.testing import ScriptedLLMServer

RULES = ProviderConfig(name="rules", kind="rules", model="nq-rules-v1", priority=1000)
RANGE = {"start": "2026-04-27", "every_bars": 24, "warmup_bars": 12}
LONG = {
    "bias": "long",
    "confidence": 0.9,
    "key_levels": [27000.0],
    "invalidation": 26800.0,
    "horizon": "intraday",
    "reasoning": "scripted: higher lows",
}


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data={"data_dir": str(tmp_path / "data")})


def rules_router() -> LLMRouter:
    return LLMRouter.from_config(LLMConfig(providers=[RULES], health_interval_s=0))


async def test_rules_backtest_is_deterministic_and_a_normal_report(settings: Settings) -> None:
    first = await run_agent_backtest(settings, RANGE, router=rules_router())
    second = await run_agent_backtest(settings, RANGE, router=rules_router())

    assert isinstance(first.report, BacktestReport)
    assert [d.model_dump() for d in first.decisions] == [d.model_dump() for d in second.decisions]
    pd.testing.assert_frame_equal(first.report.trades, second.report.trades)
    assert first.report.metrics == second.report.metrics
    assert len(first.decisions) > 10 and first.report.metrics.n_trades > 0
    summary = first.summary()
    assert summary["backtest"]["strategy"] == "agent:chain" and summary["decisions"] == len(first.decisions)
    json.dumps(summary)  # JSON-able as it is


async def test_each_decision_sees_only_its_bar_and_earlier(settings: Settings, nq_5m: pd.DataFrame) -> None:
    out = await run_agent_backtest(settings, RANGE, router=rules_router())

    for d in out.decisions:
        bar = pd.Timestamp(d.bar_time)
        assert bar + pd.Timedelta(minutes=5) == pd.Timestamp(d.as_of)  # the bar that just closed
        assert d.price == nq_5m.loc[bar, "close"]  # its close, read off the sample file


async def test_approved_decisions_enter_at_the_next_bar_with_the_desks_bracket(settings: Settings) -> None:
    out = await run_agent_backtest(settings, RANGE, router=rules_router())

    index = out.bars.index
    approved = {index.get_loc(pd.Timestamp(d.bar_time)): d for d in out.decisions if d.approved}
    trades = out.report.trades
    assert len(trades) > 0
    for t in trades.itertuples():
        decided = index.get_loc(t.entry_time) - 1
        d = approved[decided]  # every entry follows an approved decision on the bar before
        assert (t.side == "long") == (d.side == "buy")
        if t.exit_reason == "stop_loss":
            assert t.exit_price == pytest.approx(d.stop, abs=0.25)  # at most one tick of slippage
        if t.exit_reason == "take_profit":
            assert t.exit_price == d.target


async def test_a_range_too_short_for_any_decision_is_a_clear_error(settings: Settings) -> None:
    with pytest.raises(InvalidArgumentError, match="no decision point"):
        await run_agent_backtest(
            settings, {"start": "2026-04-28T23:00", "warmup_bars": 100}, router=rules_router()
        )


def test_config_refuses_bad_values() -> None:
    with pytest.raises(ValueError, match="every_bars"):
        AgentBacktestConfig(every_bars=0)
    with pytest.raises(ValueError, match="extra"):
        AgentBacktestConfig.model_validate({"bogus": 1})


async def test_llm_rerun_is_answered_from_the_store_cache(tmp_path: Path) -> None:
    with ScriptedLLMServer(default_text=json.dumps(LONG)) as srv:
        local = ProviderConfig(
            name="local", kind="serve", base_url=srv.base_url, model="local-model", priority=0, timeout_s=5
        )
        settings = Settings(
            data={"data_dir": str(tmp_path / "data")},
            llm={"providers": [local, RULES], "cache": "store", "health_interval_s": 0},
        )
        cfg = {**RANGE, "every_bars": 48}

        first = await run_agent_backtest(settings, cfg)
        asked = len(srv.requests)
        second = await run_agent_backtest(settings, cfg)

        assert asked == len(first.decisions) > 0  # one question per decision, each prompt different
        assert len(srv.requests) == asked  # the re-run asked the server nothing
    assert all(d.is_llm and d.provider == "local" and d.bias == "long" for d in first.decisions)
    assert first.llm["cache_hits"] == 0 and second.llm["cache_hits"] == len(second.decisions)
    assert [d.model_dump() for d in first.decisions] == [d.model_dump() for d in second.decisions]
    assert first.report.metrics == second.report.metrics
