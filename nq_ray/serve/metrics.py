"""Prometheus metrics (``GET /metrics``): tool calls, latencies, errors, jobs, orders — cluster totals.

Each replica counts in its own ``prometheus_client`` registry (labelled with its ``replica`` id) and
pushes a snapshot to the ``tool_registry`` actor about once a second (``snapshot``), together with the
actor's own counters (tool calls agents make there). ``GET /metrics`` pushes this replica's fresh
snapshot, fetches every replica's latest one and answers with their sum (``render_totals``: counters and
histograms summed per label set, the ``replica`` label dropped; gauges only from replicas heard from in
the last ``GAUGE_STALE_S``). Other replicas' counts are at most one sync period old. A replica that goes
away keeps its last counts in the totals, so they never go backwards. ``GET /metrics?scope=replica`` is
the old per-replica view."""

from __future__ import annotations

import os
import socket
from collections import defaultdict
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
GAUGE_STALE_S = 30.0
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


class HTTPCountMiddleware:
    """Pure ASGI middleware counting HTTP responses by status class (``nq_http_requests``): no task group
    or body streaming per request, unlike ``@app.middleware("http")``, which cost ~6% of a replica's CPU
    on the MCP hot path."""

    def __init__(self, app: Any, metrics: Metrics) -> None:
        self.app, self.metrics = app, metrics
        self._counters = {c: metrics.http_requests.labels(f"{c}xx", metrics.replica) for c in range(1, 6)}

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        counters = self._counters

        async def counted(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                counter = counters.get(int(message["status"]) // 100)
                if counter is not None:
                    counter.inc()
            await send(message)

        await self.app(scope, receive, counted)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def render_totals(snapshots: list[tuple[str, float, Snapshot]]) -> bytes:
    """Prometheus text of the sum of ``(replica, age_s, snapshot)`` over replicas (see the module doc)."""
    families: dict[str, list[str]] = {}
    sums: dict[str, dict[tuple[str, tuple[tuple[str, str], ...]], float]] = defaultdict(dict)
    for _replica, age_s, snap in snapshots:
        families.update(snap.get("families", {}))
        for family, sample, labels, value in snap.get("samples", []):
            kind = families.get(family, ["untyped"])[0]
            if kind == "gauge" and age_s > GAUGE_STALE_S:
                continue
            key = (sample, tuple(sorted((k, v) for k, v in labels.items() if k != "replica")))
            bucket = sums[family]
            bucket[key] = bucket.get(key, 0.0) + value
    lines: list[str] = []
    for family in sorted(families):
        kind, doc = families[family]
        lines.append(f"# HELP {family} {doc} (sum over replicas)")
        lines.append(f"# TYPE {family} {kind}")
        for (sample, labels), value in sorted(sums.get(family, {}).items()):
            text = ",".join(f'{k}="{_escape(v)}"' for k, v in labels)
            lines.append(f"{sample}{{{text}}} {value!r}" if text else f"{sample} {value!r}")
    lines.append("# HELP nq_replicas_reporting processes whose metrics are in these totals")
    lines.append("# TYPE nq_replicas_reporting gauge")
    lines.append(f"nq_replicas_reporting {float(len(snapshots))!r}")
    return ("\n".join(lines) + "\n").encode()
