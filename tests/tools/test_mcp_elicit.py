"""Approval mode over MCP: a person confirms ``place_order`` through elicitation, or it waits in the desk's
approvals queue. Real fastmcp clients (in memory, both protocol eras; and ``nq-ray mcp`` over stdio), a
real in-process paper broker on a temp SQLite store, the real desk service for the approvals."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastmcp import Client
from fastmcp.client.elicitation import ElicitResult
from fastmcp.exceptions import ToolError

from nq_ray.config import Settings
from nq_ray.market.clock import FixedClock
from nq_ray.runtime import Runtime
from nq_ray.store.desk import DeskStore
from nq_ray.store.live import DESK_STATE_KEY
from nq_ray.store.repository import Repository
from nq_ray.tools.mcp import build_mcp
from tests.execution.helpers import OPEN_LIMITS
from tests.tools.conftest import FIXED_NOW

ORDER = {
    "symbol": "NQ",
    "side": "buy",
    "contracts": 2,
    "order_type": "limit",
    "price": 20000.0,
    "stop_loss": 19950.0,
    "take_profit": 20100.0,
}
ERAS = ["auto", "legacy"]  # 2026-07-28 (input_required round trip) and 2025-11-25 (elicitation/create)
PROTOCOL = {"auto": "2026-07-28", "legacy": "2025-11-25"}


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        data={"data_dir": str(tmp_path / "data"), "default_source": "sample"},
        risk={"limits": OPEN_LIMITS},
    )


@pytest.fixture
def runtime(settings: Settings) -> Iterator[Runtime]:
    rt = Runtime(settings, "in_process", feed=False, clock=FixedClock(FIXED_NOW))  # Tuesday 11:00 ET
    try:
        yield rt
    finally:
        rt.close()


async def desk_state(store: DeskStore, **state: Any) -> None:
    """The desk's persisted state row, as ``DeskService.set_approval_mode`` / ``kill`` write it."""
    old = await store.get_state(DESK_STATE_KEY) or {}
    await store.set_state(DESK_STATE_KEY, {**old, **state}, at=FIXED_NOW)


class Person:
    """An elicitation handler: records what it was shown and answers as told."""

    def __init__(self, answer: Any) -> None:
        self.answer = answer
        self.asked: list[tuple[str, dict[str, Any]]] = []

    async def __call__(self, message: str, response_type: Any, params: Any, context: Any) -> Any:
        self.asked.append((message, params.requested_schema))
        return self.answer


async def book(runtime: Runtime) -> list[Any]:
    return list(await runtime.broker().orders())  # type: ignore[attr-defined]


def client(runtime: Runtime, era: str, person: Person | None = None) -> Client[Any]:
    mcp = build_mcp(runtime.registry(), who="test")
    return Client(mcp, elicitation_handler=person, mode=era)  # type: ignore[arg-type]


@pytest.mark.parametrize("era", ERAS)
async def test_a_declined_order_is_not_in_the_book(runtime: Runtime, store: DeskStore, era: str) -> None:
    await desk_state(store, approval_mode=True)
    person = Person(ElicitResult(action="decline"))

    async with client(runtime, era, person) as c:
        assert c.protocol_version == PROTOCOL[era]
        res = await c.call_tool("place_order", ORDER, raise_on_error=False)

    assert res.is_error and "[order_declined]" in res.content[0].text  # type: ignore[union-attr]
    assert res.structured_content is not None and res.structured_content["status"] == "declined"
    assert await book(runtime) == []
    message, schema = person.asked[0]
    for shown in ("BUY 2 NQ limit @ 20000.00", "Stop-loss: 19950.00, 50.00 points (200 ticks) below",
                  "$2,000.00 risk", "Take-profit: 20100.00, 100.00 points (400 ticks) above",
                  "Risk gate: approved, 2 of 2 contracts"):  # fmt: skip
        assert shown in message, (shown, message)
    confirm = schema["properties"]["confirm"]
    assert confirm["type"] == "boolean" and confirm["default"] is False and schema["required"] == ["confirm"]


