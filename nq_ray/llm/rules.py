"""The deterministic rules analyst: the last provider in every chain, and never presented as an LLM.

It reads bars, runs the analysis core (``nq_ray.analysis.summary.analyze``: trend, momentum, levels) and
scores a directional view with a confidence. Every answer says it comes from rules (``source='rules'``,
``is_llm=False``, and the text starts with ``[rules analyst — deterministic, not an LLM]``).

Score: weighted mean of signals in [-1, 1] — EMA-stack trend (×2), supertrend, multi-timeframe agreement,
RSI(14) distance from 50 (÷25, clipped), MACD histogram sign, close vs session VWAP. Bias is bullish above
+0.2, bearish below -0.2, else neutral; confidence = 0.3 + 0.6·|score|·(0.5 + 0.5·min(ADX, 40)/40),
capped at 0.9 — rules never claim certainty.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from typing import TYPE_CHECKING, Any, Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from nq_ray.llm.config import ProviderConfig, RulesConfig
from nq_ray.llm.errors import ProviderCallError, StructuredOutputError
from nq_ray.llm.protocol import ChatResponse, HealthReport, Message, ProviderInfo, Usage

if TYPE_CHECKING:
    from nq_ray.analysis.summary import MarketAnalysis

LABEL = "[rules analyst — deterministic, not an LLM]"
BarsLoader = Callable[[], pd.DataFrame]


class RulesView(BaseModel):
    """The rules analyst's view, as data."""

    model_config = ConfigDict(frozen=True)

    source: Literal["rules"] = "rules"
    analyst: str = "deterministic rules (not an LLM)"
    symbol: str
    interval: str
    as_of: str
    last_price: float
    bias: Literal["bullish", "bearish", "neutral"]
    confidence: float = Field(ge=0, le=1)
    score: float = Field(ge=-1, le=1, description="weighted signal mean")
    trend: str
    momentum: str
    support: float | None
    resistance: float | None
    reasons: list[str]
    summary: str


def _sign(d: str) -> float:
    return 1.0 if d == "up" else -1.0 if d == "down" else 0.0


def assess(bars: pd.DataFrame, symbol: str = "NQ") -> RulesView:
    """Score ``bars`` into a ``RulesView`` (see the module docstring for the rule)."""
    from nq_ray.analysis.summary import analyze

    return assess_analysis(analyze(bars, symbol))


def assess_analysis(a: MarketAnalysis) -> RulesView:
    """Score an analysis already made (``analyze``) into a ``RulesView``: the scanner reuses its numbers."""
    t, m, lv = a.trend, a.momentum, a.levels
    signals: list[tuple[float, float, str]] = [
        (2.0, _sign(t.direction), f"EMA stack {t.direction}"),
        (1.0, _sign(t.supertrend), f"supertrend {t.supertrend}"),
    ]
    if t.timeframes:
        agree = sum(_sign(d) for d in t.timeframes.values()) / len(t.timeframes)
        tfs = ", ".join(f"{k} {d}" for k, d in t.timeframes.items())
        signals.append((1.0, agree, f"timeframes {tfs}" + (" (aligned)" if t.aligned else "")))
    if m.rsi is not None:
        signals.append((1.0, max(-1.0, min(1.0, (m.rsi - 50.0) / 25.0)), f"RSI {m.rsi:.1f}"))
    if m.macd_hist is not None:
        signals.append(
            (
                1.0,
                1.0 if m.macd_hist > 0 else -1.0 if m.macd_hist < 0 else 0.0,
                f"MACD hist {m.macd_hist:.2f}",
            )
        )
    if lv.vwap is not None:
        above = a.last_price > lv.vwap
        signals.append((1.0, 1.0 if above else -1.0, f"{'above' if above else 'below'} VWAP {lv.vwap:.2f}"))
    score = sum(w * s for w, s, _ in signals) / sum(w for w, _, _ in signals)
    bias: Literal["bullish", "bearish", "neutral"] = (
        "bullish" if score > 0.2 else "bearish" if score < -0.2 else "neutral"
    )
    adx_factor = 0.5 + 0.5 * min(t.adx, 40.0) / 40.0
    confidence = round(min(0.9, 0.3 + 0.6 * abs(score) * adx_factor), 2)
    reasons = [r for _, _, r in signals]
    if m.rsi is not None and m.rsi >= 70:
        reasons.append("RSI overbought (≥ 70)")
    elif m.rsi is not None and m.rsi <= 30:
        reasons.append("RSI oversold (≤ 30)")
    reasons.extend(m.divergences[:2])
    support = lv.nearest_support.price if lv.nearest_support else None
    resistance = lv.nearest_resistance.price if lv.nearest_resistance else None
    trend = f"{t.direction} (ADX {t.adx:.1f} {t.strength})"
    momentum = f"RSI {m.rsi:.1f}" if m.rsi is not None else "RSI n/a"
    summary = (
        f"{LABEL} {a.symbol} {a.interval} as of {a.as_of}, last {a.last_price:.2f}: bias {bias} "
        f"(confidence {confidence:.2f}, score {score:+.2f}). Trend {trend}; {momentum}. "
        f"Support {support if support is not None else 'n/a'}, resistance "
        f"{resistance if resistance is not None else 'n/a'}. Signals: {'; '.join(reasons)}."
    )
    return RulesView(
        symbol=a.symbol,
        interval=a.interval,
        as_of=a.as_of,
        last_price=a.last_price,
        bias=bias,
        confidence=confidence,
        score=round(max(-1.0, min(1.0, score)), 4),
        trend=trend,
        momentum=momentum,
        support=support,
        resistance=resistance,
        reasons=reasons,
        summary=summary,
    )


