"""What the risk and execution agents ask a model for, and the code that checks every answer.

The risk agent asks for a ``RiskNarrative`` (a narrative, concerns, a stance and at most a suggested
size); the execution agent asks for an ``OrderPlan`` (entry type, entry, stop, target, scale-outs). Both
are structured outputs through the ``LLMRouter`` (``Thinker.ask``), and neither is trusted:

* ``apply_narrative``: a model can only make risk smaller — fewer contracts or none. A suggestion above
  the code-sized contracts is ignored; nothing a model says loosens a limit.
* ``check_order_plan``: stop and target on the right side of the entry, every price on the tick grid,
  the risk per contract not above what the risk agent approved, scale-out fractions summing to ≤ 1. A
  plan that fails any check is rejected (recorded, with why) and the deterministic plan is used.

The risk gate (``check_order`` inside the broker) stays final: every order still goes through it.
When no model answers (none configured, failure, garbage, timeout, budget), the rules here answer
(``rules_narrative``, ``rules_plan``) and the record says so (``is_llm`` false, ``fallback`` = why).
This module also reads the seed's ``assess_risk`` and ``place_trade`` parameters (``parse_portfolio``,
``parse_market_conditions``, ``ManualTrade``) and measures a book against the limits (``limit_distances``).
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from nq_ray.domain.contracts import Contract, get_contract
from nq_ray.errors import InvalidArgumentError, NQRayError
from nq_ray.llm.accounting import Budget
from nq_ray.llm.errors import AllProvidersFailedError, BudgetExceededError, LLMDeadlineError
from nq_ray.risk.limits import RiskLimits

if TYPE_CHECKING:
    from nq_ray.agents.memory import UsageBook
    from nq_ray.agents.models import AgentConfig, TradeProposal
    from nq_ray.llm.config import ProviderConfig
    from nq_ray.llm.prompts.engine import RenderedPrompt
    from nq_ray.llm.router import LLMRouter

log = logging.getLogger(__name__)
M = TypeVar("M", bound=BaseModel)
DEFAULT_MAX_TOKENS = 512
MIN_COMPLETION_TOKENS = 32
REPAIR_MARGIN_TOKENS = 400
MAX_POSITIONS = 16


# ------------------------------------------------------------------------------------ model outputs
class RiskConcern(BaseModel):
    """One thing the risk model worries about."""

    model_config = ConfigDict(frozen=True)

    kind: str = Field(max_length=40, description="size, stop, exposure, margin, drawdown, volatility, ...")
    severity: Literal["low", "medium", "high"]
    text: str = Field(max_length=600)


class RiskNarrative(BaseModel):
    """The risk model's answer. ``suggested_contracts`` may only lower the code-sized contracts."""

    model_config = ConfigDict(frozen=True)

    narrative: str = Field(max_length=4000)
    concerns: list[RiskConcern] = Field(default_factory=list, max_length=12)
    suggested_contracts: int | None = Field(
        default=None, ge=0, description="at most the contracts the code sized; more is ignored"
    )
    stance: Literal["proceed", "reduce", "stand_aside"]


class ScaleOut(BaseModel):
    """Take ``fraction`` of the position off at ``price``."""

    model_config = ConfigDict(frozen=True)

    fraction: float = Field(gt=0, le=1)
    price: float = Field(gt=0)


class OrderPlan(BaseModel):
    """How to work an approved trade. Quantity is not the model's to choose: it is the risk agent's."""

    model_config = ConfigDict(frozen=True)

    entry_type: Literal["limit", "market"]
    entry_price: float | None = Field(default=None, gt=0, description="limit price; none for market")
    stop_price: float = Field(gt=0)
    target_price: float = Field(gt=0)
    scale_out: list[ScaleOut] = Field(default_factory=list, max_length=4)
    reasoning: str = Field(default="", max_length=4000)


class Thought(BaseModel):
    """How a narrative or plan was reached: the prompt and its template, who answered, what was kept."""

    template: str
    template_version: str
    prompt: str = Field(description="the messages sent (JSON), also when no model was asked")
    provider: str
    model: str
    is_llm: bool
    fallback: str | None = Field(default=None, description="why the rules answered, if they did")
    raw_output: str = ""
    rejected: list[str] = Field(default_factory=list, description="checks a model's answer failed")
    notes: list[str] = Field(default_factory=list, description="what the code changed in the answer")
    params: dict[str, Any] = Field(default_factory=dict)


