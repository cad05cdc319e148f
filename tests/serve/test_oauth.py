"""nq-ray as an OAuth 2.1 resource server (``nq_ray.serve.oauth`` through ``build_app``).

A local issuer: RSA keys generated here (joserfc, what fastmcp's verifier uses), its JWKS served by a real
HTTP server on loopback (``http.server`` in a thread), tokens signed here with the claims an OAuth 2.1
authorization server puts in an RFC 9068 JWT access token (``iss``, ``sub``, ``aud``, ``exp``, ``iat``,
``scope``, ``client_id``). The app runs in process (TestClient) and, for the independent clients, on a
real uvicorn server on loopback."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote_plus

import pytest
from fastapi.testclient import TestClient
from joserfc import jwk, jwt

from nq_ray.config import Settings
from nq_ray.errors import ConfigError
from nq_ray.serve.app import build_app
from nq_ray.serve.oauth import INSUFFICIENT_SCOPE
from tests.serve.conftest import AUTH, TOKEN

ISSUER = "https://issuer.nq-ray.test"
RESOURCE = "http://127.0.0.1/mcp"
METADATA_URL = "http://127.0.0.1/.well-known/oauth-protected-resource/mcp"
MCP_HEADERS = {
    "Accept": "application/json, text/event-stream",
    "Content-Type": "application/json",
    "MCP-Protocol-Version": "2025-06-18",
}


CLIENTS = {"trader": ("trader-secret", {"read", "trade"}), "reader": ("reader-secret", {"read"})}


class Issuer:
    """A signing key, its JWKS on a loopback HTTP server (counting fetches), and a token minter.

    As an authorization server (``authorization_server=True``, issuer = its own URL) it also serves its
    RFC 8414 metadata and a token endpoint for the ``client_credentials`` grant (RFC 6749 section 4.4,
    ``client_secret_basic``): the token's ``aud`` is the RFC 8707 ``resource`` the client sent, its scope
    what the client asked for that ``CLIENTS`` allows it."""

    def __init__(self, *, authorization_server: bool = False) -> None:
        self.key = jwk.RSAKey.generate_key(2048, parameters={"kid": "k1", "use": "sig", "alg": "RS256"})
        self.other_key = jwk.RSAKey.generate_key(2048, parameters={"kid": "k1"})  # same kid, other key
        self.fetches = 0
        self.paths: list[str] = []
        self.token_requests: list[tuple[str, str, str | None]] = []  # client, scope asked, resource
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def _json(self, status: int, payload: Any) -> None:
                body = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                issuer.paths.append(self.path)
                if self.path == "/jwks.json":
                    issuer.fetches += 1
                    self._json(200, {"keys": [issuer.key.as_dict(private=False)]})
                elif self.path == "/.well-known/oauth-authorization-server" and authorization_server:
                    self._json(200, issuer.metadata())
                else:
                    self._json(404, {"error": "not_found"})

            def do_POST(self) -> None:
                form = parse_qs(self.rfile.read(int(self.headers.get("Content-Length", 0))).decode())
                user, _, secret = (
                    base64.b64decode(self.headers.get("Authorization", "Basic ").split(" ", 1)[1])
                    .decode()
                    .partition(":")
                )
                client = CLIENTS.get(unquote_plus(user))
                if self.path != "/token" or client is None or client[0] != unquote_plus(secret):
                    self._json(401, {"error": "invalid_client"})
                    return
                asked = form.get("scope", [None])[0]
                resource = form.get("resource", [None])[0]
                issuer.token_requests.append((unquote_plus(user), asked or "", resource))
                granted = [s for s in (asked or "read").split() if s in client[1]]
                token = issuer.token(" ".join(granted), aud=resource, client_id=unquote_plus(user))
                self._json(
                    200,
                    {
                        "access_token": token,
                        "token_type": "Bearer",
                        "expires_in": 300,
                        "scope": " ".join(granted),
                    },
                )

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.iss = self.base if authorization_server else ISSUER
        self.jwks_uri = self.base + "/jwks.json"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def metadata(self) -> dict[str, Any]:
        """RFC 8414 authorization server metadata (the fields an MCP client reads)."""
        return {
            "issuer": self.base,
            "authorization_endpoint": self.base + "/authorize",  # required by RFC 8414; not used here
            "token_endpoint": self.base + "/token",
            "jwks_uri": self.jwks_uri,
            "response_types_supported": ["code"],
            "grant_types_supported": ["client_credentials"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic"],
            "code_challenge_methods_supported": ["S256"],
            "scopes_supported": ["read", "trade"],
        }

    def token(self, scope: str = "read trade", *, key: Any = None, **claims: Any) -> str:
        now = int(time.time())
        body: dict[str, Any] = {
            "iss": self.iss,
            "sub": "trader-1",
            "client_id": "desktop-client",
            "aud": RESOURCE,
            "iat": now,
            "exp": now + 300,
            "scope": scope,
        }
        body.update(claims)
        body = {k: v for k, v in body.items() if v is not None}
        return jwt.encode({"alg": "RS256", "kid": "k1", "typ": "at+jwt"}, body, key or self.key)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def issuer() -> Iterator[Issuer]:
    it = Issuer()
    yield it
    it.close()


def oauth_settings(tmp_path: Path, issuer: Issuer, **mcp: Any) -> Settings:
    oauth = {"issuer": ISSUER, "jwks_uri": issuer.jwks_uri, "resource": RESOURCE, **mcp.pop("oauth", {})}
    return Settings(
        data={"data_dir": str(tmp_path / "data")},
        mcp={"auth_token": TOKEN, "oauth": oauth, **mcp},
        # the orders here test scopes, not sessions: on the wall clock the suite may run in the daily halt
        risk={"limits": {"trade_only_when_open": False}},
    )


@pytest.fixture
def client(tmp_path: Path, issuer: Issuer) -> Iterator[TestClient]:
    app = build_app(oauth_settings(tmp_path, issuer), use_actors=False)
    with TestClient(app, base_url="http://127.0.0.1") as c:
        yield c


def bearer(token: str) -> dict[str, str]:
    return {**MCP_HEADERS, "Authorization": f"Bearer {token}"}


def rpc(method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": 1, "method": method, "params": params or {}}


def call(name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    return rpc("tools/call", {"name": name, "arguments": arguments})


ORDER = {"symbol": "NQ", "side": "buy", "contracts": 1, "order_type": "limit", "price": 20000.0}


def book(client: TestClient, client_order_id: str) -> list[dict[str, Any]]:
    """The broker's orders with this client order id (working and filled), read with the static token."""
    r = client.post(
        "/mcp/",
        json=call("manage_position", {"action": "status", "symbol": "NQ"}),
        headers={
            **MCP_HEADERS,
            **AUTH,
        },
    )
    out = r.json()["result"]["structuredContent"]
    orders = out["working_orders"] + out["recent_fills"]
    return [o for o in orders if o.get("client_order_id") == client_order_id]


