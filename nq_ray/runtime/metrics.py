"""The counters of one process (``Metrics``): tool calls, latencies, errors, jobs, orders, in a
``prometheus_client`` registry labelled with a ``replica`` id, and ``snapshot`` of them as plain data.

Used by every Serve replica and by the ``tool_registry`` actor (the tool calls agents make there); the
HTTP side (``GET /metrics``, cluster totals) is ``nq_ray.serve.metrics``.
"""

from __future__ import annotations

import os
import socket
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

Snapshot = dict[str, Any]
_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)


class Metrics:
    def __init__(self, replica: str | None = None) -> None:
        self.registry = CollectorRegistry()
        self.replica = replica or f"{socket.gethostname()}-{os.getpid()}"
        r = self.registry
        self.tool_calls = Counter(
            "nq_tool_calls", "tool calls by tool and outcome", ["tool", "outcome", "replica"], registry=r
        )
        self.tool_errors = Counter(
            "nq_tool_errors", "tool errors by code", ["tool", "code", "replica"], registry=r
        )
        self.tool_latency = Histogram(
            "nq_tool_latency_seconds", "tool call latency", ["tool", "replica"], buckets=_BUCKETS, registry=r
        )
        self.http_requests = Counter(
            "nq_http_requests", "HTTP API responses by status class", ["status", "replica"], registry=r
        )
        self.jobs = Counter(
            "nq_jobs", "jobs submitted / finished by status", ["status", "replica"], registry=r
        )
        self.orders = Counter(
            "nq_broker_orders", "paper orders by resulting status", ["status", "replica"], registry=r
        )
        self.risk_denials = Counter(
            "nq_risk_denials",
            "paper orders the risk gate denied, by reason code",
            ["reason", "replica"],
            registry=r,
        )
        self.ws_clients = Gauge("nq_ws_clients", "open WebSocket connections", ["replica"], registry=r)

    def on_call(self, tool: str, outcome: str, seconds: float) -> None:
        """The registry's call hook: ``outcome`` is ok, cancelled or an error code."""
        ok = outcome in ("ok", "cancelled")
        self.tool_calls.labels(
            tool, "ok" if outcome == "ok" else "error" if not ok else outcome, self.replica
        ).inc()
        if not ok:
            self.tool_errors.labels(tool, outcome, self.replica).inc()
        self.tool_latency.labels(tool, self.replica).observe(seconds)

    def on_order(self, order: dict[str, Any]) -> None:
        """Count a paper order by its status, and each deny reason of a rejected one."""
        status = str(order.get("status", "unknown"))
        self.orders.labels(status, self.replica).inc()
        if status == "rejected":
            for reason in order.get("reasons") or [{"code": "unspecified"}]:
                if reason.get("action", "deny") == "deny":
                    self.risk_denials.labels(str(reason.get("code", "unspecified")), self.replica).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)

    def snapshot(self) -> Snapshot:
        """This registry's samples as plain data: ``{"families": {name: [type, help]}, "samples":
        [[family, sample, labels, value], ...]}`` (``_created`` timestamps left out)."""
        families: dict[str, list[str]] = {}
        samples: list[list[Any]] = []
        for metric in self.registry.collect():
            families[metric.name] = [metric.type, metric.documentation]
            for smp in metric.samples:
                if smp.name.endswith("_created"):
                    continue
                samples.append([metric.name, smp.name, dict(smp.labels), float(smp.value)])
        return {"families": families, "samples": samples}
