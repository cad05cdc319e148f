"""``nq-ray mcp``: the MCP server over stdio for desktop MCP clients (local, so no auth).

The tools run in this process. On a historical source (the default sample; ``replay.clock``) the market
is replayed here: an in-process paper broker, journaled to the store, priced from the replayed bars
(``nq_ray.runtime.replay.MarketReplay``, started with the first message), with no Ray at all. Otherwise
tools that need the paper broker reach the ``paper_broker`` actor: the server joins the Ray cluster named
by ``RAY_ADDRESS`` (e.g. the one ``nq-ray up`` started) or, without it, starts a small local Ray on the
first such call. Nothing is ever written to stdout but protocol messages: Ray and library logs and the
clock's banner go to stderr.
"""

from __future__ import annotations

import asyncio
import io
import logging
import os
import sys
from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio
from fastmcp import FastMCP
from fastmcp.server.middleware import Middleware, MiddlewareContext

from nq_ray.config import Settings, load_settings


def build_stdio_server(
    settings: Settings | None = None,
    *,
    ray_address: str | None = None,
    replay: dict[str, Any] | None = None,
    echo: Callable[[str], None] | None = None,
) -> Any:
    """The FastMCP server for stdio: every tool, audited straight into the store. Without a cluster
    address the clock is resolved first (``replay``: ``start``/``until``/``speed`` from the command line):
    on a replay the broker is in this process and the replay runs here; else the broker is the
    ``paper_broker`` actor of a ``Runtime`` on the cluster at ``ray_address`` / ``RAY_ADDRESS``, or of a
    small local Ray (started on the first tool call that needs the broker)."""
    from nq_ray.runtime import Runtime
    from nq_ray.runtime.replay import start_clock
    from nq_ray.serve.mcp_http import UnknownToolIsProtocolError
    from nq_ray.tools.audit import StoreAuditor
    from nq_ray.tools.mcp import build_mcp

    settings = settings or load_settings()
    address = ray_address or os.environ.get("RAY_ADDRESS") or None
    plan = None
    if address is None:
        settings, plan = start_clock(settings, **(replay or {}), echo=echo)
    if plan is not None:
        runtime = Runtime(settings, "in_process")
    else:
        runtime = Runtime(settings, "cluster" if address else "local", address=address, feed=False)
    registry = runtime.registry(auditor=StoreAuditor(settings.store_url))
    mcp = build_mcp(registry, who="mcp-stdio")
    mcp.add_middleware(UnknownToolIsProtocolError())  # as over HTTP: an unknown tool is error -32602
    market = runtime.market()
    if market is not None:
        mcp.add_middleware(StartMarket(market))
    mcp.nq_runtime = runtime  # type: ignore[attr-defined]  # what tests reach the runtime through
    return mcp


class StartMarket(Middleware):
    """Starts the replay's driver on the server's own event loop with the first message it gets."""

    def __init__(self, market: Any) -> None:
        self.market = market
        self._lock: asyncio.Lock | None = None

    async def on_message(self, context: MiddlewareContext[Any], call_next: Any) -> Any:
        if not self.market.started:
            self._lock = self._lock or asyncio.Lock()
            async with self._lock:
                if not self.market.started:
                    await self.market.start()
        return await call_next(context)


def main(ray_address: str | None = None, replay: dict[str, Any] | None = None) -> None:
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING)

    def to_stderr(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    server = build_stdio_server(ray_address=ray_address, replay=replay, echo=to_stderr)
    anyio.run(serve_stdio, server)


PARSE_ERROR = -32700  # JSON-RPC 2.0
INVALID_REQUEST = -32600


async def serve_stdio(server: FastMCP) -> None:
    """``server`` over this process's stdin/stdout: FastMCP's stdio loop (``run_stdio_async``), with the
    answers the SDK's transport leaves out. It drops a line that is not JSON or not a JSON-RPC message
    without a word, and takes a message whose ``id`` is neither a string nor an integer (null, an object,
    1.5, true) for a notification; here both are answered as over HTTP (``nq_ray.serve.mcp_http``):
    ``-32700`` Parse error or ``-32600`` Invalid Request, with ``id: null`` (JSON-RPC 2.0 section 5)."""
    from fastmcp.server.context import reset_transport, set_transport
    from mcp.server.stdio import stdio_server
    from mcp.shared._context_streams import create_context_streams
    from mcp.shared.message import SessionMessage

    token = set_transport("stdio")
    wire = os.dup(0)  # stdin is ours; fd 0 reads the null device, so no child process takes our input
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    try:
        text = io.TextIOWrapper(os.fdopen(wire, "rb", closefd=False), encoding="utf-8", errors="replace")
        stdin: Any = CheckedLines(anyio.wrap_file(text))
        async with server._lifespan_manager(), stdio_server(stdin=stdin) as (read_stream, write_stream):
            send, receive = create_context_streams[SessionMessage | Exception](0)

            async def answer_bad_lines() -> None:
                async with send:
                    async for item in read_stream:
                        if isinstance(item, Exception):
                            await write_stream.send(SessionMessage(protocol_error(item)))
                        else:
                            await send.send(item)

            async with anyio.create_task_group() as tg:
                tg.start_soon(answer_bad_lines)
                low = server._mcp_server
                await low.run(receive, write_stream, low.create_initialization_options())
                tg.cancel_scope.cancel()
    finally:
        os.dup2(wire, 0)
        os.close(wire)
        reset_transport(token)


NOT_A_MESSAGE = '{"jsonrpc": "2.0", "nq_ray": "the id must be a string or an integer"}\n'


class CheckedLines:
    """stdin's lines for the transport; a message whose ``id`` is not a string or an integer becomes
    ``NOT_A_MESSAGE``, a line the transport refuses, so that it is answered -32600 (``protocol_error``)."""

    def __init__(self, lines: Any) -> None:
        self.lines = lines

    async def __aiter__(self) -> AsyncIterator[str]:
        from nq_ray.serve.mcp_http import invalid_request

        async for line in self.lines:
            if not line.strip():  # a blank line between messages is no message
                continue
            bad = '"id"' in line and invalid_request(line.encode("utf-8", "replace")) is not None
            yield NOT_A_MESSAGE if bad else line


def protocol_error(exc: Exception) -> Any:
    """The JSON-RPC error (id null) for a line the transport could not read as a message: -32700 when it
    is not JSON, else -32600."""
    import mcp_types
    from pydantic import ValidationError

    not_json = isinstance(exc, ValidationError) and any(e["type"] == "json_invalid" for e in exc.errors())
    code, message = (
        (PARSE_ERROR, "Parse error: the message is not JSON")
        if not_json
        else (
            INVALID_REQUEST,
            "Invalid Request: not a JSON-RPC message (the id must be a string or an integer)",
        )
    )
    error = mcp_types.ErrorData(code=code, message=message)
    return mcp_types.JSONRPCError(jsonrpc="2.0", id=None, error=error)


if __name__ == "__main__":  # pragma: no cover
    main()
