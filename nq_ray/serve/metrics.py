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

from collections import defaultdict
from typing import Any

from nq_ray.runtime.metrics import Metrics, Snapshot

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
GAUGE_STALE_S = 30.0

__all__ = ["CONTENT_TYPE", "GAUGE_STALE_S", "HTTPCountMiddleware", "Metrics", "Snapshot", "render_totals"]


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
