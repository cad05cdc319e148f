"""Prometheus metrics of a replica: orders by status and risk denials by reason."""

from __future__ import annotations

from nq_ray.serve.metrics import Metrics


def test_rejected_order_counts_each_deny_reason() -> None:
    m = Metrics(replica="r1")
    m.on_order({"status": "accepted"})
    m.on_order(
        {
            "status": "rejected",
            "reasons": [
                {"code": "no_price", "action": "deny"},
                {"code": "max_contracts", "action": "reduce"},
            ],
        }
    )
    text = m.render().decode()
    assert 'nq_broker_orders_total{replica="r1",status="accepted"} 1.0' in text
    assert 'nq_risk_denials_total{reason="no_price",replica="r1"} 1.0' in text
    assert "max_contracts" not in text


def test_unknown_tool_names_do_not_become_labels() -> None:
    m = Metrics(replica="r1")
    m.on_call("_unknown", "unknown_tool", 0.001)
    m.on_call("get_contract_info", "ok", 0.002)
    text = m.render().decode()
    assert 'nq_tool_errors_total{code="unknown_tool",replica="r1",tool="_unknown"} 1.0' in text


def test_totals_add_counters_and_histograms_over_replicas_and_drop_the_replica_label() -> None:
    from nq_ray.serve.metrics import render_totals

    a, b = Metrics(replica="a"), Metrics(replica="b")
    for _ in range(3):
        a.on_call("get_contract_info", "ok", 0.002)
    b.on_call("get_contract_info", "ok", 0.2)
    b.on_call("get_contract_info", "unknown_symbol", 0.001)
    a.ws_clients.labels("a").inc()
    b.ws_clients.labels("b").inc()
    text = render_totals([("a", 0.0, a.snapshot()), ("b", 100.0, b.snapshot())]).decode()
    assert 'nq_tool_calls_total{outcome="ok",tool="get_contract_info"} 4.0' in text
    assert 'nq_tool_errors_total{code="unknown_symbol",tool="get_contract_info"} 1.0' in text
    assert 'nq_tool_latency_seconds_count{tool="get_contract_info"} 5.0' in text
    assert 'nq_tool_latency_seconds_bucket{le="0.0025",tool="get_contract_info"} 4.0' in text
    assert "nq_ws_clients 1.0" in text  # b's gauge is 100 s old: stale, left out
    assert "replica=" not in text and "nq_replicas_reporting 2.0" in text
    assert "# TYPE nq_tool_calls counter" in text


def test_http_count_middleware_counts_by_status_class() -> None:
    import asyncio

    from nq_ray.serve.metrics import HTTPCountMiddleware

    m = Metrics(replica="r1")

    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        await send({"type": "http.response.start", "status": 404, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    sent: list[dict] = []

    async def send(msg):  # type: ignore[no-untyped-def]
        sent.append(msg)

    asyncio.run(HTTPCountMiddleware(app, m)({"type": "http"}, None, send))
    assert 'nq_http_requests_total{replica="r1",status="4xx"} 1.0' in m.render().decode()
    assert [x["type"] for x in sent] == ["http.response.start", "http.response.body"]
