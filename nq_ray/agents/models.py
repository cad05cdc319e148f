"""Typed outputs of the trading agents: a market view, a trade proposal, a risk assessment, an execution.

``MarketView`` is the ``response_model`` the analysis agent asks the LLM router for. The rules analyst
answers with its own ``RulesView``; ``MarketView`` accepts that shape too (bullish → long, bearish →
short, neutral → flat) so the router's last provider can always fill it.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from nq_ray.agents.thinking import OrderPlan, PortfolioReview, Refusal, RiskNarrative, Thought
from nq_ray.llm.prompts.engine import SEED_TEMPLATES

Bias = Literal["long", "short", "flat"]
_RULES_BIAS = {"bullish": "long", "bearish": "short", "neutral": "flat"}


class MarketView(BaseModel):
    """A directional view of one market with the levels that support and invalidate it."""

    model_config = ConfigDict(frozen=True)

    bias: Bias
    confidence: float = Field(ge=0, le=1)
    key_levels: list[float] = Field(default_factory=list, description="prices that matter, index points")
    invalidation: float | None = Field(default=None, description="price that proves the view wrong")
    horizon: str = Field(default="intraday", max_length=64)
    reasoning: str = Field(max_length=4000)

    @model_validator(mode="before")
    @classmethod
    def _from_rules_view(cls, data: Any) -> Any:
        """Map the rules analyst's ``RulesView`` (``source='rules'``) onto a ``MarketView``."""
        if not (isinstance(data, dict) and data.get("source") == "rules" and "bias" in data):
            return data
        bias = _RULES_BIAS.get(data["bias"], data["bias"])
        support, resistance = data.get("support"), data.get("resistance")
        invalidation = support if bias == "long" else resistance if bias == "short" else None
        return {
            "bias": bias,
            "confidence": data.get("confidence", 0.0),
            "key_levels": [x for x in (support, resistance) if x is not None],
            "invalidation": invalidation,
            "horizon": "intraday",
            "reasoning": data.get("summary", ""),
        }


CommitteeRule = Literal["majority", "confidence_weighted", "unanimous"]


class CommitteeMemberAnswer(BaseModel):
    """One member's answer in one round (0 = the vote's opening round, 1 = after the debate): what it said,
    or why it is absent (``ok`` False: failed, timed out, did not validate, or left out for the budget)."""

    name: str
    provider: str
    model: str | None = None
    ok: bool
    error: str | None = None
    bias: Bias | None = None
    confidence: float | None = None
    reasoning: str | None = None
    started_ms: float | None = Field(
        default=None, description="when its call began, after the committee's start"
    )
    latency_ms: float = 0.0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    round: int = 0


class CommitteeDebate(BaseModel):
    """The bull/bear round: the strongest argument of each side shown to every member, who may revise."""

    held: bool
    note: str = ""
    bull_member: str | None = None
    bull_argument: str | None = None
    bear_member: str | None = None
    bear_argument: str | None = None
    revised: list[str] = Field(default_factory=list, description="members whose bias changed in round 1")


class CommitteeRecord(BaseModel):
    """How a committee reached the view: every member's answer (both rounds), the votes by bias, the
    agreement (the valid weight on the winning side ÷ all valid weight) and the decision."""

    members: list[CommitteeMemberAnswer]
    rule: CommitteeRule
    quorum: int
    votes: dict[str, float] = Field(default_factory=dict, description="weight per bias of valid members")
    agreement: float | None = Field(default=None, description="winning side's share of the valid weight")
    decision: Bias = Field(description="the combined view's bias; flat when there is no new entry")
    no_entry_reason: str | None = None
    debate: CommitteeDebate | None = None
    backend: Literal["ray", "local"] = "local"
    budget_note: str | None = Field(default=None, description="members left out for the budget, and why")


class AnalysisReport(BaseModel):
    """The analysis agent's answer: the view plus everything needed to audit how it was reached."""

    symbol: str
    view: MarketView
    last_price: float
    bar_time: str
    provider: str
    model: str
    is_llm: bool
    fallback: str | None = Field(default=None, description="why the rules analyst answered, if it did")
    prompt: str
    template: str | None = Field(default=None, description="the prompt template rendered (analysis_base)")
    template_version: str | None = Field(
        default=None, description="its version: declared + hash of its text (an agent's override differs)"
    )
    raw_output: str
    inputs: dict[str, Any] = Field(description="data window + hash, indicator values, levels, context")
    params: dict[str, Any] = Field(
        default_factory=dict, description="sampling parameters sent (temperature, max_tokens) and budget"
    )
    committee: CommitteeRecord | None = Field(
        default=None, description="the model committee's members, votes and decision, when one answered"
    )


class TradeProposal(BaseModel):
    """An order the desk would like to place (before risk)."""

    model_config = ConfigDict(frozen=True)

    symbol: str
    side: Literal["buy", "sell"]
    contracts: int = Field(ge=0)
    entry: float = Field(gt=0)
    stop: float = Field(gt=0)
    target: float = Field(gt=0)
    rationale: str


class RiskAssessment(BaseModel):
    """The risk agent's verdict: approved or not, the contracts that may be sent, and why."""

    symbol: str
    approved: bool
    contracts: int = Field(ge=0)
    reasons: list[str] = Field(default_factory=list)
    proposal: TradeProposal | None = None
    verdict: dict[str, Any] | None = Field(default=None, description="check_risk_limits' verdict")
    sizing: dict[str, Any] | None = Field(default=None, description="calculate_position_size's answer")
    code_contracts: int | None = Field(
        default=None, ge=0, description="contracts the code (sizing and gate) allowed, before the model's say"
    )
    narrative: RiskNarrative | None = Field(default=None, description="the risk narrative and concerns")
    thought: Thought | None = Field(
        default=None, description="how the narrative was reached: prompt, template version, model or rules"
    )
    portfolio: PortfolioReview | None = Field(
        default=None, description="assess_risk of a book (given or live): exposure, margin, VaR, limits"
    )


