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
