"""MCP resources and prompts (``nq_ray.tools.mcp_resources``) through fastmcp's in-memory ``Client`` against
``build_mcp`` over a real in-process runtime (its paper broker journaled to a temp store, a fixed clock),
and once through the stdio server's builder."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastmcp import Client
from mcp.shared.exceptions import MCPError

from nq_ray.config import Settings
from nq_ray.domain.contracts import CONTRACTS
from nq_ray.llm.prompts.engine import SEED_TEMPLATES, PromptTemplateEngine
from nq_ray.market.clock import FixedClock
from nq_ray.runtime import Runtime
from nq_ray.tools.context import ToolContext
from nq_ray.tools.mcp import build_mcp
from nq_ray.tools.mcp_resources import DECISIONS_MAX, DESK_AGENT, PROMPTS
from nq_ray.tools.registry import build_registry

NOW = "2026-03-10T11:00"  # a Tuesday, New York: RTH open
LIMITS = {"max_contracts_per_symbol": 3, "max_total_contracts": 6}
JSON_MIME = "application/json"
RESOURCE_URIS = {
    "nq://contracts",
    "nq://calendar/session",
    "nq://risk/limits",
    "nq://decisions/recent",
    "nq://orders/book",
}
TEMPLATE_URIS = {"nq://contracts/{symbol}", "nq://calendar/{date}", "nq://decisions/recent/{limit}"}


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        data={"data_dir": str(tmp_path / "data")}, risk={"limits": LIMITS, "margins": {"NQ": 40_000.0}}
    )


@pytest.fixture
def runtime(settings: Settings) -> Any:
    rt = Runtime(settings, "in_process", feed=False, clock=FixedClock(NOW))
    yield rt
    rt.close()


@pytest.fixture
async def client(runtime: Any) -> AsyncIterator[Client[Any]]:
    async with Client(build_mcp(runtime.registry(), who="test")) as c:
        yield c


async def read(client: Client[Any], uri: str) -> Any:
    contents = await client.read_resource(uri)
    assert len(contents) == 1 and contents[0].mime_type == "application/json"
    return json.loads(contents[0].text)


# ---- listing ---------------------------------------------------------------------------------------
async def test_lists_the_resources_and_templates_with_titles_and_json(client: Client[Any]) -> None:
    resources = await client.list_resources()
    templates = await client.list_resource_templates()

    assert {str(r.uri) for r in resources} == RESOURCE_URIS
    assert {t.uri_template for t in templates} == TEMPLATE_URIS
    for item in [*resources, *templates]:
        assert item.mime_type == "application/json"
        assert item.title and item.description and len(item.description) > 40


# ---- contracts -------------------------------------------------------------------------------------
async def test_contracts_come_from_the_tools_code_with_the_settings_margins(client: Client[Any]) -> None:
    out = await read(client, "nq://contracts")
    by_symbol = {c["symbol"]: c for c in out["contracts"]}

    assert set(by_symbol) == set(CONTRACTS)
    assert by_symbol["NQ"]["initial_margin_usd"] == 40_000.0  # the risk.margins override
    assert by_symbol["ES"]["initial_margin_usd"] == CONTRACTS["ES"].initial_margin_usd
    assert by_symbol["MNQ"]["point_value_usd"] == 2.0
    tool = await client.call_tool("get_contract_info", {"symbol": "NQ"})
    assert by_symbol["NQ"] == tool.structured_content  # the tool's own answer, front month included
    assert out["clock"] == "wall" and out["as_of"].startswith("2026-03-10T15:00")


@pytest.mark.parametrize(("symbol", "root"), [("NQ", "NQ"), ("mnq", "MNQ"), ("ES=F", "ES"), ("NQH26", "NQ")])
async def test_one_contract_by_symbol_alias_or_code(client: Client[Any], symbol: str, root: str) -> None:
    out = await read(client, f"nq://contracts/{symbol}")
    tool = await client.call_tool("get_contract_info", {"symbol": symbol})
    assert out["contract"]["symbol"] == root
    assert out["contract"] == tool.structured_content  # the resource and the tool say the same


# ---- calendar --------------------------------------------------------------------------------------
async def test_the_session_is_today_on_the_runtimes_clock(client: Client[Any]) -> None:
    out = await read(client, "nq://calendar/session")
    now, day = out["now"], out["session"]

    assert now["state"] == "open" and now["is_open"] and now["is_rth"]
    assert now["next_close"] == "2026-03-10T17:00:00-04:00"
    assert day["date"] == "2026-03-10" and day["trading"]
    assert day["open"] == "2026-03-09T18:00:00-04:00" and day["close"] == "2026-03-10T17:00:00-04:00"
    assert day["daily_halt"] == {"start": "2026-03-10T17:00:00-04:00", "end": "2026-03-10T18:00:00-04:00"}
    assert day["rth"] == {"start": "2026-03-10T09:30:00-04:00", "end": "2026-03-10T16:00:00-04:00"}
    assert not day["early_close"]


async def test_the_session_follows_a_closed_clock(settings: Settings) -> None:
    rt = Runtime(settings, "in_process", feed=False, clock=FixedClock("2026-12-25T12:00"))
    try:
        async with Client(build_mcp(rt.registry())) as c:
            out = await read(c, "nq://calendar/session")
    finally:
        rt.close()
    assert not out["now"]["is_open"] and out["now"]["state"] == "holiday"
    assert out["now"]["next_open"] == "2026-12-27T18:00:00-05:00"
    assert out["session"]["date"] == "2026-12-28"  # closed: the next session to open


async def test_a_date_gives_its_session_or_why_there_is_none(client: Client[Any]) -> None:
    christmas = (await read(client, "nq://calendar/2026-12-25"))["session"]
    saturday = (await read(client, "nq://calendar/2026-12-26"))["session"]
    black_friday = (await read(client, "nq://calendar/2026-11-27"))["session"]
    friday = (await read(client, "nq://calendar/2026-03-13"))["session"]

    assert christmas["trading"] is False and christmas["reason"] == "holiday"
    assert christmas["next_session_date"] == "2026-12-28"
    assert saturday["trading"] is False and saturday["reason"] == "weekend"
    assert black_friday["early_close"] and black_friday["close"] == "2026-11-27T13:00:00-05:00"
    assert black_friday["rth"]["end"] == "2026-11-27T13:00:00-05:00"
    assert friday["trading"] and friday["daily_halt"] is None  # the weekend follows, not a halt
    assert friday["next_open"] == "2026-03-15T18:00:00-04:00"


# ---- risk ------------------------------------------------------------------------------------------
async def test_risk_limits_are_the_gates_and_say_there_is_no_rule_pack(
    client: Client[Any], runtime: Any, settings: Settings
) -> None:
    out = await read(client, "nq://risk/limits")
    assert out["source"] == "paper_broker"
    assert out["limits"]["max_contracts_per_symbol"] == 3 and out["limits"]["max_total_contracts"] == 6
    assert out["rule_pack"] is None and "rule pack" in out["rule_pack_note"]
    assert out["margin_overrides_usd"] == {"NQ": 40_000.0}

    tighter = settings.model_copy(
        update={
            "risk": settings.risk.model_copy(
                update={"limits": settings.risk.limits.model_copy(update={"max_contracts_per_symbol": 1})}
            )
        }
    )
    await runtime.broker().apply_settings(tighter)  # a live change reaches the gate, not the settings
    again = await read(client, "nq://risk/limits")
    assert again["limits"]["max_contracts_per_symbol"] == 1


async def test_risk_limits_without_a_broker_are_the_settings_said_so(settings: Settings) -> None:
    registry = build_registry(ToolContext(settings=settings))
    async with Client(build_mcp(registry)) as c:
        out = await read(c, "nq://risk/limits")
    assert out["source"] == "settings" and "no paper broker" in out["note"]
    assert out["limits"]["max_contracts_per_symbol"] == 3


async def test_risk_limits_show_the_active_packs_rules_with_value_limit_and_distance(
    settings: Settings, tmp_path: Path
) -> None:
    """Topstep 50K Combine, freshly active on a $100,000 paper account at 11:00 on a Tuesday: the account
    is tracked on the pack's $50,000 — max-loss floor $48,000 (room $2,000), daily loss −$1,000 (room
    $1,000), 5 minis, the $3,000 target pending; no blackout at 11:00, and the user's calendar file's
    CPI of 2026-03-11 08:30 ET is among the next 24 hours' events (one 2026-03-12 is not)."""
    cal = tmp_path / "mine.csv"
    cal.write_text(
        "kind,time,title,source\n"
        "cpi,2026-03-11T08:30:00-04:00,CPI (February 2026),https://www.bls.gov/schedule/news_release/cpi.htm\n"
        "ppi,2026-03-12T08:30:00-04:00,PPI (February 2026),https://www.bls.gov/schedule/news_release/ppi.htm\n"
    )
    s = settings.merged({"propfirm": {"pack": "topstep-50k"}, "events": {"calendar_files": [str(cal)]}})
    rt = Runtime(s, "in_process", feed=False, clock=FixedClock(NOW))
    try:
        async with Client(build_mcp(rt.registry(), who="test")) as c:
            out = await read(c, "nq://risk/limits")
    finally:
        rt.close()
    pack = out["rule_pack"]
    rules = {r["rule"]: r for r in pack["rules"]}
    assert pack["pack"]["name"] == "topstep-50k" and pack["status"] == "active"
    assert "rule pack" in out["rule_pack_note"] and "value, limit and distance" in out["rule_pack_note"]
    ml = rules["maximum_loss_limit"]
    assert (ml["value"], ml["limit"], ml["distance"], ml["state"]) == (50_000.0, 48_000.0, 2_000.0, "ok")
    dl = rules["daily_loss_limit"]
    assert (dl["value"], dl["limit"], dl["distance"], dl["consequence"]) == (
        0.0,
        -1_000.0,
        1_000.0,
        "stop_day",
    )
    assert rules["profit_target"]["state"] == "pending" and rules["profit_target"]["distance"] == 3_000.0
    assert rules["maximum_position_size"]["limit"] == 5
    assert pack["state"]["balance_usd"] == 50_000.0 and pack["offset_usd"] == -50_000.0
    assert out["event_blackout"] is None
    titles = [e["title"] for e in out["upcoming_events"]]
    assert "CPI (February 2026)" in titles and "PPI (February 2026)" not in titles