# --- discovery --------------------------------------------------------------------------------------


def test_the_protected_resource_metadata_is_served_open_at_both_well_known_uris(client: TestClient) -> None:
    for path in ("/.well-known/oauth-protected-resource/mcp", "/.well-known/oauth-protected-resource"):
        r = client.get(path)
        assert r.status_code == 200, path
        assert r.json() == {
            "resource": RESOURCE,
            "authorization_servers": [ISSUER],  # as configured: clients compare issuers as strings
            "scopes_supported": ["read", "trade"],
            "bearer_methods_supported": ["header"],
            "resource_name": "nq-ray MCP server",
        }


def test_a_request_without_a_token_gets_401_pointing_at_the_metadata(client: TestClient) -> None:
    for auth in (None, "Bearer ", "Bearer", "Basic dXNlcjpwYXNz"):
        headers = dict(MCP_HEADERS) | ({"Authorization": auth} if auth is not None else {})
        r = client.post("/mcp/", json=rpc("tools/list"), headers=headers)
        assert r.status_code == 401, auth
        # RFC 6750 section 3.1: no credentials, no error attribute
        assert r.headers["www-authenticate"] == f'Bearer scope="read", resource_metadata="{METADATA_URL}"'
        assert r.json()["code"] == "unauthorized" and METADATA_URL in r.json()["detail"]


