"""The MCP tool registry: one typed async function per tool, schemas from pydantic models, hosted by
the ``tool_registry`` Ray actor and served over MCP (``nq_ray.tools.mcp``) and HTTP (``nq_ray.serve``)."""

from nq_ray.tools.context import ToolContext
from nq_ray.tools.registry import ToolRegistry, ToolSpec, UnknownToolError, build_registry

__all__ = ["ToolContext", "ToolRegistry", "ToolSpec", "UnknownToolError", "build_registry"]
