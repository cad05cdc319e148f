"""A model committee: one analysis asked of several providers or models at once, their views combined.

Each member (``CommitteeMemberConfig``: a router provider — ``rules`` is the rules analyst —, optionally
another model of it, a temperature and a vote weight) answers the analysis prompt through an ``LLMRouter``
over that provider alone (no failover: a member that fails is absent, never replaced by another model)
with ``response_model=MarketView``. Members run at once: as Ray tasks when Ray is initialised, else as
concurrent asyncio calls. Each has ``timeout_s`` per round.

The vote (``combine``), over the *valid* members — a member that failed, timed out, did not validate or
was left out for the budget is absent:

1. Fewer valid members than the quorum (default: a majority of all members): the vote does not stand.
2. A member's vote weighs its ``weight`` (``majority``, ``unanimous``) or ``weight × confidence``
   (``confidence_weighted``). ``votes`` is the weight per bias; the winning side is the heaviest; a tie
   between the heaviest sides has no winner.
3. ``agreement`` = the winning side's weight ÷ all valid weight; disagreement = 1 − agreement, the share
   of the valid weight not on the winning side. Disagreement above ``disagreement_threshold`` — or, for
   ``unanimous``, any valid member on another side — means no new entry.
4. No new entry: the combined view is ``flat`` with confidence 0 and the reason (the risk agent trades
   nothing on a flat view). Otherwise the view takes the winning side, the levels of its most confident
   member, and confidence Σ(weight × confidence of the winners) ÷ Σ(weight of all valid members), so
   dissent and absence lower it — a committee is never more confident than its members.

The optional debate: after the opening round, when both sides have a valid answer, every valid LLM member
sees the strongest long and short argument (the highest weight × confidence of each side) and answers
again (round 1; the rules analyst is deterministic and keeps its answer). A member's round-1 answer is its
ballot; a member that fails in round 1 keeps its opening answer. Both rounds are recorded.

Cost: each member's tokens and USD come from its own usage ledger (every record is also forwarded to the
agent's ledger, so the agent's budgets and the stored usage see all calls); the analysis agent sizes the
completion cap so the worst case of every LLM member (and round) fits its budget, leaving members out when
it cannot.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import pandas as pd
from pydantic import ValidationError

from nq_ray.agents.models import (
    CommitteeConfig,
    CommitteeDebate,
    CommitteeMemberAnswer,
    CommitteeMemberConfig,
    CommitteeRecord,
    MarketView,
)
from nq_ray.errors import InvalidArgumentError, NQRayError
from nq_ray.llm.accounting import UsageLedger, UsageRecord
from nq_ray.llm.config import LLMConfig, ProviderConfig
from nq_ray.llm.protocol import Usage
from nq_ray.llm.results import Attempt, LLMResult
from nq_ray.llm.router import LLMRouter

TASK = "market_analysis"
RAY_SLACK_S = 20.0  # a Ray member may also wait for a worker process; the member's own deadline still holds
ARGUMENT_CHARS = 1200  # each side's argument (and a member's own answer) shown in the debate, at most
DEBATE_PROMPT = (
    "The committee disagrees. The strongest case for LONG ({bull}): {bull_arg}\n"
    "The strongest case for SHORT ({bear}): {bear_arg}\n"
    "Weigh both against the data above and answer again with ONLY the JSON object of the same schema; "
    "keep your view or revise it."
)
EPS = 1e-9


@dataclass(frozen=True)
class MemberSpec:
    """A member resolved against the router: its provider's config (model override applied)."""

    member: CommitteeMemberConfig
    provider: ProviderConfig

    @property
    def name(self) -> str:
        return self.member.name

    @property
    def is_llm(self) -> bool:
        return self.provider.is_llm


@dataclass
class Ballot:
    """One member's answer in one round: the validated view, or why there is none."""

    spec: MemberSpec
    round: int
    view: MarketView | None = None
    error: str | None = None
    text: str = ""
    model: str | None = None
    latency_s: float = 0.0
    started_at: float | None = None  # wall clock (time.time()) when the call began, wherever it ran
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    records: list[dict[str, Any]] = field(default_factory=list)

    def answer(self, t0: float) -> CommitteeMemberAnswer:
        """As recorded; ``t0`` is the committee's start (``time.time()``)."""
        v = self.view
        started = None if self.started_at is None else round((self.started_at - t0) * 1000, 1)
        return CommitteeMemberAnswer(
            name=self.spec.name,
            provider=self.spec.provider.name,
            model=self.model or self.spec.provider.model,
            ok=v is not None,
            error=self.error,
            bias=v.bias if v else None,
            confidence=v.confidence if v else None,
            reasoning=v.reasoning if v else None,
            started_ms=started,
            latency_ms=round(self.latency_s * 1000, 1),
            prompt_tokens=self.prompt_tokens,
            completion_tokens=self.completion_tokens,
            cost_usd=round(self.cost_usd, 8),
            round=self.round,
        )