def test_invalid_tokens_get_401_invalid_token(client: TestClient, issuer: Issuer) -> None:
    now = int(time.time())
    bad = {
        "wrong audience": issuer.token(aud="http://127.0.0.1/other-mcp"),
        "no audience": issuer.token(aud=None),
        "expired": issuer.token(exp=now - 60, iat=now - 400),
        "wrong issuer": issuer.token(iss="https://evil.example"),
        "bad signature": issuer.token(key=issuer.other_key),
        "not a jwt": "abc.def",
        "garbage": "x" * 40,
    }
    for what, token in bad.items():
        r = client.post("/mcp/", json=rpc("tools/list"), headers=bearer(token))
        assert r.status_code == 401, what
        challenge = r.headers["www-authenticate"]
        assert challenge.startswith('Bearer error="invalid_token", error_description="'), what
        assert challenge.endswith(f'scope="read", resource_metadata="{METADATA_URL}"'), what
        assert r.json()["code"] == "invalid_token", what
    good = client.post("/mcp/", json=rpc("tools/list"), headers=bearer(issuer.token()))
    assert good.status_code == 200


def test_a_token_without_the_read_scope_gets_403_insufficient_scope(
    client: TestClient, issuer: Issuer
) -> None:
    for scope in ("", "profile email", "trade"):
        r = client.post("/mcp/", json=rpc("tools/list"), headers=bearer(issuer.token(scope)))
        assert r.status_code == 403, scope
        challenge = r.headers["www-authenticate"]
        assert challenge.startswith('Bearer error="insufficient_scope"'), scope
        assert f'scope="read", resource_metadata="{METADATA_URL}"' in challenge
        assert r.json()["code"] == "insufficient_scope" and r.json()["missing_scopes"] == ["read"]


# --- scopes per toolset -----------------------------------------------------------------------------


def test_a_read_token_lists_and_calls_the_read_tools_only(client: TestClient, issuer: Issuer) -> None:
    read = issuer.token("read")
    names = {
        t["name"]
        for t in client.post("/mcp/", json=rpc("tools/list"), headers=bearer(read)).json()["result"]["tools"]
    }
    assert "get_contract_info" in names and "run_backtest" in names
    assert not names & {"place_order", "manage_position", "run_agent_task"}
    every = {
        t["name"]
        for t in client.post("/mcp/", json=rpc("tools/list"), headers=bearer(issuer.token())).json()[
            "result"
        ]["tools"]
    }
    assert every - names == {"place_order", "manage_position", "run_agent_task"}
    r = client.post("/mcp/", json=call("get_contract_info", {"symbol": "NQ"}), headers=bearer(read))
    assert r.status_code == 200 and r.json()["result"]["structuredContent"]["symbol"] == "NQ"


def test_a_jwt_without_trade_cannot_place_an_order_and_one_with_it_can_once(
    client: TestClient, issuer: Issuer
) -> None:
    order = ORDER | {"client_order_id": "oauth-1"}
    r = client.post("/mcp/", json=call("place_order", order), headers=bearer(issuer.token("read")))
    assert r.status_code == 403
    assert r.headers["www-authenticate"].startswith(
        'Bearer error="insufficient_scope", error_description="tool \'place_order\' needs the scope trade'
    )
    assert r.headers["www-authenticate"].endswith(f'scope="read trade", resource_metadata="{METADATA_URL}"')
    assert r.headers["content-type"] == "application/json"
    error = r.json()  # the call's JSON-RPC error, for clients that do not step up
    assert error["id"] == 1 and error["error"]["code"] == INSUFFICIENT_SCOPE
    assert error["error"]["message"].startswith(
        "insufficient_scope: tool 'place_order' needs the scope trade"
    )
    assert error["error"]["data"] == {
        "error": "insufficient_scope",
        "missing_scopes": ["trade"],
        "required_scopes": ["read", "trade"],
        "resource_metadata": METADATA_URL,
    }
    assert book(client, "oauth-1") == []

    trade = issuer.token("read trade")
    first = client.post("/mcp/", json=call("place_order", order), headers=bearer(trade)).json()["result"]
    assert first["isError"] is False and first["structuredContent"]["duplicate"] is False
    again = client.post("/mcp/", json=call("place_order", order), headers=bearer(trade)).json()["result"]
    assert again["structuredContent"]["duplicate"] is True
    assert len(book(client, "oauth-1")) == 1


