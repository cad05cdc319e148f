"""Typed outputs of the trading agents: a market view, a trade proposal, a risk assessment, an execution.

``MarketView`` is the ``response_model`` the analysis agent asks the LLM router for. The rules analyst
answers with its own ``RulesView``; ``MarketView`` accepts that shape too (bullish → long, bearish →
short, neutral → flat) so the router's last provider can always fill it.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

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
    raw_output: str
    inputs: dict[str, Any] = Field(description="data window + hash, indicator values, levels")
    params: dict[str, Any] = Field(
        default_factory=dict, description="sampling parameters sent (temperature, max_tokens) and budget"
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


class ExecutionReport(BaseModel):
    """What the execution agent did: the orders it placed (none when the assessment was not approved)."""

    placed: bool
    orders: list[dict[str, Any]] = Field(default_factory=list)
    note: str = ""


AgentType = Literal["analysis", "risk", "execution"]


class AgentBudget(BaseModel):
    """Per-agent daily LLM limits (UTC day); ``None`` = unlimited."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tokens_per_day: int | None = Field(default=None, ge=0)
    usd_per_day: float | None = Field(default=None, ge=0)


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


class TaskReport(BaseModel):
    """The answer of a tool-backed task (pattern_recognition, market_summary, manage_position)."""

    task: str
    symbol: str | None = None
    summary: str
    data: dict[str, Any] = Field(default_factory=dict)
