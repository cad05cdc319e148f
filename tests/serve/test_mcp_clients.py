"""MCP clients nobody here wrote, over both transports: ``nq-ray mcp`` as a real subprocess (stdio) and
``/mcp/`` on the real Serve app (2 replicas, a token).

- the official MCP Python SDK (``mcp`` 2.3): ``ClientSession`` over ``stdio_client`` and
  ``streamable_http_client`` (initialize, tools with annotations and output schemas, a call whose
  ``structuredContent`` the SDK validates against the tool's output schema, resources, templates,
  prompts), and its high-level ``Client`` in ``auto`` mode (``server/discover``, 2026-07-28);
- the MCP Inspector's command-line mode (npm ``@modelcontextprotocol/inspector`` 2.x, installed by
  ``make mcp-inspector`` into ``.tools/inspector``);
- a client pinned to 2025-06-18, by raw JSON-RPC over HTTP;
- the client configs of docs/mcp-clients.md: parsed, the stdio ones started exactly as written (paths
  filled in), the HTTP ones connected with their url and headers, Claude Desktop's ``mcp-remote`` bridge run.
- annotations right for each tool, the ``nq://`` resources and templates, the seed's six prompts.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import httpx2
import jsonschema
import pytest
from mcp import types
from mcp.client.client import Client
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.types.version import (
    HANDSHAKE_PROTOCOL_VERSIONS,
    KNOWN_PROTOCOL_VERSIONS,
    LATEST_HANDSHAKE_VERSION,
    LATEST_MODERN_VERSION,
    LATEST_PROTOCOL_VERSION,
)

from tests.serve.conftest import TOKEN, Running, deployed
from tests.tools.conftest import EXPECTED_TOOLS

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

T = TypeVar("T")
ROOT = Path(__file__).resolve().parents[2]
TOOLS = ROOT / ".tools" / "inspector"
TOOLS_BIN = TOOLS / "node_modules" / ".bin"  # the Inspector, mcp-remote and (where needed) Node 22
NQ_RAY = Path(sys.executable).parent / "nq-ray"
# The checkout's code in the server subprocesses, whichever checkout the venv was installed from.
PYTHONPATH = f"{ROOT}{os.pathsep}{ROOT / 'ui'}"
DOCS = ROOT / "docs" / "mcp-clients.md"

DESTRUCTIVE = {"place_order", "manage_position", "run_agent_task"}
READ_ONLY = {  # the data and analysis tools
    "get_nq_price",
    "get_historical_data",
    "get_market_hours",
    "get_contract_info",
    "generate_mock_data",
    "calculate_technical_indicators",
    "detect_patterns",
    "analyze_momentum",
    "find_support_resistance",
    "scan_market",
}
STATIC_RESOURCES = {
    "nq://contracts",
    "nq://calendar/session",
    "nq://risk/limits",
    "nq://decisions/recent",
    "nq://orders/book",
}
RESOURCE_TEMPLATES = {"nq://contracts/{symbol}", "nq://calendar/{date}"}
SEED_PROMPTS = {
    "analysis_base",
    "pattern_recognition",
    "market_summary",
    "execution_base",
    "risk_assessment",
    "order_management",
}
READS = ("nq://contracts/NQ", "nq://risk/limits", "nq://calendar/session")


# --- the official SDK's client: one session per transport, every method --------------------------


@dataclass
class Seen:
    """What one SDK session got: each list, the call, and each read/prompt (a result or the error)."""

    init: types.InitializeResult
    tools: list[types.Tool]
    call: types.CallToolResult
    resources: list[types.Resource]
    templates: list[types.ResourceTemplate]
    prompts: list[types.Prompt]
    reads: dict[str, types.ReadResourceResult | Exception]
    rendered: dict[str, types.GetPromptResult | Exception]


async def _outcome(call: Awaitable[T]) -> T | Exception:
    try:
        return await call
    except Exception as exc:  # what the server answered (an MCP error): asserted by the tests
        return exc


def _prompt_arguments(prompt: types.Prompt) -> dict[str, str]:
    """A value for each required argument: a symbol where it asks for one, else a short request."""
    return {
        a.name: ("NQ" if "symbol" in a.name else "Assess NQ for a long entry")
        for a in prompt.arguments or []
        if a.required
    }


async def _exchange(session: ClientSession) -> Seen:
    init = await session.initialize()
    tools = (await session.list_tools()).tools
    call = await session.call_tool("get_contract_info", {"symbol": "NQ"})  # the SDK validates it
    resources = (await session.list_resources()).resources
    templates = (await session.list_resource_templates()).resource_templates
    prompts = (await session.list_prompts()).prompts
    reads = {uri: await _outcome(session.read_resource(uri)) for uri in READS}
    rendered = {p.name: await _outcome(session.get_prompt(p.name, _prompt_arguments(p))) for p in prompts}
    return Seen(init, tools, call, resources, templates, prompts, reads, rendered)


def _stdio(command: str, args: list[str], env: dict[str, str], **kw: Any) -> StdioServerParameters:
    return StdioServerParameters(command=command, args=args, env=env, **kw)


def _nq_ray_mcp(data_dir: Path) -> StdioServerParameters:
    env = {"NQ_DATA__DATA_DIR": str(data_dir), "PYTHONPATH": PYTHONPATH, "RAY_USAGE_STATS_ENABLED": "0"}
    return _stdio(str(NQ_RAY), ["mcp"], env)


async def _over_stdio(
    server: StdioServerParameters, errlog: Path, use: Callable[[ClientSession], Awaitable[T]]
) -> T:
    with errlog.open("a") as err:
        async with stdio_client(server, errlog=err) as (read, write), ClientSession(read, write) as session:
            return await use(session)


async def _over_http(url: str, headers: dict[str, str], use: Callable[[ClientSession], Awaitable[T]]) -> T:
    async with (
        httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(30, read=300)) as http,
        streamable_http_client(url, http_client=http) as (read, write),
        ClientSession(read, write) as session,
    ):
        return await use(session)


def _bearer(token: str = TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
def app(ray_session: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    with deployed(ray_session, tmp_path_factory.mktemp("clients"), "clients") as running:
        yield running


@pytest.fixture(scope="module", params=["stdio", "http"])
def seen(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Seen:
    if request.param == "stdio":
        tmp = tmp_path_factory.mktemp("sdk-stdio")
        return asyncio.run(_over_stdio(_nq_ray_mcp(tmp / "data"), tmp / "server.log", _exchange))
    app: Running = request.getfixturevalue("app")
    return asyncio.run(_over_http(app.mcp_url, _bearer(), _exchange))


def test_the_sdk_client_initializes_on_the_newest_handshake_revision(seen: Seen) -> None:
    assert seen.init.protocol_version == LATEST_HANDSHAKE_VERSION == "2025-11-25"
    assert seen.init.server_info.name == "nq-ray"
    caps = seen.init.capabilities
    assert caps.tools is not None and caps.resources is not None and caps.prompts is not None


def test_the_sdk_client_sees_every_tool_with_a_title_annotations_and_an_output_schema(seen: Seen) -> None:
    assert {t.name for t in seen.tools} == EXPECTED_TOOLS
    for tool in seen.tools:
        assert tool.title, tool.name
        assert tool.annotations is not None, tool.name
        assert tool.annotations.read_only_hint is not None and tool.annotations.destructive_hint is not None
        assert tool.output_schema is not None and tool.output_schema["type"] == "object", tool.name
        jsonschema.Draft202012Validator.check_schema(tool.output_schema)


def test_the_sdk_client_calls_a_tool_and_gets_structured_content_and_the_same_json_as_text(
    seen: Seen,
) -> None:
    assert seen.call.is_error is False
    structured = seen.call.structured_content
    assert structured is not None
    # CME's NQ: $20 a point, 0.25-point ticks of $5 (the contract spec, cmegroup.com).
    assert (structured["symbol"], structured["point_value_usd"], structured["tick_size"]) == ("NQ", 20, 0.25)
    assert structured["tick_value_usd"] == 5
    text = [c for c in seen.call.content if isinstance(c, types.TextContent)]
    assert len(text) == 1 and json.loads(text[0].text) == structured  # for clients older than 2025-06-18
    schema = next(t.output_schema for t in seen.tools if t.name == "get_contract_info")
    jsonschema.validate(structured, schema)


def test_the_sdk_client_lists_resources_templates_and_prompts(seen: Seen) -> None:
    assert isinstance(seen.resources, list) and isinstance(seen.templates, list)
    assert isinstance(seen.prompts, list)
    assert all(r.uri and r.name for r in seen.resources)
    assert all(p.name for p in seen.prompts)


def test_orders_are_destructive_and_data_and_analysis_read_only(seen: Seen) -> None:
    by_name = {t.name: t for t in seen.tools}
    for name in DESTRUCTIVE:
        hints = by_name[name].annotations
        assert hints is not None and hints.destructive_hint is True and hints.read_only_hint is False, name
    place_order = by_name["place_order"].annotations
    assert place_order is not None and place_order.idempotent_hint is True  # by client_order_id
    for tool in seen.tools:
        hints = tool.annotations
        assert hints is not None and hints.open_world_hint is not None, tool.name
        if tool.name in READ_ONLY:
            assert hints.read_only_hint is True and hints.destructive_hint is False, tool.name


def test_the_nq_resources_and_templates_are_listed(seen: Seen) -> None:
    assert {str(r.uri) for r in seen.resources} >= STATIC_RESOURCES
    assert {t.uri_template for t in seen.templates} >= RESOURCE_TEMPLATES


def test_a_contract_the_risk_limits_and_the_session_are_readable(seen: Seen) -> None:
    for uri, got in seen.reads.items():
        assert isinstance(got, types.ReadResourceResult), f"{uri}: {got!r}"
        assert got.contents and all(str(c.uri) == uri for c in got.contents), uri
    contract = seen.reads["nq://contracts/NQ"]
    assert isinstance(contract, types.ReadResourceResult)
    first = contract.contents[0]
    assert (
        isinstance(first, types.TextResourceContents) and json.loads(first.text)["contract"]["symbol"] == "NQ"
    )


def test_the_seeds_six_prompts_are_listed_with_arguments_and_render(seen: Seen) -> None:
    prompts = {p.name: p for p in seen.prompts}
    assert set(prompts) >= SEED_PROMPTS
    for name in SEED_PROMPTS:
        assert prompts[name].arguments, f"{name} takes no arguments"
        got = seen.rendered[name]
        assert isinstance(got, types.GetPromptResult), f"{name}: {got!r}"
        texts = [m.content.text for m in got.messages if isinstance(m.content, types.TextContent)]
        assert texts and all(t.strip() for t in texts), name


# --- the SDK's high-level Client, which probes server/discover (the 2026-07-28 envelope) ------------


@pytest.mark.parametrize("transport", ["stdio", "http"])
def test_the_sdk_high_level_client_negotiates_the_modern_revision_and_calls(
    transport: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    async def go() -> tuple[str, dict[str, Any] | None, set[str]]:
        if transport == "stdio":
            with (tmp_path / "server.log").open("a") as err:
                async with Client(stdio_client(_nq_ray_mcp(tmp_path / "data"), errlog=err), mode="auto") as c:
                    return await _discovered(c)
        app: Running = request.getfixturevalue("app")
        async with (
            httpx2.AsyncClient(headers=_bearer(), timeout=httpx2.Timeout(30, read=300)) as http,
            Client(streamable_http_client(app.mcp_url, http_client=http), mode="auto") as c,
        ):
            return await _discovered(c)

    version, structured, names = asyncio.run(go())
    assert version == LATEST_MODERN_VERSION == "2026-07-28"
    assert names == EXPECTED_TOOLS
    assert structured is not None and structured["symbol"] == "ES" and structured["point_value_usd"] == 50


async def _discovered(client: Client) -> tuple[str, dict[str, Any] | None, set[str]]:
    tools = await client.list_tools()
    result = await client.call_tool("get_contract_info", {"symbol": "ES"})
    return client.protocol_version, result.structured_content, {t.name for t in tools.tools}


# --- a client pinned to 2025-06-18: raw JSON-RPC over HTTP -----------------------------------------


def test_a_client_pinned_to_2025_06_18_initializes_lists_and_calls(app: Running) -> None:
    base = {**_bearer(), "Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
    pinned = {**base, "MCP-Protocol-Version": "2025-06-18"}
    with httpx.Client(timeout=60) as http:
        init = http.post(
            app.mcp_url,
            headers=base,
            json={
                "jsonrpc": "2.0",
                "id": 1,
                "method": "initialize",
                "params": {
                    "protocolVersion": "2025-06-18",
                    "capabilities": {},
                    "clientInfo": {"name": "pinned-2025-06-18", "version": "1.0"},
                },
            },
        )
        assert init.status_code == 200 and init.headers["content-type"].startswith("application/json")
        assert init.json()["result"]["protocolVersion"] == "2025-06-18"
        assert "Mcp-Session-Id" not in init.headers  # stateless: nothing to carry between calls
        note = {"jsonrpc": "2.0", "method": "notifications/initialized"}
        assert http.post(app.mcp_url, headers=pinned, json=note).status_code == 202

        listed = http.post(
            app.mcp_url, headers=pinned, json={"jsonrpc": "2.0", "id": 2, "method": "tools/list"}
        )
        tools = listed.json()["result"]["tools"]
        assert {t["name"] for t in tools} == EXPECTED_TOOLS
        assert all("outputSchema" in t and "annotations" in t for t in tools)  # both are in 2025-06-18

        call = {"name": "get_market_hours", "arguments": {}}
        called = http.post(
            app.mcp_url,
            headers=pinned,
            json={"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": call},
        )
        result = called.json()["result"]
        assert result["isError"] is False and result["structuredContent"]["status"]["state"]
        assert json.loads(result["content"][0]["text"]) == result["structuredContent"]


# --- the MCP Inspector's command-line mode ---------------------------------------------------------


def _inspector(target: list[str], method: list[str], home: Path) -> dict[str, Any]:
    exe = TOOLS_BIN / "mcp-inspector"
    assert exe.exists(), f"{exe} is missing: `make mcp-inspector` installs the MCP Inspector"
    env = {"PATH": f"{TOOLS_BIN}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}", "HOME": str(home)}
    cmd = [str(exe), "--cli", "--format", "json", "-q", *target, *method]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env, check=False)
    assert done.returncode == 0, f"{' '.join(method)}: rc {done.returncode}\n{done.stderr[-3000:]}"
    return json.loads(done.stdout)["result"]


@pytest.fixture(params=["stdio", "http"])
def inspect_with(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[..., dict[str, Any]]:
    """Runs the Inspector CLI against ``nq-ray mcp`` (it starts the server) or the Serve app."""
    if request.param == "stdio":
        env = [
            f"NQ_DATA__DATA_DIR={tmp_path / 'data'}",
            f"PYTHONPATH={PYTHONPATH}",
            "RAY_USAGE_STATS_ENABLED=0",
        ]
        target = [arg for e in env for arg in ("-e", e)] + [str(NQ_RAY), "mcp"]
    else:
        app: Running = request.getfixturevalue("app")
        target = [app.mcp_url, "--transport", "http", "--header", f"Authorization: Bearer {TOKEN}"]
    return lambda *method: _inspector(target, list(method), tmp_path)


def test_the_inspector_lists_tools_with_annotations_and_output_schemas(
    inspect_with: Callable[..., Any],
) -> None:
    tools = inspect_with("--method", "tools/list")["tools"]
    assert {t["name"] for t in tools} == EXPECTED_TOOLS
    for tool in tools:
        assert tool["title"] and tool["outputSchema"]["type"] == "object", tool["name"]
        assert {"readOnlyHint", "destructiveHint"} <= set(tool["annotations"]), tool["name"]


def test_the_inspector_calls_a_tool(inspect_with: Callable[..., Any]) -> None:
    result = inspect_with(
        "--method", "tools/call", "--tool-name", "get_contract_info", "--tool-arg", "symbol=ES"
    )
    assert result["isError"] is False
    assert (
        result["structuredContent"]["symbol"] == "ES" and result["structuredContent"]["point_value_usd"] == 50
    )
    assert json.loads(result["content"][0]["text"]) == result["structuredContent"]


def test_the_inspector_lists_resources_templates_and_prompts(inspect_with: Callable[..., Any]) -> None:
    assert isinstance(inspect_with("--method", "resources/list")["resources"], list)
    assert isinstance(inspect_with("--method", "resources/templates/list")["resourceTemplates"], list)
    assert isinstance(inspect_with("--method", "prompts/list")["prompts"], list)


def test_the_inspector_sees_the_nq_resources_and_the_seed_prompts(
    inspect_with: Callable[..., Any],
) -> None:
    resources = inspect_with("--method", "resources/list")["resources"]
    assert {r["uri"] for r in resources} >= STATIC_RESOURCES
    templates = inspect_with("--method", "resources/templates/list")["resourceTemplates"]
    assert {t["uriTemplate"] for t in templates} >= RESOURCE_TEMPLATES
    prompts = inspect_with("--method", "prompts/list")["prompts"]
    assert {p["name"] for p in prompts} >= SEED_PROMPTS
    tools = {t["name"]: t for t in inspect_with("--method", "tools/list")["tools"]}
    assert all(tools[name]["annotations"]["destructiveHint"] is True for name in DESTRUCTIVE)


# --- the client configs of docs/mcp-clients.md -----------------------------------------------------

CONFIG_BLOCK = re.compile(r"<!-- client-config: ([\w-]+) -->\n```json\n(.*?)^```", re.DOTALL | re.MULTILINE)
CONFIGS = {"claude-desktop-stdio", "claude-desktop-http", "claude-code-http", "vscode", "cursor"}


def _configs() -> dict[str, dict[str, Any]]:
    return {name: json.loads(body) for name, body in CONFIG_BLOCK.findall(DOCS.read_text(encoding="utf-8"))}


def _entries() -> dict[str, dict[str, Any]]:
    """Every server entry of every config, as ``<config>/<server>``."""
    out = {}
    for name, config in _configs().items():
        servers = config["servers"] if name == "vscode" else config["mcpServers"]
        out.update({f"{name}/{server}": entry for server, entry in servers.items()})
    return out


def _filled(value: str, base: str = "http://127.0.0.1:8000") -> str:
    """The placeholders a person (or the client) fills in: the checkout, the token, the app's address."""
    for placeholder, real in (
        ("/path/to/nq-ray", str(ROOT)),
        ("${workspaceFolder}", str(ROOT)),
        ("${NQ_MCP__AUTH_TOKEN}", TOKEN),
        ("${env:NQ_MCP__AUTH_TOKEN}", TOKEN),
        ("${input:nq-ray-token}", TOKEN),
        ("<your NQ_MCP__AUTH_TOKEN>", TOKEN),
        ("http://127.0.0.1:8000", base),
    ):
        value = value.replace(placeholder, real)
    return value