def test_an_unknown_tool_stays_a_protocol_error_for_a_read_token(client: TestClient, issuer: Issuer) -> None:
    r = client.post("/mcp/", json=call("no_such_tool", {}), headers=bearer(issuer.token("read")))
    assert r.status_code == 200 and r.json()["error"]["code"] == -32602


def test_the_static_token_keeps_every_scope(client: TestClient) -> None:
    headers = {**MCP_HEADERS, **AUTH}
    tools = client.post("/mcp/", json=rpc("tools/list"), headers=headers).json()["result"]["tools"]
    assert "place_order" in {t["name"] for t in tools}
    order = ORDER | {"client_order_id": "static-1"}
    assert (
        client.post("/mcp/", json=call("place_order", order), headers=headers).json()["result"]["isError"]
        is False
    )
    assert client.get("/api/tools", headers=AUTH).status_code == 200


def test_the_rest_api_takes_a_jwt_only_with_every_scope(client: TestClient, issuer: Issuer) -> None:
    r = client.get("/api/tools", headers={"Authorization": f"Bearer {issuer.token('read')}"})
    assert r.status_code == 403 and r.json()["missing_scopes"] == ["trade"]
    assert client.get("/api/tools", headers={"Authorization": f"Bearer {issuer.token()}"}).status_code == 200
    assert client.get("/health").status_code == 200


def test_the_jwks_is_fetched_once_for_many_tokens(tmp_path: Path) -> None:
    fresh = Issuer()  # its own fetch counter
    try:
        app = build_app(oauth_settings(tmp_path, fresh), use_actors=False)
        with TestClient(app, base_url="http://127.0.0.1") as c:
            for scope in ("read", "read trade", "read"):
                assert (
                    c.post("/mcp/", json=rpc("tools/list"), headers=bearer(fresh.token(scope))).status_code
                    == 200
                )
        assert fresh.fetches == 1
    finally:
        fresh.close()


def test_the_audience_setting_replaces_the_resource_url(tmp_path: Path, issuer: Issuer) -> None:
    settings = oauth_settings(tmp_path, issuer, oauth={"audience": ["api://nq-ray"]})
    with TestClient(build_app(settings, use_actors=False), base_url="http://127.0.0.1") as c:
        assert (
            c.post(
                "/mcp/", json=rpc("tools/list"), headers=bearer(issuer.token(aud="api://nq-ray"))
            ).status_code
            == 200
        )
        assert c.post("/mcp/", json=rpc("tools/list"), headers=bearer(issuer.token())).status_code == 401


def test_oauth_alone_without_a_static_token(tmp_path: Path, issuer: Issuer) -> None:
    settings = Settings(
        data={"data_dir": str(tmp_path / "data")},
        mcp={"oauth": {"issuer": ISSUER, "jwks_uri": issuer.jwks_uri, "resource": RESOURCE}},
    )
    with TestClient(build_app(settings, use_actors=False), base_url="http://127.0.0.1") as c:
        assert c.post("/mcp/", json=rpc("tools/list"), headers=MCP_HEADERS).status_code == 401
        assert c.post("/mcp/", json=rpc("tools/list"), headers=bearer(TOKEN)).status_code == 401
        assert (
            c.post("/mcp/", json=rpc("tools/list"), headers=bearer(issuer.token("read"))).status_code == 200
        )


# --- settings ---------------------------------------------------------------------------------------


