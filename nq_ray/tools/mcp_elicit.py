"""A person confirms MCP orders through the protocol (elicitation) when the desk's approval mode is on.

Approval mode is the desk's switch (``PUT /api/desk/approval-mode``, ``nq-ray desk approval-mode``),
persisted in the store's desk state (``desk_state``, key ``desk``). It used to hold only the desk's own
proposals; with it on, an MCP ``place_order`` is held too, and never sent until a person says yes:

1. The arguments are validated as always (bad ones are the ordinary tool error) and the order gets its
   ``client_order_id`` (the caller's, or one minted now and kept for the whole exchange).
2. An order already in the book under that ``client_order_id`` is a retry: nobody is asked again and
   ``place_order`` answers as always (the stored order, ``duplicate: true``; a different order under
   the id is refused).
3. The risk gate judges the order first (the broker's ``check_order``, the pre-check ``place_order``
   and ``check_risk_limits`` use). An order it denies is never offered for confirmation: the answer is
   the tool error ``[risk_denied]`` with the gate's reasons, and nothing is sent.
4. A client that declared the elicitation capability (form mode) is asked: symbol, side, contracts, the
   order type and its price, stop-loss and take-profit with their distances from the entry (points,
   ticks, USD), and the gate's verdict (approved, or reduced and why). The form has one boolean,
   ``confirm``, false by default. Accept with ``confirm: true`` places the order exactly once (under its
   ``client_order_id``); decline, cancel, accept with ``confirm: false``, or no answer within
   ``ELICIT_TIMEOUT_S`` (handshake era) places nothing and answers the tool error ``[order_declined]``.

   - On a handshake-era connection (2025-06-18, 2025-11-25: stdio, a stateful HTTP session, in memory)
     the server sends ``elicitation/create`` and waits for the answer.
   - On a 2026-07-28 connection (no server-initiated requests) the tool answers ``input_required``
     with the ``elicitation/create`` request embedded (SEP-2322), and the client calls again with the
     person's answer; the minted ``client_order_id`` travels in the sealed ``requestState``, which the
     SDK binds to the tool and its exact arguments, so an answer cannot be replayed onto another order.

5. A client without elicitation (or a stateless handshake-era HTTP call, which has no back-channel)
   gets the desk's approvals queue: the order is recorded (a decision row, agent ``mcp``) and queued
   as a pending approval that expires after ``APPROVAL_TTL_S``; the answer is the tool error
   ``[approval_pending]`` with the approval id (the same approval again for a retry with the same
   ``client_order_id`` while it waits). ``POST /api/approvals/{id}/approve`` then places that
   exact order (``place_approved``), once; ``reject`` (or the kill switch, or expiry) closes it.

The non-placing answers are tool errors (``isError: true``, ``[code] message`` text, like every nq-ray
tool error) because the call did not do what the tool promises (an order placed, an ``OrderResult``);
their ``structuredContent`` carries the details (``status``, ``client_order_id``, ``approval_id``,
``verdict``). With approval mode off nothing here runs and nobody is asked.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from nq_ray.domain.contracts import get_contract
from nq_ray.domain.orders import new_client_order_id
from nq_ray.errors import NotFoundError, NQRayError, StoreUnavailableError
from nq_ray.risk.gate import RiskVerdict
from nq_ray.store.repository import shared_repository
from nq_ray.tools.execution import order_payload
from nq_ray.tools.mcp_long import mcp_context
from nq_ray.tools.registry import ToolRegistry

if TYPE_CHECKING:  # the desk imports this module for ``place_approved``: no MCP SDK at import time
    import mcp_types
    from fastmcp.tools.base import InputRequiredToolResult, ToolResult

    from nq_ray.config import Settings

log = logging.getLogger(__name__)

GUARDED_TOOL = "place_order"
CONFIRM_KEY = "confirm_order"  # the key of the embedded elicitation (2026-07-28 input requests)
STATE_KIND = "nq-ray/confirm-order/v1"
APPROVAL_SOURCE = "mcp"  # proposal["source"] of an MCP order in the approvals queue
APPROVAL_TTL_S = 300.0  # as the desk's own proposals
ELICIT_TIMEOUT_S = 300.0  # a question nobody answers is a no


class OrderDeclinedError(NQRayError):
    """The person declined (or cancelled) the order when asked: nothing was sent."""

    code = "order_declined"
    http_status = 409


class ApprovalPendingError(NQRayError):
    """The order waits in the approvals queue for a person: nothing was sent yet."""

    code = "approval_pending"
    http_status = 202


class RiskDeniedError(NQRayError):
    """In approval mode the gate's pre-check denied the order: nobody was asked, nothing was sent."""

    code = "risk_denied"
    http_status = 409


