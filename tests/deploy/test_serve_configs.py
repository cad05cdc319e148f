"""Every Serve config in ``serve_configs/`` validates against Ray Serve's own schema, names code and files
that exist, and the cluster variants carry exactly the applications of the configs they combine."""

from __future__ import annotations

import importlib
import importlib.util
from pathlib import Path
from typing import Any

import pytest
from ray.serve.schema import ServeDeploySchema

from tests.deploy.deployfiles import ROOT, SERVE_CONFIGS, load_yaml

# cluster variant → the configs whose applications it must hold, in order
CLUSTER_VARIANTS = {
    "cluster.yaml": ["local.yaml"],
    "cluster-gpu.yaml": ["local.yaml", "llm-gpu.yaml"],
}
NEEDS_VLLM = ("ray.serve.llm",)  # importable only with the [gpu] extra: checked by path, not imported


def apps(name: str) -> list[dict[str, Any]]:
    path = ROOT / "serve_configs" / name
    assert path.is_file(), f"serve_configs/{name} is missing; the cluster variants are built from it"
    return load_yaml(path)["applications"]


def test_there_are_serve_configs() -> None:
    assert {p.name for p in SERVE_CONFIGS} >= {"llm-gpu.yaml", *CLUSTER_VARIANTS}


@pytest.mark.parametrize("path", SERVE_CONFIGS, ids=lambda p: p.name)
def test_config_validates_against_serve_deploy_schema(path: Path) -> None:
    schema = ServeDeploySchema.model_validate(load_yaml(path))

    assert schema.applications
    names = [a.name for a in schema.applications]
    prefixes = [a.route_prefix for a in schema.applications]
    assert len(set(names)) == len(names) and len(set(prefixes)) == len(prefixes)


@pytest.mark.parametrize("path", SERVE_CONFIGS, ids=lambda p: p.name)
def test_import_paths_resolve(path: Path) -> None:
    for app in load_yaml(path)["applications"]:
        module, _, attr = app["import_path"].partition(":")
        if module.startswith(NEEDS_VLLM):
            assert importlib.util.find_spec(module) is not None, module
            continue
        target = getattr(importlib.import_module(module), attr, None)
        assert callable(target), f"{path.name}: {app['import_path']} is not a callable in the package"


@pytest.mark.parametrize("path", SERVE_CONFIGS, ids=lambda p: p.name)
def test_model_files_named_in_args_exist_relative_to_the_repository_root(path: Path) -> None:
    for app in load_yaml(path)["applications"]:
        for rel in (app.get("args") or {}).get("llm_configs", []):
            assert isinstance(rel, dict) or (ROOT / rel).is_file(), f"{path.name}: {rel} missing"


@pytest.mark.parametrize("variant", sorted(CLUSTER_VARIANTS))
def test_cluster_variant_holds_exactly_the_applications_it_combines(variant: str) -> None:
    expected = [app for source in CLUSTER_VARIANTS[variant] for app in apps(source)]

    assert apps(variant) == expected


@pytest.mark.parametrize("variant", sorted(CLUSTER_VARIANTS))
def test_cluster_variant_listens_on_every_interface_of_every_node(variant: str) -> None:
    schema = ServeDeploySchema.model_validate(load_yaml(ROOT / "serve_configs" / variant))

    assert schema.http_options.host == "0.0.0.0" and schema.http_options.port == 8000
    assert schema.proxy_location.value == "EveryNode"


@pytest.mark.parametrize("name", ["local.yaml", *sorted(CLUSTER_VARIANTS)])
def test_the_ui_is_its_own_application_with_exactly_one_replica(name: str) -> None:
    """Gradio's queue keeps session state in one replica and Serve has no session affinity: the UI is a
    separate application at /ui pinned to one replica, beside the multi-replica API."""
    from nq_ray.serve.ui_app import UI_APP_NAME, UI_DEPLOYMENT_NAME, UI_ROUTE_PREFIX

    (ui,) = [a for a in apps(name) if a["name"] == UI_APP_NAME]
    assert ui["route_prefix"] == UI_ROUTE_PREFIX
    assert ui["import_path"] == "nq_ray.serve.ui_app:app_builder"
    assert [(d["name"], d["num_replicas"]) for d in ui["deployments"]] == [(UI_DEPLOYMENT_NAME, 1)]
