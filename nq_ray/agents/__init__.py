"""Agents (Ray actors arrive with a later issue); ``context`` builds their prompt context."""

from nq_ray.agents.context import BuiltContext, ContextManager, ContextSource, Dropped

__all__ = ["BuiltContext", "ContextManager", "ContextSource", "Dropped"]
