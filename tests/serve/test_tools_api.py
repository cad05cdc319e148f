"""``nq_ray.serve.tools_api``: the market endpoints and the tools, listed and callable by name with their
own schema."""

from __future__ import annotations

from tests.serve.conftest import AUTH
from tests.tools.conftest import EXPECTED_TOOLS


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
    assert len(tools) == len(EXPECTED_TOOLS) and all("input_schema" in t for t in tools)
    r = client.post("/api/tools/get_contract_info", json={"symbol": "MES"}, headers=AUTH)
    assert r.status_code == 200 and r.json()["point_value_usd"] == 5.0
    r = client.post("/api/tools/get_contract_info", json={"symbol": "NQ", "bogus": 1}, headers=AUTH)
    assert (r.status_code, r.json()["code"]) == (422, "invalid_argument")
    spec = client.get("/openapi.json").json()
    assert "/api/tools/run_backtest" in spec["paths"]
    body = spec["paths"]["/api/tools/place_order"]["post"]["requestBody"]["content"]["application/json"]
    assert body["schema"]


# ---- files: only under the data roots -----------------------------------------------------------------

OUTSIDE_SOURCES = [
    "csv:/etc/passwd",  # exists, readable
    "csv:/nonexistent/bars.csv",  # does not exist
    "csv:../../etc/passwd",  # a relative escape from the roots
    "csv:/etc",  # a directory
    "parquet:/etc/shadow",  # exists, unreadable
    "csv:escape.csv",  # a symlink in the data dir pointing out
]


def _escape_link(settings) -> None:
    data_dir = settings.data.data_dir
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "escape.csv").symlink_to("/etc/passwd")


def test_files_outside_the_data_roots_get_one_refusal_whatever_they_are(client, settings) -> None:
    _escape_link(settings)
    bodies = []
    for source in OUTSIDE_SOURCES:
        r = client.get("/api/market/nq-price", params={"source": source}, headers=AUTH)
        assert r.status_code == 422, (source, r.text)
        bodies.append(r.json())
        r = client.post("/api/tools/get_historical_data", json={"source": source}, headers=AUTH)
        assert r.status_code == 422, (source, r.text)
        bodies.append(r.json())
    assert {b["code"] for b in bodies} == {"path_not_allowed"}
    assert len({b["detail"] for b in bodies if "csv:" in b["detail"]}) == 1  # csv: the same message
    assert all("root:" not in str(b) and "data.roots" in b["detail"] for b in bodies)


def test_a_csv_in_the_data_dir_is_read(client, settings) -> None:
    import shutil

    from nq_ray.data.sources.files import sample_path

    settings.data.data_dir.mkdir(parents=True, exist_ok=True)
    shutil.copy(sample_path("NQ_5min.csv"), settings.data.data_dir / "mine.csv")
    for source in ("csv:mine.csv", f"csv:{settings.data.data_dir / 'mine.csv'}"):
        r = client.get("/api/market/nq-price", params={"source": source}, headers=AUTH)
        assert r.status_code == 200, r.text
        assert r.json()["origin"]["source"] == source
    r = client.get("/api/market/nq-price", params={"source": "csv:absent.csv"}, headers=AUTH)
    assert (r.status_code, r.json()["code"]) == (404, "data_unavailable")
    assert str(settings.data.data_dir) not in r.text  # named as the caller named it


# ---- client order ids ----------------------------------------------------------------------------------


def test_an_order_id_reused_for_a_different_order_is_a_409_problem_and_changes_nothing(client) -> None:
    order = {"symbol": "NQ", "side": "buy", "contracts": 1, "order_type": "limit", "price": 20000.0}
    order |= {"client_order_id": "http-1"}
    first = client.post("/api/tools/place_order", json=order, headers=AUTH)
    assert first.status_code == 200, first.text
    again = client.post("/api/tools/place_order", json=order, headers=AUTH)
    assert again.status_code == 200 and again.json()["duplicate"] is True
    assert first.json()["duplicate"] is False and again.json()["order"] == first.json()["order"]
    status = {"action": "status"}
    before = client.post("/api/tools/manage_position", json=status, headers=AUTH).json()["portfolio"]

    other = order | {"side": "sell", "contracts": 7}
    r = client.post("/api/tools/place_order", json=other, headers=AUTH)

    assert r.status_code == 409 and r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert (body["code"], body["status"]) == ("duplicate_client_order_id", 409)
    assert set(body["details"]["differs"]) == {"side", "quantity"}
    after = client.post("/api/tools/manage_position", json=status, headers=AUTH).json()["portfolio"]
    assert after == before
