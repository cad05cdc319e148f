"""Prop-firm rule packs as data: the rules a firm's evaluation or funded account trades under.

A ``RulePack`` is one firm's program at one account size (``topstep-50k``, ``apex-pa-50k``...). Each rule
is one of the kinds below, a discriminated union on ``kind``; every rule says what happens when it is hit
(``consequence``), the firm's public page it comes from (``source``), the date it was checked and, in
``note``, any ambiguity in the firm's wording and the conservative reading chosen. docs/propfirm.md has the
worked examples; ``nq_ray.propfirm.state`` follows an account's path under a pack.

Consequences:

* ``fail`` — the account is failed (closed): flatten, no more trading, ever.
* ``stop_day`` — flatten and take no new risk until the next CME session day (Topstep's daily loss limit).
* ``block`` — only the order is refused (size limits, flat time, news windows); for a passing condition
  (profit target, consistency, minimum days) ``block`` means "the pass is withheld until it is met".
"""

from __future__ import annotations

import itertools
import re
from datetime import date, time
from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Consequence = Literal["fail", "stop_day", "block"]
Trailing = Literal["static", "eod_balance", "intraday_equity"]
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
RuleState = Literal["ok", "warning", "breached", "met", "pending"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

# the micro contracts and how they count against a limit written in minis (1 MNQ = 1/10 NQ, etc.)
MICROS: frozenset[str] = frozenset({"MNQ", "MES", "MYM", "M2K"})

_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
_URL = re.compile(r"^https?://\S+$")


class _Rule(BaseModel):
    """What every rule carries besides its parameters."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1, max_length=80, description="unique in the pack")
    consequence: Consequence
    source: str = Field(description="URL of the firm's public page the rule comes from")
    checked: date = Field(description="the date the source was read")
    note: str = Field(default="", description="ambiguity in the firm's wording and the reading chosen")

    @field_validator("source")
    @classmethod
    def _url(cls, v: str) -> str:
        if not _URL.match(v):
            raise ValueError(f"source must be an http(s) URL, not {v!r}")
        return v


class ProfitTarget(_Rule):
    """Passing condition: closed balance − starting balance ≥ ``amount_usd``. Never fails an account."""

    kind: Literal["profit_target"] = "profit_target"
    consequence: Consequence = "block"
    amount_usd: float = Field(gt=0)


class MaxLoss(_Rule):
    """Maximum loss: breached when equity (open P&L included) ≤ the floor.

    * ``static``: floor = start − amount, for ever.
    * ``eod_balance``: floor = (highest END-OF-DAY closed balance, start included) − amount. The floor moves
      only at the session close; it is checked intraday against equity (Topstep's and TPT's reading).
    * ``intraday_equity``: floor = (highest equity, unrealised P&L included, seen at any mark) − amount
      (Apex's evaluation "trailing threshold").

    ``stop_at_usd`` (optional): the floor never rises above this level — e.g. the starting balance
    (Topstep: the limit stops trailing at $50,000) or start + $100 (Apex). It is written in the pack's terms
    (an account starting at ``RulePack.starting_balance_usd``); an account started at another balance
    shifts it by the same difference.
    """

    kind: Literal["max_loss"] = "max_loss"
    consequence: Consequence = "fail"
    amount_usd: float = Field(gt=0)
    trailing: Trailing
    stop_at_usd: float | None = Field(default=None, gt=0)


class DailyLoss(_Rule):
    """Daily loss: today's P&L from the session day's starting balance, with open P&L (``equity``) or
    closed only (``balance``); breached when ≤ −``amount_usd``."""

    kind: Literal["daily_loss"] = "daily_loss"
    consequence: Consequence = "stop_day"
    amount_usd: float = Field(gt=0)
    basis: Literal["equity", "balance"] = "equity"


class ScalingStep(BaseModel):
    """From ``min_balance_usd`` (balance at the start of the session day) up, ``minis`` are allowed."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    min_balance_usd: float = Field(gt=0)
    minis: int = Field(ge=1)


class MaxContracts(_Rule):
    """Position cap in mini-equivalents across every symbol (1 micro = 1/``micros_per_mini`` mini).

    With a ``scaling`` plan the cap in force is the step with the highest ``min_balance_usd`` ≤ the closed
    balance at the START of the session day (Topstep: the end-of-day balance); below the first step, the
    first step's cap. Never more than ``minis``."""

    kind: Literal["max_contracts"] = "max_contracts"
    consequence: Consequence = "block"
    minis: int = Field(ge=1)
    micros_per_mini: int = Field(default=10, ge=1)
    scaling: list[ScalingStep] = Field(default_factory=list)

    @model_validator(mode="after")
    def _steps_in_order(self) -> Self:
        bal = [s.min_balance_usd for s in self.scaling]
        if any(b2 <= b1 for b1, b2 in itertools.pairwise(bal)):
            raise ValueError(f"scaling steps must rise in min_balance_usd; got {bal}")
        caps = [s.minis for s in self.scaling]
        if any(c2 < c1 for c1, c2 in itertools.pairwise(caps)):
            raise ValueError(f"scaling steps must not lower the cap as the balance rises; got minis {caps}")
        if caps and caps[-1] > self.minis:
            raise ValueError(
                f"a scaling step allows {caps[-1]} minis, more than the rule's minis={self.minis}"
            )
        return self

    def cap_for(self, day_start_balance_usd: float) -> int:
        """The cap in force for a session day that started at this closed balance."""
        if not self.scaling:
            return self.minis
        cap = self.scaling[0].minis
        for step in self.scaling:
            if step.min_balance_usd <= day_start_balance_usd + 1e-9:
                cap = step.minis
        return min(cap, self.minis)

    def weight(self, symbol: str) -> float:
        """Mini-equivalents of one contract of ``symbol`` (a root symbol)."""
        return 1.0 / self.micros_per_mini if symbol.upper() in MICROS else 1.0


class Consistency(_Rule):
    """Passing condition: best day's profit / total profit × 100 ≤ ``max_best_day_pct`` (< with ``strict``),
    with total profit > 0. The current session day counts with its running closed P&L."""

    kind: Literal["consistency"] = "consistency"
    consequence: Consequence = "block"
    max_best_day_pct: float = Field(gt=0, le=100)
    strict: bool = Field(default=False, description="the best day must be strictly below the share")


class MinTradingDays(_Rule):
    """Passing condition: at least ``days`` session days with a fill."""

    kind: Literal["min_trading_days"] = "min_trading_days"
    consequence: Consequence = "block"
    days: int = Field(ge=1)


class FlatBy(_Rule):
    """Positions must be flat at ``time`` (America/New_York wall time) on ``days``; orders that open risk
    from then until the CME reopen at 18:00 ET are refused and ``flatten_due`` says flatten."""

    kind: Literal["flat_by"] = "flat_by"
    consequence: Consequence = "block"
    time: time
    days: list[Weekday] = Field(default_factory=lambda: list(WEEKDAYS[:5]), min_length=1)

    @field_validator("time", mode="before")
    @classmethod
    def _sexagesimal(cls, v: Any) -> Any:
        # YAML 1.1 reads an unquoted 16:10 as the base-60 integer 970: take it back as 16:10
        if isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 24 * 60:
            return time(v // 60, v % 60)
        return v

    @model_validator(mode="after")
    def _before_reopen(self) -> Self:
        if not time(9, 30) <= self.time < time(18, 0):
            raise ValueError(f"flat-by time {self.time:%H:%M} ET must lie between 09:30 and 18:00 ET")
        return self


class NewsRule(_Rule):
    """The firm's news restriction: no new risk (``block``) or no position at all (``flatten``) from
    ``before_min`` before to ``after_min`` after a release of one of ``kinds`` (economic-calendar kinds:
    fomc, cpi, nfp...). Enforced through the calendar's blackout (``news_rules`` gives its rules)."""

    kind: Literal["news"] = "news"
    consequence: Consequence = "block"
    kinds: list[str] = Field(min_length=1)
    before_min: int = Field(ge=0)
    after_min: int = Field(ge=0)
    action: Literal["block", "flatten"] = "block"


Rule = Annotated[
    ProfitTarget | MaxLoss | DailyLoss | MaxContracts | Consistency | MinTradingDays | FlatBy | NewsRule,
    Field(discriminator="kind"),
]
PASSING_KINDS = frozenset({"profit_target", "consistency", "min_trading_days"})
_ONE_PER_PACK = ("profit_target", "max_loss", "daily_loss", "max_contracts", "flat_by", "consistency")


class RulePack(BaseModel):
    """One firm's program at one account size: its rules with their sources."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(description="slug, e.g. topstep-50k; also the file name of a pack (<name>.yaml)")
    firm: str = Field(min_length=1)
    program: str = Field(min_length=1, description="e.g. Trading Combine")
    phase: Literal["evaluation", "funded"]
    account_size_usd: float = Field(gt=0)
    starting_balance_usd: float = Field(gt=0)
    version: int = Field(ge=1)
    checked: date
    sources: list[str] = Field(min_length=1)
    rules: list[Rule] = Field(min_length=1)
    notes: str = ""

    @field_validator("name")
    @classmethod
    def _slug(cls, v: str) -> str:
        if not _SLUG.match(v):
            raise ValueError(f"name must be a lower-case slug (a-z, 0-9, -), e.g. topstep-50k; not {v!r}")
        return v

    @field_validator("sources")
    @classmethod
    def _urls(cls, v: list[str]) -> list[str]:
        bad = [u for u in v if not _URL.match(u)]
        if bad:
            raise ValueError(f"sources must be http(s) URLs; not {bad}")
        return v

    @model_validator(mode="after")
    def _coherent(self) -> Self:
        names = [r.name for r in self.rules]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"rule names must be unique in a pack; repeated: {', '.join(dup)}")
        for kind in _ONE_PER_PACK:
            same = [r.name for r in self.rules if r.kind == kind]
            if len(same) > 1:
                raise ValueError(
                    f"rules {', '.join(same)} are both of kind {kind}: a pack has at most one (two would "
                    "contradict each other; they are refused, not merged)"
                )
        max_loss, daily = self.rule("max_loss"), self.rule("daily_loss")
        if (
            isinstance(max_loss, MaxLoss)
            and isinstance(daily, DailyLoss)
            and daily.amount_usd >= max_loss.amount_usd
        ):
            raise ValueError(
                f"rule {daily.name}: daily loss ${daily.amount_usd:,.0f} ≥ max loss "
                f"${max_loss.amount_usd:,.0f} of rule {max_loss.name}; it could never be hit first"
            )
        if isinstance(max_loss, MaxLoss) and max_loss.stop_at_usd is not None:
            if max_loss.trailing == "static":
                raise ValueError(
                    f"rule {max_loss.name}: stop_at_usd applies to a trailing max loss, not static"
                )
            if max_loss.stop_at_usd <= self.starting_balance_usd - max_loss.amount_usd:
                raise ValueError(
                    f"rule {max_loss.name}: stop_at_usd ${max_loss.stop_at_usd:,.0f} is at or below the "
                    f"first floor ${self.starting_balance_usd - max_loss.amount_usd:,.0f}; "
                    "the limit could never trail"
                )
        return self

    def rule(self, kind: str) -> Any:
        """The pack's rule of ``kind`` (the first one), or None."""
        return next((r for r in self.rules if r.kind == kind), None)

    def rules_of(self, kind: str) -> list[Any]:
        return [r for r in self.rules if r.kind == kind]


class RuleStatus(BaseModel):
    """One rule's current value against its limit — in risk verdicts, the UI and the tools.

    ``distance`` is the room left (≤ 0: at or past it). ``state``: for limits ``ok``, ``warning`` (room
    below 25% of the rule's allowance: the loss amount, the contract cap) or ``breached``; for passing
    conditions ``met`` or ``pending``."""

    model_config = ConfigDict(frozen=True)

    rule: str
    kind: str
    consequence: Consequence
    value: float | None = None
    limit: float | None = None
    distance: float | None = None
    unit: Literal["usd", "contracts", "days", "pct", "minutes"]
    state: RuleState
    message: str
