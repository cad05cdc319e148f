"""The seed's ``context`` module under nq-ray's name: ``from nq_ray.context import PromptTemplateEngine,
ContextManager, MemoryManager`` runs the design document's snippets as written (with
``mcp_trading_agent`` replaced by ``nq_ray``).

- ``PromptTemplateEngine``: the prompt templates (``nq_ray.llm.prompts.engine``), the seed's six built in;
- ``ContextManager``: prompt context from named sources within a token budget (``nq_ray.agents.context``);
- ``MemoryManager``: agent memory whose ``store_memory`` / ``get_memory`` work with and without ``await``
  (``nq_ray.agents.seed.SeedMemoryManager`` over the agents' async ``nq_ray.agents.memory.MemoryManager``).
"""

from __future__ import annotations

from nq_ray.agents.context import BuiltContext, ContextManager, ContextSource
from nq_ray.agents.seed import SeedMemoryManager as MemoryManager
from nq_ray.llm.prompts.engine import PromptTemplateEngine, RenderedPrompt

__all__ = [
    "BuiltContext",
    "ContextManager",
    "ContextSource",
    "MemoryManager",
    "PromptTemplateEngine",
    "RenderedPrompt",
]
