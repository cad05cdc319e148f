"""``docker-compose.yml`` and ``docker-compose.gpu.yml``: they parse and hold the services, images, ports,
health checks, volumes and GPU reservations the scaling docs promise; every ``NQ_*`` name in them is one
``Settings`` reads and every value validates; the GPU override makes the vLLM Serve app the router's first
provider. (No Docker engine here: this is what can be proven without one.)"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlparse

import pytest

from nq_ray.config import load_settings
from tests.deploy.deployfiles import ROOT, interpolate, is_settings_env, load_yaml

COMPOSE = load_yaml(ROOT / "docker-compose.yml")
GPU = load_yaml(ROOT / "docker-compose.gpu.yml")
SERVICES: dict[str, Any] = COMPOSE["services"]
RAY_SERVICES = ("ray-head", "ray-worker")


def env_of(service: dict[str, Any]) -> dict[str, str]:
    """A service's environment with compose interpolation applied (defaults; ``<VAR>`` when required)."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(e.split("=", 1) for e in env)
    return {k: interpolate(str(v)) for k, v in env.items()}


def command_of(service: dict[str, Any]) -> str:
    cmd = service.get("command", "")
    return interpolate(" ".join(cmd) if isinstance(cmd, list) else cmd)


def merged_env(name: str) -> dict[str, str]:
    """The environment of ``name`` with docker-compose.gpu.yml layered on top."""
    return env_of(SERVICES.get(name, {})) | env_of(GPU["services"].get(name, {}))


def test_core_services_are_defined() -> None:
    assert set(SERVICES) >= {"ray-head", "ray-worker", "redis", "postgres", "ollama"}
    assert SERVICES["ollama"]["profiles"] == ["ollama"]


def test_head_and_workers_share_one_image_built_from_the_dockerfile() -> None:
    head, worker = SERVICES["ray-head"], SERVICES["ray-worker"]

    assert head["build"]["dockerfile"] == "Dockerfile" and (ROOT / "Dockerfile").is_file()
    assert head["image"] == worker["image"]
    assert "build" not in worker  # scaled replicas reuse the head's image


def test_workers_scale_without_fixed_names_or_host_ports() -> None:
    worker = SERVICES["ray-worker"]

    assert "container_name" not in worker and "ports" not in worker  # --scale ray-worker=N works


def test_head_publishes_serve_and_the_dashboard() -> None:
    published = {interpolate(p).split(":")[-1] for p in SERVICES["ray-head"]["ports"]}

    assert {"8000", "8265"} <= published


def test_head_starts_ray_and_runs_a_serve_config_that_exists() -> None:
    head = SERVICES["ray-head"]
    cmd = command_of(head)

    assert "ray start --head --port=6379" in cmd and "serve run" in cmd and "${SERVE_CONFIG}" in cmd
    for env in (env_of(head), merged_env("ray-head")):
        assert (ROOT / env["SERVE_CONFIG"]).is_file(), env["SERVE_CONFIG"]


def test_workers_join_the_head() -> None:
    for name, svc in [
        ("ray-worker", SERVICES["ray-worker"]),
        ("ray-gpu-worker", GPU["services"]["ray-gpu-worker"]),
    ]:
        cmd = command_of(svc)
        assert "ray start --address=ray-head:6379" in cmd and "--block" in cmd, name
        assert svc["depends_on"]["ray-head"]["condition"] == "service_healthy", name


@pytest.mark.parametrize("name", ["ray-head", "ray-worker", "redis", "postgres", "ollama"])
def test_services_have_health_checks(name: str) -> None:
    check = SERVICES[name]["healthcheck"]

    assert check["test"] and check["interval"]


def test_head_health_check_is_the_api_health_endpoint() -> None:
    assert "http://127.0.0.1:8000/health" in " ".join(SERVICES["ray-head"]["healthcheck"]["test"])


def test_head_waits_for_healthy_postgres_and_redis() -> None:
    deps = SERVICES["ray-head"]["depends_on"]

    assert deps["postgres"]["condition"] == deps["redis"]["condition"] == "service_healthy"


def test_named_volumes_are_declared() -> None:
    declared = set(COMPOSE["volumes"]) | set(GPU.get("volumes") or {})
    for svc in [*SERVICES.values(), *GPU["services"].values()]:
        for vol in svc.get("volumes", []):
            source = vol.split(":")[0]
            if not source.startswith((".", "/")):
                assert source in declared, source