class LimitDistance(BaseModel):
    """One limit against a book: the value now, the limit, how much of it is used and the room left."""

    limit: str
    value: float
    limit_value: float
    used_pct: float = Field(description="value as a percent of the limit")
    room: float = Field(description="limit − value, in the limit's unit")
    unit: str
    breached: bool


class PortfolioReview(BaseModel):
    """The seed's ``assess_risk`` of a book: exposure, margin, VaR and the distance to each limit."""

    positions: dict[str, int] = Field(description="signed contracts by root symbol")
    avg_prices: dict[str, float] = Field(default_factory=dict)
    from_broker: bool
    prices: dict[str, float] = Field(description="the prices exposure was valued at")
    prices_from: Literal["market_conditions", "last_daily_close", "none"]
    exposure_usd: dict[str, float]
    gross_exposure_usd: float
    net_exposure_usd: float
    initial_margin_usd: float
    equity_usd: float
    margin_use_pct: float = Field(description="initial margin as a percent of equity (72.6 = 72.6 %)")
    var: dict[str, Any] | None = Field(description="1-day historical VaR/ES of the book (daily bars)")
    volatility_var_usd: float | None = Field(
        default=None, description="normal VaR from market_conditions' daily volatility, when given"
    )
    limits: dict[str, Any]
    distances: list[LimitDistance]
    unassessed: list[str] = Field(default_factory=list, description="limits this book alone cannot judge")


class Refusal(BaseModel):
    """Why an order was not placed: a stable code, a message and the gate's reasons."""

    code: str
    message: str
    reasons: list[dict[str, Any]] = Field(default_factory=list)


# ---------------------------------------------------------------------------------- code checks
def apply_narrative(n: RiskNarrative, code_contracts: int) -> tuple[int, list[str]]:
    """The contracts after the model's say: ``stand_aside`` → 0; ``reduce`` → its suggestion, else half
    (rounded down); ``proceed`` → its suggestion if lower. Never more than ``code_contracts``."""
    notes: list[str] = []
    cap = max(0, int(code_contracts))
    s = n.suggested_contracts
    if s is not None and s > cap:
        notes.append(f"model suggested {s} contracts > the {cap} sized by code: ignored")
        s = None
    if n.stance == "stand_aside":
        out = 0
    elif n.stance == "reduce":
        out = s if s is not None and s < cap else cap // 2
    else:
        out = s if s is not None else cap
    out = min(max(out, 0), cap)
    if out < cap:
        notes.append(f"risk model ({n.stance}) cut {cap} contracts to {out}")
    return out, notes


def check_order_plan(plan: OrderPlan, proposal: TradeProposal, contracts: int) -> list[str]:
    """Every way ``plan`` fails to be a safe way of working the approved ``proposal`` (empty = valid)."""
    c = get_contract(proposal.symbol)
    sign = 1.0 if proposal.side == "buy" else -1.0
    errors: list[str] = []
    if plan.entry_type == "limit" and plan.entry_price is None:
        errors.append("a limit entry needs entry_price")
    if plan.entry_type == "market" and plan.entry_price is not None:
        errors.append("a market entry takes no entry_price")
    entry = plan.entry_price if plan.entry_type == "limit" and plan.entry_price else proposal.entry
    named = [("entry_price", plan.entry_price), ("stop_price", plan.stop_price)]
    named += [("target_price", plan.target_price)]
    named += [(f"scale_out[{i}].price", s.price) for i, s in enumerate(plan.scale_out)]
    errors += [f"{k} {v} is off the {c.tick_size} tick grid" for k, v in named if v and not c.is_on_tick(v)]
    if sign * (entry - plan.stop_price) <= 0:
        errors.append(f"stop {plan.stop_price} is on the wrong side of the {proposal.side} entry {entry}")
    if sign * (plan.target_price - entry) <= 0:
        errors.append(f"target {plan.target_price} is on the wrong side of the {proposal.side} entry {entry}")
    approved = abs(proposal.entry - proposal.stop)
    if abs(entry - plan.stop_price) > approved + 1e-9:
        errors.append(
            f"risk per contract {c.pnl_usd(abs(entry - plan.stop_price)):.2f} USD "
            f"({c.ticks(abs(entry - plan.stop_price)):.0f} ticks) is above the "
            f"{c.pnl_usd(approved):.2f} USD ({c.ticks(approved):.0f} ticks) risk approved"
        )
    if not sign * (entry - proposal.stop) > 0 or not sign * (proposal.target - entry) > 0:
        errors.append(f"entry {entry} is outside the approved trade ({proposal.stop} to {proposal.target})")
    if sum(s.fraction for s in plan.scale_out) > 1 + 1e-9:
        errors.append("scale-out fractions sum to more than 1")
    for i, s in enumerate(plan.scale_out):
        if not (sign * (s.price - entry) > 0 and sign * (plan.target_price - s.price) >= 0):
            errors.append(f"scale_out[{i}] at {s.price} is not between the entry and the target")
    if contracts < 1:
        errors.append("no contracts approved")
    return errors