# ---- decisions -------------------------------------------------------------------------------------
def test_the_desk_agent_id_is_the_desks() -> None:
    from nq_ray.agents.desk import TradingDesk

    assert TradingDesk.agent_id == DESK_AGENT


async def test_decisions_are_the_desks_newest_first_and_bounded(
    client: Client[Any], settings: Settings
) -> None:
    from nq_ray.store.repository import Repository

    assert (await read(client, "nq://decisions/recent"))["decisions"] == []  # an empty store

    repo = await Repository.connect(settings.store_url)
    t0 = datetime(2026, 3, 10, 14, 0, tzinfo=UTC)
    try:
        for i, action in enumerate(["hold", "buy", "sell"]):
            await repo.record_decision(
                at=t0 + timedelta(minutes=5 * i),
                agent=DESK_AGENT,
                symbol="NQ",
                action=action,
                decision={"view": {"bias": "long", "confidence": 0.6}, "risk": {"approved": True}},
            )
        await repo.record_decision(at=t0, agent="someone_else", symbol="ES", action="buy")
    finally:
        await repo.close()

    out = await read(client, "nq://decisions/recent")
    two = await read(client, "nq://decisions/recent/2")
    assert [d["action"] for d in out["decisions"]] == ["sell", "buy", "hold"]
    assert out["count"] == 3 and out["limit"] == 20 and out["agent"] == DESK_AGENT
    assert out["decisions"][0]["bias"] == "long" and out["decisions"][0]["approved"] is True
    assert [d["action"] for d in two["decisions"]] == ["sell", "buy"] and two["limit"] == 2
    top = await read(client, f"nq://decisions/recent/{DECISIONS_MAX}")
    assert top["count"] == 3


