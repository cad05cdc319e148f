"""nq-ray as an OAuth 2.1 resource server for the MCP endpoint (MCP authorization, 2025-06-18 and 2025-11-25).

- **Discovery** (RFC 9728): the protected-resource metadata at ``/.well-known/oauth-protected-resource``
  followed by the MCP path (``/.well-known/oauth-protected-resource/mcp``, where RFC 9728 section 3.1
  puts it for a resource with a path) and at ``/.well-known/oauth-protected-resource`` (the root form the
  spec lets clients fall back to), built with the MCP SDK's ``ProtectedResourceMetadata``. Every 401 and
  403 names it in ``WWW-Authenticate: Bearer resource_metadata="..."``.
- **Tokens**: JWT access tokens checked by fastmcp's ``JWTVerifier`` (signature against the issuer's
  JWKS, ``exp``/``nbf``, ``iss``, and ``aud`` against the resource URL: a token minted for another
  resource is refused). Invalid or expired: 401 ``error="invalid_token"``.
- **Scopes**: every MCP request needs the read scope; a tool needs the scope of its toolset
  (``required_scope``): the trade scope for execution tools and ``run_agent_task`` (not read-only), the
  read scope for the rest. A ``tools/call``
  without it is a 403 ``error="insufficient_scope", scope="<read> <trade>"`` (the spec's "Runtime
  Insufficient Scope Errors": the scopes the call needs, those already granted included, so a step-up
  does not lose them); ``tools/list`` leaves out the tools a token cannot call (as fastmcp's
  ``AuthMiddleware`` does).

The static bearer token (``mcp.auth_token``) keeps working beside it and grants every scope. The token
check itself is in ``nq_ray.serve.auth.BearerAuth``, which asks this module's ``ResourceServer``.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import Any

from fastmcp.exceptions import InsufficientScopeError
from fastmcp.server.auth.providers.jwt import JWTVerifier
from fastmcp.server.dependencies import get_access_token
from fastmcp.server.middleware import Middleware, MiddlewareContext
from mcp.server.auth.handlers.metadata import ProtectedResourceMetadataHandler
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken
from mcp.server.auth.routes import build_resource_metadata_url
from mcp.shared.auth import ProtectedResourceMetadata
from pydantic import AnyHttpUrl
from starlette.authentication import AuthCredentials
from starlette.routing import Route

from nq_ray.config import OAuthSettings
from nq_ray.tools.registry import ToolSpec

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

WELL_KNOWN = "/.well-known/oauth-protected-resource"
# JSON-RPC error of a tools/call refused for scope: a server-defined code (JSON-RPC 2.0 reserves
# -32000..-32099 for implementations; MCP defines none for this)
INSUFFICIENT_SCOPE = -32003
STATIC_CLIENT = "nq-ray-static-token"


def required_scope(spec: ToolSpec, oauth: OAuthSettings) -> str:
    """The scope a token needs to call ``spec``: the trade scope for the execution toolset (orders and
    positions) and for any other tool that is not read-only (``run_agent_task``: an agent's
    ``place_trade`` places an order), the read scope for the rest (``ToolSpec.toolset``)."""
    return oauth.trade_scope if spec.toolset == "execution" or not spec.read_only else oauth.read_scope


def _quote(value: str) -> str:
    """An RFC 7235 quoted-string (the header is ASCII: anything else is dropped)."""
    cleaned = value.encode("ascii", "ignore").decode().replace("\\", "\\\\").replace('"', '\\"')
    return f'"{cleaned}"'


class ResourceServer:
    """The resource server's parts for one app: verifier, metadata document and routes, scope map."""

    def __init__(self, oauth: OAuthSettings, specs: Sequence[ToolSpec], mcp_path: str) -> None:
        if not oauth.enabled:
            raise ValueError("mcp.oauth.issuer is not set")
        assert oauth.resource is not None and oauth.issuer is not None
        self.oauth = oauth
        self.resource = oauth.resource.rstrip("/")
        self.mcp_path = mcp_path.rstrip("/") or "/mcp"
        self.metadata_url = str(build_resource_metadata_url(AnyHttpUrl(self.resource)))
        self.read_scope, self.trade_scope = oauth.read_scope, oauth.trade_scope
        self.scopes_supported = [self.read_scope, self.trade_scope]
        self.tool_scopes = {spec.name: required_scope(spec, oauth) for spec in specs}
        self.verifier = JWTVerifier(
            jwks_uri=oauth.jwks_uri,
            issuer=oauth.issuer,
            audience=list(oauth.audience) or [self.resource],
            algorithm=oauth.algorithm,
            jwks_refresh_interval=oauth.jwks_refresh_s,
        )
        # strings, validated by the model, which keeps an empty path empty: an issuer is compared with
        # the authorization server's metadata as a string (RFC 8414 section 3.3), so a slash added to
        # "https://issuer.example" would make clients refuse it
        self.metadata = ProtectedResourceMetadata.model_validate(
            {
                "resource": self.resource,
                "authorization_servers": list(oauth.authorization_servers or [oauth.issuer]),
                "scopes_supported": self.scopes_supported,
                "resource_name": "nq-ray MCP server",
            }
        )

    # --- discovery ---------------------------------------------------------------------------------
    def routes(self) -> list[Route]:
        """The metadata document at the path-suffixed well-known URI and at the root one."""
        handler = ProtectedResourceMetadataHandler(self.metadata)
        paths = dict.fromkeys([WELL_KNOWN + self.mcp_path, WELL_KNOWN])
        return [Route(p, endpoint=handler.handle, methods=["GET"]) for p in paths]

    def is_metadata_path(self, path: str) -> bool:
        return path == WELL_KNOWN or path.startswith(WELL_KNOWN + "/")

    def is_mcp_path(self, path: str) -> bool:
        return path == self.mcp_path or path.startswith(self.mcp_path + "/")

    # --- tokens ------------------------------------------------------------------------------------
    async def verify(self, token: str) -> AccessToken | None:
        """The access token when ``token`` is a JWT from the issuer for this resource, else None."""
        if not token or token.count(".") != 2:  # not a JWS compact serialization: nothing to verify
            return None
        return await self.verifier.verify_token(token)

    def static_user(self, token: str) -> AuthenticatedUser:
        """The user of the static bearer token: every scope."""
        return AuthenticatedUser(
            AccessToken(token=token, client_id=STATIC_CLIENT, scopes=self.scopes_supported)
        )

    @staticmethod
    def attach(scope: Scope, user: AuthenticatedUser) -> None:
        """Where the MCP SDK and fastmcp look for the request's token (``get_access_token``)."""
        scope["user"] = user
        scope["auth"] = AuthCredentials(user.scopes)

    def missing(self, granted: Sequence[str], path: str) -> list[str]:
        """Scopes a request to ``path`` needs that ``granted`` lacks: the read scope on MCP; every scope
        elsewhere (the REST API and WebSocket have no per-tool scopes, so a JWT there must hold all)."""
        needed = [self.read_scope] if self.is_mcp_path(path) else self.scopes_supported
        return [s for s in needed if s not in granted]

    def tool_missing(self, name: str, granted: Sequence[str]) -> list[str]:
        """Scopes a call of tool ``name`` needs that ``granted`` lacks ([] for an unknown tool: the MCP
        endpoint answers that one as a protocol error)."""
        needed = self.tool_scopes.get(name)
        if needed is None:
            return []
        return [s for s in dict.fromkeys([self.read_scope, needed]) if s not in granted]

    # --- challenges --------------------------------------------------------------------------------
    def challenge(
        self, *, error: str | None = None, description: str | None = None, scopes: Sequence[str] = ()
    ) -> bytes:
        """A ``WWW-Authenticate`` value: ``Bearer`` with ``error`` (RFC 6750 section 3: none when no
        credentials were sent), ``scope`` and ``resource_metadata``."""
        parts = []
        if error:
            parts.append(f"error={_quote(error)}")
            if description:
                parts.append(f"error_description={_quote(description)}")
        parts.append(f"scope={_quote(' '.join(scopes or [self.read_scope]))}")
        parts.append(f"resource_metadata={_quote(self.metadata_url)}")
        return ("Bearer " + ", ".join(parts)).encode()


