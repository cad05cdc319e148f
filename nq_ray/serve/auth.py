"""Bearer-token auth for the whole app (HTTP API, MCP, WebSocket) as one pure ASGI middleware.

One constant-time comparison per request and no per-request objects: it sits in front of the MCP
endpoint on the hot path. ``/health``, ``/metrics`` and the OpenAPI docs stay open (operators and
scrapers); everything else needs ``Authorization: Bearer <token>`` (a WebSocket may pass ``?token=``)."""

from __future__ import annotations

import hmac
import json
from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qs

OPEN_PATHS = ("/health", "/metrics", "/docs", "/redoc", "/openapi.json")


class BearerAuth:
    """401 with an RFC 9457 body and ``WWW-Authenticate: Bearer`` unless a configured token is sent."""

    def __init__(self, app: Any, tokens: Iterable[str], open_paths: tuple[str, ...] = OPEN_PATHS) -> None:
        self.app = app
        self.tokens = [t.encode() for t in tokens if t and t.strip()]  # a blank token is no token
        self.open_paths = open_paths

    def _ok(self, presented: bytes | None) -> bool:
        if presented is None:
            return False
        ok = False
        for t in self.tokens:
            ok |= hmac.compare_digest(presented, t)
        return ok

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        kind = scope["type"]
        if kind not in ("http", "websocket") or not self.tokens:
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        if kind == "http" and (path in self.open_paths or path.startswith("/docs")):
            await self.app(scope, receive, send)
            return
        presented = None
        for name, value in scope.get("headers", ()):
            if name == b"authorization":
                scheme, _, token = value.partition(b" ")
                if scheme.lower() == b"bearer":
                    presented = token.strip()
                break
        if presented is None and kind == "websocket":
            q = parse_qs(scope.get("query_string", b"").decode("latin-1"))
            if q.get("token"):
                presented = q["token"][0].encode()
        if self._ok(presented):
            await self.app(scope, receive, send)
            return
        if kind == "websocket":
            await send({"type": "websocket.close", "code": 4401, "reason": "missing or invalid bearer token"})
            return
        body = json.dumps(
            {
                "type": "https://nq-ray.dev/problems/unauthorized",
                "title": "unauthorized",
                "status": 401,
                "detail": "missing or invalid bearer token; send Authorization: Bearer <NQ_MCP__AUTH_TOKEN>",
                "code": "unauthorized",
            }
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 401,
                "headers": [
                    (b"content-type", b"application/problem+json"),
                    (b"www-authenticate", b'Bearer realm="nq-ray"'),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