# ---- the order book --------------------------------------------------------------------------------
async def test_the_order_book_shows_working_orders_positions_and_fills(
    client: Client[Any], runtime: Any
) -> None:
    empty = await read(client, "nq://orders/book")
    assert empty["working_orders"] == [] and empty["positions"] == {} and empty["fills_summary"]["fills"] == 0

    buy = {"symbol": "NQ", "side": "buy", "contracts": 1, "order_type": "limit", "price": 20000.0}
    await client.call_tool("place_order", {**buy, "client_order_id": "res-1"})
    await client.call_tool("place_order", {**buy, "price": 19000.0, "client_order_id": "res-2"})
    when = datetime(2026, 3, 10, 15, 1, tzinfo=UTC)
    fills = await runtime.broker().on_price("NQ", 19990.0, when)  # fills res-1 only
    assert len(fills) == 1

    book = await read(client, "nq://orders/book")
    assert [o["client_order_id"] for o in book["working_orders"]] == ["res-2"]
    assert book["positions"]["NQ"]["quantity"] == 1
    summary = book["fills_summary"]
    assert summary["fills"] == 1 and summary["contracts"] == 1 and summary["by_symbol"]["NQ"]["fills"] == 1
    assert summary["commission_usd"] == pytest.approx(book["recent_fills"][0]["commission_usd"])
    assert book["recent_fills"][0]["client_order_id"] == "res-1" and book["mode"] == "paper"