@pytest.mark.parametrize("answer", [ElicitResult(action="cancel"), {"confirm": False}])
async def test_cancel_or_accept_without_confirm_sends_nothing(
    runtime: Runtime, store: DeskStore, answer: Any
) -> None:
    await desk_state(store, approval_mode=True)

    async with client(runtime, "legacy", Person(answer)) as c:
        with pytest.raises(ToolError, match=r"\[order_declined\]"):
            await c.call_tool("place_order", ORDER)

    assert await book(runtime) == []


@pytest.mark.parametrize("era", ERAS)
async def test_an_accepted_order_is_in_the_book_once(runtime: Runtime, store: DeskStore, era: str) -> None:
    await desk_state(store, approval_mode=True)
    person = Person({"confirm": True})
    args = {**ORDER, "client_order_id": f"elicit-{era}"}

    async with client(runtime, era, person) as c:
        first = await c.call_tool("place_order", args)
        again = await c.call_tool("place_order", args)  # a retry: not asked again, not placed again

    assert first.structured_content["accepted"] and not first.structured_content["duplicate"]
    assert again.structured_content["duplicate"] is True
    assert len(person.asked) == 1
    orders = await book(runtime)
    assert [o.order.client_order_id for o in orders] == [f"elicit-{era}"]
    assert orders[0].order.quantity == 2 and orders[0].order.limit_price == 20000.0


async def test_an_accepted_order_without_an_id_gets_one_and_is_placed_once(
    runtime: Runtime, store: DeskStore
) -> None:
    await desk_state(store, approval_mode=True)
    person = Person({"confirm": True})

    async with client(runtime, "auto", person) as c:
        res = await c.call_tool("place_order", ORDER)

    orders = await book(runtime)
    assert len(orders) == 1
    assert orders[0].order.client_order_id == res.structured_content["order"]["client_order_id"]
    assert f"Client order id: {orders[0].order.client_order_id}." in person.asked[0][0]


@pytest.mark.parametrize("era", ERAS)
async def test_a_client_without_elicitation_queues_the_order_for_approval(
    runtime: Runtime, store: DeskStore, settings: Settings, era: str
) -> None:
    from nq_ray.agents.service import DeskService

    await desk_state(store, approval_mode=True)
    async with client(runtime, era) as c:
        res = await c.call_tool("place_order", ORDER, raise_on_error=False)
        mine = {**ORDER, "client_order_id": f"queued-{era}"}
        once = await c.call_tool("place_order", mine, raise_on_error=False)
        twice = await c.call_tool("place_order", mine, raise_on_error=False)  # a retry: the same approval

    assert res.is_error and "[approval_pending]" in res.content[0].text  # type: ignore[union-attr]
    detail = res.structured_content
    assert detail is not None and detail["status"] == "pending_approval"
    assert await book(runtime) == []
    assert once.structured_content["approval_id"] == twice.structured_content["approval_id"]
    pending = await store.approvals(status="pending")
    assert [a["id"] for a in pending] == [once.structured_content["approval_id"], detail["approval_id"]]
    assert pending[1]["proposal"]["arguments"]["client_order_id"] == detail["client_order_id"]

    desk = DeskService(settings, tools=runtime.tools(), clock=lambda: FIXED_NOW)
    try:
        approved = await desk.approve(detail["approval_id"], who="tester")
        again = await desk.approve(detail["approval_id"], who="tester")
    finally:
        await desk.close()

    assert approved["approval"]["execution"]["placed"] is True and again["already"] is True
    orders = await book(runtime)
    assert [o.order.client_order_id for o in orders] == [detail["client_order_id"]]
    assert orders[0].order.quantity == 2


@pytest.mark.parametrize("era", ERAS)
async def test_approval_mode_off_places_without_asking(runtime: Runtime, store: DeskStore, era: str) -> None:
    await desk_state(store, approval_mode=False)
    person = Person({"confirm": False})

    async with client(runtime, era, person) as c:
        res = await c.call_tool("place_order", ORDER)

    assert res.structured_content["accepted"] and person.asked == []
    assert len(await book(runtime)) == 1


