"""serve_configs/llm-gpu.yaml validates against Ray Serve's own schema; its model config against Ray's
LLMConfig (importable without vLLM). ``ray.serve.llm`` itself is never imported here: it needs vLLM."""

from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
SERVE_YAML = ROOT / "serve_configs" / "llm-gpu.yaml"


def load() -> dict:
    return yaml.safe_load(SERVE_YAML.read_text(encoding="utf-8"))


def test_llm_gpu_yaml_validates_against_serve_deploy_schema() -> None:
    from ray.serve.schema import ServeDeploySchema

    schema = ServeDeploySchema.model_validate(load())

    (app,) = schema.applications
    assert app.import_path == "ray.serve.llm:build_openai_app" and app.route_prefix == "/llm"
    assert schema.http_options.port == 8000


def test_model_configs_exist_and_name_model_accelerator_and_scaling() -> None:
    (app,) = load()["applications"]

    paths = [ROOT / p for p in app["args"]["llm_configs"]]

    assert paths and all(p.is_file() for p in paths)
    for p in paths:
        cfg = yaml.safe_load(p.read_text(encoding="utf-8"))
        assert cfg["model_loading_config"]["model_id"] and cfg["model_loading_config"]["model_source"]
        assert cfg["accelerator_type"] and cfg["engine_kwargs"]["tensor_parallel_size"] >= 1
        scaling = cfg["deployment_config"]["autoscaling_config"]
        assert 0 <= scaling["min_replicas"] <= scaling["max_replicas"]
        assert cfg["engine_kwargs"]["max_model_len"] > 0


def test_model_configs_validate_against_rays_llm_config() -> None:
    # Ray's private module, imported plainly: if a Ray upgrade moves or renames LLMConfig, this test fails
    # with an ImportError that names the module (it never skips); find its new home and update the import.
    from ray.llm._internal.serve.core.configs.llm_config import LLMConfig

    (app,) = load()["applications"]

    configs = [LLMConfig.from_file(str(ROOT / p)) for p in app["args"]["llm_configs"]]

    assert [c.model_id for c in configs] == ["qwen2.5-1.5b-instruct"]


def test_default_serve_provider_points_at_this_deployment() -> None:
    from nq_ray.llm.config import LLMConfig

    (app,) = load()["applications"]
    model_id = yaml.safe_load((ROOT / app["args"]["llm_configs"][0]).read_text())["model_loading_config"][
        "model_id"
    ]

    serve = next(p for p in LLMConfig().providers if p.name == "serve")

    assert serve.model == model_id and serve.base_url == f"http://127.0.0.1:8000{app['route_prefix']}/v1"
