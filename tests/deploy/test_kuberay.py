"""``kuberay/``: the RayService embeds ``serve_configs/cluster-gpu.yaml`` unchanged (and it validates against
Ray Serve's schema), the RayCluster has CPU and GPU worker groups with autoscaling, the RayJob's entrypoint
is a valid ``nq_ray.scale`` command, and every ``NQ_*`` name is one ``Settings`` reads. (No Kubernetes here:
this is what can be proven without one.)"""

from __future__ import annotations

import shlex
from typing import Any

import pytest
import ray
import yaml
from pydantic import SecretStr
from ray.serve.schema import ServeDeploySchema

from nq_ray.config import load_settings
from nq_ray.scale import build_parser, parse_grid
from tests.deploy.deployfiles import ROOT, is_settings_env, load_all, load_yaml

KUBERAY = ROOT / "kuberay"
SERVE_CONFIG = ROOT / "serve_configs" / "cluster-gpu.yaml"


def load_yaml_text(text: str) -> Any:
    return yaml.safe_load(text)


def one(name: str, kind: str) -> dict[str, Any]:
    docs = [d for d in load_all(KUBERAY / name) if d["kind"] == kind]
    assert len(docs) == 1, f"{name}: expected one {kind}"
    return docs[0]


SERVICE = one("rayservice.yaml", "RayService")
CLUSTER = one("raycluster.yaml", "RayCluster")
JOB = one("rayjob-sweep.yaml", "RayJob")
CONFIGMAP = one("configmap.yaml", "ConfigMap")
CLUSTER_SPECS = {
    "rayservice": SERVICE["spec"]["rayClusterConfig"],
    "raycluster": CLUSTER["spec"],
    "rayjob": JOB["spec"]["rayClusterSpec"],
}