def test_every_client_config_in_the_docs_parses_in_its_clients_shape() -> None:
    configs = _configs()
    assert set(configs) == CONFIGS
    vscode = configs["vscode"]
    assert {e["type"] for e in vscode["servers"].values()} == {"stdio", "http"}
    assert [i["id"] for i in vscode["inputs"]] == ["nq-ray-token"] and vscode["inputs"][0]["password"] is True
    entries = _entries()
    stdio = {k: e for k, e in entries.items() if "command" in e and e["command"] != "npx"}
    http = {k: e for k, e in entries.items() if "url" in e}
    assert set(stdio) == {"claude-desktop-stdio/nq-ray", "vscode/nq-ray", "cursor/nq-ray"}
    assert set(http) == {"claude-code-http/nq-ray", "vscode/nq-ray-http", "cursor/nq-ray-http"}
    for key, entry in stdio.items():
        assert entry["command"].endswith("/.venv/bin/nq-ray") and entry["args"] == ["mcp"], key
        assert set(entry["env"]) == {"NQ_DATA__DATA_DIR"}, key
    for key, entry in http.items():
        assert entry["url"] == "http://127.0.0.1:8000/mcp/", key  # with the slash: no redirect per call
        assert set(entry["headers"]) == {"Authorization"} and entry["headers"]["Authorization"].startswith(
            "Bearer "
        )
    assert entries["claude-code-http/nq-ray"]["type"] == "http"