@dataclass(frozen=True)
class Combined:
    view: MarketView
    votes: dict[str, float]
    agreement: float | None
    no_entry_reason: str | None


@dataclass(frozen=True)
class CommitteeOutcome:
    """What ``Committee.decide`` hands the analysis agent: the view, the record, and an ``LLMResult``
    standing for the committee (provider ``committee``) with the summed usage."""

    view: MarketView
    record: CommitteeRecord
    result: LLMResult
    tokens: int
    cost_usd: float


def resolve(config: CommitteeConfig, llm: LLMConfig) -> list[MemberSpec]:
    """Each member's provider config from the router's (enabled) providers; an unknown provider is an
    ``InvalidArgumentError`` naming the ones there are. ``rules`` names the rules analyst whatever its
    provider is called."""
    resolved = [p for p in llm.resolved() if p.enabled]
    by_name = {p.name: p for p in resolved}
    rules = next((p for p in resolved if not p.is_llm), None)
    out = []
    for m in config.members:
        pc = by_name.get(m.provider) or (rules if m.provider == "rules" else None)
        if pc is None:
            raise InvalidArgumentError(
                f"committee member {m.name!r}: unknown provider {m.provider!r}; the router has "
                f"{sorted(by_name)} (and 'rules' for the rules analyst)",
                member=m.name,
                provider=m.provider,
            )
        if m.model is not None and not pc.is_llm:
            raise InvalidArgumentError(
                f"committee member {m.name!r}: the rules analyst has no model to override",
                member=m.name,
            )
        patch: dict[str, Any] = {}
        if m.model is not None:
            patch["model"] = m.model
        out.append(MemberSpec(m, pc.model_copy(update=patch) if patch else pc))
    return out


class _Forward:
    """A ledger sink that repeats every record into another ledger (the agent's)."""

    def __init__(self, ledger: UsageLedger) -> None:
        self.ledger = ledger

    def record(self, rec: UsageRecord) -> None:
        forward(self.ledger, asdict(rec))


def forward(ledger: UsageLedger, rec: dict[str, Any]) -> None:
    ledger.record(**{k: v for k, v in rec.items() if k != "at"})


def member_router(
    llm: LLMConfig, spec: MemberSpec, ledger: UsageLedger, *, provider: Any = None, cache: Any = None
) -> LLMRouter:
    """A router over the member's provider alone (no failover, no background health checks)."""
    from nq_ray.llm.providers import make_provider
    from nq_ray.llm.rules import RulesAnalyst

    pc = spec.provider
    keep = llm.cache if cache is not None else "off"
    cfg = llm.model_copy(update={"providers": [pc], "health_interval_s": 0.0, "cache": keep})
    prov = provider or make_provider(pc, rules_factory=lambda c: RulesAnalyst(c, rules=llm.rules))
    return LLMRouter([(pc, prov)], cfg, ledger=ledger, cache=cache)


def _attempts_text(exc: NQRayError) -> str:
    attempts = (exc.details or {}).get("attempts") or []
    parts = [f"{a.get('reason')}: {str(a.get('detail', ''))[:200]}" for a in attempts]
    return f"{exc.code}: " + ("; ".join(parts) if parts else str(exc)[:300])


async def ask(
    router: LLMRouter,
    ballot: Ballot,
    messages: Sequence[dict[str, str]],
    bars: pd.DataFrame | None,
    *,
    caller: str,
    params: dict[str, Any],
    timeout_s: float,
) -> Ballot:
    """One member's call, bounded by ``timeout_s``; every failure becomes ``ballot.error``."""
    t0 = time.perf_counter()
    ballot.started_at = time.time()
    try:
        async with asyncio.timeout(timeout_s):
            res = await router.chat(
                list(messages),
                task=TASK,
                response_model=MarketView,
                caller=caller,
                bars=bars,
                deadline_s=timeout_s,
                **params,
            )
    except TimeoutError:
        ballot.error = f"timeout: no answer within {timeout_s:g}s"
    except NQRayError as exc:
        ballot.error = _attempts_text(exc)
    except Exception as exc:  # a member's bug is its absence, never the committee's failure
        ballot.error = f"error: {type(exc).__name__}: {str(exc)[:300]}"
    else:
        ballot.text, ballot.model = res.text, res.model
        try:
            parsed = res.parsed
            ballot.view = (
                parsed
                if isinstance(parsed, MarketView)
                else MarketView.model_validate(parsed.model_dump() if parsed is not None else {})
            )
        except ValidationError as exc:
            ballot.error = f"invalid: the answer did not validate as MarketView: {str(exc)[:300]}"
    ballot.latency_s = time.perf_counter() - t0
    return ballot


