"""The challenge for an agent: the rules analyst's agent backtest under a pack (offline, no LLM)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest

from nq_ray.agents.challenge import format_agent_challenge, run_agent_challenge
from nq_ray.config import Settings
from nq_ray.domain.orders import Order, OrderType, Side
from nq_ray.llm.config import LLMConfig, ProviderConfig
from nq_ray.llm.router import LLMRouter
from nq_ray.propfirm.packs import load_pack
from nq_ray.propfirm.state import mark, start
from nq_ray.tools.context import ToolContext

RULES = ProviderConfig(name="rules", kind="rules", model="nq-rules-v1", priority=1000)
RANGE = {"start": "2026-04-20", "every_bars": 6, "warmup_bars": 12}


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data={"data_dir": str(tmp_path / "data")})


def rules_router() -> LLMRouter:
    return LLMRouter.from_config(LLMConfig(providers=[RULES], health_interval_s=0))


async def test_the_point_in_time_gate_refuses_what_the_pack_refuses(settings: Settings) -> None:
    # Tuesday 2026-03-10 16:30 ET is inside topstep-50k's flat window (16:10 ET to the 18:00 reopen), and
    # an account that lost $2,000 of equity today is at its max-loss floor: both are pack denials the
    # settings' own limits would not give.
    pack = load_pack("topstep-50k")
    at = datetime(2026, 3, 10, 20, 30, tzinfo=UTC)
    fresh = start(pack, datetime(2026, 3, 10, 14, 0, tzinfo=UTC))
    order = Order(symbol="NQ", side=Side.BUY, quantity=1, order_type=OrderType.MARKET, created_at=at)

    plain = await ToolContext.at(settings, at).broker().check_order(order)
    flat = await ToolContext.at(settings, at).point_in_time(at, (pack, fresh)).broker().check_order(order)
    down = mark(pack, fresh, at=at, balance_usd=48_000.0, equity_usd=48_000.0)
    failed = await ToolContext.at(settings, at).point_in_time(at, (pack, down)).broker().check_order(order)

    codes = {r.code for r in flat.reasons}
    assert not any(c.startswith("prop_") for c in {r.code for r in plain.reasons})
    assert not flat.approved and "prop_flat_by" in codes
    assert not failed.approved and "prop_failed" in {r.code for r in failed.reasons}
    assert {d.rule for d in flat.distances} >= {r.name for r in pack.rules}


async def test_the_rules_agent_runs_the_challenge_and_stops_when_the_account_fails(
    settings: Settings,
) -> None:
    out = await run_agent_challenge(settings, "topstep-50k", RANGE, router=rules_router())

    s = out.summary()
    json.dumps(s)
    run = out.backtest.prop
    assert run is not None and s["outcome"] == run.outcome
    assert s["agent"]["decisions"] == len(out.backtest.decisions) > 0
    # every trade is closed by the pack's flat time or by a rule, never held into the 16:10 ET window
    for t in run.report.trades.itertuples():
        et = pd.Timestamp(t.exit_time).tz_convert("America/New_York")
        assert not (et.hour * 60 + et.minute > 16 * 60 + 10 and et.hour < 18)
    if run.failure is not None:  # no desk decision is taken after the account failed
        assert all(pd.Timestamp(d.as_of) <= run.failure.at for d in out.backtest.decisions)
    text = format_agent_challenge(s)
    assert "RESULT:" in text and "agent:" in text
