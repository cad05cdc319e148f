"""The running system over HTTP (Serve, 2 replicas, real actors): market orders fill in a fresh runtime on
sample data (the broker prices them from the data source), a live config change reaches every replica and
the broker's risk gate, ``/metrics`` adds up every replica, jobs go through the store."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from nq_ray.testing.wait import wait_until
from tests.serve.conftest import AUTH, Running, deployed

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


@pytest.fixture(scope="module")
def live(ray_session: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    limits = {"limits": {"trade_only_when_open": False}}  # the test may run on a weekend
    with deployed(ray_session, tmp_path_factory.mktemp("live"), "live", risk=limits) as running:
        yield running


def _last_sample_close() -> float:
    from nq_ray.data import load_bars

    return float(load_bars("NQ", "5m", source="sample")["close"].iloc[-1])


def test_a_market_order_fills_in_a_fresh_runtime_at_the_data_sources_price(live: Running) -> None:
    r = live.post("/api/tools/place_order", {"symbol": "NQ", "side": "buy", "contracts": 1})
    assert r.status_code == 200, r.text
    order = r.json()["order"]
    assert order["status"] == "filled", order
    # one tick (0.25) of slippage against a buy, off the latest sample close, read independently here
    assert order["avg_fill_price"] == pytest.approx(_last_sample_close() + 0.25)
    portfolio = live.post("/api/tools/manage_position", {"action": "status"}).json()["portfolio"]
    assert portfolio["positions"]["NQ"]["quantity"] == 1
    assert portfolio["positions"]["NQ"]["mark"] == pytest.approx(_last_sample_close())


async def _replica_views(base: str, rounds: int = 40) -> dict[str, dict[str, Any]]:
    """GET /api/config concurrently until both replicas answered: replica id → its view."""
    seen: dict[str, dict[str, Any]] = {}
    async with httpx.AsyncClient(base_url=base, headers=AUTH, timeout=30) as c:
        for _ in range(rounds):
            answers = await asyncio.gather(*(c.get("/api/config") for _ in range(8)))
            for a in answers:
                assert a.status_code == 200, a.text
                seen[a.json()["replica"]["id"]] = a.json()
            if len(seen) >= 2:
                break
    return seen


def test_a_config_change_reaches_every_replica_and_the_brokers_gate(live: Running) -> None:
    before = asyncio.run(_replica_views(live.base))
    assert len(before) == 2, "both replicas should answer"
    r = httpx.patch(
        live.base + "/api/config",
        json={"risk": {"limits": {"max_contracts_per_symbol": 1}}},
        headers=AUTH,
        timeout=60,
    )
    assert r.status_code == 200, r.text
    change = r.json()["change"]
    assert change["applied_to"] == ["tool_registry", live.names["broker_name"]]
    version = r.json()["version"]

    # the broker's gate: the next order that would make the position 2 is refused, at once
    denied = live.post("/api/tools/place_order", {"symbol": "NQ", "side": "buy", "contracts": 1}).json()
    assert denied["order"]["status"] == "rejected" and not denied["accepted"]
    assert any(x["code"] == "max_contracts_per_symbol" for x in denied["order"]["reasons"]), denied

    def synced() -> dict[str, dict[str, Any]] | None:  # every replica syncs within a second
        views = asyncio.run(_replica_views(live.base))
        return (
            views
            if len(views) == 2 and all(v["replica"]["version"] == version for v in views.values())
            else None
        )

    after = wait_until(synced, timeout_s=30, message=f"both replicas run config version {version}")
    for view in after.values():
        assert view["version"] == version
        assert view["replica"]["version"] == version
        assert view["replica"]["risk_limits"]["max_contracts_per_symbol"] == 1
    for _ in range(6):  # check_risk_limits on whichever replica answers: the new limits
        check = live.post("/api/tools/check_risk_limits", {"symbol": "NQ", "contracts": 1}).json()
        assert check["limits"]["max_contracts_per_symbol"] == 1 and not check["verdict"]["approved"]

    changes = live.get("/api/config/changes").json()
    assert changes[0]["patch"] == {"risk": {"limits": {"max_contracts_per_symbol": 1}}}

    bad = httpx.patch(
        live.base + "/api/config", json={"risk": {"limits": {"max_contracts_per_symbol": -5}}}, headers=AUTH
    )
    assert bad.status_code == 422 and bad.json()["code"] == "invalid_config"
    assert live.get("/api/config").json()["version"] == version


def _metric(text: str, sample: str) -> float:
    m = re.search(rf"^{re.escape(sample)} ([0-9.e+]+)$", text, re.M)
    assert m, f"{sample} not in /metrics"
    return float(m.group(1))


def test_metrics_are_totals_over_the_replicas(live: Running) -> None:
    sample = 'nq_tool_calls_total{outcome="ok",tool="get_market_hours"}'
    start = httpx.get(live.base + "/metrics", timeout=30).text
    base = _metric(start, sample) if sample in start else 0.0

    async def calls() -> set[str]:
        async with httpx.AsyncClient(base_url=live.base, headers=AUTH, timeout=30) as c:
            rs = await asyncio.gather(*(c.post("/api/tools/get_market_hours", json={}) for _ in range(40)))
            assert all(x.status_code == 200 for x in rs)
            per = await asyncio.gather(*(c.get("/metrics", params={"scope": "replica"}) for _ in range(8)))
            return {re.search(r'replica="([^"]+)"', p.text).group(1) for p in per}

    replicas = asyncio.run(calls())

    def totals() -> str | None:  # the other replica's counts are at most one sync period old
        text = httpx.get(live.base + "/metrics", timeout=30).text
        return text if sample in text and _metric(text, sample) >= base + 40 else None

    text = wait_until(totals, timeout_s=30, message=f"/metrics counts {base + 40:g} {sample}")
    assert _metric(text, sample) == base + 40
    assert 'replica="' not in text  # totals, not per-replica series
    assert _metric(text, "nq_replicas_reporting") >= 3  # two replicas and the registry actor
    assert len(replicas) == 2  # the 40 calls were spread over both replicas


def test_every_call_reaches_the_audit_log_in_batches(live: Running, ray_session: Any) -> None:
    actor = ray_session.get_actor(live.names["registry_name"], namespace="nq")
    before = ray_session.get(actor.audit_log.remote(5000))
    n = sum(1 for r in before if r["tool"] == "get_contract_info" and r["who"] == "http")

    async def calls() -> None:
        async with httpx.AsyncClient(base_url=live.base, headers=AUTH, timeout=30) as c:
            rs = await asyncio.gather(
                *(c.post("/api/tools/get_contract_info", json={"symbol": "ES"}) for _ in range(60))
            )
            assert all(x.status_code == 200 for x in rs)

    asyncio.run(calls())

    def logged() -> int:  # batches leave a replica every 0.25 s
        after = ray_session.get(actor.audit_log.remote(5000))
        return sum(1 for r in after if r["tool"] == "get_contract_info" and r["who"] == "http")

    wait_until(lambda: logged() >= n + 60, timeout_s=30, message=f"the audit log holds {n + 60} calls")
    assert logged() == n + 60


def test_jobs_are_stored_and_listed_over_http(live: Running) -> None:
    r = live.post(
        "/api/jobs", {"tool": "run_sweep", "arguments": {"grid": {"fast": [5], "slow": [30]}, "period": "5d"}}
    )
    assert r.status_code == 202, r.text
    job_id = r.json()["id"]
    for _ in range(600):
        state = live.get(f"/api/jobs/{job_id}").json()
        if state["status"] in ("succeeded", "failed", "cancelled"):
            break
        time.sleep(0.1)
    assert state["status"] == "succeeded" and state["result"]["combinations"] == 1
    assert job_id in [j["id"] for j in live.get("/api/jobs").json()]
    unknown = live.get("/api/jobs/" + "f" * 32)
    assert unknown.status_code == 404 and unknown.json()["code"] == "unknown_job"