async def _list_and_call(session: ClientSession) -> tuple[set[str], dict[str, Any] | None]:
    await session.initialize()
    tools = await session.list_tools()
    result = await session.call_tool("get_contract_info", {"symbol": "MNQ"})
    return {t.name for t in tools.tools}, result.structured_content


def test_the_stdio_configs_in_the_docs_start_a_server_the_sdk_client_lists(tmp_path: Path) -> None:
    """Each stdio entry as a client runs it: its command and args, its env (the data dir moved into the
    test's temp dir; ``PYTHONPATH`` so the checkout's code runs)."""
    stdio = {k: e for k, e in _entries().items() if "command" in e and e["command"] != "npx"}
    for key, entry in sorted(stdio.items()):
        env = {k: _filled(v) for k, v in entry["env"].items()}
        assert env["NQ_DATA__DATA_DIR"] == str(ROOT / ".nq_data"), key
        env |= {"NQ_DATA__DATA_DIR": str(tmp_path / key.replace("/", "-")), "PYTHONPATH": PYTHONPATH}
        command = _filled(entry["command"])
        assert Path(command).exists(), f"{key}: {command}"
        server = _stdio(command, [_filled(a) for a in entry["args"]], env)
        names, contract = asyncio.run(_over_stdio(server, tmp_path / "server.log", _list_and_call))
        assert names == EXPECTED_TOOLS, key
        assert contract is not None and contract["point_value_usd"] == 2, key  # Micro E-mini: $2 a point


