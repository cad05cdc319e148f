"""Prompt templates (Jinja2 files, sandboxed, strict, versioned)."""

from nq_ray.llm.prompts.engine import SEED_TEMPLATES, PromptTemplateEngine, RenderedPrompt

__all__ = ["SEED_TEMPLATES", "PromptTemplateEngine", "RenderedPrompt"]