class ExecutionReport(BaseModel):
    """What the execution agent did: the orders it placed (none when the assessment was not approved)."""

    placed: bool
    orders: list[dict[str, Any]] = Field(default_factory=list)
    note: str = ""
    plan: OrderPlan | None = Field(default=None, description="the order plan that was sent")
    rejected_plan: OrderPlan | None = Field(default=None, description="a model's plan that failed the checks")
    thought: Thought | None = Field(
        default=None, description="how the plan was reached: prompt, template version, model or rules"
    )
    refusal: Refusal | None = Field(default=None, description="why nothing was placed, when it was refused")
    client_order_ids: list[str] = Field(default_factory=list, description="one per order (leg) sent")


AgentType = Literal["analysis", "risk", "execution"]


class AgentBudget(BaseModel):
    """Per-agent daily LLM limits (UTC day); ``None`` = unlimited."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tokens_per_day: int | None = Field(default=None, ge=0)
    usd_per_day: float | None = Field(default=None, ge=0)


class CommitteeMemberConfig(BaseModel):
    """One committee member: a router provider (``rules`` for the rules analyst), optionally another model
    of it and a temperature, and the weight of its vote."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,39}$",
        description="unique within the committee: letters, digits, '_', '.', '-' (max 40)",
    )
    provider: str = Field(max_length=40, description="a router provider's name; 'rules' = the rules analyst")
    model: str | None = Field(default=None, max_length=256, description="override that provider's model")
    temperature: float | None = Field(default=None, ge=0, le=2)
    weight: float = Field(default=1.0, gt=0, le=100, description="the weight of this member's vote")


class CommitteeConfig(BaseModel):
    """A model committee for the analysis agent (see ``nq_ray.agents.committee`` for the rules)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    members: list[CommitteeMemberConfig] = Field(min_length=2, max_length=9)
    rule: CommitteeRule = "majority"
    quorum: int | None = Field(
        default=None, ge=1, description="valid answers needed for the vote to stand; default: a majority"
    )
    disagreement_threshold: float = Field(
        default=0.34,
        ge=0,
        le=1,
        description="no new entry when the valid weight NOT on the winning side exceeds this share",
    )
    debate: bool = Field(default=False, description="a bull/bear round before the vote")
    timeout_s: float = Field(default=30.0, gt=0, le=600, description="per member and round")
    backend: Literal["auto", "ray", "local"] = Field(
        default="auto", description="members as Ray tasks (auto: when Ray is initialised) or in-process"
    )

    @model_validator(mode="after")
    def _check(self) -> CommitteeConfig:
        names = [m.name for m in self.members]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"committee member names must be unique; repeated: {', '.join(dupes)}")
        if self.quorum is not None and self.quorum > len(self.members):
            raise ValueError(f"quorum {self.quorum} is more than the {len(self.members)} members")
        return self

    @property
    def effective_quorum(self) -> int:
        return self.quorum if self.quorum is not None else len(self.members) // 2 + 1


class AgentConfig(BaseModel):
    """How an agent is built: the router provider it may use (all of them when unset), the model and
    temperature it asks for, the tools it may call (all when unset) and its daily budget."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    provider: str | None = Field(default=None, max_length=40, description="restrict to one router provider")
    model: str | None = Field(default=None, max_length=256, description="override that provider's model")
    temperature: float | None = Field(default=None, ge=0, le=2)
    max_tokens: int | None = Field(default=None, gt=0, le=32_768, description="completion cap per call")
    tools: list[str] | None = Field(default=None, description="tool names this agent may call; unset = all")
    budget: AgentBudget | None = None
    memory_items: int = Field(default=10, ge=0, le=200, description="recent memories fed into the prompt")
    committee: CommitteeConfig | None = Field(
        default=None, description="ask several providers/models at once and combine their views (analysis)"
    )

    prompts: dict[str, str] = Field(
        default_factory=dict,
        description="this agent's own text for seed prompt templates (analysis_base, pattern_recognition, "
        "market_summary, execution_base, risk_assessment, order_management): Jinja or seed-style {name}",
    )

    @field_validator("prompts")
    @classmethod
    def _prompts_parse(cls, value: dict[str, str]) -> dict[str, str]:
        """Only the seed templates' names, each text within the size limit and parsing (extending only
        known templates); the message names the template and what is wrong."""
        from nq_ray.errors import InvalidArgumentError
        from nq_ray.llm.prompts.engine import builtin_engine

        unknown = sorted(set(value) - set(SEED_TEMPLATES))
        if unknown:
            raise ValueError(f"unknown prompt templates {unknown}; overridable: {list(SEED_TEMPLATES)}")
        for name, text in value.items():
            try:
                builtin_engine().check_override(name, text)
            except InvalidArgumentError as exc:
                raise ValueError(exc.message) from None
        return value


class TaskReport(BaseModel):
    """The answer of a tool-backed task (pattern_recognition, market_summary, manage_position)."""

    task: str
    symbol: str | None = None
    summary: str
    data: dict[str, Any] = Field(default_factory=dict)
    prompt: str | None = Field(
        default=None, description="the task's seed template rendered on the data (what a model is asked)"
    )
    template: str | None = None
    template_version: str | None = None
