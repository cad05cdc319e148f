"""``replay_decision``: rebuild a recorded desk decision's inputs point in time and decide again.

From the decision row (``agent_decisions``, agent ``trading_desk``) it takes the data window (interval,
source, bar count, last bar, sha256), the analysis depth, the memories that were in the prompt, and the
provider / model / parameters. It then runs the same analysis and risk agents through the tool registry
with ``ToolContext.point_in_time(as_of)`` — ``as_of`` is the close of the window's last bar, so every
tool sees the market exactly as the desk did — and compares:

- the window: the rebuilt bars' sha256 against the recorded one (a mismatch means the data source changed
  since; the replay says so and still runs);
- the prompt: equal when the inputs are the same;
- the outcome: bias, confidence, key levels, invalidation, the proposal (side, contracts, entry, stop,
  target) and the risk verdict (approved, contracts, reasons), field by field.

Same model (no ``provider``/``model`` given): the recorded answer is served from a response cache keyed
like the router's (provider, model, parameters, prompt hash) when the rebuilt prompt matches, so an LLM
decision replays exactly and for free; ``fresh=True`` asks the model again. Another provider or model:
it is asked (through its own cache if the router has one) and the differences are the comparison.
The risk gate runs on a flat point-in-time book: a verdict that depended on positions held at the time
can differ, and the replay says so.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
from pydantic import BaseModel, Field

from nq_ray.agents.agents import AnalysisAgent, LocalTools, MemoryManager, RiskAgent
from nq_ray.agents.models import AgentConfig, AnalysisReport, RiskAssessment
from nq_ray.agents.service.registry import agent_options
from nq_ray.config import Settings
from nq_ray.data.intervals import interval_length
from nq_ray.errors import InvalidArgumentError, NotFoundError
from nq_ray.llm.cache import messages_hash
from nq_ray.llm.protocol import ChatResponse
from nq_ray.llm.router import LLMRouter
from nq_ray.store.models import AgentDecisionRow, MemoryRow
from nq_ray.store.repository import Repository
from nq_ray.tools.context import ToolContext
from nq_ray.tools.registry import build_registry

DESK_AGENT = "trading_desk"
COMPARED = (
    "view.bias",
    "view.confidence",
    "view.key_levels",
    "view.invalidation",
    "action",
    "risk.approved",
    "risk.contracts",
    "risk.reasons",
    "proposal.side",
    "proposal.contracts",
    "proposal.entry",
    "proposal.stop",
    "proposal.target",
)


class Difference(BaseModel):
    field: str
    original: Any
    replay: Any


class ReplayResult(BaseModel):
    """What the replay rebuilt, what it decided, and how that differs from the record."""

    decision_id: int
    symbol: str
    as_of: str = Field(description="the close of the window's last bar: what every tool could see")
    window_match: bool
    window: dict[str, Any] = Field(description="the recorded window, with the rebuilt sha256")
    data_note: str | None = Field(description="why the window differs, when it does")
    prompt_match: bool
    original_model: str
    replay_model: str
    from_cache: bool = Field(description="the answer came from the response cache, not a new call")
    fallback: str | None
    same: bool = Field(description="no compared field differs")
    differences: list[Difference]
    original: dict[str, Any]
    replay: dict[str, Any]
    notes: list[str] = Field(default_factory=list)


class RecordedAnswerCache:
    """A ``ResponseCache`` that answers the recorded prompt, asked of the recorded provider, with the
    recorded raw answer (the router re-validates it), and defers to ``inner`` (or misses) otherwise. The
    model is not part of the match: a backend may name its model differently from the configuration."""

    def __init__(
        self, provider: str, model: str, messages: Sequence[Mapping[str, Any]], text: str, inner: Any = None
    ) -> None:
        self.provider, self.model, self.text, self.inner = provider, model, text, inner
        self.digest = messages_hash(messages)
        self.hits = 0

    def _match(self, key: str) -> bool:
        head, _params, digest = key.rsplit("|", 2)
        return (head.split("|", 1)[0], digest) == (self.provider, self.digest)

    async def aget(self, key: str) -> ChatResponse | None:
        if self._match(key):
            self.hits += 1
            return ChatResponse(text=self.text, model=self.model)
        aget = getattr(self.inner, "aget", None)
        if aget is not None:
            return await aget(key)
        return self.inner.get(key) if self.inner is not None else None

    def get(self, key: str) -> ChatResponse | None:
        if self._match(key):
            self.hits += 1
            return ChatResponse(text=self.text, model=self.model)
        return self.inner.get(key) if self.inner is not None else None

    def put(self, key: str, value: ChatResponse) -> None:
        if self.inner is not None:
            self.inner.put(key, value)


class PinnedMemory(MemoryManager):
    """The memories a decision's prompt held, in the order they were read (newest first)."""

    def __init__(self, rows: list[dict[str, Any]]) -> None:
        super().__init__(None)
        self.rows = rows

    async def recent(self, agent_id: str, n: int = 10, kind: str | None = None) -> list[dict[str, Any]]:
        return [r for r in self.rows if kind in (None, r["kind"])][:n]