async def test_the_order_book_without_a_broker_is_a_clean_error(settings: Settings) -> None:
    async with Client(build_mcp(build_registry(ToolContext(settings=settings)))) as c:
        with pytest.raises(MCPError) as err:
            await c.read_resource("nq://orders/book")
    assert err.value.code == -32603 and "[invalid_config]" in err.value.message
    assert "Traceback" not in err.value.message


async def test_on_ray_the_book_and_limits_come_from_the_broker_actor(broker_registry: Any) -> None:
    """The same resources over a registry whose broker is a real ``BrokerActor`` (``RayBroker``), as on
    Serve and on a cluster."""
    async with Client(build_mcp(broker_registry)) as c:
        order = {"symbol": "ES", "side": "sell", "contracts": 1, "order_type": "limit", "price": 9000.0}
        placed = await c.call_tool("place_order", {**order, "client_order_id": "ray-res-1"})
        book = await read(c, "nq://orders/book")
        limits = await read(c, "nq://risk/limits")
    assert placed.structured_content is not None and placed.structured_content["accepted"]
    assert [o["client_order_id"] for o in book["working_orders"]] == ["ray-res-1"]
    assert limits["source"] == "paper_broker" and limits["limits"]["max_contracts_per_symbol"] == 3


# ---- hostile input ---------------------------------------------------------------------------------
HOSTILE: list[tuple[str, str]] = [
    ("nq://contracts/ZZ", "[unknown_symbol] unknown symbol 'ZZ'; known: NQ, MNQ, ES, MES"),
    ("nq://contracts/..%2F..%2Fetc%2Fpasswd", "Resource not found"),
    ("nq://contracts/../../etc/passwd", "Resource not found"),
    ("nq://contracts/%2Fetc%2Fpasswd", "Resource not found"),
    ("nq://contracts/NQ%00", "Resource not found"),
    ("nq://contracts/" + "N" * 5000, "[invalid_argument] symbol must be 1 to 16 characters"),
    ("nq://contracts/NQ/extra", "Resource not found"),
    ("nq://calendar/2026-02-30", "[invalid_argument] date '2026-02-30' is not a date; use YYYY-MM-DD"),
    ("nq://calendar/yesterday", "[invalid_argument] date 'yesterday' is not a date"),
    ("nq://calendar/1800-01-01", "outside the calendar's years"),
    ("nq://calendar/99999-01-01", "is not a date"),
    ("nq://calendar/" + "9" * 3000, "is not a date"),
    ("nq://decisions/recent/0", "[invalid_argument] limit must be an integer from 1 to 200"),
    ("nq://decisions/recent/201", "limit must be an integer from 1 to 200"),
    ("nq://decisions/recent/1000000000000000000000", "limit must be an integer from 1 to 200"),
    ("nq://decisions/recent/-5", "limit must be an integer from 1 to 200"),
    ("nq://decisions/recent/1e3", "limit must be an integer from 1 to 200"),
    ("nq://nothing/here", "Resource not found"),
]


@pytest.mark.parametrize(("uri", "expected"), HOSTILE, ids=[f"hostile-{i}" for i in range(len(HOSTILE))])
async def test_hostile_input_is_a_clean_invalid_params_error(
    client: Client[Any], tmp_path: Path, uri: str, expected: str
) -> None:
    with pytest.raises(MCPError) as err:
        await client.read_resource(uri)
    e = err.value
    assert e.code == -32602 and expected in e.message
    assert (
        str(tmp_path) not in e.message and "site-packages" not in e.message and "Traceback" not in e.message
    )
    assert len(e.message) < 400  # the hostile value is not echoed whole
    ok = await read(client, "nq://contracts/NQ")  # still serving
    assert ok["contract"]["symbol"] == "NQ"


