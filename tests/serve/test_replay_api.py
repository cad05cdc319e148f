"""The market replay on the HTTP API (the in-process app, no Ray): the price is the last replayed bar and
advances, a market order fills at the next released bar's open plus slippage, the WebSocket gets every
bar once and in order, pause freezes time, bad control input is a problem, the wall clock answers 409
``not_replay``, ``/health`` shows the clock, and the control needs the token."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from nq_ray.config import Settings
from tests.serve.conftest import AUTH, TOKEN

START = "2026-04-20T09:30"
FIVE_MIN = timedelta(minutes=5)


def replay_settings(tmp_path: Path, **replay: Any) -> Settings:
    base = Settings(data={"data_dir": str(tmp_path / "data")}, mcp={"auth_token": TOKEN})
    patch = {"clock": "replay", "start": START, "speed": 600, "symbols": ["NQ"], **replay}
    return base.merged({"replay": patch})


@pytest.fixture
def replay_client(tmp_path: Path) -> Iterator[TestClient]:
    """The app on a replay of the sample NQ bars from Mon 2026-04-20 09:30 at x600, paused and caught up
    (every bar due by the pause released), so each ``step`` releases exactly one bar."""
    from nq_ray.runtime.replay import prepare_replay
    from nq_ray.serve.app import build_app

    settings = replay_settings(tmp_path)
    prepare_replay(settings)
    with TestClient(build_app(settings, use_actors=False), base_url="http://127.0.0.1", headers=AUTH) as c:
        paused = c.post("/api/market/replay/pause")
        assert paused.status_code == 200, paused.text
        c.post("/api/market/replay/step", json={"bars": 1})  # the bars due by the pause, at once
        yield c


@pytest.fixture(scope="module")
def nq_bars() -> pd.DataFrame:
    """The reference: the sample source's NQ 5m bars, read straight from the data layer."""
    from nq_ray.data import load_bars

    return load_bars("NQ", "5m", source="sample", settings=Settings())


def status(c: TestClient) -> dict[str, Any]:
    r = c.get("/api/market/replay")
    assert r.status_code == 200, r.text
    return r.json()


def step(c: TestClient, bars: int = 1) -> dict[str, Any]:
    r = c.post("/api/market/replay/step", json={"bars": bars})
    assert r.status_code == 200, r.text
    return r.json()


def market_updates(ws: Any, through_seq: int) -> list[dict[str, Any]]:
    """``market_update`` data from ``ws`` until the one numbered ``through_seq`` (other events skipped)."""
    out: list[dict[str, Any]] = []
    while not out or out[-1]["seq"] < through_seq:
        msg = ws.receive_json()
        if msg["type"] == "market_update":
            out.append(msg["data"])
    return out


def test_price_is_the_last_replayed_bar_and_advances(
    replay_client: TestClient, nq_bars: pd.DataFrame
) -> None:
    released = pd.Timestamp(status(replay_client)["released"]["NQ"])

    first = replay_client.get("/api/market/nq-price").json()
    after = step(replay_client)
    second = replay_client.get("/api/market/nq-price").json()

    assert first["clock"] == second["clock"] == "replay"
    assert pd.Timestamp(first["bar_time"]) == released
    assert first["price"] == nq_bars.loc[released, "close"]
    nxt = nq_bars.index[nq_bars.index.get_loc(released) + 1]
    assert pd.Timestamp(second["bar_time"]) == nxt == pd.Timestamp(after["released"]["NQ"])
    assert second["price"] == nq_bars.loc[nxt, "close"]
    assert datetime.fromisoformat(after["now"]) == nxt.to_pydatetime() + FIVE_MIN  # at its close


def test_market_order_fills_at_the_next_bars_open_plus_slippage(
    replay_client: TestClient, nq_bars: pd.DataFrame, tmp_path: Path
) -> None:
    settings = replay_settings(tmp_path)
    released = pd.Timestamp(status(replay_client)["released"]["NQ"])
    nxt = nq_bars.index[nq_bars.index.get_loc(released) + 1]

    placed = replay_client.post(
        "/api/tools/place_order", json={"symbol": "NQ", "side": "buy", "contracts": 1}
    )
    working = replay_client.post("/api/tools/manage_position", json={"action": "status"}).json()
    step(replay_client)
    held = replay_client.post("/api/tools/manage_position", json={"action": "status"}).json()

    assert placed.status_code == 200, placed.text
    assert placed.json()["accepted"] and placed.json()["clock"] == "replay"
    assert working["portfolio"]["positions"].get("NQ", {}).get("quantity", 0) == 0  # not filled until a bar
    position = held["portfolio"]["positions"]["NQ"]
    slippage_pts = settings.execution.slippage_ticks * 0.25  # NQ's tick
    assert position["quantity"] == 1
    assert position["avg_price"] == pytest.approx(nq_bars.loc[nxt, "open"] + slippage_pts)
    assert held["clock"] == "replay"