class RulesAnalyst:
    """The ``rules`` provider. Bars come from the call (``bars=``) or from ``bars_loader``."""

    def __init__(
        self,
        config: ProviderConfig,
        *,
        bars_loader: BarsLoader | None = None,
        rules: RulesConfig | None = None,
    ) -> None:
        self.config = config
        self.name = config.name
        self._rules = rules or RulesConfig()
        self._loader = bars_loader

    def _bars(self, bars: pd.DataFrame | None) -> pd.DataFrame:
        if bars is None:
            if self._loader is not None:
                bars = self._loader()
            else:
                from nq_ray.data import load_bars

                r = self._rules
                bars = load_bars(r.symbol, r.interval, source=r.source)
        return bars.iloc[-self._rules.lookback_bars :]

    def info(self) -> ProviderInfo:
        return ProviderInfo(
            name=self.name,
            kind="rules",
            model=self.config.model,
            base_url=None,
            is_llm=False,
            structured_mode="native",
            supports_streaming=True,
            configured=True,
        )

    async def chat(
        self,
        messages: Sequence[Message],
        *,
        response_model: type[BaseModel] | None = None,
        bars: pd.DataFrame | None = None,
        symbol: str | None = None,
        **params: Any,
    ) -> ChatResponse:
        try:
            frame = self._bars(bars)
            view = await asyncio.to_thread(assess, frame, symbol or self._rules.symbol)
        except Exception as exc:  # bad or missing bars: a typed, non-retryable provider failure
            raise ProviderCallError(
                f"{self.name}: cannot assess the market: {exc}", provider=self.name, kind="bad_request"
            ) from exc
        parsed: BaseModel | None = None
        if response_model is not None:
            try:
                parsed = (
                    view
                    if isinstance(view, response_model)
                    else response_model.model_validate(view.model_dump())
                )
            except ValidationError as exc:
                raise StructuredOutputError(
                    f"the rules analyst produces a RulesView, which does not fit {response_model.__name__}",
                    provider=self.name,
                    schema=response_model.__name__,
                    errors=str(exc)[:500],
                ) from None
        return ChatResponse(text=view.summary, model=self.config.model, usage=Usage(), parsed=parsed or view)

    async def stream(self, messages: Sequence[Message], **params: Any) -> AsyncIterator[str]:
        resp = await self.chat(messages, **params)
        yield resp.text

    async def health(self, timeout_s: float = 3.0) -> HealthReport:
        return HealthReport(True, "rules analyst (in-process)", 0.0)

    async def aclose(self) -> None:
        return None