@pytest.mark.parametrize("name", RAY_SERVICES)
def test_every_nq_name_is_a_setting(name: str) -> None:
    unknown = [k for k in merged_env(name) if k.startswith("NQ_") and not is_settings_env(k)]

    assert not unknown


@pytest.mark.parametrize("name", RAY_SERVICES)
def test_the_nq_environment_validates_as_a_whole(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    for k, v in merged_env(name).items():
        if k.startswith("NQ_"):
            monkeypatch.setenv(k, v)

    settings = load_settings()

    assert settings.serve.host == "0.0.0.0" and settings.mcp.auth_token is not None
    assert settings.execution.mode == "paper"


def test_store_and_cache_point_at_the_compose_services() -> None:
    env = env_of(SERVICES["ray-head"])

    assert urlparse(env["NQ_STORE__URL"]).hostname == "postgres"
    assert urlparse(env["NQ_CACHE__URL"]).hostname == "redis"
    assert urlparse(env["NQ_LLM__BASE_URLS__OLLAMA"]).hostname == "ollama"


def test_head_and_workers_get_the_same_nq_settings() -> None:
    def nq(name: str) -> dict[str, str]:
        return {k: v for k, v in env_of(SERVICES[name]).items() if k.startswith("NQ_")}

    assert nq("ray-head") == nq("ray-worker")


def test_api_refuses_to_start_without_a_token() -> None:
    raw = SERVICES["ray-head"]["environment"]["NQ_MCP__AUTH_TOKEN"]

    assert re.fullmatch(r"\$\{NQ_MCP__AUTH_TOKEN:\?.+\}", raw)


# --- docker-compose.gpu.yml ----------------------------------------------------------------------------


def gpu_worker() -> dict[str, Any]:
    return GPU["services"]["ray-gpu-worker"]


def test_gpu_worker_extends_the_cpu_worker_and_builds_the_gpu_image() -> None:
    svc = gpu_worker()

    assert svc["extends"] == {"file": "docker-compose.yml", "service": "ray-worker"}
    assert svc["build"]["dockerfile"] == "Dockerfile.gpu" and (ROOT / "Dockerfile.gpu").is_file()
    assert svc["image"] != SERVICES["ray-worker"]["image"]


def test_gpu_worker_reserves_nvidia_gpus_and_tells_ray_how_many() -> None:
    (device,) = gpu_worker()["deploy"]["resources"]["reservations"]["devices"]

    assert device["driver"] == "nvidia" and "gpu" in device["capabilities"]
    assert f"--num-gpus={device['count']}" in command_of(gpu_worker())


def test_gpu_override_deploys_the_config_with_the_vllm_app() -> None:
    config = load_yaml(ROOT / merged_env("ray-head")["SERVE_CONFIG"])

    llm = [a for a in config["applications"] if a["import_path"] == "ray.serve.llm:build_openai_app"]
    assert len(llm) == 1


def test_gpu_override_makes_the_vllm_app_the_routers_first_provider(monkeypatch: pytest.MonkeyPatch) -> None:
    config = load_yaml(ROOT / merged_env("ray-head")["SERVE_CONFIG"])
    (llm,) = [a for a in config["applications"] if a["import_path"] == "ray.serve.llm:build_openai_app"]
    model_file = load_yaml(ROOT / llm["args"]["llm_configs"][0])
    envs = {
        "ray-head": merged_env("ray-head"),
        "ray-worker": merged_env("ray-worker"),
        "ray-gpu-worker": env_of(SERVICES["ray-worker"]) | env_of(gpu_worker()),  # extends ray-worker
    }
    for name, env in envs.items():
        with monkeypatch.context() as m:
            for k, v in env.items():
                if k.startswith("NQ_"):
                    m.setenv(k, v)
            first = min(load_settings().llm.resolved(), key=lambda p: p.priority)

        assert first.kind == "serve", name
        assert first.base_url == f"http://ray-head:8000{llm['route_prefix']}/v1", name
        assert first.model == model_file["model_loading_config"]["model_id"], name


@pytest.mark.parametrize("name", RAY_SERVICES)
def test_ray_nodes_require_the_cluster_token(name: str) -> None:
    raw = SERVICES[name]["environment"]

    assert raw["RAY_AUTH_MODE"] == "token"
    assert re.fullmatch(r"\$\{RAY_AUTH_TOKEN:\?.+\}", raw["RAY_AUTH_TOKEN"])