def member_task(
    llm: LLMConfig,
    spec: MemberSpec,
    round_: int,
    messages: list[dict[str, str]],
    bars: pd.DataFrame | None,
    caller: str,
    params: dict[str, Any],
    timeout_s: float,
) -> Ballot:
    """A member's call in a Ray worker: its own router and ledger; the records travel back with it."""
    ledger = UsageLedger()
    router = member_router(llm, spec, ledger)

    async def go() -> Ballot:
        try:
            return await ask(
                router,
                Ballot(spec, round_),
                messages,
                bars,
                caller=caller,
                params=params,
                timeout_s=timeout_s,
            )
        finally:
            await router.aclose()

    ballot = asyncio.run(go())
    t = ledger.totals()
    ballot.prompt_tokens, ballot.completion_tokens, ballot.cost_usd = (
        t.prompt_tokens,
        t.completion_tokens,
        t.cost_usd,
    )
    ballot.records = [asdict(r) for r in ledger.records()]
    return ballot


_REMOTE: Any = None


def _ray(backend: str = "auto") -> Any:
    """Ray for the members' tasks, or ``None`` to run them in-process: ``auto`` uses Ray when it is
    imported and initialised here; ``ray`` insists on it."""
    if backend == "local":
        return None
    ray = sys.modules.get("ray")
    ready = ray is not None and ray.is_initialized()
    if backend == "ray" and not ready:
        raise InvalidArgumentError(
            "committee backend 'ray' needs Ray started (nq_ray.runtime.connect); use 'auto' or 'local'"
        )
    return ray if ready else None


def _remote(ray: Any) -> Any:
    global _REMOTE
    if _REMOTE is None:  # I/O-bound: a small CPU share, so a 2-CPU node runs a whole committee at once
        _REMOTE = ray.remote(num_cpus=0.25, max_retries=0)(member_task)
    return _REMOTE


def combine(config: CommitteeConfig, ballots: Sequence[Ballot]) -> Combined:
    """The vote (see the module docstring for the rules)."""
    valid = [(b.spec.member, b.view) for b in ballots if b.view is not None]
    quorum = config.effective_quorum
    votes: dict[str, float] = {}
    for m, v in valid:
        w = m.weight * (v.confidence if config.rule == "confidence_weighted" else 1.0)
        votes[v.bias] = round(votes.get(v.bias, 0.0) + w, 9)

    def no_entry(reason: str, agreement: float | None = None) -> Combined:
        view = MarketView(bias="flat", confidence=0.0, reasoning=f"committee: no new entry — {reason}")
        return Combined(view, votes, agreement, reason)

    if len(valid) < quorum:
        return no_entry(
            f"quorum not met: {len(valid)} of {len(config.members)} members gave a valid answer, "
            f"{quorum} needed"
        )
    total = sum(votes.values())
    if total <= EPS:
        return no_entry("no weight behind any side (every valid member has confidence 0)")
    ranked = sorted(votes.items(), key=lambda kv: -kv[1])
    side, top = ranked[0]
    agreement = round(top / total, 6)
    tally = ", ".join(f"{b} {w:g}" for b, w in ranked)
    if len(ranked) > 1 and ranked[1][1] >= top - EPS:
        return no_entry(f"tie between {side} and {ranked[1][0]} ({tally})", agreement)
    if config.rule == "unanimous" and len(ranked) > 1:
        return no_entry(f"not unanimous ({tally})", agreement)
    if 1.0 - agreement > config.disagreement_threshold + EPS:
        return no_entry(
            f"disagreement {1.0 - agreement:.2f} above the threshold {config.disagreement_threshold:.2f} "
            f"({tally})",
            agreement,
        )
    winners = [(m, v) for m, v in valid if v.bias == side]
    best_m, best = max(winners, key=lambda mv: mv[0].weight * mv[1].confidence)
    confidence = sum(m.weight * v.confidence for m, v in winners) / sum(m.weight for m, _ in valid)
    reasoning = (
        f"committee ({config.rule}, {len(winners)} of {len(valid)} valid members {side}, agreement "
        f"{agreement:.2f}); {best_m.name}: {best.reasoning}"
    )
    view = MarketView(
        bias=best.bias,
        confidence=round(min(1.0, confidence), 6),
        key_levels=list(best.key_levels),
        invalidation=best.invalidation,
        horizon=best.horizon,
        reasoning=reasoning[:4000],
    )
    return Combined(view, votes, agreement, None)


