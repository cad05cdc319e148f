"""The rules analyst: a deterministic, labelled view from the analysis core (never presented as an LLM)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import talib
from pydantic import BaseModel

from nq_ray.llm.config import ProviderConfig
from nq_ray.llm.errors import ProviderCallError, StructuredOutputError
from nq_ray.llm.rules import LABEL, RulesAnalyst, RulesView, assess
from tests.analysis.synthetic import frame
from tests.llm.helpers import USER

pytestmark = pytest.mark.timeout(60)

CFG = ProviderConfig(name="rules", kind="rules", model="nq-rules-v1", priority=1000)


def trend(step: float, n: int = 400, seed: int = 3) -> pd.DataFrame:
    """A steady trend of ``step`` points per 5-minute bar with small noise (wicks and volume included)."""
    rng = np.random.default_rng(seed)
    close = 20_000 + np.cumsum(step + rng.normal(0, 1.0, n))
    return frame(np.round(close * 4) / 4, start="2026-03-02 09:30")


def test_steady_uptrend_is_bullish_and_downtrend_bearish() -> None:
    up, down = trend(+3.0), trend(-3.0)

    v_up, v_down = assess(up), assess(down)

    assert v_up.bias == "bullish" and v_down.bias == "bearish"
    assert 0.3 < v_up.confidence <= 0.9 and 0.3 < v_down.confidence <= 0.9
    assert v_up.score > 0.2 > -0.2 > v_down.score


def test_reported_rsi_matches_talib() -> None:
    bars = trend(+1.0)

    view = assess(bars)

    expected = talib.RSI(bars["close"].to_numpy(dtype=float), 14)[-1]
    assert view.momentum == f"RSI {expected:.1f}"


def test_view_is_deterministic_and_labelled_as_rules(nq_5m: pd.DataFrame) -> None:
    bars = nq_5m.iloc[-600:]

    a, b = assess(bars), assess(bars)

    assert a == b and a.source == "rules" and a.summary.startswith(LABEL)
    assert "not an LLM" in a.analyst


async def test_chat_reads_bars_from_the_call_or_the_loader(nq_5m: pd.DataFrame) -> None:
    analyst = RulesAnalyst(CFG, bars_loader=lambda: nq_5m)

    from_loader = await analyst.chat(USER)
    from_call = await analyst.chat(USER, bars=trend(-3.0))

    assert isinstance(from_loader.parsed, RulesView) and from_loader.usage.total_tokens == 0
    assert from_call.parsed.bias == "bearish"  # type: ignore[union-attr]


async def test_response_model_that_does_not_fit_a_rules_view_is_a_typed_failure(nq_5m: pd.DataFrame) -> None:
    class OrderIdea(BaseModel):
        side: str
        stop_ticks: int

    analyst = RulesAnalyst(CFG, bars_loader=lambda: nq_5m)

    with pytest.raises(StructuredOutputError):
        await analyst.chat(USER, response_model=OrderIdea)


async def test_too_few_bars_is_a_typed_provider_error() -> None:
    analyst = RulesAnalyst(CFG)

    with pytest.raises(ProviderCallError) as err:
        await analyst.chat(USER, bars=trend(1.0, n=10))

    assert err.value.kind == "bad_request" and not err.value.retryable