def insufficient_scope_body(missing: Sequence[str], needed: Sequence[str], detail: str) -> bytes:
    """The RFC 9457 problem of a 403 ``insufficient_scope``."""
    return json.dumps(
        {
            "type": "https://nq-ray.dev/problems/insufficient_scope",
            "title": "insufficient scope",
            "status": 403,
            "detail": detail,
            "code": "insufficient_scope",
            "missing_scopes": list(missing),
            "required_scopes": list(needed),
        }
    ).encode()


async def send_insufficient_scope(
    send: Send,
    server: ResourceServer,
    missing: Sequence[str],
    needed: Sequence[str],
    detail: str,
    body: bytes | None = None,
) -> None:
    """A 403 ``insufficient_scope`` with its challenge; the body is the problem unless ``body`` (JSON)."""
    content_type = b"application/problem+json" if body is None else b"application/json"
    body = insufficient_scope_body(missing, needed, detail) if body is None else body
    header = server.challenge(error="insufficient_scope", description=detail, scopes=needed)
    await send(
        {
            "type": "http.response.start",
            "status": 403,
            "headers": [
                (b"content-type", content_type),
                (b"www-authenticate", header),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _granted(scope: Scope) -> list[str] | None:
    user = scope.get("user")
    return list(user.scopes) if isinstance(user, AuthenticatedUser) else None


class ToolScopeGate:
    """ASGI wrapper of the MCP endpoint: a ``tools/call`` of a tool whose scope the token lacks is a 403
    ``insufficient_scope`` before any JSON-RPC handling. A token with every scope (the static token among
    them) passes untouched; for others the POST body is read (bounded by ``serve.max_body_bytes``) and
    replayed to the endpoint.

    The 403's body is the JSON-RPC error of the call (``INSUFFICIENT_SCOPE``, with the request's id and
    the scopes in ``data``): clients that do not step up surface it to the caller as the call's error
    (the MCP SDK's client passes on a JSON-RPC error found in a non-2xx answer)."""

    def __init__(self, app: Any, server: ResourceServer) -> None:
        self.app = app
        self.server = server

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        granted = _granted(scope)
        if (
            scope["type"] != "http"
            or scope.get("method") != "POST"
            or granted is None
            or all(s in granted for s in self.server.scopes_supported)
        ):
            await self.app(scope, receive, send)
            return
        read: list[Message] = []
        while True:
            msg = await receive()
            read.append(msg)
            if msg["type"] != "http.request" or not msg.get("more_body", False):
                break
        name, rid = _called_tool(b"".join(m.get("body", b"") for m in read))
        missing = self.server.tool_missing(name, granted) if name is not None else []
        if missing:
            needs = self.server.tool_missing(name or "", [])
            needed = [s for s in self.server.scopes_supported if s in granted or s in needs]
            detail = (
                f"tool {name!r} needs the scope {' and '.join(missing)}; ask the authorization server for it"
            )
            error = {
                "code": INSUFFICIENT_SCOPE,
                "message": f"insufficient_scope: {detail}",
                "data": {
                    "error": "insufficient_scope",
                    "missing_scopes": missing,
                    "required_scopes": needed,
                    "resource_metadata": self.server.metadata_url,
                },
            }
            body = json.dumps({"jsonrpc": "2.0", "id": rid, "error": error}).encode()
            await send_insufficient_scope(send, self.server, missing, needed, detail, body)
            return

        async def replay() -> Message:
            return read.pop(0) if read else await receive()

        await self.app(scope, replay, send)


def _called_tool(body: bytes) -> tuple[str | None, Any]:
    """The tool name and request id of a ``tools/call`` request, else (None, None) (malformed bodies
    are the endpoint's to answer)."""
    if b"tools/call" not in body:
        return None, None
    try:
        message = json.loads(body)
    except (ValueError, RecursionError):
        return None, None
    if not isinstance(message, dict) or message.get("method") != "tools/call":
        return None, None
    params = message.get("params")
    name = params.get("name") if isinstance(params, dict) else None
    rid = message.get("id")
    valid_id = isinstance(rid, str) or (isinstance(rid, int) and not isinstance(rid, bool))
    return (name, rid if valid_id else None) if isinstance(name, str) else (None, None)


class ToolScopes(Middleware):
    """fastmcp middleware: ``tools/list`` shows only the tools the request's token may call; a call the
    HTTP gate did not stop (it always does over HTTP) is refused with the missing scope named."""

    def __init__(self, server: ResourceServer) -> None:
        self.server = server

    def _granted(self) -> list[str]:
        token = get_access_token()
        return list(token.scopes) if token is not None else []

    async def on_list_tools(self, context: MiddlewareContext[Any], call_next: Any) -> Any:
        tools = await call_next(context)
        granted = self._granted()
        return [t for t in tools if not self.server.tool_missing(t.name, granted)]

    async def on_call_tool(self, context: MiddlewareContext[Any], call_next: Any) -> Any:
        name = context.message.name
        missing = self.server.tool_missing(name, self._granted())
        if missing:
            raise InsufficientScopeError(
                missing, message=f"tool {name!r} needs the scope {' and '.join(missing)}"
            )
        return await call_next(context)


__all__ = [
    "INSUFFICIENT_SCOPE",
    "WELL_KNOWN",
    "ResourceServer",
    "ToolScopeGate",
    "ToolScopes",
    "required_scope",
    "send_insufficient_scope",
]
