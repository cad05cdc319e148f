"""The live config API in one process (no Ray): read (secrets redacted), patch the live keys, refuse bad
patches with a 422 problem naming every field (nothing applied), record and journal each change."""

from __future__ import annotations

import json
from typing import Any

from tests.serve.conftest import AUTH, TOKEN


def _config(client: Any) -> dict[str, Any]:
    r = client.get("/api/config", headers=AUTH)
    assert r.status_code == 200, r.text
    return r.json()


def test_get_config_redacts_secrets_and_lists_the_live_keys(client) -> None:
    body = _config(client)
    assert body["version"] == 0
    assert body["settings"]["mcp"]["auth_token"] == "**********"
    assert TOKEN not in json.dumps(body)
    assert "risk.limits" in body["live_keys"] and "tools" in body["live_keys"]
    assert client.get("/api/config").status_code == 401  # same bearer auth as the rest


def test_patch_applies_records_and_journals_the_change(client, settings) -> None:
    patch = {
        "risk": {"limits": {"max_contracts_per_symbol": 2, "max_notional_usd": None}},
        "llm": {"providers": {"openai": {"enabled": False, "timeout_s": 5}}},
        "data": {"default_source": "synthetic"},
        "tools": {"max_running_jobs": 3},
    }
    r = client.patch("/api/config", json=patch, headers=AUTH)
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["version"] == 1
    s = _config(client)["settings"]
    assert s["risk"]["limits"]["max_contracts_per_symbol"] == 2
    assert s["risk"]["limits"]["max_notional_usd"] is None  # merge-patch null turns a limit off
    openai = next(p for p in s["llm"]["providers"] if p["name"] == "openai")
    assert openai["enabled"] is False and openai["timeout_s"] == 5
    others = [p for p in s["llm"]["providers"] if p["name"] != "openai"]
    assert all(p["enabled"] for p in others)  # only the named provider changed
    assert s["data"]["default_source"] == "synthetic" and s["tools"]["max_running_jobs"] == 3
    assert client.app.state.registry.context.settings.risk.limits.max_contracts_per_symbol == 2

    changes = client.get("/api/config/changes", headers=AUTH).json()
    assert len(changes) == 1 and changes[0]["patch"] == patch and changes[0]["actor"] == "http"
    journal = (settings.data.data_dir / "config_journal.jsonl").read_text().splitlines()
    assert json.loads(journal[-1])["patch"]["risk"]["limits"]["max_contracts_per_symbol"] == 2


BAD_PATCHES = [
    ({"risk": {"limits": {"max_contracts_per_symbol": -1}}}, ["risk.limits.max_contracts_per_symbol"]),
    ({"risk": {"limits": {"max_daily_loss_usd": "lots"}}}, ["risk.limits.max_daily_loss_usd"]),
    ({"risk": {"limits": {"no_such_limit": 1}}}, ["risk.limits.no_such_limit"]),
    ({"nonsense": {"x": 1}, "risk": {"bogus": 2}}, ["nonsense", "risk.bogus"]),
    ({"store": {"url": "sqlite+aiosqlite:///elsewhere.db"}}, ["store"]),  # real, but not live
    ({"mcp": {"auth_token": "new"}}, ["mcp"]),
    ({"risk": {"account_size_usd": 5}}, ["risk.account_size_usd"]),
    ({"llm": {"providers": {"nobody": {"enabled": False}}}}, ["llm.providers.nobody"]),
    ({"llm": {"providers": {"openai": {"base_url": "http://x"}}}}, ["llm.providers.openai.base_url"]),
    ({"llm": {"providers": {"openai": {"timeout_s": -3}}}}, ["llm.providers"]),
    ({"tools": {"max_running_jobs": 10**9}}, ["tools.max_running_jobs"]),
    ({"risk": "none"}, ["risk"]),
    ([1, 2], [""]),
    ({}, [""]),
]