async def load_decision(repo: Repository, decision_id: int) -> AgentDecisionRow:
    """The desk decision row ``decision_id`` (``NotFoundError`` when there is none)."""
    if not isinstance(decision_id, int) or isinstance(decision_id, bool) or decision_id < 1:
        raise InvalidArgumentError("decision_id must be a positive integer", decision_id=decision_id)
    async with repo.sessions() as s:
        row = await s.get(AgentDecisionRow, decision_id)
    if row is None or row.agent != DESK_AGENT:
        what = "no decision" if row is None else f"row {decision_id} is not a desk decision ({row.agent})"
        raise NotFoundError(
            f"{what} {decision_id}; list them with GET /api/decisions", decision_id=decision_id
        )
    if not row.inputs or "window" not in row.inputs or not row.prompt:
        raise InvalidArgumentError(
            f"decision {decision_id} has no recorded data window or prompt; it cannot be replayed",
            decision_id=decision_id,
        )
    return row


async def _memories(repo: Repository, ids: list[int]) -> list[dict[str, Any]]:
    if not ids:
        return []
    from sqlalchemy import select

    async with repo.sessions() as s:
        rows = {r.id: r for r in await s.scalars(select(MemoryRow).where(MemoryRow.id.in_(ids)))}
    return [
        MemoryManager._row(rows[i].at, i, rows[i].kind, rows[i].content, rows[i].meta)
        for i in ids
        if i in rows
    ]


def _outcome(
    report: AnalysisReport | Mapping[str, Any], risk: RiskAssessment | Mapping[str, Any]
) -> dict[str, Any]:
    r = RiskAssessment.model_validate(risk)
    view = report.view.model_dump(mode="json") if isinstance(report, AnalysisReport) else dict(report["view"])
    p = r.proposal
    return {
        "view": view,
        "action": p.side if r.approved and p is not None else "none",
        "risk": {"approved": r.approved, "contracts": r.contracts, "reasons": r.reasons},
        "proposal": p.model_dump(mode="json") if p is not None else None,
    }


def _get(d: Mapping[str, Any] | None, path: str) -> Any:
    cur: Any = d
    for part in path.split("."):
        if not isinstance(cur, Mapping):
            return None
        cur = cur.get(part)
    return cur


def diff(original: Mapping[str, Any], replay: Mapping[str, Any], *, tol: float = 1e-9) -> list[Difference]:
    """Field-by-field differences over ``COMPARED`` (numbers within ``tol`` are equal)."""
    out = []
    for path in COMPARED:
        a, b = _get(original, path), _get(replay, path)
        if isinstance(a, int | float) and isinstance(b, int | float) and not isinstance(a, bool):
            if abs(float(a) - float(b)) <= tol:
                continue
        elif a == b:
            continue
        out.append(Difference(field=path, original=a, replay=b))
    return out