def test_an_issuer_needs_a_jwks_uri_and_a_resource() -> None:
    from nq_ray.config import load_settings

    with pytest.raises(ConfigError, match="mcp.oauth.jwks_uri and mcp.oauth.resource must be too"):
        load_settings(mcp={"oauth": {"issuer": ISSUER}})
    jwks = ISSUER + "/jwks"
    with pytest.raises(ConfigError, match="must not have a query or a fragment"):
        load_settings(mcp={"oauth": {"issuer": ISSUER, "jwks_uri": jwks, "resource": RESOURCE + "#x"}})
    with pytest.raises(ConfigError, match="must be an http"):
        load_settings(mcp={"oauth": {"issuer": "issuer.example", "jwks_uri": jwks, "resource": RESOURCE}})
    with pytest.raises(ConfigError, match="must differ"):
        load_settings(
            mcp={
                "oauth": {
                    "read_scope": "all",
                    "trade_scope": "all",
                    "issuer": ISSUER,
                    "jwks_uri": jwks,
                    "resource": RESOURCE,
                }
            }
        )
    assert load_settings(mcp={"oauth": {"issuer": " "}}).mcp.oauth.enabled is False  # blank = off


def test_an_issuer_lets_the_api_listen_beyond_loopback_without_a_static_token() -> None:
    from nq_ray.serve.runtime import check_bind

    oauth = {"issuer": ISSUER, "jwks_uri": ISSUER + "/jwks", "resource": "https://nq.example/mcp"}
    check_bind(Settings(serve={"host": "0.0.0.0"}, mcp={"oauth": oauth}))
    with pytest.raises(ConfigError, match="NQ_MCP__OAUTH__ISSUER"):
        check_bind(Settings(serve={"host": "0.0.0.0"}))


def test_required_scope_maps_the_execution_toolset_to_trade() -> None:
    from nq_ray.config import OAuthSettings
    from nq_ray.serve.oauth import required_scope
    from nq_ray.tools.context import ToolContext
    from nq_ray.tools.registry import build_registry

    registry = build_registry(ToolContext.__new__(ToolContext))
    oauth = OAuthSettings(read_scope="nq:read", trade_scope="nq:trade")
    scopes = {name: required_scope(spec, oauth) for name, spec in registry.specs.items()}
    assert (
        {n for n, s in scopes.items() if s == "nq:trade"}
        == {n for n, spec in registry.specs.items() if spec.toolset == "execution" or not spec.read_only}
        == {"place_order", "manage_position", "run_agent_task"}  # an agent's place_trade task orders
    )
    assert scopes["get_nq_price"] == scopes["run_backtest"] == scopes["check_risk_limits"] == "nq:read"


# --- clients nobody here wrote, against the app on a real server ------------------------------------


class MemoryTokens:
    """The MCP SDK client's ``TokenStorage``, in memory."""

    def __init__(self) -> None:
        self.tokens: Any = None
        self.client_info: Any = None

    async def get_tokens(self) -> Any:
        return self.tokens

    async def set_tokens(self, tokens: Any) -> None:
        self.tokens = tokens

    async def get_client_info(self) -> Any:
        return self.client_info

    async def set_client_info(self, client_info: Any) -> None:
        self.client_info = client_info


async def sdk_book(client: Any, client_order_id: str) -> list[dict[str, Any]]:
    """The broker's orders with this client order id, read through an MCP SDK client with trade."""
    out = (await client.call_tool("manage_position", {"action": "status", "symbol": "NQ"})).structured_content
    return [
        o for o in out["working_orders"] + out["recent_fills"] if o.get("client_order_id") == client_order_id
    ]


@contextlib.contextmanager
def served(tmp_path: Path, issuer: Issuer, *, stateless: bool = True) -> Iterator[tuple[str, Any]]:
    """The app on uvicorn on loopback with OAuth from ``issuer`` for its own URL (no static token)."""
    from nq_ray.testing.asgi import ThreadedUvicorn

    target: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await target[0](scope, receive, send)

    srv = ThreadedUvicorn(app)  # the port is bound here, so the resource URL is known before the app
    oauth = {"issuer": issuer.iss, "jwks_uri": issuer.jwks_uri, "resource": srv.url + "/mcp"}
    built = build_app(
        Settings(
            data={"data_dir": str(tmp_path / "data")},
            mcp={"oauth": oauth, "stateless_http": stateless},
            risk={"limits": {"trade_only_when_open": False}},  # as in oauth_settings
        ),
        use_actors=False,
    )
    target.append(built)
    with srv:
        yield srv.url + "/mcp/", built


