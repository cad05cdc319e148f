"""``nq_ray.serve.tools_api``: the market endpoints and the tools, listed and callable by name with their
own schema."""

from __future__ import annotations

from tests.serve.conftest import AUTH


def test_nq_price_says_where_the_data_came_from(client) -> None:
    r = client.get("/api/market/nq-price", headers=AUTH)
    assert r.status_code == 200
    body = r.json()
    assert body["symbol"] == "NQ" and body["origin"]["live"] is False and body["origin"]["source"] == "sample"


def test_historical_by_period_and_interval(client) -> None:
    r = client.get(
        "/api/market/historical", params={"symbol": "NQ=F", "period": "5d", "interval": "1h"}, headers=AUTH
    )
    assert r.status_code == 200
    body = r.json()
    assert body["interval"] == "1h" and 0 < body["count"] <= 5 * 24


def test_tools_are_listed_and_callable_by_name_with_their_own_schema(client) -> None:
    tools = client.get("/api/tools", headers=AUTH).json()
    assert len(tools) == 20 and all("input_schema" in t for t in tools)
    r = client.post("/api/tools/get_contract_info", json={"symbol": "MES"}, headers=AUTH)
    assert r.status_code == 200 and r.json()["point_value_usd"] == 5.0
    r = client.post("/api/tools/get_contract_info", json={"symbol": "NQ", "bogus": 1}, headers=AUTH)
    assert (r.status_code, r.json()["code"]) == (422, "invalid_argument")
    spec = client.get("/openapi.json").json()
    assert "/api/tools/run_backtest" in spec["paths"]
    body = spec["paths"]["/api/tools/place_order"]["post"]["requestBody"]["content"]["application/json"]
    assert body["schema"]