async def test_a_gate_denied_order_is_not_offered_for_confirmation(
    runtime: Runtime, store: DeskStore
) -> None:
    from tests.tools.conftest import ListAuditor

    await desk_state(store, approval_mode=True, halted=True, halt_reason="kill switch: test")
    person = Person({"confirm": True})
    audit = ListAuditor()

    mcp = build_mcp(runtime.registry(auditor=audit), who="test")
    async with Client(mcp, elicitation_handler=person) as c:
        res = await c.call_tool("place_order", ORDER, raise_on_error=False)

    assert res.is_error and "[risk_denied]" in res.content[0].text  # type: ignore[union-attr]
    assert "halted" in res.content[0].text  # type: ignore[union-attr]
    assert person.asked == [] and await book(runtime) == []
    assert await store.approvals() == []
    assert [(r.tool, r.outcome, r.error_code) for r in audit.records] == [
        ("place_order", "error", "risk_denied")
    ]


async def test_nq_ray_mcp_over_stdio_asks_and_places_only_what_was_accepted(tmp_path: Path) -> None:
    """The real server process (``nq-ray mcp`` on a sample replay, no Ray): the desk's approval mode in its
        store, a declined order and an accepted one (sent twice); the store's order journal is the book. The
    client negotiates 2026-07-28, so over stdio too the question is an input_required round trip."""
    import sys

    from fastmcp.client.transports import StdioTransport

    data_dir = tmp_path / "stdio"
    settings = Settings(data={"data_dir": str(data_dir)})
    repo = await Repository.connect(settings.store_url)
    try:
        await desk_state(DeskStore(repo), approval_mode=True)
        env = {
            "NQ_DATA__DATA_DIR": str(data_dir),
            "PATH": "/usr/bin:/bin",
            "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
            "RAY_USAGE_STATS_ENABLED": "0",
        }
        args = ["-m", "nq_ray.cli", "mcp", "--replay", "2026-04-20T09:30", "--speed", "1"]
        market = {"symbol": "NQ", "side": "buy", "contracts": 1, "order_type": "market"}
        person = Person(ElicitResult(action="decline"))
        transport = StdioTransport(command=sys.executable, args=args, env=env)
        async with Client(transport, timeout=120, elicitation_handler=person) as c:
            assert c.protocol_version == "2026-07-28"
            declined = await c.call_tool(
                "place_order", {**market, "client_order_id": "no-1"}, raise_on_error=False
            )
            person.answer = {"confirm": True}
            placed = await c.call_tool("place_order", {**market, "client_order_id": "yes-1"})
            again = await c.call_tool("place_order", {**market, "client_order_id": "yes-1"})

        assert declined.is_error and "[order_declined]" in declined.content[0].text  # type: ignore[union-attr]
        assert placed.structured_content["accepted"] and again.structured_content["duplicate"]
        assert len(person.asked) == 2 and "BUY 1 NQ market" in person.asked[1][0]
        assert [o.order.client_order_id for o in await repo.list_orders()] == ["yes-1"]
    finally:
        await repo.close()


async def test_an_unreadable_store_refuses_the_order_rather_than_send_it_unconfirmed(tmp_path: Path) -> None:
    from nq_ray.tools.context import ToolContext
    from nq_ray.tools.registry import build_registry

    settings = Settings(  # nothing listens on port 1: approval mode cannot be known
        data={"data_dir": str(tmp_path)}, store={"url": "postgresql+asyncpg://nq:nq@127.0.0.1:1/nq"}
    )
    sent: list[Any] = []
    registry = build_registry(ToolContext(settings=settings, broker_factory=lambda s: sent.append(s)))

    async with Client(build_mcp(registry, who="test"), elicitation_handler=Person({"confirm": True})) as c:
        with pytest.raises(ToolError, match=r"\[store_unavailable\]"):
            await c.call_tool("place_order", ORDER)

    assert sent == []  # the broker was never even made