async def replay_decision(
    settings: Settings,
    decision_id: int,
    *,
    provider: str | None = None,
    model: str | None = None,
    fresh: bool = False,
    router: LLMRouter | None = None,
    repo: Repository | None = None,
) -> ReplayResult:
    """Replay decision ``decision_id`` (see the module docstring). ``router`` defaults to
    ``settings.llm``'s chain; ``repo`` to the settings' store."""
    own_repo = repo is None
    repo = repo or await Repository.connect(settings.store_url)
    own_router = router is None
    saved_cache: Any = None
    recorded_cache: RecordedAnswerCache | None = None
    try:
        row = await load_decision(repo, decision_id)
        inputs, recorded = row.inputs or {}, row.decision or {}
        window = inputs["window"]
        interval, source = str(window["interval"]), str(window["source"])
        as_of = pd.Timestamp(window["last"]) + interval_length(interval)
        messages = json.loads(row.prompt or "[]")
        orig_provider = str(recorded.get("provider") or (row.model or "rules/").split("/", 1)[0])
        orig_model = str(recorded.get("model") or (row.model or "/").split("/", 1)[1])
        params = recorded.get("params") or {}
        same_model = provider is None and model is None
        notes: list[str] = []

        base_cfg = (router.config if router is not None else settings.llm).model_copy(
            update={"health_interval_s": 0}
        )
        if model is not None:  # another model of a provider (default: the recorded one): a router for it
            target = provider or orig_provider
            if target not in {p.name for p in base_cfg.resolved()}:
                raise InvalidArgumentError(
                    f"unknown provider {target!r}; the chain has {[p.name for p in base_cfg.resolved()]}",
                    provider=target,
                )
            cache = router.cache if router is not None else _store_cache(base_cfg.cache, repo)
            if own_router is False and router is not None:
                own_router = True  # a new router over the caller's configuration: ours to close
            router = LLMRouter.from_config(
                base_cfg.model_copy(update={"models": {**base_cfg.models, target: model}}), cache=cache
            )
            provider = target
        elif router is None:
            router = LLMRouter.from_config(base_cfg, cache=_store_cache(base_cfg.cache, repo))
        if same_model and not fresh and recorded.get("is_llm"):
            saved_cache = router.cache
            recorded_cache = RecordedAnswerCache(
                orig_provider, orig_model, messages, row.raw_output or "", saved_cache
            )
            router.cache = recorded_cache
        temperature, max_tokens = params.get("temperature"), params.get("max_tokens")
        if same_model:
            chain = [p for p in router.config.resolved() if p.enabled]
            if not recorded.get("is_llm"):  # the rules analyst decided: replay it alone, no LLM is asked
                orig_provider = next((p.name for p in chain if not p.is_llm), orig_provider)
            agent_cfg = AgentConfig(provider=orig_provider, temperature=temperature, max_tokens=max_tokens)
        else:
            agent_cfg = AgentConfig(provider=provider, temperature=temperature, max_tokens=max_tokens)
        tools = LocalTools(build_registry(ToolContext.at(settings, as_of)))
        memory = PinnedMemory(await _memories(repo, list(inputs.get("memory_ids") or [])))
        analysis = AnalysisAgent(
            tools,
            router,
            agent_id="replay_analysis",
            config=agent_cfg,
            memory=memory,
            interval=interval,
            source=source,
            window_bars=int(window["bars"]),
        )
        recorded_at = (inputs.get("context") or {}).get("as_of")
        if recorded_at:  # the context's decision time as recorded: same memories, same prompt
            analysis.context_as_of = pd.Timestamp(recorded_at).to_pydatetime()  # type: ignore[attr-defined]
        report = await analysis.analyze_market(row.symbol or "NQ")
        assessment = await RiskAgent(  # sized as the desk sizes (the settings' desk section)
            tools,
            agent_id="replay_risk",
            interval=interval,
            source=source,
            **agent_options(settings, "risk"),
        ).assess_trade(report)
    finally:
        if recorded_cache is not None and router is not None:
            router.cache = saved_cache
        flush = getattr(router.cache, "flush", None) if router is not None else None
        if flush is not None:  # a store-backed cache writes in the background: finish before closing
            await flush()
        if own_router and router is not None:
            await router.aclose()
        if own_repo:
            await repo.close()

    rebuilt = report.inputs["window"]
    window_match = rebuilt["sha256"] == window["sha256"]
    data_note = None
    if not window_match:
        data_note = (
            f"the {source} {interval} bars up to {window['last']} hash differently now "
            f"({rebuilt['bars']} bars {rebuilt['first']} → {rebuilt['last']} vs the recorded "
            f"{window['bars']} {window['first']} → {window['last']}): the data source changed since"
        )
    prompt_match = json.loads(report.prompt) == messages
    if not prompt_match and window_match:
        notes.append(
            "the prompt differs though the data window matches (memories or prompt template changed)"
        )
    if (recorded.get("risk") or {}).get("verdict") and any(
        r.get("code")
        in ("max_contracts_per_symbol", "max_total_contracts", "daily_loss", "trailing_drawdown")
        for r in ((recorded.get("risk") or {}).get("verdict") or {}).get("reasons", [])
    ):
        notes.append("the recorded verdict depended on the book at the time; the replay's book is flat")
    original = _outcome(
        recorded, recorded.get("risk") or {"symbol": row.symbol or "NQ", "approved": False, "contracts": 0}
    )
    replayed = _outcome(report, assessment)
    differences = diff(original, replayed)
    from_cache = bool(recorded_cache is not None and recorded_cache.hits)
    return ReplayResult(
        decision_id=decision_id,
        symbol=row.symbol or "NQ",
        as_of=as_of.isoformat(),
        window_match=window_match,
        window={**window, "rebuilt_sha256": rebuilt["sha256"]},
        data_note=data_note,
        prompt_match=prompt_match,
        original_model=f"{orig_provider}/{orig_model}",
        replay_model=f"{report.provider}/{report.model}",
        from_cache=from_cache,
        fallback=report.fallback,
        same=not differences,
        differences=differences,
        original=original,
        replay=replayed,
        notes=notes,
    )