def test_the_http_configs_in_the_docs_reach_the_serve_app(app: Running) -> None:
    http = {k: e for k, e in _entries().items() if "url" in e}
    for key, entry in sorted(http.items()):
        url = _filled(entry["url"], app.base)
        headers = {k: _filled(v) for k, v in entry["headers"].items()}
        names, contract = asyncio.run(_over_http(url, headers, _list_and_call))
        assert names == EXPECTED_TOOLS and contract is not None and contract["symbol"] == "MNQ", key


def test_the_claude_desktop_http_config_bridges_to_the_serve_app_through_mcp_remote(
    app: Running, tmp_path: Path
) -> None:
    """Claude Desktop starts ``npx -y mcp-remote@0.15 <url> --header Authorization:${NQ_AUTH_HEADER}`` with
    its env; mcp-remote (installed by ``make mcp-inspector``, so npx finds it without a download) fills in
    the header and speaks streamable HTTP to the app."""
    entry = _configs()["claude-desktop-http"]["mcpServers"]["nq-ray-http"]
    path = f"{TOOLS_BIN}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}"
    npx = shutil.which(entry["command"], path=path)
    assert npx is not None and (TOOLS_BIN / "mcp-remote").exists(), "`make mcp-inspector` installs mcp-remote"
    args = [_filled(a, app.base) for a in entry["args"]]
    assert "Authorization:${NQ_AUTH_HEADER}" in args  # mcp-remote, not the client, expands it
    env = {k: _filled(v) for k, v in entry["env"].items()} | {"PATH": path, "HOME": str(tmp_path)}
    server = _stdio(npx, args, env, cwd=str(TOOLS))
    names, contract = asyncio.run(_over_stdio(server, tmp_path / "bridge.log", _list_and_call))
    assert names == EXPECTED_TOOLS and contract is not None and contract["symbol"] == "MNQ"


