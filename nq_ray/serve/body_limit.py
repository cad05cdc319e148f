"""The request-body limit: a body larger than ``serve.max_body_bytes`` is answered with a 413 problem
(``body_too_large``) before anything parses it, on every HTTP route (REST, ``/mcp/``, ``PATCH /api/config``).

A declared ``Content-Length`` over the limit is refused before one byte of the body is read. A chunked body
(or one longer than it said) is counted as it arrives: at the first chunk that goes over, the app's next
``receive()`` raises ``BodyTooLargeError`` and whatever the app answers to that (FastAPI's 400 "error
parsing the body", the MCP transport's own error) is replaced by the 413. At most the limit plus one chunk
is ever in memory. FastAPI's own ``max_body_size`` is not used: it answers some of its 413s in
``text/plain`` from outside the middleware that adds the request id.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from starlette.responses import Response

from nq_ray.errors import BodyTooLargeError
from nq_ray.serve.problems import PROBLEM, problem_body

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

SETTING = "serve.max_body_bytes"


def too_large(limit_bytes: int, received_bytes: int | None = None) -> BodyTooLargeError:
    """The error for a body over ``limit_bytes`` (``received_bytes``: what was declared or counted)."""
    seen = f" (at least {received_bytes:,} bytes sent)" if received_bytes is not None else ""
    return BodyTooLargeError(
        f"request body too large{seen}: the limit is {limit_bytes:,} bytes; send less, or raise "
        f"{SETTING} (NQ_SERVE__MAX_BODY_BYTES)",
        limit_bytes=limit_bytes,
        setting=SETTING,
    )


class BodyLimit:
    """ASGI middleware: a 413 ``application/problem+json`` for a request body over ``max_bytes``."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            await _refuse(scope, receive, send, too_large(self.max_bytes, declared))
            return
        total = 0
        over: BodyTooLargeError | None = None
        started = False

        async def counted() -> Message:
            nonlocal total, over
            if over is not None:
                raise over
            message = await receive()
            if message["type"] == "http.request":
                total += len(message.get("body", b""))
                if total > self.max_bytes:
                    over = too_large(self.max_bytes, total)
                    raise over
            return message

        async def guarded(message: Message) -> None:
            nonlocal started
            if over is not None and not started:
                return  # the app's answer to the cut-off body: the 413 below replaces it
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted, guarded)
        except Exception:
            if over is None or started:
                raise
        if over is not None and not started:
            await _refuse(scope, receive, send, over)


async def _refuse(scope: Scope, receive: Receive, send: Send, err: BodyTooLargeError) -> None:
    body = json.dumps(problem_body(err, scope.get("path"))).encode()
    # connection: close — the rest of the body is never read
    refusal = Response(body, status_code=err.http_status, media_type=PROBLEM, headers={"connection": "close"})
    await refusal(scope, receive, send)  # a plain Response never reads the request


def _content_length(scope: Scope) -> int | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


__all__ = ["SETTING", "BodyLimit", "too_large"]
