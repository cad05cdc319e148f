"""Execution and risk tools against a real paper broker actor (temp SQLite store)."""

from __future__ import annotations

import pytest

from nq_ray.errors import InvalidOrderError
from tests.tools.conftest import VALID_CALLS


async def test_limit_order_is_journaled_and_idempotent_on_client_order_id(broker_registry) -> None:
    args = VALID_CALLS["place_order"] | {"client_order_id": "t-1"}
    first = await broker_registry.call("place_order", args)
    again = await broker_registry.call("place_order", args)
    assert first["order"]["client_order_id"] == "t-1" and first["mode"] == "paper"
    assert again["order"] == first["order"]  # a retry never makes a second order
    assert first["duplicate"] is False and again["duplicate"] is True  # the mark crosses the actor call


async def test_an_order_id_reused_for_a_different_order_is_refused_through_the_actor(broker_registry) -> None:
    from nq_ray.errors import DuplicateClientOrderIdError

    args = VALID_CALLS["place_order"] | {"client_order_id": "t-2"}
    first = await broker_registry.call("place_order", args)
    with pytest.raises(DuplicateClientOrderIdError, match="differs in side, quantity"):
        await broker_registry.call("place_order", args | {"side": "sell", "contracts": 7})
    again = await broker_registry.call("place_order", args)
    assert again["order"] == first["order"]  # the first order is unchanged: still a buy of 1
    assert (again["order"]["side"], again["order"]["requested_quantity"]) == ("buy", 1)


async def test_off_tick_price_is_an_invalid_order(broker_registry) -> None:
    with pytest.raises(InvalidOrderError, match="tick"):
        await broker_registry.call("place_order", VALID_CALLS["place_order"] | {"price": 20000.1})


async def test_market_order_with_price_is_refused(broker_registry) -> None:
    with pytest.raises(InvalidOrderError, match="market order"):
        await broker_registry.call(
            "place_order", {"symbol": "NQ", "side": "buy", "contracts": 1, "price": 1.0}
        )


async def test_check_risk_limits_returns_the_gate_verdict(broker_registry) -> None:
    out = await broker_registry.call("check_risk_limits", {"contracts": 10_000})
    verdict = out["verdict"]
    assert verdict["requested_contracts"] == 10_000
    assert not verdict["approved"] or verdict["adjusted_contracts"] < 10_000
    assert verdict["reasons"]


async def test_check_risk_limits_shows_the_limits_the_gate_applied_not_the_callers_copy(
    broker_registry,
) -> None:
    """A caller whose settings say 1 contract (a replica that has not synced) asks a broker whose gate
    enforces the default 4: the answer shows 4 — the verdict's own limits — never the caller's copy."""
    first = await broker_registry.call("check_risk_limits", {"contracts": 1})  # the broker starts (limit 4)
    stale = broker_registry.context.settings.merged({"risk": {"limits": {"max_contracts_per_symbol": 1}}})
    broker_registry.context.settings = stale
    out = await broker_registry.call("check_risk_limits", {"contracts": 3})
    assert first["limits"]["max_contracts_per_symbol"] == 4
    assert out["limits"]["max_contracts_per_symbol"] == 4  # before: 1, the caller's copy
    assert out["verdict"]["limits"] == out["limits"]
    assert out["settings_version"] == 0  # the store has no live overlay
    book = await broker_registry.call("assess_portfolio_risk", {})
    assert book["from_broker"] and book["limits"]["max_contracts_per_symbol"] == 4  # the gate's, too


async def test_manage_position_status_and_portfolio_risk_use_the_broker_book(broker_registry) -> None:
    status = await broker_registry.call("manage_position", {"action": "status"})
    assert "positions" in status["portfolio"]
    risk = await broker_registry.call("assess_portfolio_risk", {})
    assert risk["from_broker"] is True and risk["limits"]


async def test_status_lists_the_working_orders_and_the_fills(broker_registry) -> None:
    order = VALID_CALLS["place_order"] | {"client_order_id": "w-1"}
    placed = await broker_registry.call("place_order", order)

    status = await broker_registry.call("manage_position", {"action": "status"})

    assert placed["accepted"] and status["recent_fills"] == []  # a limit far below the market: working
    assert [o["client_order_id"] for o in status["working_orders"]] == ["w-1"]
    assert status["working_orders"][0]["limit_price"] == 20000.0
