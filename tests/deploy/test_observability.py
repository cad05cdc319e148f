"""``observability/``: the Grafana dashboard parses, every panel queries something, and every nq-ray metric
it queries is one the code defines (the API's prometheus_client registry, and the LLM sink's
``ray.util.metrics``, which Ray exports with a ``ray_`` prefix); Prometheus and Grafana provisioning are
wired to the paths docker-compose.yml mounts."""

from __future__ import annotations

import json
import re
import sys
import types
from typing import Any

import pytest

from tests.deploy.deployfiles import ROOT, load_yaml

DASHBOARD = ROOT / "observability" / "grafana" / "dashboards" / "nq-ray.json"
COMPOSE = load_yaml(ROOT / "docker-compose.yml")


def panels() -> list[dict[str, Any]]:
    return [p for p in json.loads(DASHBOARD.read_text(encoding="utf-8"))["panels"] if p["type"] != "row"]


def exprs() -> list[str]:
    return [t["expr"] for p in panels() for t in p["targets"]]


def api_metric_names() -> set[str]:
    """Sample names of ``nq_ray.serve.metrics.Metrics`` (e.g. ``nq_tool_calls_total``)."""
    from nq_ray.serve.metrics import Metrics

    names: set[str] = set()
    for family in Metrics(replica="test").registry.collect():
        kind = family.type
        base = family.name
        if kind == "counter":
            names |= {f"{base}_total"}
        elif kind == "histogram":
            names |= {f"{base}_bucket", f"{base}_count", f"{base}_sum"}
        else:
            names.add(base)
    return names


def ray_metric_names(monkeypatch: pytest.MonkeyPatch) -> set[str]:
    """Names ``RayMetricsSink`` registers, as Ray's exporter writes them (``ray_`` + name)."""
    created: list[tuple[str, str]] = []

    def fake(kind: str) -> type:
        class Fake:
            def __init__(self, name: str, *args: Any, **kwargs: Any) -> None:
                created.append((kind, name))

        return Fake

    module = types.ModuleType("ray.util.metrics")
    module.Counter, module.Histogram, module.Gauge = fake("counter"), fake("histogram"), fake("gauge")  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "ray.util.metrics", module)
    from nq_ray.llm.metrics import RayMetricsSink

    RayMetricsSink()
    names: set[str] = set()
    for kind, name in created:
        base = f"ray_{name}"
        names |= {f"{base}_bucket", f"{base}_count", f"{base}_sum"} if kind == "histogram" else {base}
    return names


def test_dashboard_parses_with_uid_title_and_panels() -> None:
    dash = json.loads(DASHBOARD.read_text(encoding="utf-8"))

    assert dash["uid"] and dash["title"] and len(panels()) >= 10


def test_every_panel_has_a_query() -> None:
    assert all(p["targets"] and all(t["expr"].strip() for t in p["targets"]) for p in panels())


def test_every_nq_metric_on_the_dashboard_is_defined_in_code(monkeypatch: pytest.MonkeyPatch) -> None:
    known = api_metric_names() | ray_metric_names(monkeypatch)
    used = {m for e in exprs() for m in re.findall(r"\b((?:ray_)?nq_[a-z0-9_]+)", e)}

    assert used and not used - known, f"not defined in nq_ray: {sorted(used - known)}"


@pytest.mark.parametrize(
    "topic",
    ["nq_tool_calls_total", "ray_nq_llm_tokens_total", "ray_nq_llm_latency_seconds_bucket",
     "ray_nq_llm_cost_usd_total", "nq_broker_orders_total", "nq_risk_denials_total", "nq_jobs_total",
     "ray_tasks", "ray_serve_num_http_requests_total"],
)  # fmt: skip
def test_dashboard_covers_what_the_issue_asks_for(topic: str) -> None:
    assert any(topic in e for e in exprs())


def test_prometheus_discovers_ray_nodes_from_the_file_the_head_writes() -> None:
    prom = load_yaml(ROOT / "observability" / "prometheus.yml")
    ray_job = next(j for j in prom["scrape_configs"] if j["job_name"] == "ray")
    (sd,) = ray_job["file_sd_configs"]
    mounts = COMPOSE["services"]["prometheus"]["volumes"]

    assert sd["files"] == ["/tmp/ray/prom_metrics_service_discovery.json"]
    assert (
        "ray-tmp:/tmp/ray:ro" in mounts and "ray-tmp:/tmp/ray" in COMPOSE["services"]["ray-head"]["volumes"]
    )
    assert "./observability/prometheus.yml:/etc/prometheus/prometheus.yml:ro" in mounts


def test_grafana_provisions_the_datasource_and_the_dashboard_folder() -> None:
    base = ROOT / "observability" / "grafana" / "provisioning"
    (ds,) = load_yaml(base / "datasources" / "prometheus.yml")["datasources"]
    (provider,) = load_yaml(base / "dashboards" / "nq-ray.yml")["providers"]
    mounts = COMPOSE["services"]["grafana"]["volumes"]

    assert ds["type"] == "prometheus" and ds["url"] == "http://prometheus:9090"
    assert f"./observability/grafana/dashboards:{provider['options']['path']}:ro" in mounts