def _strongest(ballots: Sequence[Ballot], bias: str) -> Ballot | None:
    side = [b for b in ballots if b.view is not None and b.view.bias == bias]
    return max(side, key=lambda b: b.spec.member.weight * b.view.confidence) if side else None  # type: ignore[union-attr]


class Committee:
    """The members of one analysis agent's committee and how they are asked (see the module docstring)."""

    def __init__(self, config: CommitteeConfig, base: LLMRouter) -> None:
        self.config = config
        self.base = base
        self.specs = resolve(config, base.config)
        self._routers: dict[str, tuple[LLMRouter, UsageLedger]] = {}

    @classmethod
    def build(cls, config: CommitteeConfig | None, base: LLMRouter) -> Committee | None:
        return None if config is None else cls(config, base)

    @property
    def rounds(self) -> int:
        return 2 if self.config.debate else 1

    def _local(self, spec: MemberSpec) -> tuple[LLMRouter, UsageLedger]:
        """The member's in-process router, kept (its breaker remembers), with a ledger of its own whose
        records are forwarded to the agent's."""
        if spec.name not in self._routers:
            ledger = UsageLedger(sinks=[_Forward(self.base.ledger)])
            shared = None
            if spec.member.model is None:  # the base router's client for that provider, as router_for does
                try:
                    shared = self.base.provider(spec.provider.name)
                except InvalidArgumentError:
                    shared = None
            router = member_router(self.base.config, spec, ledger, provider=shared, cache=self.base.cache)
            self._routers[spec.name] = (router, ledger)
        return self._routers[spec.name]

    def _params(self, spec: MemberSpec, cap: int | None) -> dict[str, Any]:
        params: dict[str, Any] = {}
        if spec.member.temperature is not None:
            params["temperature"] = spec.member.temperature
        if cap is not None:
            params["max_tokens"] = cap
        return params

    async def _round(
        self,
        asks: Sequence[tuple[MemberSpec, list[dict[str, str]]]],
        round_: int,
        bars: pd.DataFrame | None,
        caller: str,
        cap: int | None,
    ) -> list[Ballot]:
        ray = _ray(self.config.backend)
        timeout_s = self.config.timeout_s
        if ray is None:

            async def local(spec: MemberSpec, msgs: list[dict[str, str]]) -> Ballot:
                router, ledger = self._local(spec)
                before = ledger.totals()
                ballot = await ask(
                    router,
                    Ballot(spec, round_),
                    msgs,
                    bars,
                    caller=caller,
                    params=self._params(spec, cap),
                    timeout_s=timeout_s,
                )
                after = ledger.totals()
                ballot.prompt_tokens = after.prompt_tokens - before.prompt_tokens
                ballot.completion_tokens = after.completion_tokens - before.completion_tokens
                ballot.cost_usd = after.cost_usd - before.cost_usd
                return ballot

            return list(await asyncio.gather(*(local(s, m) for s, m in asks)))

        remote = _remote(ray)
        bars_ref = ray.put(bars) if bars is not None else None

        async def on_ray(spec: MemberSpec, msgs: list[dict[str, str]]) -> Ballot:
            t0 = time.perf_counter()
            ref = remote.remote(
                self.base.config, spec, round_, msgs, bars_ref, caller, self._params(spec, cap), timeout_s
            )
            try:
                ballot: Ballot = await asyncio.wait_for(
                    asyncio.wrap_future(ref.future()), timeout_s + RAY_SLACK_S
                )
            except TimeoutError:
                ray.cancel(ref, force=True)
                return Ballot(
                    spec,
                    round_,
                    error=f"timeout: the Ray task gave no answer within {timeout_s + RAY_SLACK_S:g}s",
                    latency_s=time.perf_counter() - t0,
                )
            except Exception as exc:  # the worker died, the task failed: the member is absent
                return Ballot(
                    spec,
                    round_,
                    error=f"error: Ray task failed: {type(exc).__name__}: {str(exc)[:300]}",
                    latency_s=time.perf_counter() - t0,
                )
            for rec in ballot.records:  # the member's usage counts against the agent's budget
                forward(self.base.ledger, rec)
            ballot.records = []
            return ballot

        return list(await asyncio.gather(*(on_ray(s, m) for s, m in asks)))

    async def decide(
        self,
        messages: list[dict[str, str]],
        bars: pd.DataFrame | None,
        *,
        caller: str,
        cap: int | None,
        left_out: dict[str, str] | None = None,
        budget_note: str | None = None,
    ) -> CommitteeOutcome:
        """Ask every member (but those ``left_out``, with why), hold the debate when configured, vote."""
        t0, wall0 = time.perf_counter(), time.time()
        left_out = left_out or {}
        backend: Literal["ray", "local"] = "ray" if _ray(self.config.backend) is not None else "local"
        asked = [s for s in self.specs if s.name not in left_out]
        opening = await self._round([(s, messages) for s in asked], 0, bars, caller, cap)
        absent = [Ballot(s, 0, error=f"budget: {left_out[s.name]}") for s in self.specs if s.name in left_out]
        by_name = {b.spec.name: b for b in [*opening, *absent]}
        first = [by_name[s.name] for s in self.specs]
        final = list(first)
        debate: CommitteeDebate | None = None
        later: list[Ballot] = []
        if self.config.debate:
            bull, bear = _strongest(first, "long"), _strongest(first, "short")
            if bull is None or bear is None:
                debate = CommitteeDebate(
                    held=False, note=f"no debate: no valid {'long' if bull is None else 'short'} answer"
                )
            else:
                assert bull.view is not None and bear.view is not None
                prompt = DEBATE_PROMPT.format(
                    bull=bull.spec.name,
                    bull_arg=bull.view.reasoning[:ARGUMENT_CHARS],
                    bear=bear.spec.name,
                    bear_arg=bear.view.reasoning[:ARGUMENT_CHARS],
                )
                asks = [
                    (
                        b.spec,
                        [
                            *messages,
                            {"role": "assistant", "content": b.view.model_dump_json()[:ARGUMENT_CHARS]},
                            {"role": "user", "content": prompt},
                        ],
                    )
                    for b in first
                    if b.view is not None and b.spec.is_llm
                ]
                later = await self._round(asks, 1, bars, caller, cap)
                revised = []
                for b in later:
                    i = next(i for i, f in enumerate(first) if f.spec.name == b.spec.name)
                    if b.view is not None:
                        if first[i].view is not None and first[i].view.bias != b.view.bias:  # type: ignore[union-attr]
                            revised.append(b.spec.name)
                        final[i] = b
                debate = CommitteeDebate(
                    held=True,
                    note=f"{len(later)} members answered the debate; {len(revised)} revised",
                    bull_member=bull.spec.name,
                    bull_argument=bull.view.reasoning[:ARGUMENT_CHARS],
                    bear_member=bear.spec.name,
                    bear_argument=bear.view.reasoning[:ARGUMENT_CHARS],
                    revised=revised,
                )
        combined = combine(self.config, final)
        everyone = [*first, *later]
        record = CommitteeRecord(
            members=[b.answer(wall0) for b in everyone],
            rule=self.config.rule,
            quorum=self.config.effective_quorum,
            votes=combined.votes,
            agreement=combined.agreement,
            decision=combined.view.bias,
            no_entry_reason=combined.no_entry_reason,
            debate=debate,
            backend=backend,
            budget_note=budget_note,
        )
        p_tok = sum(b.prompt_tokens for b in everyone)
        c_tok = sum(b.completion_tokens for b in everyone)
        cost = sum(b.cost_usd for b in everyone)
        valid_llm = any(b.view is not None and b.spec.is_llm for b in final)
        result = LLMResult(
            text=json.dumps([a.model_dump(mode="json") for a in record.members]),
            parsed=combined.view,
            provider="committee",
            model=f"{self.config.rule}: " + "+".join(s.name for s in self.specs),
            kind="committee",
            is_llm=valid_llm,
            usage=Usage(p_tok, c_tok),
            latency_s=time.perf_counter() - t0,
            attempts=tuple(
                Attempt(
                    b.spec.name,
                    "ok" if b.view is not None else "error",
                    "answered" if b.view is not None else (b.error or "").split(":", 1)[0],
                    b.error or "",
                    b.latency_s,
                )
                for b in everyone
            ),
            task=TASK,
            caller=caller,
            cost_usd=cost,
        )
        return CommitteeOutcome(combined.view, record, result, p_tok + c_tok, cost)
