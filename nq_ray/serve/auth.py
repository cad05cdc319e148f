"""Bearer-token auth for the whole app (HTTP API, MCP, WebSocket) as one pure ASGI middleware.

Two kinds of token, either accepted where both are configured:

- the static token (``mcp.auth_token``): one constant-time comparison per request and no per-request
  objects (it sits in front of the MCP endpoint on the hot path); it grants everything;
- with ``mcp.oauth`` set, a JWT access token from the configured issuer (``nq_ray.serve.oauth``): on the
  MCP endpoint it needs the read scope (tools check their own scope); on the REST API and the WebSocket,
  which have no per-tool scopes, it needs every scope.

``/health``, ``/metrics``, the OpenAPI docs and the OAuth protected-resource metadata stay open
(operators, scrapers, MCP clients discovering the issuer); everything else needs
``Authorization: Bearer <token>`` (a WebSocket may pass ``?token=``). A 401 says how to get a token
(``WWW-Authenticate``, with ``resource_metadata`` when OAuth is on); a valid JWT without the scope a
request needs is a 403 ``insufficient_scope``."""

from __future__ import annotations

import hmac
import json
from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qs

from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser

from nq_ray.serve.oauth import ResourceServer, send_insufficient_scope

OPEN_PATHS = ("/health", "/metrics", "/docs", "/redoc", "/openapi.json")


class BearerAuth:
    """401 with an RFC 9457 body and ``WWW-Authenticate: Bearer`` unless a configured token is sent."""

    def __init__(
        self,
        app: Any,
        tokens: Iterable[str],
        open_paths: tuple[str, ...] = OPEN_PATHS,
        oauth: ResourceServer | None = None,
    ) -> None:
        self.app = app
        self.tokens = [t.encode() for t in tokens if t and t.strip()]  # a blank token is no token
        self.open_paths = open_paths
        self.oauth = oauth
        # the static token's user with every scope, made once (OAuth on: the tools look for a user)
        self.static_users = {t: oauth.static_user(t.decode("latin-1")) for t in self.tokens} if oauth else {}

    def _ok(self, presented: bytes | None) -> bool:
        if presented is None:
            return False
        ok = False
        for t in self.tokens:
            ok |= hmac.compare_digest(presented, t)
        return ok

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        kind = scope["type"]
        if kind not in ("http", "websocket") or (not self.tokens and self.oauth is None):
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        if kind == "http" and (
            path in self.open_paths
            or path.startswith("/docs")
            or (self.oauth is not None and self.oauth.is_metadata_path(path))
        ):
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
            if self.oauth is not None:
                self.oauth.attach(scope, self.static_users[presented])  # type: ignore[index]
            await self.app(scope, receive, send)
            return
        if self.oauth is None:
            await self._refuse(scope, send, 401, "unauthorized", None)
            return
        access = await self.oauth.verify(presented.decode("latin-1")) if presented else None
        if access is None:
            await self._refuse(scope, send, 401, "invalid_token" if presented else "unauthorized", None)
            return
        missing = self.oauth.missing(access.scopes, path)
        if missing:
            await self._refuse(scope, send, 403, "insufficient_scope", missing)
            return
        self.oauth.attach(scope, AuthenticatedUser(access))
        await self.app(scope, receive, send)

    async def _refuse(self, scope: dict[str, Any], send: Any, status: int, code: str, missing: Any) -> None:
        if scope["type"] == "websocket":
            reason = "insufficient scope" if status == 403 else "missing or invalid bearer token"
            await send({"type": "websocket.close", "code": 4000 + status, "reason": reason})
            return
        oauth = self.oauth
        if oauth is None:
            challenge = b'Bearer realm="nq-ray"'
            detail = "missing or invalid bearer token; send Authorization: Bearer <NQ_MCP__AUTH_TOKEN>"
        elif status == 403:
            needed = oauth.missing([], scope.get("path", ""))
            detail = f"the access token lacks the scope {' and '.join(missing)}; ask the issuer for it"
            await send_insufficient_scope(send, oauth, missing, needed, detail)
            return
        else:
            where = f"get an access token for {oauth.resource} from {oauth.metadata.authorization_servers[0]}"
            if code == "invalid_token":
                detail = f"the bearer token is invalid, expired or not for this server; {where}"
                challenge = oauth.challenge(
                    error="invalid_token", description="invalid, expired or not for this resource"
                )
            else:
                detail = f"missing bearer token; {where} (see {oauth.metadata_url})"
                challenge = oauth.challenge()
        body = json.dumps(
            {
                "type": f"https://nq-ray.dev/problems/{code}",
                "title": code.replace("_", " "),
                "status": status,
                "detail": detail,
                "code": code,
            }
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/problem+json"),
                    (b"www-authenticate", challenge),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