async def test_the_official_sdk_client_discovers_the_issuer_and_steps_up_to_trade(tmp_path: Path) -> None:
    """The MCP SDK's client-credentials client, told only the MCP URL and its credentials: the 401 leads
    it to the metadata, the metadata to the issuer, the issuer's token endpoint gives it a read token
    (the scope it asked for); ``place_order`` answers 403 ``insufficient_scope`` and the client steps up
    to ``read trade`` (SEP-2350) and the order is placed once. A client the issuer allows ``read`` only
    steps up in vain: the order is refused and never reaches the book."""
    from mcp import Client
    from mcp.client.auth.extensions.client_credentials import ClientCredentialsOAuthProvider
    from mcp.client.streamable_http import streamable_http_client
    from mcp.shared._httpx_utils import create_mcp_http_client
    from mcp.shared.exceptions import MCPError

    auth_server = Issuer(authorization_server=True)
    try:
        with served(tmp_path, auth_server) as (url, _app):

            def connect(client_id: str) -> Any:
                provider = ClientCredentialsOAuthProvider(
                    server_url=url,
                    storage=MemoryTokens(),
                    client_id=client_id,
                    client_secret=CLIENTS[client_id][0],
                    scope="read",
                    issuer=auth_server.iss,
                )
                return Client(streamable_http_client(url, http_client=create_mcp_http_client(auth=provider)))

            order = ORDER | {"client_order_id": "sdk-1"}
            async with connect("trader") as client:
                names = {t.name for t in (await client.list_tools()).tools}
                assert "get_contract_info" in names and "place_order" not in names
                placed = await client.call_tool("place_order", order)
                assert placed.structured_content["duplicate"] is False
                assert len(await sdk_book(client, "sdk-1")) == 1
            resource = url.rstrip("/")
            assert [(c, s) for c, s, _ in auth_server.token_requests] == [
                ("trader", "read"),
                ("trader", "read trade"),
            ]
            assert {r for _, _, r in auth_server.token_requests} == {resource}

            refused = ORDER | {"client_order_id": "sdk-2"}
            async with connect("reader") as client:
                await client.list_tools()
                with pytest.raises(
                    MCPError, match="insufficient_scope: tool 'place_order' needs the scope trade"
                ):
                    await client.call_tool("place_order", refused)
            async with connect("trader") as client:
                assert await sdk_book(client, "sdk-2") == []
            assert auth_server.token_requests[2:4] == [
                ("reader", "read", resource),
                ("reader", "read trade", resource),
            ]
    finally:
        auth_server.close()


def test_the_websocket_takes_a_jwt_with_every_scope(client: TestClient, issuer: Issuer) -> None:
    from starlette.websockets import WebSocketDisconnect

    with (
        pytest.raises(WebSocketDisconnect) as info,
        client.websocket_connect(f"/ws?token={issuer.token('read')}") as ws,
    ):
        ws.receive_json()
    assert info.value.code == 4403
    with (
        pytest.raises(WebSocketDisconnect) as info,
        client.websocket_connect(f"/ws?token={issuer.token(aud='x')}") as ws,
    ):
        ws.receive_json()
    assert info.value.code == 4401
    with client.websocket_connect(f"/ws?token={issuer.token()}") as ws:
        assert ws.receive_json()["type"]