@dataclass(frozen=True)
class Leg:
    """One bracket order of a plan: ``contracts`` with its own take-profit (a scale-out) or the target."""

    contracts: int
    take_profit: float
    suffix: str


def plan_legs(plan: OrderPlan, contracts: int) -> tuple[list[Leg], list[str]]:
    """Scale-outs as bracket orders: ⌊fraction × contracts⌋ each at its price (a leg of 0 is dropped,
    noted), the rest at the target. The legs always add up to ``contracts``."""
    legs: list[Leg] = []
    notes: list[str] = []
    left = contracts
    for i, s in enumerate(plan.scale_out, start=1):
        n = min(left, math.floor(s.fraction * contracts + 1e-9))
        if n < 1:
            notes.append(f"scale-out {i} ({s.fraction:g} of {contracts}) is less than a contract: dropped")
            continue
        legs.append(Leg(n, s.price, f".s{i}"))
        left -= n
    if left > 0:
        legs.insert(0, Leg(left, plan.target_price, ""))
    return legs, notes


def rules_plan(proposal: TradeProposal, entry_order: str) -> OrderPlan:
    """The deterministic plan: the proposal as risk checked it (limit at its entry, or market)."""
    return OrderPlan(
        entry_type="limit" if entry_order == "limit" else "market",
        entry_price=proposal.entry if entry_order == "limit" else None,
        stop_price=proposal.stop,
        target_price=proposal.target,
        reasoning=f"rules: {entry_order} entry, the proposal's stop and target",
    )


def rules_narrative(
    proposal: TradeProposal | None,
    contracts: int,
    reasons: Sequence[str],
    *,
    equity_usd: float | None = None,
    risk_pct: float | None = None,
    distances: Sequence[LimitDistance] = (),
    var_usd: float | None = None,
    daily_loss_limit_usd: float | None = None,
) -> RiskNarrative:
    """What code alone says: the trade's dollars at risk, the gate's reasons, the limits nearly used.
    It never changes the size (``suggested_contracts`` is the code's)."""
    # the gate's reasons: it reduced the trade (it has acted: medium) or refused it (high)
    gate: Literal["medium", "high"] = "high" if contracts == 0 else "medium"
    concerns: list[RiskConcern] = [RiskConcern(kind="gate", severity=gate, text=r) for r in reasons]
    parts: list[str] = []
    if proposal is not None:
        c = get_contract(proposal.symbol)
        risk_pts = abs(proposal.entry - proposal.stop)
        at_risk = c.pnl_usd(risk_pts, contracts)
        parts.append(
            f"{proposal.side} {contracts} {proposal.symbol} at {proposal.entry}, stop {proposal.stop} "
            f"({c.ticks(risk_pts):.0f} ticks, {at_risk:,.2f} USD at risk"
            + (f", {100 * at_risk / equity_usd:.2f} % of equity" if equity_usd else "")
            + f"), target {proposal.target}"
        )
        if equity_usd and risk_pct is not None and at_risk > equity_usd * risk_pct / 100 * 1.0001:
            concerns.append(
                RiskConcern(kind="size", severity="high", text=f"risk above the {risk_pct} % budget")
            )
    for d in distances:
        if d.breached:
            concerns.append(RiskConcern(kind=d.limit, severity="high", text=f"{d.limit} breached"))
        elif d.used_pct >= 80:
            concerns.append(
                RiskConcern(kind=d.limit, severity="medium", text=f"{d.limit} {d.used_pct:.1f} % used")
            )
    if var_usd is not None:
        parts.append(f"1-day VaR {var_usd:,.2f} USD")
        if daily_loss_limit_usd is not None and var_usd >= daily_loss_limit_usd:
            concerns.append(
                RiskConcern(
                    kind="var",
                    severity="high",
                    text=f"1-day VaR {var_usd:,.2f} USD ≥ the daily loss limit {daily_loss_limit_usd:,.2f}",
                )
            )
    if reasons:
        parts.append("gate: " + "; ".join(reasons))
    # a trade's size is the code's already (the gate has reduced it): proceed with it, or stand aside at 0;
    # a book with a high concern (a breach, VaR past the daily loss limit) is one to reduce
    high = any(x.severity == "high" for x in concerns)
    stance: Literal["proceed", "reduce", "stand_aside"] = (
        ("stand_aside" if contracts == 0 else "proceed")
        if proposal is not None
        else "reduce"
        if high
        else "proceed"
    )
    text = "[rules] " + ("; ".join(parts) if parts else "flat book, nothing at risk")
    return RiskNarrative(
        narrative=text[:4000], concerns=concerns[:12], suggested_contracts=contracts, stance=stance
    )


