"""The ``Origin`` check on the MCP endpoint (MCP streamable HTTP: servers MUST validate the ``Origin``
header of every incoming connection, against DNS rebinding).

A request without ``Origin`` (every non-browser client) passes; so does one from a loopback origin
(``http://localhost:5173``, ``http://127.0.0.1:8000``, ``http://[::1]``: a page the user runs on this
machine) or from one listed in ``mcp.allowed_origins`` (``scheme://host[:port]``, ``*`` for any).
Anything else, the opaque ``null`` origin included, is a 403 problem ``forbidden_origin`` before the
token is looked at. One header scan per MCP request; other paths are not looked at (CORS guards the
REST API for browsers)."""

from __future__ import annotations

import functools
import ipaddress
import json
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any
from urllib.parse import urlsplit

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

DEFAULT_PORTS = {"http": 80, "https": 443}


def normalize_origin(origin: str) -> str | None:
    """``scheme://host[:port]`` in lower case with the default port dropped, or None when ``origin`` is
    not a serialized http(s) origin (a path, a query, user info, no host, ``null``)."""
    try:
        parts = urlsplit(origin.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    host = parts.hostname
    if scheme not in DEFAULT_PORTS or not host or parts.path not in ("", "/") or parts.query:
        return None
    if parts.fragment or parts.username is not None:
        return None
    host = f"[{host}]" if ":" in host else host
    return f"{scheme}://{host}" if port in (None, DEFAULT_PORTS[scheme]) else f"{scheme}://{host}:{port}"


def is_loopback_origin(origin: str) -> bool:
    normalized = normalize_origin(origin)
    if normalized is None:
        return False
    host = urlsplit(normalized).hostname or ""
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class OriginGuard:
    """ASGI middleware: a request under ``prefix`` whose ``Origin`` is neither loopback nor allowed is a
    403 with an RFC 9457 body."""

    def __init__(self, app: Any, prefix: str, allowed_origins: Iterable[str] = ()) -> None:
        self.app = app
        self.prefix = prefix.rstrip("/") or "/mcp"
        allowed = list(allowed_origins)
        self.any = "*" in allowed
        self.allowed = {n for n in (normalize_origin(o) for o in allowed if o != "*") if n}
        # a browser sends the same few origins over and over: remember the verdicts (bounded)
        self.allows = functools.lru_cache(maxsize=256)(self._allows)  # type: ignore[method-assign]

    def allows(self, origin: str) -> bool:
        return self._allows(origin)

    def _allows(self, origin: str) -> bool:
        if self.any or is_loopback_origin(origin):
            return True
        normalized = normalize_origin(origin)
        return normalized is not None and normalized in self.allowed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        if path != self.prefix and not path.startswith(self.prefix + "/"):
            await self.app(scope, receive, send)
            return
        origin = None
        for name, value in scope.get("headers", ()):
            if name == b"origin":
                origin = value.decode("latin-1")
                break
        if origin is None or self.allows(origin):
            await self.app(scope, receive, send)
            return
        shown = origin if len(origin) <= 200 else origin[:200] + "..."
        body = json.dumps(
            {
                "type": "https://nq-ray.dev/problems/forbidden_origin",
                "title": "forbidden origin",
                "status": 403,
                "detail": f"Origin {shown!r} may not call the MCP endpoint: only loopback origins and "
                "those in mcp.allowed_origins (NQ_MCP__ALLOWED_ORIGINS) may",
                "code": "forbidden_origin",
                "origin": shown,
            }
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 403,
                "headers": [
                    (b"content-type", b"application/problem+json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


__all__ = ["OriginGuard", "is_loopback_origin", "normalize_origin"]