def test_unsigned_and_oversized_tokens_and_an_unreachable_jwks_are_401s_never_500s(
    tmp_path: Path, client: TestClient, issuer: Issuer
) -> None:
    def b64(obj: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

    claims = {"iss": ISSUER, "aud": RESOURCE, "exp": int(time.time()) + 300, "scope": "read trade"}
    unsigned = f"{b64({'alg': 'none', 'kid': 'k1'})}.{b64(claims)}."
    # the alg-confusion attack: HS256 keyed with the issuer's public key, which anyone has
    signing_input = f"{b64({'alg': 'HS256', 'kid': 'k1'})}.{b64(claims)}"
    mac = hmac.new(issuer.key.as_pem(private=False), signing_input.encode(), hashlib.sha256).digest()
    hs256 = f"{signing_input}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"
    for token in (unsigned, hs256, "a." * 5000 + "b", issuer.token() + "x"):
        r = client.post("/mcp/", json=rpc("tools/list"), headers=bearer(token))
        assert r.status_code == 401 and 'error="invalid_token"' in r.headers["www-authenticate"]
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}/jwks.json"
    settings = oauth_settings(tmp_path, issuer, oauth={"jwks_uri": dead})
    with TestClient(build_app(settings, use_actors=False), base_url="http://127.0.0.1") as c:
        r = c.post("/mcp/", json=rpc("tools/list"), headers=bearer(issuer.token()))
        assert r.status_code == 401 and r.json()["code"] == "invalid_token"


@pytest.mark.parametrize("stateless", [True, False], ids=["stateless", "sessions"])
async def test_fastmcp_client_with_a_read_jwt_sees_and_calls_the_read_tools_only(
    tmp_path: Path, issuer: Issuer, stateless: bool
) -> None:
    from fastmcp import Client
    from fastmcp.client.transports import StreamableHttpTransport

    with served(tmp_path, issuer, stateless=stateless) as (url, _app):
        read = issuer.token("read", aud=url.rstrip("/"))
        async with Client(StreamableHttpTransport(url, auth=read)) as c:
            names = {t.name for t in await c.list_tools()}
            assert "get_contract_info" in names and "place_order" not in names
            info = await c.call_tool("get_contract_info", {"symbol": "NQ"})
            assert info.structured_content["symbol"] == "NQ"
            with pytest.raises(
                Exception, match="insufficient_scope: tool 'place_order' needs the scope trade"
            ):
                await c.call_tool("place_order", ORDER | {"client_order_id": "fastmcp-1"})


async def test_behind_the_http_gate_the_fastmcp_middleware_refuses_a_call_without_its_scope(
    tmp_path: Path, issuer: Issuer
) -> None:
    """``ToolScopes`` alone (no ``ToolScopeGate`` in front): a read token that reaches ``tools/call`` of
    ``place_order`` is refused with the missing scope named, and ``tools/list`` is filtered."""
    import contextlib as cl

    import httpx

    from nq_ray.runtime import Runtime
    from nq_ray.serve.mcp_http import MCPEndpoint
    from nq_ray.serve.oauth import ResourceServer, ToolScopes
    from nq_ray.tools.mcp import build_mcp
    from nq_ray.tools.registry import build_registry

    settings = oauth_settings(tmp_path, issuer)
    runtime = Runtime(settings, "in_process")
    registry = build_registry(runtime.tool_context(publish=None))
    server = ResourceServer(settings.mcp.oauth, list(registry.specs.values()), "/mcp")
    mcp = build_mcp(registry)
    mcp.add_middleware(ToolScopes(server))
    endpoint = MCPEndpoint(mcp)
    access = await server.verify(issuer.token("read"))
    assert access is not None

    async def with_read_token(scope: Any, receive: Any, send: Any) -> None:
        from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser

        server.attach(scope, AuthenticatedUser(access))
        await endpoint(scope, receive, send)

    async with cl.AsyncExitStack() as stack:
        await stack.enter_async_context(endpoint.lifespan(None))
        transport = httpx.ASGITransport(app=with_read_token)
        c = await stack.enter_async_context(
            httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1")
        )
        listed = (await c.post("/", json=rpc("tools/list"), headers=MCP_HEADERS)).json()["result"]["tools"]
        assert "place_order" not in {t["name"] for t in listed}
        r = (await c.post("/", json=call("place_order", ORDER), headers=MCP_HEADERS)).json()
        assert r["result"]["isError"] is True  # a tool error the model can read
        assert r["result"]["content"][0]["text"] == "tool 'place_order' needs the scope trade"
    runtime.close()