# ------------------------------------------------------------------------- the seed's parameters
_QTY_KEYS = ("quantity", "contracts", "qty", "position", "size")
_PRICE_KEYS = ("avg_price", "entry", "entry_price", "price", "average_price")


def _root(symbol: Any) -> str:
    if not isinstance(symbol, str) or not symbol.strip():
        raise InvalidArgumentError(f"portfolio: a position needs a symbol, got {symbol!r}")
    try:
        return get_contract(symbol).symbol
    except NQRayError as exc:
        raise InvalidArgumentError(f"portfolio: {exc}", symbol=symbol) from None


def _signed(row: Mapping[str, Any], symbol: str) -> int:
    key = next((k for k in _QTY_KEYS if k in row), None)
    if key is None:
        raise InvalidArgumentError(
            f"portfolio: position {symbol} needs one of {', '.join(_QTY_KEYS)} (signed contracts)"
        )
    q = row[key]
    if isinstance(q, bool) or not isinstance(q, int | float) or q != int(q) or abs(q) > 10_000:
        raise InvalidArgumentError(
            f"portfolio: {symbol} {key} must be a whole number of contracts, got {q!r}"
        )
    side = str(row.get("side", "")).lower()
    if side in ("short", "sell") and q > 0:
        q = -q
    return int(q)


def parse_portfolio(portfolio: Any) -> tuple[dict[str, int], dict[str, float]]:
    """Signed contracts and average prices by root symbol from the shapes ``assess_risk`` accepts:

    * ``{"NQ": 2, "ES": -1}`` — signed contracts by symbol;
    * ``{"NQ": {"quantity": 2, "avg_price": 23000}}`` — the broker's ``positions`` rows;
    * ``{"positions": ...}`` — a broker portfolio or ``manage_position`` status answer;
    * ``[{"symbol": "NQ", "quantity": 2, "avg_price": 23000}, ...]`` — ``contracts``/``qty`` for
      ``quantity``, ``entry``/``entry_price`` for ``avg_price``, ``side: short`` makes it negative."""
    if isinstance(portfolio, Mapping) and "positions" in portfolio:
        return parse_portfolio(portfolio["positions"])
    if isinstance(portfolio, Mapping):
        rows = [
            {"symbol": s, **(v if isinstance(v, Mapping) else {"quantity": v})} for s, v in portfolio.items()
        ]
    elif isinstance(portfolio, list | tuple):
        rows = list(portfolio)
    else:
        raise InvalidArgumentError(
            "portfolio must be a list of {symbol, quantity, avg_price} or a mapping of symbol → contracts"
        )
    if len(rows) > MAX_POSITIONS:
        raise InvalidArgumentError(f"portfolio: at most {MAX_POSITIONS} positions, got {len(rows)}")
    qty: dict[str, int] = {}
    prices: dict[str, float] = {}
    for row in rows:
        if not isinstance(row, Mapping):
            raise InvalidArgumentError(f"portfolio: each position must be an object, got {row!r}")
        sym = _root(row.get("symbol"))
        qty[sym] = qty.get(sym, 0) + _signed(row, sym)
        p = next((row[k] for k in _PRICE_KEYS if row.get(k) is not None), None)
        if p is not None:
            if isinstance(p, bool) or not isinstance(p, int | float) or not p > 0 or not math.isfinite(p):
                raise InvalidArgumentError(f"portfolio: {sym} average price must be > 0, got {p!r}")
            prices[sym] = float(p)
    return {s: q for s, q in qty.items() if q}, prices