# ------------------------------------------------------------------------------------ approval mode


async def approval_mode(store_url: str) -> bool:
    """Whether the desk's approval mode is on (its persisted state; off when the desk never ran). A store
    that cannot be read is ``StoreUnavailableError``, never "off"."""
    from nq_ray.store.desk import DeskStore
    from nq_ray.store.live import DESK_STATE_KEY

    try:
        state = await DeskStore(await shared_repository(store_url)).get_state(DESK_STATE_KEY)
    except StoreUnavailableError:
        raise
    except Exception as exc:  # unknown, so not off: no order is sent unconfirmed
        raise StoreUnavailableError(
            f"cannot read the desk's approval mode from the store ({type(exc).__name__}); no order was sent"
        ) from exc
    return bool((state or {}).get("approval_mode"))


# ------------------------------------------------------------------------------------ the guard
async def guard(
    registry: ToolRegistry, name: str, arguments: dict[str, Any], who: str
) -> dict[str, Any] | ToolResult:
    """The hook of ``RegistryTool.run``: the arguments to run ``name`` with (unchanged unless a
    ``client_order_id`` was minted), or the final answer when the order is not to be sent now (an
    answer that refuses is audited like any refused call: outcome ``error`` with its code)."""
    if name != GUARDED_TOOL or registry.context.as_of is not None:
        return arguments
    t0 = time.perf_counter()
    out = await _guard(registry, name, arguments, who)
    if isinstance(out, dict) or not out.is_error or registry.auditor is None:
        return out
    from nq_ray.domain.audit import AuditRecord

    code = (out.structured_content or {}).get("code")
    record = AuditRecord(
        at=datetime.now(UTC),
        who=who,
        tool=name,
        arguments=arguments,
        outcome="error",
        error_code=code,
        duration_ms=(time.perf_counter() - t0) * 1000,
    )
    await registry.auditor.audit(record)
    return out


