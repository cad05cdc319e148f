"""Agents: analysis, risk and execution agents acting through the tool registry, the trading desk
(one cycle, decisions recorded before they are acted on), the desk actor, and the prompt context."""

from nq_ray.agents.context import BuiltContext, ContextManager, ContextSource, Dropped

__all__ = ["BuiltContext", "ContextManager", "ContextSource", "Dropped"]