def containers(spec: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(group, container) for the head and every worker group of a cluster spec."""
    out = [("head", c) for c in spec["headGroupSpec"]["template"]["spec"]["containers"]]
    for group in spec["workerGroupSpecs"]:
        out += [(group["groupName"], c) for c in group["template"]["spec"]["containers"]]
    return out


def groups(spec: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {g["groupName"]: g for g in spec["workerGroupSpecs"]}


def test_every_file_parses_and_the_ray_kinds_use_ray_io_v1() -> None:
    kinds = {d["kind"]: d["apiVersion"] for p in KUBERAY.glob("*.yaml") for d in load_all(p)}

    assert {"RayService", "RayCluster", "RayJob", "ConfigMap"} <= set(kinds)
    assert all(kinds[k] == "ray.io/v1" for k in ("RayService", "RayCluster", "RayJob"))


def test_rayservice_embeds_the_cluster_serve_config_unchanged() -> None:
    embedded = load_yaml_text(SERVICE["spec"]["serveConfigV2"])

    assert embedded == load_yaml(SERVE_CONFIG), (
        "kuberay/rayservice.yaml serveConfigV2 differs from serve_configs/cluster-gpu.yaml: paste the file "
        "into serveConfigV2 again (indented by 4 spaces)"
    )


def test_rayservice_serve_config_validates_against_serve_deploy_schema() -> None:
    schema = ServeDeploySchema.model_validate(load_yaml_text(SERVICE["spec"]["serveConfigV2"]))

    assert {a.route_prefix for a in schema.applications} >= {"/", "/llm"}


@pytest.mark.parametrize("kind", sorted(CLUSTER_SPECS))
def test_ray_version_is_the_installed_one(kind: str) -> None:
    assert CLUSTER_SPECS[kind]["rayVersion"] == ray.__version__


@pytest.mark.parametrize("kind", sorted(CLUSTER_SPECS))
def test_ray_token_auth_is_on(kind: str) -> None:
    # KubeRay makes the token's Secret and sets RAY_AUTH_MODE / RAY_AUTH_TOKEN on every Ray container
    assert CLUSTER_SPECS[kind]["authOptions"] == {"mode": "token"}
    for group, container in containers(CLUSTER_SPECS[kind]):
        names = {e["name"]: e for e in container.get("env", [])}
        assert names.get("RAY_AUTH_MODE", {}).get("value", "token") == "token", group


@pytest.mark.parametrize("kind", ["rayservice", "raycluster"])
def test_cluster_has_cpu_and_gpu_worker_groups_with_autoscaling(kind: str) -> None:
    spec = CLUSTER_SPECS[kind]
    by_name = groups(spec)

    assert spec["enableInTreeAutoscaling"] is True
    assert set(by_name) == {"cpu", "gpu"}
    for g in by_name.values():
        assert 0 <= g["minReplicas"] <= g["replicas"] <= g["maxReplicas"]
    assert by_name["cpu"]["maxReplicas"] > by_name["cpu"]["minReplicas"]
    assert by_name["gpu"]["minReplicas"] == 0  # GPUs only while a deployment needs one


@pytest.mark.parametrize("kind", ["rayservice", "raycluster"])
def test_gpu_group_asks_kubernetes_and_ray_for_the_same_gpus(kind: str) -> None:
    gpu = groups(CLUSTER_SPECS[kind])["gpu"]
    (container,) = gpu["template"]["spec"]["containers"]
    limits, requests = container["resources"]["limits"], container["resources"]["requests"]

    assert int(limits["nvidia.com/gpu"]) >= 1 and limits["nvidia.com/gpu"] == requests["nvidia.com/gpu"]
    assert gpu["rayStartParams"]["num-gpus"] == limits["nvidia.com/gpu"]
    assert any(t["key"] == "nvidia.com/gpu" for t in gpu["template"]["spec"]["tolerations"])


@pytest.mark.parametrize("kind", sorted(CLUSTER_SPECS))
def test_images_are_the_cpu_image_except_on_gpu_workers(kind: str) -> None:
    for group, c in containers(CLUSTER_SPECS[kind]):
        name = c["image"].rsplit("/", 1)[-1].split(":")[0]
        assert name == ("nq-ray-gpu" if group == "gpu" else "nq-ray"), (group, c["image"])


@pytest.mark.parametrize("kind", sorted(CLUSTER_SPECS))
def test_head_exposes_gcs_dashboard_client_serve_and_metrics_ports(kind: str) -> None:
    (head,) = CLUSTER_SPECS[kind]["headGroupSpec"]["template"]["spec"]["containers"]
    ports = {p["name"]: p["containerPort"] for p in head["ports"]}

    assert ports == {"gcs-server": 6379, "dashboard": 8265, "client": 10001, "serve": 8000, "metrics": 8080}


@pytest.mark.parametrize("kind", sorted(CLUSTER_SPECS))
def test_every_node_exports_metrics_on_the_port_the_podmonitors_scrape(kind: str) -> None:
    spec = CLUSTER_SPECS[kind]
    monitors = [d for d in load_all(KUBERAY / "podmonitor.yaml") if d["kind"] == "PodMonitor"]
    scraped = {e["port"] for m in monitors for e in m["spec"]["podMetricsEndpoints"]}
    params = [
        spec["headGroupSpec"]["rayStartParams"],
        *(g["rayStartParams"] for g in spec["workerGroupSpecs"]),
    ]

    for (group, c), p in zip(containers(spec), params, strict=True):
        ports = {x["name"]: x["containerPort"] for x in c["ports"]}
        assert scraped == {"metrics"} and str(ports["metrics"]) == p["metrics-export-port"], group


@pytest.mark.parametrize("kind", sorted(CLUSTER_SPECS))
def test_every_container_reads_the_configmap_and_the_secret(kind: str) -> None:
    for group, c in containers(CLUSTER_SPECS[kind]):
        refs = {next(iter(r)): next(iter(r.values()))["name"] for r in c["envFrom"]}
        assert refs == {"configMapRef": CONFIGMAP["metadata"]["name"], "secretRef": "nq-ray-secrets"}, group


def nq_env() -> list[tuple[str, str]]:
    out = list(CONFIGMAP["data"].items())
    for spec in CLUSTER_SPECS.values():
        out += [(e["name"], e.get("value", "")) for _, c in containers(spec) for e in c.get("env", [])]
    return out


def test_every_nq_name_is_a_setting() -> None:
    unknown = [k for k, _ in nq_env() if k.startswith("NQ_") and not is_settings_env(k)]

    assert not unknown


def test_configmap_validates_as_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for k, v in CONFIGMAP["data"].items():
        monkeypatch.setenv(k, str(v))
    monkeypatch.setenv("NQ_MCP__AUTH_TOKEN", "from-the-secret")  # what nq-ray-secrets adds

    settings = load_settings()

    assert settings.serve.host == "0.0.0.0" and settings.execution.mode == "paper"


def test_configmap_holds_no_secret() -> None:
    def secret_fields(model: Any, prefix: str = "NQ_") -> set[str]:
        out: set[str] = set()
        for name, f in model.model_fields.items():
            ann = f.annotation
            inner = getattr(ann, "model_fields", None)
            if inner is not None:
                out |= secret_fields(ann, f"{prefix}{name.upper()}__")
            elif "SecretStr" in str(ann) or ann is SecretStr:
                out.add(f"{prefix}{name.upper()}")
        return out

    from nq_ray.config import Settings

    secret = secret_fields(Settings)
    keys = set(CONFIGMAP["data"])

    assert "NQ_MCP__AUTH_TOKEN" in secret and not keys & secret
    assert "NQ_STORE__URL" not in keys  # a database URL carries its password: it goes in the Secret
    assert not any(k.startswith(("NQ_LLM__API_KEYS", "NQ_DATA__TRADOVATE__")) for k in keys)


def test_rayjob_entrypoint_is_a_valid_scale_command() -> None:
    argv = shlex.split(JOB["spec"]["entrypoint"])

    assert argv[:3] == ["python", "-m", "nq_ray.scale"]
    args = build_parser().parse_args(argv[3:])
    grid = parse_grid(args.grid)
    assert args.cmd == "sweep" and args.out and set(grid) == {"fast", "slow"}
    assert JOB["spec"]["shutdownAfterJobFinishes"] is True


def test_readme_documents_the_secret_the_pods_read() -> None:
    text = (KUBERAY / "README.md").read_text(encoding="utf-8")

    assert "kubectl create secret generic nq-ray-secrets" in text and "NQ_MCP__AUTH_TOKEN" in text