async def _guard(
    registry: ToolRegistry, name: str, arguments: dict[str, Any], who: str
) -> dict[str, Any] | ToolResult:
    try:
        args = registry.validate(name, arguments)
    except NQRayError:
        return arguments  # the ordinary path answers bad arguments
    if not await approval_mode(registry.context.settings.store_url):
        return arguments
    ctx = mcp_context()
    state = _our_state(ctx)
    coid = args.client_order_id or (state or {}).get("client_order_id") or new_client_order_id()  # type: ignore[attr-defined]
    run_with = {**arguments, "client_order_id": coid}
    broker = registry.context.broker()
    if (args.client_order_id or state) and await _in_book(broker, coid):  # type: ignore[attr-defined]
        return run_with  # a retry of a placed order: place_order returns it (or refuses another)
    payload = order_payload(
        args.symbol,  # type: ignore[attr-defined]
        args.side,  # type: ignore[attr-defined]
        args.contracts,  # type: ignore[attr-defined]
        args.order_type,  # type: ignore[attr-defined]
        args.price,  # type: ignore[attr-defined]
        args.stop_loss,  # type: ignore[attr-defined]
        args.take_profit,  # type: ignore[attr-defined]
        coid,
    )
    verdict = RiskVerdict.model_validate(await broker.check_order(payload))
    if not verdict.approved:
        why = "; ".join(r.message for r in verdict.reasons) or "denied"
        return _refusal(
            RiskDeniedError(
                f"the risk gate would refuse this order ({why}); in approval mode it is not offered for "
                "confirmation and nothing was sent",
            ),
            status="risk_denied",
            client_order_id=coid,
            verdict=verdict.model_dump(mode="json", exclude={"limits"}),
        )
    message = confirmation_message(payload, verdict)
    mode = _elicitation_mode(ctx)
    if mode == "input_required":
        assert ctx is not None
        answer = _answer(ctx) if state is not None else None
        if answer is None:
            return _ask(message, payload, coid)
        return _decide(answer, run_with, coid)
    if mode == "request":
        assert ctx is not None
        try:
            result = await asyncio.wait_for(
                ctx.session.elicit(
                    message=message,
                    requested_schema=confirmation_schema(payload),
                    related_request_id=ctx.request_id,
                ),
                ELICIT_TIMEOUT_S,
            )
        except TimeoutError:
            return _refusal(
                OrderDeclinedError(f"no answer within {ELICIT_TIMEOUT_S:.0f} s; nothing was sent"),
                status="declined",
                action="timeout",
                client_order_id=coid,
            )
        except Exception as exc:  # the client cannot ask after all: the queue, as for no elicitation
            log.warning("elicitation failed (%s); the order goes to the approvals queue", exc)
        else:
            return _decide(result, run_with, coid)
    return await _queue(registry, run_with, payload, verdict, who)


def request_state_security(settings: Settings) -> Any:
    """How the 2026-07-28 ``requestState`` is sealed (``FastMCP(request_state_security=...)``): under a key
    derived from the bearer token (``mcp.auth_token``) when there is one, so every replica of the Serve
    app opens what another sealed; ``None`` (no token: a loopback server) seals under a per-process key."""
    token = settings.mcp.auth_token
    if token is None:
        return None
    import hashlib

    from mcp.server.request_state import RequestStateSecurity

    key = hashlib.sha256(b"nq-ray/mcp/request-state/v1:" + token.get_secret_value().encode()).hexdigest()
    return RequestStateSecurity(keys=[key], audience="nq-ray")


def _elicitation_mode(ctx: Any) -> str | None:
    """``input_required`` (2026-07-28), ``request`` (handshake era with a back-channel) or None."""
    if ctx is None or ctx.request_context is None or ctx.is_background_task:
        return None
    try:
        caps = ctx.session.client_capabilities
    except RuntimeError:
        return None
    el = caps.elicitation if caps is not None else None
    if el is None or (el.form is None and el.url is not None):  # none, or URL mode only
        return None
    from mcp_types.version import MODERN_PROTOCOL_VERSIONS

    if ctx.request_context.protocol_version in MODERN_PROTOCOL_VERSIONS:
        return "input_required"
    return "request"


def _our_state(ctx: Any) -> dict[str, Any] | None:
    """The plaintext ``requestState`` this module minted (the SDK verified its seal), if any."""
    raw = ctx.request_state if ctx is not None and ctx.request_context is not None else None
    if not raw:
        return None
    try:
        state = json.loads(raw)
    except ValueError:
        return None
    return state if isinstance(state, dict) and state.get("kind") == STATE_KIND else None


def _answer(ctx: Any) -> mcp_types.ElicitResult | None:
    import mcp_types

    responses = ctx.input_responses or {}
    answer = responses.get(CONFIRM_KEY)
    return answer if isinstance(answer, mcp_types.ElicitResult) else None


def _ask(message: str, payload: dict[str, Any], coid: str) -> InputRequiredToolResult:
    import mcp_types
    from fastmcp.tools.base import InputRequiredToolResult

    request = mcp_types.ElicitRequest(
        params=mcp_types.ElicitRequestFormParams(
            message=message, requested_schema=confirmation_schema(payload)
        )
    )
    state = json.dumps({"kind": STATE_KIND, "client_order_id": coid})
    return InputRequiredToolResult(
        mcp_types.InputRequiredResult(input_requests={CONFIRM_KEY: request}, request_state=state)
    )


