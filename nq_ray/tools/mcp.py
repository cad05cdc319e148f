"""FastMCP server built from the ``ToolRegistry``: the same tools, schemas and errors over MCP.

Each registry tool becomes a FastMCP ``Tool`` whose input/output schemas are the registry's generated
pydantic schemas, with a title and the MCP annotations (read-only, destructive, idempotent, open-world);
a call goes through ``ToolRegistry.call`` (validation, audit) and answers ``structuredContent`` plus the
same JSON as text; typed errors, bad arguments included, become MCP tool errors ``[code] message``, and
long tools send MCP progress notifications when the client asked. ``mcp.toolsets`` and ``mcp.read_only``
choose which tools a server has (``nq_ray.tools.registry.tools_for``).
"""

from __future__ import annotations

import json
import logging
from typing import Any

from fastmcp import FastMCP
from fastmcp.exceptions import ToolError
from fastmcp.tools.base import Tool, ToolResult
from mcp.types import TextContent, ToolAnnotations
from pydantic import PrivateAttr

from nq_ray.config import MCPSettings
from nq_ray.errors import NQRayError
from nq_ray.tools import mcp_elicit
from nq_ray.tools.mcp_long import run_long
from nq_ray.tools.mcp_resources import add_prompts, add_resources
from nq_ray.tools.registry import ToolRegistry, ToolSpec, tools_for
from nq_ray.tools.wire import json_safe, tool_error_text

log = logging.getLogger(__name__)

INSTRUCTIONS = (
    "nq-ray: research, risk and paper trading for CME equity-index futures (NQ first). Data tools say "
    "where their numbers come from (origin.source, origin.live): sample data is historical, not live. "
    "Orders are paper orders that pass a code-enforced risk gate. Long tools (run_sweep, big backtests) "
    "report progress."
)


class RegistryTool(Tool):
    """A registry tool exposed over MCP: its title, annotations and output schema from its ``ToolSpec``;
    a result is ``structuredContent`` (valid against the output schema) and the same JSON as one text
    block, for clients that read only ``content``."""

    _registry: ToolRegistry | None = PrivateAttr(default=None)
    _who: str = PrivateAttr(default="mcp")

    @classmethod
    def of(cls, spec: ToolSpec, registry: ToolRegistry, who: str) -> RegistryTool:
        tool = cls(
            name=spec.name,
            title=spec.title,
            description=spec.description,
            parameters=spec.input_schema(),
            output_schema=spec.output_schema(),
            annotations=annotations_of(spec),
            tags={spec.toolset},
        )
        tool._registry = registry
        tool._who = who
        return tool

    async def run(self, arguments: dict[str, Any]) -> ToolResult:
        assert self._registry is not None
        registry, name, who = self._registry, self.name, self._who
        try:
            # approval mode: a person confirms an order first (elicitation) or it waits in the queue
            guarded = await mcp_elicit.guard(registry, name, arguments, who)
            if isinstance(guarded, ToolResult):
                return guarded
            args = guarded
            if registry.get(name).long_running:  # progress and cancellation: nq_ray.tools.mcp_long
                out = await run_long(lambda p: registry.call(name, args, who=who, progress=p))
            else:
                out = await registry.call(name, args, who=who)
        except NQRayError as err:
            raise ToolError(tool_error_text(err)) from None
        return result_of(out)


def annotations_of(spec: ToolSpec) -> ToolAnnotations:
    """The MCP behaviour hints of a tool (``nq_ray.tools.catalog`` says why each is what it is)."""
    return ToolAnnotations(
        title=spec.title,
        readOnlyHint=spec.read_only,
        destructiveHint=spec.destructive,
        idempotentHint=spec.idempotent,
        openWorldHint=spec.open_world,
    )


def result_of(out: dict[str, Any]) -> ToolResult:
    """A tool's output as MCP returns it: ``structuredContent``, and the same JSON as a text block."""
    data = json_safe(out)
    text = json.dumps(data, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    return ToolResult(content=[TextContent(type="text", text=text)], structured_content=data)


def build_mcp(
    registry: ToolRegistry, *, who: str = "mcp", name: str = "nq-ray", settings: MCPSettings | None = None
) -> FastMCP:
    """A FastMCP server with the registry's tools in ``settings.toolsets`` (read-only ones only with
    ``settings.read_only``; default: the registry's ``mcp`` settings), its resources and the seed's
    prompts. A tool left out is not listed and calling it is "Unknown tool". No auth here: HTTP auth is
    the app's middleware."""
    mcp = FastMCP(
        name,
        instructions=INSTRUCTIONS,
        mask_error_details=True,
        request_state_security=mcp_elicit.request_state_security(registry.context.settings),
    )
    for spec in tools_for(registry, settings):
        mcp.add_tool(RegistryTool.of(spec, registry, who))
    add_resources(mcp, registry)
    add_prompts(mcp)
    return mcp
