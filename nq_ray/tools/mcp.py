"""FastMCP server built from the ``ToolRegistry``: the same tools, schemas and errors over MCP.

Each registry tool becomes a FastMCP ``Tool`` whose input/output schemas are the registry's generated
pydantic schemas; a call goes through ``ToolRegistry.call`` (validation, audit), typed errors become MCP
tool errors ``[code] message``, and long tools send MCP progress notifications when the client asked.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from fastmcp import FastMCP
from fastmcp.exceptions import ToolError
from fastmcp.tools.base import Tool, ToolResult
from mcp.types import ToolAnnotations
from pydantic import PrivateAttr

from nq_ray.errors import NQRayError
from nq_ray.tools.context import Progress
from nq_ray.tools.registry import ToolRegistry, ToolSpec
from nq_ray.tools.wire import json_safe, tool_error_text

log = logging.getLogger(__name__)

INSTRUCTIONS = (
    "nq-ray: research, risk and paper trading for CME equity-index futures (NQ first). Data tools say "
    "where their numbers come from (origin.source, origin.live): sample data is historical, not live. "
    "Orders are paper orders that pass a code-enforced risk gate. Long tools (run_sweep, big backtests) "
    "report progress."
)
PROGRESS_MIN_INTERVAL_S = 0.2


class RegistryTool(Tool):
    """A registry tool exposed over MCP."""

    _registry: ToolRegistry | None = PrivateAttr(default=None)
    _who: str = PrivateAttr(default="mcp")

    @classmethod
    def of(cls, spec: ToolSpec, registry: ToolRegistry, who: str) -> RegistryTool:
        tool = cls(
            name=spec.name,
            description=spec.description,
            parameters=spec.input_schema(),
            output_schema=spec.output_schema(),
            annotations=ToolAnnotations(
                readOnlyHint=spec.read_only, destructiveHint=False, idempotentHint=spec.read_only
            ),
            tags={spec.category},
        )
        tool._registry = registry
        tool._who = who
        return tool

    async def run(self, arguments: dict[str, Any]) -> ToolResult:
        assert self._registry is not None
        progress = _progress_sender() if self._registry.get(self.name).long_running else None
        try:
            out = await self._registry.call(self.name, arguments, who=self._who, progress=progress)
        except NQRayError as err:
            raise ToolError(tool_error_text(err)) from None
        return ToolResult(structured_content=json_safe(out))


def _progress_sender() -> Progress | None:
    """A thread-safe progress callback that sends MCP progress notifications (at most 5 a second)."""
    try:
        from fastmcp.server.dependencies import get_context

        ctx = get_context()
    except RuntimeError:
        return None
    loop = asyncio.get_running_loop()
    last = [0.0]

    def send(done: float, total: float | None = None, message: str | None = None) -> None:
        now = time.monotonic()
        if now - last[0] < PROGRESS_MIN_INTERVAL_S and (total is None or done < total):
            return
        last[0] = now

        def schedule() -> None:
            task = loop.create_task(ctx.report_progress(done, total, message))
            task.add_done_callback(_log_failure)

        loop.call_soon_threadsafe(schedule)

    return send


def _log_failure(task: asyncio.Task[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.debug("progress notification not sent: %s", task.exception())


def build_mcp(registry: ToolRegistry, *, who: str = "mcp", name: str = "nq-ray") -> FastMCP:
    """A FastMCP server with every registry tool (no auth here: HTTP auth is the app's middleware)."""
    mcp = FastMCP(name, instructions=INSTRUCTIONS, mask_error_details=True)
    for spec in registry.specs.values():
        mcp.add_tool(RegistryTool.of(spec, registry, who))
    return mcp
