"""The seed's "Context & Prompt Management" snippets, as written (``nq_ray`` import paths instead of
``mcp_trading_agent.context``): Prompt Template Engine, Custom Templates, Context Management."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from nq_ray.agents.agents import AnalysisAgent, LocalTools
from nq_ray.agents.sources import bound_sources
from nq_ray.config import Settings
from nq_ray.llm.config import LLMConfig, ProviderConfig
from nq_ray.llm.router import LLMRouter
from nq_ray.tools.context import ToolContext
from nq_ray.tools.registry import build_registry

AS_OF = pd.Timestamp("2026-03-20T11:05", tz="America/New_York")


def test_prompt_template_engine_snippet() -> None:
    current_market_data = {"symbol": "NQ", "price": 24255.75, "bar_time": "2026-03-20T11:00"}
    indicators = {"rsi": 37.46, "atr": 49.79}
    # --- the seed's snippet
    from nq_ray.llm.prompts import PromptTemplateEngine

    template_engine = PromptTemplateEngine()

    # Generate specialized prompts
    prompt = template_engine.generate_prompt(
        template_name="analysis_base",
        context={
            "market_data": current_market_data,
            "technical_indicators": indicators,
            "request": "Analyze current NQ market conditions",
        },
        agent_type="analysis",
        tools=["get_nq_price", "calculate_technical_indicators"],
    )
    # ---

    assert prompt.name == "analysis_base" and prompt.version.startswith("2+")
    assert '"price": 24255.75' in prompt.text and '"rsi": 37.46' in prompt.text  # JSON, not a repr
    assert "Question: Analyze current NQ market conditions" in prompt.text
    assert "- get_nq_price\n- calculate_technical_indicators" in prompt.text


def test_custom_templates_snippet() -> None:
    from nq_ray.llm.prompts import PromptTemplateEngine

    template_engine = PromptTemplateEngine()
    # --- the seed's snippet
    # fmt: off
    # Add custom template
    template_engine.add_template("custom_analysis", """
You are analyzing {symbol} futures with the following conditions:
{market_conditions}

Provide analysis focusing on {analysis_focus}.
""")
    # fmt: on
    # ---

    out = template_engine.generate_prompt(
        "custom_analysis",
        {"symbol": "NQ", "market_conditions": "RTH, below VWAP", "analysis_focus": "support levels"},
    )
    assert out.text == (
        "You are analyzing NQ futures with the following conditions:\nRTH, below VWAP\n\n"
        "Provide analysis focusing on support levels.\n"
    )


def test_context_management_snippet_unbound_answers_clearly() -> None:
    # --- the seed's snippet
    from nq_ray.agents.context import ContextManager

    context_manager = ContextManager()

    # Build context from multiple sources
    context = context_manager.build_context(
        ["current_market_data", "recent_trades", "risk_parameters", "agent_memory"]
    )
    # ---

    assert context.sections == ("current_market_data", "recent_trades", "risk_parameters", "agent_memory")
    assert context.text.count("nothing: no source is bound") == 4 and not context.trimmed


async def test_context_management_snippet_bound_to_an_agents_tools(tmp_path: Path) -> None:
    settings = Settings(data={"data_dir": str(tmp_path / "data")})
    registry = build_registry(ToolContext(settings=settings).point_in_time(AS_OF))
    rules = ProviderConfig(name="rules", kind="rules", model="nq-rules-v1", priority=1000)
    router = LLMRouter.from_config(LLMConfig(providers=[rules], health_interval_s=0))
    analysis_agent = AnalysisAgent(LocalTools(registry), router, source="sample")

    async with bound_sources(analysis_agent, "NQ"):
        # --- the seed's snippet
        from nq_ray.agents.context import ContextManager

        context_manager = ContextManager()

        # Build context from multiple sources
        context = context_manager.build_context(
            ["current_market_data", "recent_trades", "risk_parameters", "agent_memory"]
        )
        # ---

    assert "11:00 O 24270.00 H 24319.00 L 24238.75 C 24255.75" in context.text  # the sample's 11:00 bar
    assert "no trades closed by 2026-03-20 11:05" in context.text
    assert "max daily loss: $2,000.00; today's P&L $0.00" in context.text
    assert "no memories recorded by 2026-03-20 11:05" in context.text