@pytest.mark.parametrize("token", ["a-bearer-token-both-replicas-share", None])
async def test_the_answer_may_reach_another_replica_when_they_share_the_token(
    runtime: Runtime, store: DeskStore, settings: Settings, token: str | None
) -> None:
    """The 2026-07-28 round trip on the wire, its two rounds on two servers (two Serve replicas over one
    broker): the answer is accepted by the other one when both seal ``requestState`` under the bearer
    token's key, and refused (nothing sent) when each has its own key."""
    import mcp_types
    from mcp.shared.exceptions import MCPError

    from nq_ray.tools.registry import build_registry

    await desk_state(store, approval_mode=True)
    context = runtime.tool_context()
    context.settings = Settings(**{**settings.model_dump(), "mcp": {"auth_token": token}})
    args = {**ORDER, "client_order_id": "two-replicas"}
    person = Person({"confirm": True})
    replicas = [
        Client(build_mcp(build_registry(context), who="test"), elicitation_handler=person) for _ in "ab"
    ]

    async with replicas[0] as a, replicas[1] as b:
        first = await a.session.call_tool("place_order", args, allow_input_required=True)
        assert isinstance(first, mcp_types.InputRequiredResult) and first.request_state
        ask = first.input_requests["confirm_order"]  # type: ignore[index]
        assert ask.method == "elicitation/create" and "BUY 2 NQ limit @ 20000.00" in ask.params.message
        yes = {"confirm_order": mcp_types.ElicitResult(action="accept", content={"confirm": True})}
        if token is None:
            with pytest.raises(MCPError, match="Invalid or expired requestState"):
                await b.session.call_tool(
                    "place_order", args, input_responses=yes, request_state=first.request_state
                )
            assert await book(runtime) == []
            return
        with pytest.raises(MCPError, match="Invalid or expired requestState"):  # the yes was for 2 contracts
            await b.session.call_tool(
                "place_order",
                {**args, "contracts": 4},
                input_responses=yes,
                request_state=first.request_state,
            )
        done = await b.session.call_tool(
            "place_order", args, input_responses=yes, request_state=first.request_state
        )

    assert not done.is_error and done.structured_content["accepted"]  # type: ignore[index]
    assert [o.order.client_order_id for o in await book(runtime)] == ["two-replicas"]


async def test_a_question_nobody_answers_is_a_no(
    runtime: Runtime, store: DeskStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("nq_ray.tools.mcp_elicit.ELICIT_TIMEOUT_S", 0.3)
    await desk_state(store, approval_mode=True)
    gone = asyncio.Event()

    async def away(message: str, response_type: Any, params: Any, context: Any) -> Any:
        await gone.wait()  # never set: the person never answers

    async with Client(
        build_mcp(runtime.registry(), who="test"), elicitation_handler=away, mode="legacy"
    ) as c:
        res = await c.call_tool("place_order", ORDER, raise_on_error=False)

    assert res.is_error and res.structured_content["action"] == "timeout"
    assert await book(runtime) == []


def test_the_message_shows_a_reduced_verdict_and_market_distances() -> None:
    from nq_ray.risk.gate import RiskReason, RiskVerdict
    from nq_ray.tools.execution import order_payload
    from nq_ray.tools.mcp_elicit import confirmation_message

    verdict = RiskVerdict(
        approved=True,
        adjusted_contracts=3,
        requested_contracts=5,
        reasons=[RiskReason(code="max_contracts", message="at most 3 NQ contracts", action="reduce")],
    )
    market = order_payload("MNQ", "sell", 5, "market", None, 20050.0, None, "c-1")
    limit = order_payload("ES", "sell", 2, "limit", 5000.0, 4990.0, 4980.0, "c-2")  # stop on the wrong side

    m, lim = confirmation_message(market, verdict), confirmation_message(limit, verdict)

    assert "SELL 5 MNQ market" in m and "Take-profit: none." in m
    assert "Stop-loss: 20050.00 (entry at market: distance measured at the fill)." in m
    assert "Risk gate: approved, reduced to 3 of 5 contracts (at most 3 NQ contracts)." in m
    assert "10.00 points (40 ticks) below the entry (on the wrong side of the entry) = $1,000.00 risk" in lim
    assert "Take-profit: 4980.00, 20.00 points (80 ticks) below the entry = $2,000.00 gain" in lim


async def test_a_client_whose_elicitation_fails_gets_the_queue(runtime: Runtime, store: DeskStore) -> None:
    await desk_state(store, approval_mode=True)

    async def broken(message: str, response_type: Any, params: Any, context: Any) -> Any:
        raise RuntimeError("this client declares elicitation but cannot show a form")

    async with Client(
        build_mcp(runtime.registry(), who="test"), elicitation_handler=broken, mode="legacy"
    ) as c:
        res = await c.call_tool("place_order", ORDER, raise_on_error=False)

    assert res.is_error and res.structured_content["status"] == "pending_approval"
    assert await book(runtime) == [] and len(await store.approvals(status="pending")) == 1