def test_websocket_gets_every_bar_once_in_order(replay_client: TestClient, nq_bars: pd.DataFrame) -> None:
    with replay_client.websocket_connect("/ws") as ws:
        s0 = status(replay_client)["seq"]
        s1 = step(replay_client, 5)["seq"]
        got = market_updates(ws, s1)
        s2 = step(replay_client, 1)["seq"]
        then = market_updates(ws, s2)

    assert s1 == s0 + 5 and s2 == s1 + 1
    assert [u["seq"] for u in got] == list(range(s0 + 1, s1 + 1))  # each bar once, in order
    assert [u["seq"] for u in then] == [s2]  # nothing repeated before the next bar
    times = [pd.Timestamp(u["bar_time"]) for u in got + then]
    assert times == sorted(set(times))
    for u in got + then:
        t = pd.Timestamp(u["bar_time"])
        assert u["clock"] == "replay" and u["symbol"] == "NQ"
        assert u["price"] == u["bar"]["close"] == nq_bars.loc[t, "close"]


def test_pause_freezes_time_prices_and_updates(replay_client: TestClient) -> None:
    with replay_client.websocket_connect("/ws") as ws:
        before = status(replay_client)
        price = replay_client.get("/api/market/nq-price").json()
        fast = replay_client.post("/api/market/replay/speed", json={"speed": 10_000}).json()
        # a window in which an unpaused replay at x10000 would release about ten 5m bars
        time.sleep(0.3)
        after = status(replay_client)
        price_after = replay_client.get("/api/market/nq-price").json()
        nxt = step(replay_client)["seq"]
        first = market_updates(ws, nxt)

    assert before["paused"] and fast["paused"] and fast["speed"] == 10_000
    assert after["now"] == before["now"] and after["seq"] == before["seq"]
    assert price_after == price
    assert [u["seq"] for u in first] == [before["seq"] + 1]  # nothing was released while paused


def test_resume_lets_replay_time_run_again(replay_client: TestClient) -> None:
    before = status(replay_client)
    with replay_client.websocket_connect("/ws") as ws:
        resumed = replay_client.post("/api/market/replay/resume").json()
        seen: list[dict[str, Any]] = []
        while not any(m["type"] == "market_update" for m in seen):  # at x600 a 5m bar every 0.5 s
            seen.append(ws.receive_json())

    assert not resumed["paused"]
    notes = [m["data"] for m in seen if m["type"] == "system_notification"]
    assert [n["message"] for n in notes] == ["connected", "replay running"]
    assert notes[1]["clock"]["paused"] is False
    assert seen[-1]["data"]["seq"] == before["seq"] + 1


def test_jump_forward_releases_the_bars_between_in_order(replay_client: TestClient) -> None:
    before = status(replay_client)
    with replay_client.websocket_connect("/ws") as ws:
        jumped = replay_client.post("/api/market/replay/jump", json={"to": "2026-04-20T11:00"})
        got = market_updates(ws, jumped.json()["seq"])

    assert jumped.status_code == 200, jumped.text
    assert datetime.fromisoformat(jumped.json()["now"]) == pd.Timestamp("2026-04-20T15:00Z").to_pydatetime()
    assert pd.Timestamp(jumped.json()["released"]["NQ"]) == pd.Timestamp("2026-04-20T10:55-04:00")
    assert [u["seq"] for u in got] == list(range(before["seq"] + 1, jumped.json()["seq"] + 1))


def test_a_jump_over_a_day_reaches_the_websocket_whole(replay_client: TestClient) -> None:
    before = status(replay_client)
    with replay_client.websocket_connect("/ws") as ws:
        jumped = replay_client.post("/api/market/replay/jump", json={"to": "2026-04-21T11:00"}).json()
        got = market_updates(ws, jumped["seq"])

    assert jumped["seq"] - before["seq"] > 256  # more than a day of 5m bars, in one burst
    assert [u["seq"] for u in got] == list(range(before["seq"] + 1, jumped["seq"] + 1))


BAD = [
    ("speed", {"speed": 0}),
    ("speed", {"speed": -1}),
    ("speed", {"speed": 10_001}),
    ("speed", {"speed": "fast"}),
    ("speed", {}),
    ("speed", {"speed": 2, "extra": 1}),
    ("jump", {"to": "2026-04-20T09:00"}),  # backwards: fills are final
    ("jump", {"to": "not a time"}),
    ("jump", {"to": "2027-01-01T09:30"}),  # after the replay's end
    ("jump", {"to": ""}),
    ("step", {"bars": 0}),
    ("step", {"bars": 10_001}),
    ("step", {"bars": "many"}),
]


@pytest.mark.parametrize(("action", "body"), BAD, ids=[f"{a}-{b}" for a, b in BAD])
def test_bad_control_input_is_a_problem_not_a_500(
    replay_client: TestClient, action: str, body: dict[str, Any]
) -> None:
    before = status(replay_client)

    r = replay_client.post(f"/api/market/replay/{action}", json=body)

    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["code"] == "invalid_argument"
    after = status(replay_client)
    assert (after["now"], after["speed"], after["seq"]) == (before["now"], before["speed"], before["seq"])


