"""The tradovate source against a REAL local server (starlette + uvicorn on 127.0.0.1, random port).

Payload shapes and where they come from:
- ``POST /auth/accesstokenrequest`` success: ``{"accessToken", "mdAccessToken", "expirationTime",
  "userStatus", "userId", "name", "hasLive"}``; failure: ``{"errorText": ...}``; throttling: a penalty
  ticket ``{"p-ticket", "p-time", "p-captcha"}`` (Tradovate API docs, "Access" / accesstokenrequest,
  and tradovate/example-api-js tutorial/Access).
- WebSocket framing: server ``o`` on open, ``h`` heartbeats, ``a[<json>...]`` message arrays; client
  requests ``endpoint\\nid\\n\\nbody``; ``authorize`` is request 0 answered ``{"s": 200, "i": 0}``
  (tradovate/example-api-js tutorial/WebSockets, TradovateSocket.js).
- ``md/getChart`` answers ``{"s": 200, "i": id, "d": {"historicalId", "realtimeId"}}``, then
  ``{"e": "chart", "d": {"charts": [{"id", "td", "bars": [{"timestamp", "open", "high", "low", "close",
  "upVolume", "downVolume", "upTicks", "downTicks", "bidVolume", "offerVolume"}]}]}}`` and finally a chart
  ``{"id": historicalId, "eoh": true}`` (example-api-js tutorial/WebSockets/EX-10-Chart-Data/README.md).
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pandas as pd
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from nq_ray.config import Settings
from nq_ray.data.sources import tradovate
from nq_ray.domain.bars import BAR_COLUMNS, EXCHANGE_TZ
from nq_ray.errors import CredentialsMissingError, DataUnavailableError, ProviderUnavailableError
from nq_ray.testing.asgi import ThreadedUvicorn

NOW = datetime(2026, 3, 6, 22, 0, tzinfo=UTC)  # Friday after the close
ACCESS, MD_ACCESS = "access-token-abc", "md-token-xyz"


@dataclass
class FakeTradovate:
    """State of the local server: what it answers and what it saw."""

    auth_answer: dict[str, Any] = field(default_factory=dict)
    auth_bodies: list[dict[str, Any]] = field(default_factory=list)
    ws_requests: list[str] = field(default_factory=list)
    bars: list[dict[str, Any]] = field(default_factory=list)


def chart_bars(start: str, n: int, minutes: int = 1) -> list[dict[str, Any]]:
    t0 = pd.Timestamp(start, tz="UTC")
    out = []
    for i in range(n):
        price = 21_000 + i * 0.25
        out.append(
            {
                "timestamp": (t0 + pd.Timedelta(minutes=minutes * i)).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
                "open": price,
                "high": price + 1.0,
                "low": price - 0.5,
                "close": price + 0.25,
                "upVolume": 10 + i,
                "downVolume": 5,
                "upTicks": 3,
                "downTicks": 2,
                "bidVolume": 7,
                "offerVolume": 8,
            }
        )
    return out


def build_app(state: FakeTradovate) -> Starlette:
    async def token(request: Request) -> JSONResponse:
        state.auth_bodies.append(await request.json())
        return JSONResponse(state.auth_answer)

    async def websocket(ws: WebSocket) -> None:
        await ws.accept()
        await ws.send_text("o")
        historical = 9001
        while True:
            frame = await ws.receive_text()
            state.ws_requests.append(frame)
            if frame == "[]":
                continue
            endpoint, rid, _, body = frame.split("\n", 3)
            if endpoint == "authorize":
                ok = body == MD_ACCESS
                await ws.send_text("a" + json.dumps([{"s": 200 if ok else 401, "i": int(rid)}]))
            elif endpoint == "md/getChart":
                await ws.send_text(
                    "a"
                    + json.dumps(
                        [{"s": 200, "i": int(rid), "d": {"historicalId": historical, "realtimeId": 9002}}]
                    )
                )
                await ws.send_text("h")
                half = len(state.bars) // 2
                for part in (state.bars[:half], state.bars[half:]):
                    await ws.send_text(
                        "a"
                        + json.dumps(
                            [
                                {
                                    "e": "chart",
                                    "d": {"charts": [{"id": historical, "td": 20260306, "bars": part}]},
                                }
                            ]
                        )
                    )
                await ws.send_text(
                    "a" + json.dumps([{"e": "chart", "d": {"charts": [{"id": historical, "eoh": True}]}}])
                )
            elif endpoint == "md/cancelChart":
                await ws.send_text("a" + json.dumps([{"s": 200, "i": int(rid)}]))

    return Starlette(
        routes=[
            Route("/v1/auth/accesstokenrequest", token, methods=["POST"]),
            WebSocketRoute("/v1/websocket", websocket),
        ]
    )


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[str, FakeTradovate]]:
    state = FakeTradovate()
    with ThreadedUvicorn(build_app(state), ws="websockets-sansio", lifespan="off") as srv:
        yield srv.url + "/v1", state


@pytest.fixture
def fake(server: tuple[str, FakeTradovate]) -> FakeTradovate:
    _, state = server
    state.auth_answer = {
        "accessToken": ACCESS,
        "mdAccessToken": MD_ACCESS,
        "expirationTime": "2026-03-06T23:20:00.000Z",
        "userStatus": "Active",
        "userId": 4242,
        "name": "demo-user",
        "hasLive": False,
    }
    state.auth_bodies.clear()
    state.ws_requests.clear()
    state.bars = chart_bars("2026-03-06T14:30:00Z", 120)
    return state


def settings_for(base_url: str, **overrides: Any) -> Settings:
    cfg = {
        "base_url": base_url,
        "username": "demo-user",
        "password": "pw",
        "cid": 123,
        "sec": "s3cret",
        "timeout_s": 5.0,
        **overrides,
    }
    return Settings.model_validate({"data": {"tradovate": cfg}})


def client_for(base_url: str, **overrides: Any) -> tradovate.TradovateClient:
    return tradovate.TradovateClient(settings_for(base_url, **overrides).data.tradovate, clock=lambda: NOW)


def test_missing_credentials_name_the_settings_keys() -> None:
    with pytest.raises(CredentialsMissingError) as info:
        tradovate.fetch("NQ", "1m", settings=Settings.model_validate({}))

    for key in (
        "NQ_DATA__TRADOVATE__USERNAME",
        "NQ_DATA__TRADOVATE__PASSWORD",
        "NQ_DATA__TRADOVATE__CID",
        "NQ_DATA__TRADOVATE__SEC",
    ):
        assert key in info.value.message


def test_token_request_sends_the_documented_body(
    server: tuple[str, FakeTradovate], fake: FakeTradovate
) -> None:
    client = client_for(server[0])

    token = client.access_token()

    assert token.access_token == ACCESS and token.md_access_token == MD_ACCESS
    assert fake.auth_bodies == [
        {
            "name": "demo-user",
            "password": "pw",
            "appId": "nq-ray",
            "appVersion": "0.1",
            "cid": 123,
            "sec": "s3cret",
        }
    ]


def test_token_is_reused_until_it_nearly_expires(
    server: tuple[str, FakeTradovate], fake: FakeTradovate
) -> None:
    client = client_for(server[0])

    client.access_token()
    client.access_token()

    assert len(fake.auth_bodies) == 1


def test_error_text_becomes_a_clear_error(server: tuple[str, FakeTradovate], fake: FakeTradovate) -> None:
    fake.auth_answer = {"errorText": "Incorrect username or password. Please try again."}

    with pytest.raises(ProviderUnavailableError, match="Incorrect username or password"):
        client_for(server[0]).access_token()


def test_penalty_ticket_says_how_long_to_wait(server: tuple[str, FakeTradovate], fake: FakeTradovate) -> None:
    fake.auth_answer = {"p-ticket": "abc", "p-time": 15, "p-captcha": False}

    with pytest.raises(ProviderUnavailableError, match="wait 15 s"):
        client_for(server[0]).access_token()


def test_unreachable_server_is_provider_unavailable() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]

    with pytest.raises(ProviderUnavailableError, match="cannot be reached"):
        client_for(f"http://127.0.0.1:{port}/v1").access_token()


def test_fetch_returns_chart_bars_as_a_bar_frame(
    server: tuple[str, FakeTradovate], fake: FakeTradovate
) -> None:
    start = pd.Timestamp("2026-03-06 09:30", tz=EXCHANGE_TZ)

    bars = tradovate.fetch(
        "NQ",
        "1m",
        start,
        None,
        settings=settings_for(server[0]),
        client=client_for(server[0]),
        clock=lambda: NOW,
    )

    assert len(bars) == 120
    assert list(bars.columns) == list(BAR_COLUMNS)
    assert bars.index[0] == start
    assert bars["volume"].iloc[0] == 15.0  # upVolume + downVolume


def test_get_chart_request_names_the_front_contract_and_range(
    server: tuple[str, FakeTradovate], fake: FakeTradovate
) -> None:
    start = pd.Timestamp("2026-03-06 09:30", tz=EXCHANGE_TZ)

    tradovate.fetch(
        "NQ",
        "5m",
        start,
        None,
        settings=settings_for(server[0]),
        client=client_for(server[0]),
        clock=lambda: NOW,
    )

    auth, chart = fake.ws_requests[0], next(r for r in fake.ws_requests if r.startswith("md/getChart"))
    body = json.loads(chart.split("\n", 3)[3])
    assert auth == f"authorize\n0\n\n{MD_ACCESS}"
    assert body["symbol"] == "NQH6"
    assert body["chartDescription"] == {
        "underlyingType": "MinuteBar",
        "elementSize": 5,
        "elementSizeUnit": "UnderlyingUnits",
        "withHistogram": False,
    }
    assert body["timeRange"]["asFarAsTimestamp"] == "2026-03-06T14:30:00.000Z"


def test_heartbeats_are_answered(server: tuple[str, FakeTradovate], fake: FakeTradovate) -> None:
    tradovate.fetch(
        "NQ",
        "1m",
        None,
        None,
        settings=settings_for(server[0]),
        client=client_for(server[0]),
        clock=lambda: NOW,
    )

    assert "[]" in fake.ws_requests


def test_the_historical_subscription_is_cancelled(
    server: tuple[str, FakeTradovate], fake: FakeTradovate
) -> None:
    tradovate.fetch(
        "NQ",
        "1m",
        None,
        None,
        settings=settings_for(server[0]),
        client=client_for(server[0]),
        clock=lambda: NOW,
    )

    assert any(
        r.startswith("md/cancelChart\n2\n\n") and '"subscriptionId": 9001' in r for r in fake.ws_requests
    )


def test_no_bars_is_data_unavailable(server: tuple[str, FakeTradovate], fake: FakeTradovate) -> None:
    fake.bars = []

    with pytest.raises(DataUnavailableError, match="no 1m bars"):
        tradovate.fetch(
            "NQ",
            "1m",
            None,
            None,
            settings=settings_for(server[0]),
            client=client_for(server[0]),
            clock=lambda: NOW,
        )


def test_daily_bars_are_labelled_midnight_new_york(
    server: tuple[str, FakeTradovate], fake: FakeTradovate
) -> None:
    fake.bars = chart_bars("2026-03-02T00:00:00Z", 5, minutes=24 * 60)

    bars = tradovate.fetch(
        "NQ",
        "1d",
        None,
        None,
        settings=settings_for(server[0]),
        client=client_for(server[0]),
        clock=lambda: NOW,
    )

    assert bars.index[0] == pd.Timestamp("2026-03-02", tz=EXCHANGE_TZ)


@pytest.mark.parametrize(
    ("at", "code"), [("2026-03-06", "NQH6"), ("2026-03-12", "NQM6"), ("2026-12-30", "NQH7")]
)
def test_front_contract_rolls_eight_days_before_expiry(at: str, code: str) -> None:
    assert tradovate.front_contract("NQ", pd.Timestamp(at, tz=EXCHANGE_TZ).to_pydatetime()) == code