def _positive(value: Any, what: str) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not (value > 0 and math.isfinite(value))
    ):
        raise InvalidArgumentError(f"market_conditions: {what} must be a positive number, got {value!r}")
    return float(value)


def parse_market_conditions(mc: Any) -> tuple[dict[str, float], dict[str, float] | float | None]:
    """Prices and daily volatility from ``market_conditions``:

    * ``{"prices": {"NQ": 23000}, "volatility": {"NQ": 0.015}}`` (or one ``volatility`` for all);
    * ``get_nq_price``'s answer (``{"symbol": "NQ", "price": 23000, ...}``).

    Volatility is the daily standard deviation of returns as a fraction (0.015 = 1.5 % a day)."""
    if mc is None:
        return {}, None
    if not isinstance(mc, Mapping):
        raise InvalidArgumentError("market_conditions must be an object with prices and volatility")
    prices: dict[str, float] = {}
    raw = mc.get("prices")
    if raw is not None:
        if not isinstance(raw, Mapping):
            raise InvalidArgumentError("market_conditions.prices must map symbol → price")
        prices = {_root(s): _positive(p, f"price of {s}") for s, p in raw.items()}
    elif mc.get("price") is not None:
        prices = {_root(mc.get("symbol") or "NQ"): _positive(mc["price"], "price")}
    vol_raw = mc.get("volatility")
    vol: dict[str, float] | float | None = None
    if isinstance(vol_raw, Mapping):
        vol = {_root(s): _positive(v, f"volatility of {s}") for s, v in vol_raw.items()}
    elif vol_raw is not None:
        vol = _positive(vol_raw, "volatility")
    for v in vol.values() if isinstance(vol, dict) else [vol] if vol is not None else []:
        if v >= 1:
            raise InvalidArgumentError(
                f"market_conditions.volatility {v} is not a daily fraction (0.015 = 1.5 % a day)"
            )
    return prices, vol


def volatility_var(
    exposure_usd: Mapping[str, float], vol: dict[str, float] | float, confidence: float
) -> float:
    """Normal 1-day VaR Σ z·σ·|exposure| — perfectly correlated legs, so an upper bound for a mixed book."""
    z = NormalDist().inv_cdf(confidence)
    total = 0.0
    for s, e in exposure_usd.items():
        sigma = vol if isinstance(vol, float) else vol.get(s)
        if sigma is not None:
            total += z * sigma * abs(e)
    return total


def _distance(name: str, value: float, limit: float | None, unit: str) -> LimitDistance | None:
    if limit is None:
        return None
    used = 100 * value / limit if limit > 0 else (0.0 if value == 0 else math.inf)
    return LimitDistance(
        limit=name,
        value=value,
        limit_value=limit,
        used_pct=used if math.isfinite(used) else 1e9,
        room=limit - value,
        unit=unit,
        breached=value > limit + 1e-9,
    )


def limit_distances(
    positions: Mapping[str, int], margin_usd: float, equity_usd: float, gross_usd: float, limits: RiskLimits
) -> list[LimitDistance]:
    """The size limits the gate enforces, measured on the book as it stands (no orders working)."""
    per_symbol = max((abs(q) for q in positions.values()), default=0)
    rows = [
        _distance("max_contracts_per_symbol", per_symbol, limits.max_contracts_per_symbol, "contracts"),
        _distance(
            "max_total_contracts",
            sum(abs(q) for q in positions.values()),
            limits.max_total_contracts,
            "contracts",
        ),
        _distance("max_notional_usd", gross_usd, limits.max_notional_usd, "USD"),
        _distance(
            "max_margin_use_pct",
            margin_usd / equity_usd if equity_usd > 0 else 0.0,
            limits.max_margin_use_pct,
            "fraction of equity",
        ),
    ]
    return [r for r in rows if r is not None]


