"""PromptTemplateEngine: the seed's templates, sandboxed strict rendering, versions, add_template."""

from __future__ import annotations

import pytest

from nq_ray.errors import InvalidArgumentError
from nq_ray.llm.prompts import SEED_TEMPLATES, PromptTemplateEngine
from nq_ray.llm.prompts.engine import is_seed_style

CONTEXT = {
    "symbol": "NQ",
    "timeframe": "5m",
    "market": "NQ 5m: last 21500.25, trend up, RSI 61",
    "patterns": ["double_bottom confirmed (conf 0.73)"],
    "session": "2026-04-28 RTH",
    "idea": "long 1 NQ at 21500, stop 21480",
    "proposal": "long 2 NQ at 21500, stop 21480",
    "risk_parameters": "max 2 contracts, max daily loss $2,000",
    "orders": ["c-1 sell stop 21480"],
}


@pytest.fixture(scope="module")
def engine() -> PromptTemplateEngine:
    return PromptTemplateEngine()


def test_every_seed_template_renders_with_its_version(engine: PromptTemplateEngine) -> None:
    rendered = [engine.generate_prompt(name, CONTEXT) for name in SEED_TEMPLATES]

    assert sorted(engine.templates) == sorted(SEED_TEMPLATES)
    declared = {"analysis_base": "2"}  # 2: the seed's context keys, the agent's context and schema
    for r in rendered:
        assert r.version.startswith(declared.get(r.name, "1") + "+") and "NQ" in r.text
        assert r.prompt_version == f"{r.name}@{r.version}"


def test_agent_type_and_tools_are_rendered(engine: PromptTemplateEngine) -> None:
    r = engine.generate_prompt(
        "analysis_base",
        CONTEXT,
        agent_type="analysis",
        tools=["get_nq_price", {"name": "calculate_indicators", "description": "RSI, MACD, ATR"}],
    )

    assert "You are the analysis agent" in r.text
    assert "- get_nq_price" in r.text and "- calculate_indicators: RSI, MACD, ATR" in r.text
    assert r.tools == ("get_nq_price", "calculate_indicators")
    assert r.as_messages("go")[1] == {"role": "user", "content": "go"}


def test_missing_context_is_an_error_naming_the_key(engine: PromptTemplateEngine) -> None:
    with pytest.raises(InvalidArgumentError, match="market"):
        engine.generate_prompt("analysis_base", {"symbol": "NQ", "timeframe": "5m"})


def test_sandbox_blocks_unsafe_attribute_access() -> None:
    engine = PromptTemplateEngine()
    engine.add_template("evil", "{{ symbol.__class__.__mro__[1].__subclasses__() }}")

    with pytest.raises(InvalidArgumentError, match="unsafe|failed"):
        engine.generate_prompt("evil", {"symbol": "NQ"})


def test_add_template_validates_and_versions_changes() -> None:
    engine = PromptTemplateEngine()

    v1 = engine.add_template("brief", "{#- version: 2 -#}Brief on {{ symbol }}.")
    r = engine.generate_prompt("brief", {"symbol": "ES"})
    v2 = engine.add_template("brief", "{#- version: 2 -#}Short brief on {{ symbol }}.", replace=True)

    assert r.text == "Brief on ES.\n" and v1.startswith("2+") and v1 != v2


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("Bad Name", "x", "must match"),
        ("ok", "{% if %}", "does not parse"),
        ("ok", "", "non-empty"),
        ("analysis_base", "x", "exists"),
        ("ok", '{% extends "nope.j2" %}', "unknown template"),
    ],
)
def test_add_template_rejects_bad_input(name: str, text: str, message: str) -> None:
    with pytest.raises(InvalidArgumentError, match=message):
        PromptTemplateEngine().add_template(name, text)


def test_unknown_template_and_agent_type_are_rejected(engine: PromptTemplateEngine) -> None:
    with pytest.raises(InvalidArgumentError, match="unknown prompt template"):
        engine.generate_prompt("nope", CONTEXT)
    with pytest.raises(InvalidArgumentError, match="agent_type"):
        engine.generate_prompt("analysis_base", CONTEXT, agent_type="wizard")


def test_seed_style_placeholders_render_their_values_and_leave_other_braces() -> None:
    engine = PromptTemplateEngine()
    engine.add_template(
        "brief", 'NQ {price:.2f}, RSI {ind[rsi]}, bias {view.bias}; answer like {"bias": "long"}'
    )

    r = engine.generate_prompt("brief", {"price": 24255.75, "ind": {"rsi": 37.5}, "view": {"bias": "short"}})

    assert r.text == 'NQ 24255.75, RSI 37.5, bias short; answer like {"bias": "long"}\n'
    assert is_seed_style("{symbol}") and not is_seed_style("{{ symbol }} {x}")


def test_a_jinja_template_keeps_single_braces_literal() -> None:
    engine = PromptTemplateEngine()
    engine.add_template("mixed", "{{ symbol }} and {symbol}")

    assert engine.generate_prompt("mixed", {"symbol": "ES"}).text == "ES and {symbol}\n"


def test_a_seed_style_template_missing_a_value_is_an_error_naming_it() -> None:
    engine = PromptTemplateEngine()
    engine.add_template("custom_analysis", "You are analyzing {symbol} with {market_conditions}.")

    with pytest.raises(InvalidArgumentError, match="market_conditions"):
        engine.generate_prompt("custom_analysis", {"symbol": "NQ"})


def test_overrides_live_in_a_new_engine_and_change_the_version(engine: PromptTemplateEngine) -> None:
    mine = engine.with_overrides({"market_summary": "Summary of {symbol}: {market}"})

    own = mine.generate_prompt("market_summary", CONTEXT)
    shared = engine.generate_prompt("market_summary", CONTEXT)

    assert own.text == f"Summary of NQ: {CONTEXT['market']}\n" and "Your job" in shared.text
    assert own.version != shared.version and mine.is_override("market_summary")
    assert not engine.is_override("market_summary")


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("custom_analysis", "x", "no seed template"),
        ("analysis_base", "{% for %}", "does not parse"),
        ("analysis_base", "x" * 20_001, "limit is 20000"),
        ("analysis_base", '{% extends "nope.j2" %}', "unknown template"),
    ],
)
def test_check_override_refuses_with_a_clear_message(
    engine: PromptTemplateEngine, name: str, text: str, message: str
) -> None:
    with pytest.raises(InvalidArgumentError, match=message):
        engine.check_override(name, text)