async def test_a_store_that_is_down_is_named_without_its_url(settings: Settings) -> None:
    url = "postgresql+asyncpg://nq:hunter2@127.0.0.1:1/nq"  # nothing listens on port 1: refused at once
    down = settings.model_copy(update={"store": settings.store.model_copy(update={"url": url})})
    async with Client(build_mcp(build_registry(ToolContext(settings=down)))) as c:
        with pytest.raises(MCPError) as err:
            await c.read_resource("nq://decisions/recent")
        contracts = await read(c, "nq://contracts")  # the rest still answers
    assert err.value.code == -32603 and err.value.message.startswith("[store_unavailable]")
    assert "127.0.0.1" not in err.value.message and "hunter2" not in err.value.message
    assert len(contracts["contracts"]) == len(CONTRACTS)


# ---- prompts ---------------------------------------------------------------------------------------
REQUIRED_VALUES = {
    "symbol": "MNQ",
    "timeframe": "15m",
    "market": "last 21012.25, VWAP 20990",
    "patterns": '["double top at 21050", "bull flag"]',
    "idea": "long above 21000, stop 20960",
    "risk_parameters": '{"max_contracts_per_symbol": 3}',
    "proposal": "buy 2 MNQ at market",
    "orders": "[]",
}


async def test_lists_the_six_seed_prompts_with_their_arguments(client: Client[Any]) -> None:
    prompts = {p.name: p for p in await client.list_prompts()}

    assert set(prompts) == set(SEED_TEMPLATES)
    for spec in PROMPTS:
        listed = prompts[spec.template]
        assert listed.description == spec.description and listed.title == spec.title
        assert [(a.name, bool(a.required)) for a in listed.arguments or []] == [
            (a.name, a.required) for a in spec.arguments
        ]
        assert all(a.description for a in listed.arguments or [])
    execution = {a.name: a.required for a in prompts["execution_base"].arguments or []}
    assert execution == {"symbol": True, "idea": True, "risk_parameters": True, "positions": False}


@pytest.mark.parametrize("name", SEED_TEMPLATES)
async def test_each_prompt_renders_through_the_projects_engine(client: Client[Any], name: str) -> None:
    spec = next(p for p in PROMPTS if p.template == name)
    args = {a.name: REQUIRED_VALUES[a.name] for a in spec.arguments if a.required}

    res = await client.get_prompt(name, args)

    engine = PromptTemplateEngine()
    context = {k: json.loads(v) if k in ("patterns", "orders") else v for k, v in args.items()}
    expected = engine.generate_prompt(name, context, agent_type=spec.agent_type)
    assert len(res.messages) == 1 and res.messages[0].role == "user"
    assert res.messages[0].content.text == expected.text
    assert res.meta is not None and res.meta["prompt_version"] == expected.prompt_version
    for value in args.values():
        if not value.startswith("["):
            assert value in expected.text


async def test_list_arguments_take_a_json_array_or_lines(client: Client[Any]) -> None:
    base = {"symbol": "NQ", "market": "quiet"}
    as_json = await client.get_prompt(
        "order_management", {**base, "orders": '["stop s1 at 20950", "limit t1"]'}
    )
    as_lines = await client.get_prompt("order_management", {**base, "orders": "stop s1 at 20950\nlimit t1\n"})
    none = await client.get_prompt("order_management", {**base, "orders": "[]"})

    text = as_json.messages[0].content.text
    assert "- stop s1 at 20950\n- limit t1" in text and text == as_lines.messages[0].content.text
    assert "Working orders:\n- none" in none.messages[0].content.text


@pytest.mark.parametrize(
    ("name", "args", "expected"),
    [
        ("execution_base", {"symbol": "NQ"}, "missing required argument(s): idea, risk_parameters"),
        (
            "risk_assessment",
            {"symbol": "NQ", "proposal": " ", "risk_parameters": "x"},
            "argument(s): proposal",
        ),
        ("market_summary", {"symbol": "NQ", "market": "m", "tools": "x"}, "unknown argument(s) 'tools'"),
        ("analysis_base", {"market": "m" * 20_001}, "over 20000 characters: market"),
        ("no_such_prompt", {}, "Unknown prompt"),
    ],
)
async def test_bad_prompt_arguments_are_invalid_params(
    client: Client[Any], name: str, args: dict[str, str], expected: str
) -> None:
    with pytest.raises(MCPError) as err:
        await client.get_prompt(name, args)
    assert err.value.code == -32602 and expected in err.value.message


