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

Two answers follow the specs where the transport does not. A message whose ``id`` is not a string or an
integer (an object, an array, a boolean, null, a decimal number such as 1.5 or 7.0) gets JSON-RPC error
-32600 "Invalid Request" with id null (JSON-RPC 2.0 section 5; MCP: "Requests MUST include a string or
integer ID ... MUST NOT be null"), where the transport took it for a notification and answered an empty
202. A call of a tool that does not exist gets JSON-RPC error -32602 "Unknown tool" (MCP server/tools,
"Error Handling"), where FastMCP answers a tool result with ``isError`` (``UnknownToolIsProtocolError``).
The POST body is read whole before either transport sees it; the body limit in front of the app
(``serve.max_body_bytes``, ``nq_ray.serve.body_limit``) bounds it.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from typing import Any, Literal

import anyio
from fastmcp import FastMCP
from fastmcp.exceptions import NotFoundError
from fastmcp.server.http import StarletteWithLifespan
from fastmcp.server.middleware import Middleware, MiddlewareContext
from mcp.shared.exceptions import MCPError

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

MCPResponses = Literal["auto", "json", "sse"]
MCP_RESPONSES: tuple[str, ...] = ("auto", "json", "sse")
PROGRESS_MARK = b"progressToken"
INVALID_REQUEST = -32600  # JSON-RPC 2.0
INVALID_PARAMS = -32602


class UnknownToolIsProtocolError(Middleware):
    """FastMCP middleware: a ``tools/call`` of a tool that does not exist is JSON-RPC error -32602
    ``Unknown tool: 'name'`` (MCP spec, server/tools "Error Handling"), not a tool result with ``isError``
    (what FastMCP answers). Errors of a tool that exists stay tool errors."""

    async def on_call_tool(self, context: MiddlewareContext[Any], call_next: Any) -> Any:
        try:
            return await call_next(context)
        except NotFoundError:
            raise MCPError(INVALID_PARAMS, f"Unknown tool: {context.message.name!r}") from None


def invalid_request(body: bytes) -> dict[str, Any] | None:
    """The JSON-RPC error for a message whose ``id`` is neither a string nor an integer, else None
    (anything else wrong with the body is the transport's to answer)."""
    try:
        message = json.loads(body)
    except (ValueError, RecursionError):  # not JSON, or nested too deep to parse: the transport answers
        return None
    if not isinstance(message, dict) or "id" not in message:
        return None
    rid = message["id"]
    if _valid_id(rid):
        return None
    kinds = {
        type(None): "null",
        bool: "a boolean",
        dict: "an object",
        list: "an array",
        float: "a decimal number",
    }
    kind = kinds.get(type(rid), type(rid).__name__)
    return {
        "jsonrpc": "2.0",
        "id": None,
        "error": {
            "code": INVALID_REQUEST,
            "message": f"Invalid Request: the id must be a string or an integer, not {kind}",
        },
    }


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
        if scope["type"] != "http" or scope.get("method") != "POST":
            await (self._apps.get("sse") or self._apps["json"])(scope, receive, send)
            return
        read: list[Message] = []
        complete = False
        while not complete:
            msg = await receive()
            read.append(msg)
            if msg["type"] != "http.request":  # a disconnect: let the transport see it
                break
            complete = not msg.get("more_body", False)
        body = b"".join(m.get("body", b"") for m in read)
        error = invalid_request(body) if complete else None
        if error is not None:
            await _send_json(send, 400, error)
            return
        if len(self._apps) == 1:
            app = next(iter(self._apps.values()))
        else:
            app = self._apps["json" if complete and PROGRESS_MARK not in body else "sse"]

        if complete and app is self._apps.get("json"):
            await _cancel_on_disconnect(app, scope, read, receive, send)
            return

        async def replay() -> Message:
            return read.pop(0) if read else await receive()

        await app(scope, replay, send)


async def _cancel_on_disconnect(
    app: StarletteWithLifespan, scope: Scope, read: list[Message], receive: Receive, send: Send
) -> None:
    """Run the JSON transport on a fully read POST, cancelled when the client disconnects: a dropped
    request stops its tool call (``nq_ray.tools.mcp_long`` then stops the work), as the SSE transport's
    own disconnect watcher does for a streamed answer. The JSON transport never sees the disconnect
    itself: it waits for the result and only then writes it."""
    gone = anyio.Event()

    async def replay() -> Message:
        if read:
            return read.pop(0)
        await gone.wait()
        return {"type": "http.disconnect"}

    async with anyio.create_task_group() as tg:

        async def watch() -> None:
            while (await receive()).get("type") != "http.disconnect":
                pass
            gone.set()
            tg.cancel_scope.cancel()

        tg.start_soon(watch)
        await app(scope, replay, send)
        tg.cancel_scope.cancel()


def _valid_id(rid: Any) -> bool:
    return isinstance(rid, str) or (isinstance(rid, int) and not isinstance(rid, bool))


async def _send_json(send: Send, status: int, payload: dict[str, Any]) -> None:
    body = json.dumps(payload).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