def review_book(
    raw: Mapping[str, Any],
    avg_prices: Mapping[str, float] | None,
    prices: Mapping[str, float],
    vol: dict[str, float] | float | None,
    *,
    confidence: float,
) -> PortfolioReview:
    """``assess_portfolio_risk``'s answer (``raw``) as a review: exposure at ``prices`` (else the last daily
    close the VaR used), the distance to each size limit, and the VaR from ``vol`` when given.
    ``avg_prices`` None means the live book (its average prices and every limit come from the broker)."""
    book = {k: int(v) for k, v in raw["positions"].items()}
    last = {
        s: abs(e) / (abs(book[s]) * get_contract(s).point_value)
        for s, e in raw["exposure_usd"].items()
        if book.get(s)
    }
    valued = {
        **{s: p for s, p in last.items() if s in book},
        **{s: p for s, p in prices.items() if s in book},
    }
    exposure = {s: book[s] * valued[s] * get_contract(s).point_value for s in book if s in valued}
    gross = sum(abs(v) for v in exposure.values())
    limits = RiskLimits.model_validate(raw["limits"])
    equity = float(raw["equity_usd"])
    margin = float(raw["initial_margin_usd"])
    broker_rows = (raw.get("portfolio") or {}).get("positions") or {}
    avg = (
        dict(avg_prices)
        if avg_prices is not None
        else {s: float(r["avg_price"]) for s, r in broker_rows.items() if r.get("avg_price")}
    )
    return PortfolioReview(
        positions=book,
        avg_prices=avg,
        from_broker=bool(raw["from_broker"]),
        prices=valued,
        prices_from="market_conditions" if prices else "last_daily_close" if valued else "none",
        exposure_usd=exposure,
        gross_exposure_usd=gross,
        net_exposure_usd=sum(exposure.values()),
        initial_margin_usd=margin,
        equity_usd=equity,
        margin_use_pct=100 * margin / equity if equity > 0 else 0.0,
        var=raw.get("var"),
        volatility_var_usd=None if vol is None else volatility_var(exposure, vol, confidence),
        limits=limits.model_dump(mode="json"),
        distances=limit_distances(book, margin, equity, gross, limits),
        unassessed=[]
        if avg_prices is None
        else ["max_daily_loss_usd", "trailing_drawdown_usd", "max_orders_per_minute"],
    )


class ManualTrade(BaseModel):
    """The seed's ``place_trade``: ``action`` BUY/SELL (any case), ``quantity``, a limit when ``price`` is
    given else a market order (``order_type`` may say so), an optional bracket stop and target."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    symbol: str = Field(default="NQ", min_length=1, max_length=16)
    action: Literal["buy", "sell"]
    quantity: int = Field(ge=1, le=10_000)
    price: float | None = Field(default=None, gt=0, le=1e7)
    order_type: Literal["market", "limit"] | None = None
    stop_loss: float | None = Field(default=None, gt=0, le=1e7)
    take_profit: float | None = Field(default=None, gt=0, le=1e7)
    client_order_id: str | None = Field(
        default=None, min_length=1, max_length=60, pattern=r"^[A-Za-z0-9_.:-]+$"
    )

    @field_validator("action", "order_type", mode="before")
    @classmethod
    def _lower(cls, v: Any) -> Any:
        return v.strip().lower() if isinstance(v, str) else v

    @property
    def kind(self) -> Literal["market", "limit"]:
        return self.order_type or ("limit" if self.price is not None else "market")

    def problems(self, reference: float | None) -> list[str]:
        """Order type vs price, the tick grid, and stop/target sides against the entry (the limit price,
        else ``reference``, the market's last price)."""
        c: Contract = get_contract(self.symbol)
        out: list[str] = []
        if self.kind == "limit" and self.price is None:
            out.append("a limit order needs price")
        if self.kind == "market" and self.price is not None:
            out.append("a market order takes no price; leave price out or set order_type limit")
        for k in ("price", "stop_loss", "take_profit"):
            v = getattr(self, k)
            if v is not None and not c.is_on_tick(v):
                out.append(f"{k} {v} is off the {c.symbol} tick grid ({c.tick_size})")
        entry = self.price if self.kind == "limit" else reference
        sign = 1 if self.action == "buy" else -1
        if entry is not None and self.stop_loss is not None and sign * (entry - self.stop_loss) <= 0:
            out.append(f"stop_loss {self.stop_loss} is on the wrong side of the {self.action} entry {entry}")
        if entry is not None and self.take_profit is not None and sign * (self.take_profit - entry) <= 0:
            out.append(
                f"take_profit {self.take_profit} is on the wrong side of the {self.action} entry {entry}"
            )
        return out


def manual_trade(params: Mapping[str, Any]) -> ManualTrade:
    """``ManualTrade`` from task parameters; a bad field is an ``InvalidArgumentError`` naming it."""
    try:
        return ManualTrade.model_validate(dict(params))
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(x) for x in first["loc"]) or "parameters"
        raise InvalidArgumentError(
            f"place_trade: {where}: {first['msg']} (expected action BUY|SELL, quantity ≥ 1, optional "
            "price (limit), stop_loss, take_profit, order_type market|limit, symbol, client_order_id)",
            errors=[{k: str(v) for k, v in e.items() if k in ("loc", "msg")} for e in exc.errors()],
        ) from None