def _decide(result: Any, run_with: dict[str, Any], coid: str) -> dict[str, Any] | ToolResult:
    action = getattr(result, "action", None)
    content = getattr(result, "content", None) or {}
    if action == "accept" and content.get("confirm") is True:
        return run_with
    said = "accepted without confirm: true" if action == "accept" else f"{action}d"
    return _refusal(
        OrderDeclinedError(f"the person {said} the order when asked; nothing was sent"),
        status="declined",
        action=action,
        client_order_id=coid,
    )


def _refusal(err: NQRayError, **details: Any) -> ToolResult:
    from fastmcp.tools.base import ToolResult

    return ToolResult(content=str(err), structured_content={"code": err.code, **details}, is_error=True)


async def _in_book(broker: Any, coid: str) -> bool:
    lookup = getattr(broker, "order", None)
    if not callable(lookup):
        return False
    try:
        await lookup(coid)
    except NotFoundError:
        return False
    return True


# ------------------------------------------------------------------------------------ what is shown
def confirmation_schema(payload: dict[str, Any]) -> dict[str, Any]:
    """The form: one boolean, false by default (a client that submits defaults places nothing)."""
    return {
        "type": "object",
        "properties": {
            "confirm": {
                "type": "boolean",
                "title": f"Place {_headline(payload)}",
                "description": "true places this paper order once; false, decline or cancel sends nothing",
                "default": False,
            }
        },
        "required": ["confirm"],
    }


def _headline(p: dict[str, Any]) -> str:
    kind = p["order_type"]
    price = p.get("limit_price") or p.get("stop_price")
    at = f" {kind} @ {price:.2f}" if price is not None else f" {kind}"
    return f"{p['side'].upper()} {p['quantity']} {p['symbol']}{at}"


def confirmation_message(payload: dict[str, Any], verdict: RiskVerdict) -> str:
    """What the person reads: the order, its prices and distances, and the gate's verdict."""
    c = get_contract(payload["symbol"])
    n = payload["quantity"]
    entry = payload.get("limit_price") or payload.get("stop_price")
    lines = [f"Confirm the paper order: {_headline(payload)} ({c.symbol}, {c.name})."]
    bracket = payload.get("bracket") or {}
    sign = 1 if payload["side"] == "buy" else -1
    for label, key, bad in (
        ("Stop-loss", "stop_loss_price", "risk"),
        ("Take-profit", "take_profit_price", "gain"),
    ):
        price = bracket.get(key)
        if price is None:
            lines.append(f"{label}: none.")
            continue
        if entry is None:
            lines.append(f"{label}: {price:.2f} (entry at market: distance measured at the fill).")
            continue
        pts = abs(entry - price)
        side = "below" if price < entry else "above"
        usd = pts * c.point_value * n
        wrong = (key == "stop_loss_price") == ((price - entry) * sign > 0)
        note = " (on the wrong side of the entry)" if wrong and pts > 0 else ""
        lines.append(
            f"{label}: {price:.2f}, {pts:.2f} points ({pts / c.tick_size:.0f} ticks) {side} the entry{note}"
            f" = ${usd:,.2f} {bad} for {n} contract{'s' if n != 1 else ''}."
        )
    reduce = [r.message for r in verdict.reasons]
    if verdict.reduced:
        gate = f"approved, reduced to {verdict.adjusted_contracts} of {verdict.requested_contracts} contracts"
    else:
        gate = f"approved, {verdict.adjusted_contracts} of {verdict.requested_contracts} contracts"
    lines.append(f"Risk gate: {gate}" + (f" ({'; '.join(reduce)})." if reduce else "."))
    lines.append(f"Client order id: {payload['client_order_id']}.")
    lines.append("Set confirm to true and accept to place it once; decline or cancel and nothing is sent.")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------ the queue
