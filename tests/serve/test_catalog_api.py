"""``GET /api/catalog``: the names the tools accept, straight from the core modules that define them."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.testclient import TestClient

from nq_ray.analysis.indicators import INDICATORS
from nq_ray.backtest import list_strategies, register_strategy
from nq_ray.backtest.stats import METRIC_NAMES
from nq_ray.data.intervals import INTERVALS
from nq_ray.domain.contracts import CONTRACTS
from nq_ray.serve.catalog_api import catalog_router


def _get() -> dict:
    app = FastAPI()
    app.include_router(catalog_router())
    with TestClient(app) as client:
        resp = client.get("/api/catalog")
    assert resp.status_code == 200, resp.text
    return resp.json()


def test_catalog_lists_the_core_names_in_the_core_order() -> None:
    body = _get()

    assert body["symbols"] == list(CONTRACTS)
    assert body["intervals"] == list(INTERVALS)
    assert body["metrics"] == list(METRIC_NAMES)
    assert set(body["indicators"]) == set(INDICATORS)
    assert {"sample", "synthetic", "yahoo"} <= set(body["sources"])
    assert body["agent_types"] == ["analysis", "risk", "execution"]
    assert body["default_analysis_depth"] in body["analysis_depths"]


def test_strategy_defaults_are_the_registered_ones() -> None:
    body = _get()

    assert body["strategies"] == list_strategies()
    assert body["strategies"]["ema_cross"] == {"fast": 12, "slow": 26}  # nq_ray.backtest.strategies
    assert body["indicators"]["bollinger"] == {"period": 20, "std": 2.0}


def test_a_strategy_registered_at_run_time_shows_up() -> None:
    from nq_ray.backtest.strategies import _REGISTRY, get_strategy

    sma = get_strategy("sma_cross")
    register_strategy("catalog_test_cross", sma.signal_fn, {"fast": 3, "slow": 9})
    try:
        body = _get()
    finally:
        _REGISTRY.pop("catalog_test_cross", None)

    assert body["strategies"]["catalog_test_cross"] == {"fast": 3, "slow": 9}


def test_packs_are_the_bundled_ones_and_the_users(tmp_path: Path) -> None:
    from nq_ray.settings.propfirm import pack_names

    (tmp_path / "my-firm-25k.yaml").write_text("name: my-firm-25k\n")
    app = FastAPI()
    app.include_router(catalog_router(lambda: tmp_path))
    with TestClient(app) as client:
        packs = client.get("/api/catalog").json()["packs"]

    assert "topstep-50k" in _get()["packs"] and "my-firm-25k" not in _get()["packs"]
    assert packs == pack_names(tmp_path) and "my-firm-25k" in packs and "topstep-50k" in packs