def test_bad_patches_are_422_problems_naming_each_field_and_change_nothing(client) -> None:
    before = _config(client)
    for patch, fields in BAD_PATCHES:
        r = client.patch("/api/config", json=patch, headers=AUTH)
        assert r.status_code == 422, (patch, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")
        body = r.json()
        assert body["code"] == "invalid_config" and body["status"] == 422
        keys = [e["key"] for e in body["details"]["errors"]]
        for f in fields:
            assert any(k.startswith(f) for k in keys), (patch, keys)
    after = _config(client)
    assert after == before
    assert client.get("/api/config/changes", headers=AUTH).json() == []


def test_malformed_json_is_a_422_problem(client) -> None:
    r = client.patch(
        "/api/config",
        content=b"{not json",
        headers={**AUTH, "content-type": "application/merge-patch+json"},
    )
    assert r.status_code == 422 and r.json()["code"] == "invalid_argument"


def test_a_change_is_announced_on_the_websocket(client) -> None:
    with client.websocket_connect(f"/ws?token={TOKEN}") as ws:
        assert ws.receive_json()["data"]["message"] == "connected"
        r = client.patch("/api/config", json={"tools": {"max_running_jobs": 2}}, headers=AUTH)
        assert r.status_code == 200
        event = ws.receive_json()
    assert event["type"] == "system_notification"
    assert event["data"]["kind"] == "config_changed" and event["data"]["version"] == 1
    assert event["data"]["patch"] == {"tools": {"max_running_jobs": 2}}


async def test_live_settings_survive_a_restart_of_the_registry_actor(ray_session, settings) -> None:
    import asyncio
    import uuid

    from nq_ray.runtime.registry import get_or_create_registry
    from nq_ray.tools.wire import as_nq_error

    actor = get_or_create_registry(settings, name=f"tool_registry_cfg_{uuid.uuid4().hex[:8]}")
    try:
        out = await actor.update_settings.remote(
            {"risk": {"limits": {"max_total_contracts": 3}}}, "tester", "no_such_broker"
        )
        assert out["applied_to"] == ["tool_registry"]  # no broker, no desk: tolerated
        try:
            await actor.update_settings.remote({"risk": {"limits": {"max_total_contracts": -1}}}, "tester")
            raise AssertionError("a negative limit was accepted")
        except Exception as exc:
            assert as_nq_error(exc).code == "invalid_config"

        def pid(self: object) -> int:
            import os

            return os.getpid()

        before = await actor.__ray_call__.remote(pid)
        ray_session.kill(actor, no_restart=False)  # Ray restarts it; __init__ gets the start-up settings
        for _ in range(300):
            try:
                if await actor.__ray_call__.remote(pid) != before:
                    break
            except Exception:
                pass
            await asyncio.sleep(0.1)
        else:
            raise AssertionError("the actor did not come back")
        version, live = await actor.settings.remote()
        assert version == 1 and live.risk.limits.max_total_contracts == 3
        changes = await actor.config_changes.remote()
        assert [c["actor"] for c in changes] == ["tester"]
    finally:
        ray_session.kill(actor)


def test_get_config_shows_no_url_password(tmp_path) -> None:
    """A real PostgreSQL store (its URL holds the password ``nq``) and a Redis URL with a password."""
    from fastapi.testclient import TestClient

    from nq_ray.config import Settings
    from nq_ray.serve.app import build_app
    from nq_ray.store.testing import ensure_postgres, temp_database

    ensure_postgres()
    with temp_database("postgresql", tmp_path) as store_url:
        assert "://nq:nq@" in store_url
        cache_url = "redis://:s3cret-redis@127.0.0.1:1/0"  # nothing listens: the in-process cache serves
        settings = Settings(
            data={"data_dir": str(tmp_path / "data")},
            mcp={"auth_token": TOKEN},
            store={"url": store_url},
            cache={"url": cache_url},
        )
        with TestClient(build_app(settings, use_actors=False), base_url="http://127.0.0.1") as client:
            text = client.get("/api/config", headers=AUTH).text
            shown = json.loads(text)["settings"]
    assert "nq:nq@" not in text and "s3cret" not in text
    assert shown["store"]["url"] == store_url.replace("://nq:nq@", "://nq:***@")
    assert shown["cache"]["url"] == "redis://:***@127.0.0.1:1/0"


def test_a_patched_limit_is_what_a_restarted_app_shows_and_its_gate_applies(settings) -> None:
    """PATCH the limit to 1, stop the app, start a new one on the same store (a restart of the whole
    in-process runtime): ``/api/config`` shows version 1 and limit 1, and ``check_risk_limits`` reports
    the limits and version from the gate's own verdict — the same ones."""
    from fastapi.testclient import TestClient

    from nq_ray.serve.app import build_app

    with TestClient(build_app(settings, use_actors=False), base_url="http://127.0.0.1") as first:
        patch = {"risk": {"limits": {"max_contracts_per_symbol": 1}}}
        assert first.patch("/api/config", json=patch, headers=AUTH).json()["version"] == 1
    with TestClient(build_app(settings, use_actors=False), base_url="http://127.0.0.1") as again:
        body = _config(again)
        r = again.post("/api/tools/check_risk_limits", json={"contracts": 3}, headers=AUTH)
    assert body["version"] == 1 and body["settings"]["risk"]["limits"]["max_contracts_per_symbol"] == 1
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["limits"]["max_contracts_per_symbol"] == 1 and out["settings_version"] == 1
    assert out["verdict"]["limits"] == out["limits"] and out["verdict"]["adjusted_contracts"] <= 1
