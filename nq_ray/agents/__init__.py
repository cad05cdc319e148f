"""Agents: analysis, risk and execution agents acting through the tool registry, the trading desk
(one cycle, decisions recorded before they are acted on), the desk actor, the prompt context, and the
seed's ``create_agent`` factory."""

from nq_ray.agents.context import BuiltContext, ContextManager, ContextSource, Dropped
from nq_ray.agents.seed import create_agent

__all__ = ["BuiltContext", "ContextManager", "ContextSource", "Dropped", "create_agent"]