# ---------------------------------------------------------------------------- asking a model
def model_router(base: LLMRouter | None, config: AgentConfig) -> LLMRouter | None:
    """A router over ``base``'s enabled LLM providers only (the agent's provider/model override applied),
    sharing its ledger and cache; ``None`` when there is no LLM to ask. The rules analyst is left out: it
    answers market views, not narratives or plans, and this module's rules do that. Health checks are
    off here (the breakers still open on failures): this router is never closed, its providers are base's."""
    if base is None:
        return None
    from nq_ray.llm.providers import make_provider
    from nq_ray.llm.router import LLMRouter

    resolved = [p for p in base.config.resolved() if p.enabled]
    names = [p.name for p in resolved]
    if config.provider is not None and config.provider not in names:
        raise InvalidArgumentError(
            f"unknown provider {config.provider!r} for this agent; the router has {names}",
            provider=config.provider,
        )
    chosen = [p for p in resolved if p.is_llm and config.provider in (None, p.name)]
    if not chosen:
        return None
    pairs = [
        (p, base.provider(p.name))
        if config.model is None
        else (
            p.model_copy(update={"model": config.model}),
            make_provider(p.model_copy(update={"model": config.model})),
        )
        for p in chosen
    ]
    cfg = base.config.model_copy(update={"providers": [p for p, _ in pairs], "health_interval_s": 0})
    return LLMRouter(pairs, cfg, ledger=base.ledger, cache=base.cache)