def test_jump_back_says_fills_are_final(replay_client: TestClient) -> None:
    r = replay_client.post("/api/market/replay/jump", json={"to": START})

    assert r.status_code == 422
    assert "fills are final" in r.json()["detail"]


def test_health_shows_the_replay_clock(replay_client: TestClient) -> None:
    st = status(replay_client)

    health = replay_client.get("/health").json()

    clock = health["clock"]
    assert clock["clock"] == "replay" and clock["paused"] is True and clock["speed"] == 600
    assert clock["now"] == st["now"] and clock["released"] == st["released"]
    assert clock["bars_left"] == st["bars_left"] > 0 and clock["finished"] is False
    assert health["checks"]["market"]["status"] == "ok"


def test_replay_control_needs_the_token(replay_client: TestClient) -> None:
    for method, path in [
        ("GET", "/api/market/replay"),
        ("POST", "/api/market/replay/pause"),
        ("POST", "/api/market/replay/resume"),
        ("POST", "/api/market/replay/speed"),
        ("POST", "/api/market/replay/jump"),
        ("POST", "/api/market/replay/step"),
    ]:
        r = replay_client.request(method, path, headers={"Authorization": "Bearer wrong"})
        assert r.status_code == 401, path
    assert status(replay_client)["paused"] is True


def test_wall_clock_answers_not_replay(client: TestClient) -> None:
    for method, path, body in [
        ("GET", "/api/market/replay", None),
        ("POST", "/api/market/replay/pause", None),
        ("POST", "/api/market/replay/resume", None),
        ("POST", "/api/market/replay/speed", {"speed": 2}),
        ("POST", "/api/market/replay/jump", {"to": "2026-04-21T09:30"}),
        ("POST", "/api/market/replay/step", {"bars": 1}),
    ]:
        r = client.request(method, path, json=body, headers=AUTH)
        assert r.status_code == 409, (path, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")
        assert r.json()["code"] == "not_replay"


def test_wall_clock_health_and_price_say_wall(client: TestClient) -> None:
    health = client.get("/health").json()
    price = client.get("/api/market/nq-price", headers=AUTH).json()

    assert health["clock"]["clock"] == "wall" and datetime.fromisoformat(health["clock"]["now"])
    assert health["checks"]["market"]["status"] == "not_configured"
    assert price["clock"] == "wall"


def test_openapi_documents_the_replay_routes(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    paths = spec["paths"]

    assert "get" in paths["/api/market/replay"]
    for action in ("pause", "resume", "speed", "jump", "step"):
        op = paths[f"/api/market/replay/{action}"]["post"]
        assert op["responses"]["409"]["content"]["application/problem+json"]
        assert "401" in op["responses"]
    speed = spec["components"]["schemas"]["SpeedRequest"]["properties"]["speed"]
    assert speed["exclusiveMinimum"] == 0 and speed["maximum"] == 10_000
    order = paths["/api/tools/place_order"]["post"]["responses"]["200"]["content"]["application/json"]
    assert order["schema"]["$ref"].endswith("WithClock")


@pytest.mark.slow
def test_on_ray_the_replica_pumps_the_market_actors_updates(ray_session: Any, tmp_path: Path) -> None:
    """Ray without Redis: the ``market_replay`` actor releases the bars, the app's pump long-polls them
    onto its WebSocket — each once, in order — and the control goes to the actor."""
    from nq_ray.runtime.replay import ACTOR_NAME, prepare_replay
    from nq_ray.serve.app import build_app
    from nq_ray.testing.wait import wait_until

    def kill(name: str) -> None:
        with contextlib.suppress(ValueError):
            ray_session.kill(ray_session.get_actor(name, namespace="nq"), no_restart=True)

    kill(ACTOR_NAME)  # one left by another test runs another store
    settings = replay_settings(tmp_path)
    prepare_replay(settings)
    suffix = str(time.time_ns())[-8:]
    names = {f"{k}_name": f"{k}_replay_{suffix}" for k in ("broker", "registry", "desk")}
    app = build_app(settings, **names)
    try:
        with TestClient(app, base_url="http://127.0.0.1", headers=AUTH) as c:
            assert c.app.state.feed.mode == "pump"  # type: ignore[attr-defined]
            paused = c.post("/api/market/replay/pause").json()
            step(c, 1)  # the bars due by the pause
            pump = c.app.state.feed.pump  # type: ignore[attr-defined]
            s0 = status(c)["seq"]
            wait_until(lambda: pump.last_seq == s0, timeout_s=60, message="the pump caught up")
            with c.websocket_connect("/ws") as ws:
                s1 = step(c, 4)["seq"]
                got = market_updates(ws, s1)
            health = c.get("/health").json()
    finally:
        kill(ACTOR_NAME)
        for name in names.values():
            kill(name)

    assert paused["paused"] is True
    assert [u["seq"] for u in got] == list(range(s0 + 1, s1 + 1)) and s1 == s0 + 4
    assert health["clock"]["clock"] == "replay" and health["clock"]["feed"] == "pump"
    assert health["clock"]["seq"] == s1