def test_the_docs_name_the_protocol_revisions_the_installed_sdk_speaks() -> None:
    """The table of docs/mcp-clients.md against ``mcp.types.version`` of the installed SDK: a bumped SDK
    that adds a revision fails here until the docs say so."""
    text = DOCS.read_text(encoding="utf-8")
    section = text[text.index("## Protocol versions") : text.index("## Claude Desktop")]
    rows = [line for line in section.splitlines() if line.startswith("| 20")]
    named = {v for row in rows for v in re.findall(r"\d{4}-\d{2}-\d{2}", row.split("|")[1])}
    assert named == set(KNOWN_PROTOCOL_VERSIONS)
    handshake = [
        v
        for row in rows
        if "`initialize` handshake" in row
        for v in re.findall(r"\d{4}-\d{2}-\d{2}", row.split("|")[1])
    ]
    assert handshake == list(HANDSHAKE_PROTOCOL_VERSIONS)
    (newest,) = [row for row in rows if "LATEST_HANDSHAKE_VERSION" in row]
    assert newest.split("|")[1].strip() == LATEST_HANDSHAKE_VERSION
    (modern,) = [row for row in rows if "LATEST_PROTOCOL_VERSION" in row]
    assert modern.split("|")[1].strip() == LATEST_PROTOCOL_VERSION == LATEST_MODERN_VERSION