async def budget_allowance(
    agent_id: str,
    config: AgentConfig,
    usage: UsageBook,
    router: LLMRouter,
    messages: list[dict[str, str]],
    schema: str,
    *,
    llms: list[ProviderConfig] | None = None,
    rounds: int = 1,
    extra_prompt_tokens: int = 0,
    what: str = "",
) -> tuple[int | None, str | None]:
    """The completion cap for one structured call of ``agent_id``, or why no call fits its day's budget:
    every LLM that may answer (the chain's, or ``llms``), in each of ``rounds``, answering twice (one
    repair) at the cap stays inside what is left. ``extra_prompt_tokens``: prompt beyond ``messages`` (a
    committee debate's arguments); ``what`` names the calls in the refusal. All three agents use it."""
    from nq_ray.agents.context import approx_tokens

    cap = config.max_tokens or DEFAULT_MAX_TOKENS
    b = config.budget
    if b is None:
        return config.max_tokens, None
    used_tok, used_usd = await usage.used(agent_id)
    if llms is None:
        llms = [p for p in router.config.resolved() if p.enabled and p.is_llm]
    n = max(1, len(llms)) * rounds
    p_tok = sum(approx_tokens(m["content"]) + 8 for m in messages) + approx_tokens(schema) + 16
    p_tok += extra_prompt_tokens
    reasons: list[str] = []
    rem_tok = rem_usd = None
    if b.tokens_per_day is not None:
        rem_tok = b.tokens_per_day - used_tok
        cap = min(cap, (rem_tok // n - 2 * p_tok - REPAIR_MARGIN_TOKENS) // 3)
        reasons.append(f"{used_tok} of {b.tokens_per_day} tokens used today")
    if b.usd_per_day is not None:
        rem_usd = b.usd_per_day - used_usd
        pp = max((p.cost_per_1k_prompt_usd for p in llms), default=0.0) / 1000
        pc = max((p.cost_per_1k_completion_usd for p in llms), default=0.0) / 1000
        if pp + pc > 0:
            room = rem_usd / n - (2 * p_tok + REPAIR_MARGIN_TOKENS) * pp
            cap = min(cap, math.floor(room / (pp + 2 * pc)) if room > 0 else 0)
        reasons.append(f"${used_usd:.4f} of ${b.usd_per_day:.4f} spent today")
    t = router.ledger.totals(caller=agent_id)
    router.ledger.set_budget(
        agent_id,
        Budget(
            max_tokens=None if rem_tok is None else t.total_tokens + max(0, rem_tok),
            max_cost_usd=None if rem_usd is None else t.cost_usd + max(0.0, rem_usd),
        ),
    )
    if router.ledger.over_budget(agent_id) is not None or cap < MIN_COMPLETION_TOKENS:
        return None, f"{agent_id} daily budget: {'; '.join(reasons)}; a call{what} could exceed it"
    return cap, None


@dataclass
class Asked(Generic[M]):
    """A model's validated answer (``None`` when none came) and how it went."""

    answer: M | None
    provider: str = "rules"
    model: str = "nq-rules (code)"
    is_llm: bool = False
    fallback: str | None = None
    raw_output: str = ""
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class Thinker:
    """Asks ``router`` (LLMs only, see ``model_router``) for a structured answer within the agent's daily
    budget (``UsageBook``), counting what it spends; any failure is a fallback reason, never a raise."""

    agent_id: str
    config: AgentConfig
    router: LLMRouter | None
    usage: UsageBook

    async def ask(
        self, messages: list[dict[str, str]], model: type[M], *, task: str, prompt_version: str
    ) -> Asked[M]:
        params: dict[str, Any] = {}
        record: dict[str, Any] = {
            "temperature": self.config.temperature,
            "max_tokens": self.config.max_tokens,
            "provider": self.config.provider,
            "model": self.config.model,
        }
        if self.router is None:
            return Asked(
                None, fallback="no LLM provider in this agent's chain; rules answered", params=record
            )
        if self.config.temperature is not None:
            params["temperature"] = self.config.temperature
        cap, budget_reason = await budget_allowance(
            self.agent_id,
            self.config,
            self.usage,
            self.router,
            messages,
            json.dumps(model.model_json_schema()),
        )
        if budget_reason is not None:
            return Asked(None, fallback=f"budget: {budget_reason}; rules answered", params=record)
        if cap is not None:
            params["max_tokens"] = record["max_tokens"] = cap
        before = self.router.ledger.totals(caller=self.agent_id)
        try:
            result = await self.router.chat(
                messages,
                task=task,
                response_model=model,
                caller=self.agent_id,
                prompt_version=prompt_version,
                **params,
            )
        except (AllProvidersFailedError, BudgetExceededError, LLMDeadlineError) as exc:
            log.info("%s: no model answered %s (%s); rules answer", self.agent_id, task, exc.code)
            return Asked(None, fallback=f"no model answered ({exc.code}): {str(exc)[:300]}", params=record)
        finally:
            after = self.router.ledger.totals(caller=self.agent_id)
            await self.usage.add(
                self.agent_id, after.total_tokens - before.total_tokens, after.cost_usd - before.cost_usd
            )
        parsed = result.parsed
        if not isinstance(parsed, model):
            try:
                parsed = model.model_validate(parsed.model_dump() if parsed is not None else {})
            except ValidationError:
                return Asked(
                    None,
                    provider=result.provider,
                    model=result.model,
                    fallback=f"{result.provider}'s answer did not validate as {model.__name__}",
                    raw_output=result.text,
                    params=record,
                )
        return Asked(
            parsed,
            provider=result.provider,
            model=result.model,
            is_llm=result.is_llm,
            raw_output=result.text,
            params=record,
        )


def thought_of(
    rendered: RenderedPrompt,
    messages: list[dict[str, str]],
    asked: Asked[Any],
    *,
    used: bool,
    fallback: str | None = None,
    raw_output: str | None = None,
    rejected: Sequence[str] = (),
    notes: Sequence[str] = (),
) -> Thought:
    """The record of one ask: ``used`` is whether the model's answer was kept (``is_llm`` needs both)."""
    return Thought(
        template=rendered.name,
        template_version=rendered.version,
        prompt=json.dumps(messages),
        provider=asked.provider,
        model=asked.model,
        is_llm=used and asked.is_llm,
        fallback=fallback if fallback is not None else asked.fallback,
        raw_output=raw_output if raw_output is not None else asked.raw_output,
        rejected=list(rejected),
        notes=list(notes),
        params=asked.params,
    )


def schema_instruction(model: type[BaseModel], rule: str) -> str:
    """The user-message tail that asks for ``model`` as JSON."""
    schema = json.dumps(model.model_json_schema(), separators=(",", ":"))
    return f"{rule}\nAnswer ONLY with a JSON object matching this schema: {schema}"