async def _queue(
    registry: ToolRegistry, run_with: dict[str, Any], payload: dict[str, Any], verdict: RiskVerdict, who: str
) -> ToolResult:
    """Record the order and queue it as a pending approval of the desk (nothing is sent)."""
    from nq_ray.store.desk import DeskStore

    ctx = registry.context
    repo = await shared_repository(ctx.settings.store_url)
    store = DeskStore(repo)
    coid = run_with["client_order_id"]
    verdict_json = verdict.model_dump(mode="json", exclude={"limits"})
    for queued in await store.approvals(status="pending", limit=500):  # a retry: the same approval
        if is_mcp_approval(queued) and queued["proposal"]["arguments"].get("client_order_id") == coid:
            return _pending(queued, payload, coid, verdict_json)
    now = ctx.clock()
    bracket = payload.get("bracket") or {}
    decision_id = await repo.record_decision(
        at=now,
        agent=APPROVAL_SOURCE,
        symbol=payload["symbol"],
        action=payload["side"],
        inputs={"tool": GUARDED_TOOL, "arguments": run_with, "who": who},
        decision={"source": APPROVAL_SOURCE, "approval": True, "verdict": verdict_json},
    )
    approval = await store.add_approval(
        decision_id=decision_id,
        symbol=payload["symbol"],
        proposal={
            "source": APPROVAL_SOURCE,
            "tool": GUARDED_TOOL,
            "arguments": run_with,
            "who": who,
            "symbol": payload["symbol"],
            "side": payload["side"],
            "contracts": payload["quantity"],
            "order_type": payload["order_type"],
            "entry": payload.get("limit_price") or payload.get("stop_price"),
            "stop": bracket.get("stop_loss_price"),
            "target": bracket.get("take_profit_price"),
            "rationale": f"MCP place_order from {who}",
        },
        assessment={
            "symbol": payload["symbol"],
            "approved": verdict.approved,
            "contracts": verdict.adjusted_contracts,
            "reasons": [r.message for r in verdict.reasons],
            "verdict": verdict_json,
        },
        created_at=now,
        expires_at=now + timedelta(seconds=APPROVAL_TTL_S),
    )
    return _pending(approval, payload, coid, verdict_json)


def _pending(
    approval: dict[str, Any], payload: dict[str, Any], coid: str, verdict_json: dict[str, Any]
) -> ToolResult:
    aid = approval["id"]
    err = ApprovalPendingError(
        f"approval mode is on and this client cannot confirm orders (no elicitation): {_headline(payload)} "
        f"waits as approval {aid} until {approval['expires_at']}; a person approves it "
        f"(POST /api/approvals/{aid}/approve) or rejects it. Nothing was sent; do not retry"
    )
    return _refusal(
        err,
        status="pending_approval",
        approval_id=aid,
        decision_id=approval["decision_id"],
        expires_at=approval["expires_at"],
        client_order_id=coid,
        verdict=verdict_json,
    )


def is_mcp_approval(approval: dict[str, Any]) -> bool:
    """Whether a queued approval holds an MCP order (``place_approved`` sends it), not a desk proposal."""
    return (approval.get("proposal") or {}).get("source") == APPROVAL_SOURCE


async def place_approved(tools: Any, approval: dict[str, Any], who: str) -> dict[str, Any]:
    """Send an approved MCP order through ``place_order`` (``tools``: a ``ToolsPort``) with the arguments
    and ``client_order_id`` it was queued with: a second approval (or a retry) returns the same order.
    The execution record: ``placed``, ``orders``, ``client_order_ids``, ``note``."""
    args = dict(approval["proposal"]["arguments"])
    out = await tools.call(GUARDED_TOOL, args, who=who)
    order = out.get("order") or {}
    return {
        "placed": bool(out.get("accepted")),
        "orders": [order],
        "client_order_ids": [args["client_order_id"]],
        "duplicate": bool(out.get("duplicate")),
        "note": f"MCP order approved by {who}" + ("" if out.get("accepted") else f": {order.get('status')}"),
    }