@pytest.mark.parametrize("spec", PROMPTS, ids=[p.template for p in PROMPTS])
def test_the_declared_arguments_match_the_engines_templates(spec: Any) -> None:
    """Each declared argument is a variable of the template; every variable is declared (but the engine's
    own and the seed's aliases); a required one cannot be left out, and the required ones are enough."""
    from nq_ray.errors import InvalidArgumentError

    engine = PromptTemplateEngine()
    variables = engine.variables(spec.template) - {"agent_type", "tools", "market_data", "request", "schema"}
    declared = {a.name for a in spec.arguments}
    assert declared == variables
    required = {
        a.name: json.loads(REQUIRED_VALUES[a.name]) if a.is_list else REQUIRED_VALUES[a.name]
        for a in spec.arguments
        if a.required
    }
    engine.generate_prompt(spec.template, required, agent_type=spec.agent_type)  # enough
    for name in required:
        with pytest.raises(InvalidArgumentError):
            engine.generate_prompt(
                spec.template, {k: v for k, v in required.items() if k != name}, agent_type=spec.agent_type
            )


# ---- stdio -----------------------------------------------------------------------------------------
async def test_the_stdio_server_has_the_resources_and_prompts(tmp_path: Path) -> None:
    from nq_ray.mcp_stdio import build_stdio_server

    server = build_stdio_server(Settings(data={"data_dir": str(tmp_path / "stdio")}))
    try:
        async with Client(server) as c:
            uris = {str(r.uri) for r in await c.list_resources()}
            templates = {t.uri_template for t in await c.list_resource_templates()}
            es = json.loads((await c.read_resource("nq://contracts/ES"))[0].text)
            limits = json.loads((await c.read_resource("nq://risk/limits"))[0].text)
            prompts = {p.name for p in await c.list_prompts()}
            summary = await c.get_prompt("market_summary", {"symbol": "ES", "market": "flat"})
    finally:
        server.nq_runtime.close()
    assert uris == RESOURCE_URIS and templates == TEMPLATE_URIS
    assert es["contract"]["point_value_usd"] == 50.0
    assert es["clock"] == "replay"  # the stdio server on the sample replays it
    assert limits["source"] == "paper_broker"
    assert prompts == set(SEED_TEMPLATES) and "summary of ES" in summary.messages[0].content.text


# ---- HTTP ------------------------------------------------------------------------------------------
def test_the_http_endpoint_serves_them_to_a_2025_06_18_client(tmp_path: Path) -> None:
    """The Serve app's ``/mcp/`` (built in this process, no Ray), spoken to as raw JSON-RPC."""
    from fastapi.testclient import TestClient

    from nq_ray.serve.app import build_app

    token = "resources-token"
    headers = {
        "Authorization": f"Bearer {token}",
        "Accept": "application/json, text/event-stream",
        "Content-Type": "application/json",
        "MCP-Protocol-Version": "2025-06-18",
    }
    settings = Settings(data={"data_dir": str(tmp_path / "http")}, mcp={"auth_token": token})

    def rpc(c: TestClient, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        r = c.post(
            "/mcp/",
            json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params or {}},
            headers=headers,
        )
        assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
        return dict(r.json())

    with TestClient(build_app(settings, use_actors=False), base_url="http://127.0.0.1") as c:
        listed = rpc(c, "resources/list")["result"]["resources"]
        templates = rpc(c, "resources/templates/list")["result"]["resourceTemplates"]
        nq = rpc(c, "resources/read", {"uri": "nq://contracts/NQ"})["result"]["contents"][0]
        bad = rpc(c, "resources/read", {"uri": "nq://calendar/2026-13-01"})
        prompt = rpc(
            c, "prompts/get", {"name": "market_summary", "arguments": {"symbol": "NQ", "market": "m"}}
        )
        missing = rpc(c, "prompts/get", {"name": "market_summary", "arguments": {"symbol": "NQ"}})

    assert {r["uri"] for r in listed} == RESOURCE_URIS and all(r["mimeType"] == JSON_MIME for r in listed)
    assert {t["uriTemplate"] for t in templates} == TEMPLATE_URIS
    assert nq["mimeType"] == JSON_MIME and json.loads(nq["text"])["contract"]["tick_size"] == 0.25
    assert (
        bad["error"]["code"] == -32602 and "[invalid_argument] date '2026-13-01'" in bad["error"]["message"]
    )
    assert "summary of NQ" in prompt["result"]["messages"][0]["content"]["text"]
    assert (
        missing["error"]["code"] == -32602
        and "missing required argument(s): market" in missing["error"]["message"]
    )
