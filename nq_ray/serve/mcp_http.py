"""The MCP streamable-HTTP endpoint at ``/mcp/``: plain JSON answers unless the client asked for progress.

Streamable HTTP lets a server answer a POSTed JSON-RPC request either with one ``application/json`` body or
with an SSE stream (``text/event-stream``) that may carry notifications before the result. Ours sends
something before the result only when the client asked for progress (``params._meta.progressToken`` on a
long tool); every other call is one request, one result. So in ``auto`` mode (the default) a POST whose
body holds ``progressToken`` goes to the SSE transport and every other POST to the JSON transport — the
same FastMCP server behind both. The SSE machinery (a task group, a ping task, a disconnect watcher,
several chunked writes) is where a Serve replica spent its extra time per call
(``benchmarks/bench_mcp.py``; numbers in the README).

Only the stateless transport can be split like this: a stateful session lives in one session manager, so
with ``mcp.stateless_http=false`` every request goes to the SSE transport.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from typing import Any, Literal

from fastmcp import FastMCP
from fastmcp.server.http import StarletteWithLifespan

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

MCPResponses = Literal["auto", "json", "sse"]
MCP_RESPONSES: tuple[str, ...] = ("auto", "json", "sse")
# a body larger than this is not buffered to look for a progress token; it goes to the SSE transport
PEEK_LIMIT_BYTES = 64 * 1024
PROGRESS_MARK = b"progressToken"


class MCPEndpoint:
    """ASGI app for the MCP endpoint; ``lifespan`` must run around it (the FastAPI app's lifespan does).

    ``responses``: ``auto`` (JSON unless progress was asked for), ``json`` (always JSON: no progress
    notifications over HTTP), ``sse`` (always an SSE stream)."""

    def __init__(self, mcp: FastMCP, *, stateless: bool = True, responses: MCPResponses = "auto") -> None:
        if responses not in MCP_RESPONSES:
            raise ValueError(f"mcp responses must be one of {', '.join(MCP_RESPONSES)}, not {responses!r}")
        if responses == "auto" and not stateless:
            responses = "sse"
        self.responses: MCPResponses = responses
        # one FastMCP server behind one transport, or behind both in "auto"
        self._apps: dict[str, StarletteWithLifespan] = {}
        if responses != "sse":
            self._apps["json"] = mcp.http_app(path="/", stateless_http=stateless, json_response=True)
        if responses != "json":
            self._apps["sse"] = mcp.http_app(path="/", stateless_http=stateless, json_response=False)

    @contextlib.asynccontextmanager
    async def lifespan(self, app: Any) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            for sub in self._apps.values():
                await stack.enter_async_context(sub.lifespan(app))
            yield

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if len(self._apps) == 1:
            await next(iter(self._apps.values()))(scope, receive, send)
            return
        if scope["type"] != "http" or scope.get("method") != "POST":
            await self._apps["sse"](scope, receive, send)
            return
        read: list[Message] = []
        size, complete = 0, False
        while size <= PEEK_LIMIT_BYTES:
            msg = await receive()
            read.append(msg)
            if msg["type"] != "http.request":  # a disconnect: let the transport see it
                break
            size += len(msg.get("body", b""))
            if not msg.get("more_body", False):
                complete = True
                break
        body = b"".join(m.get("body", b"") for m in read)
        app = self._apps["json" if complete and PROGRESS_MARK not in body else "sse"]

        async def replay() -> Message:
            return read.pop(0) if read else await receive()

        await app(scope, replay, send)