def _store_cache(kind: str, repo: Repository) -> Any:
    """The store-backed response cache when ``llm.cache`` is ``store`` (answers of earlier runs), else
    None (the router makes its own memory cache or none)."""
    if kind != "store":
        return None
    from nq_ray.llm.stored import StoreResponseCache

    return StoreResponseCache(repo)


def format_replay(result: ReplayResult) -> str:
    """A few readable lines: what was rebuilt and each difference."""
    lines = [
        f"decision {result.decision_id} ({result.symbol}) as of {result.as_of}",
        f"  window   {'matches' if result.window_match else 'DIFFERS'} "
        f"(sha256 {result.window['sha256'][:12]}…)"
        + ("" if result.window_match else f": {result.data_note}"),
        f"  prompt   {'identical' if result.prompt_match else 'differs'}",
        f"  model    recorded {result.original_model} → replay {result.replay_model}"
        + (" (recorded answer, from cache)" if result.from_cache else ""),
    ]
    if result.fallback:
        lines.append(f"  fallback {result.fallback}")
    if result.same:
        lines.append("  result   identical: " + _short(result.replay))
    else:
        lines.append(f"  result   {len(result.differences)} difference(s):")
        lines += [f"    {d.field:<20} {d.original!r} → {d.replay!r}" for d in result.differences]
    lines += [f"  note     {n}" for n in result.notes]
    return "\n".join(lines)


def _short(o: Mapping[str, Any]) -> str:
    v = o.get("view") or {}
    return f"{v.get('bias')} ({v.get('confidence')}), action {o.get('action')}"
