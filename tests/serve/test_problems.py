"""``nq_ray.serve.problems``: errors are RFC 9457 problem details with the typed code."""

from __future__ import annotations

from tests.serve.conftest import AUTH

PROBLEM = "application/problem+json"


def test_errors_are_problem_details_with_the_typed_code(client) -> None:
    r = client.get("/api/market/nq-price", params={"symbol": "ZZ"}, headers=AUTH)
    assert (r.status_code, r.headers["content-type"], r.json()["code"]) == (404, PROBLEM, "unknown_symbol")
    assert r.json()["type"].endswith("/unknown_symbol") and "ZZ" in r.json()["detail"]
    r = client.get("/api/market/historical", params={"limit": "lots"}, headers=AUTH)
    assert (r.status_code, r.json()["code"]) == (422, "invalid_argument")
    r = client.post("/api/tools/make_money", json={}, headers=AUTH)
    assert (r.status_code, r.json()["code"]) == (404, "unknown_tool")
    r = client.get("/no/such/route", headers=AUTH)
    assert r.status_code == 404 and r.headers["content-type"] == PROBLEM


def test_a_problem_carries_the_request_id_of_its_response(client) -> None:
    for r in (
        client.get("/api/market/nq-price", params={"symbol": "ZZ"}, headers=AUTH),  # typed error
        client.get("/api/market/historical", params={"limit": "lots"}, headers=AUTH),  # validation
        client.get("/no/such/route", headers=AUTH),  # Starlette's 404
        client.get("/api/tools", headers={**AUTH, "X-Request-ID": "mine-42"}),  # (not an error)
    ):
        if r.status_code >= 400:
            assert r.json()["request_id"] == r.headers["x-request-id"], r.url
    r = client.get("/api/jobs/none", headers={**AUTH, "X-Request-ID": "mine-42"})
    assert r.status_code == 404 and r.json()["request_id"] == "mine-42"
