"""One backtest, four doors: the Python API, the MCP tool, the REST endpoint and the UI's client code
path give the same net P&L and trade count (one ``FillCosts`` definition, fed by the settings).

The MCP tool runs through fastmcp's in-memory ``Client``; REST and the UI's ``ApiClient`` talk to the
whole HTTP app in this process (``build_app(use_actors=False)`` behind Starlette's ``TestClient``, which
is an ``httpx.Client``, so the UI client's own request/poll code runs unchanged).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from fastmcp import Client

from nq_ray.backtest import BacktestConfig, run_backtest
from nq_ray.config import Settings
from nq_ray.data import load_bars
from nq_ray.tools.context import ToolContext
from nq_ray.tools.mcp import build_mcp
from nq_ray.tools.registry import build_registry

TOKEN = "same-pnl-token"
RUN = {"symbol": "NQ", "strategy": "sma_cross", "params": {"fast": 10, "slow": 30}, "interval": "5m"}
JOB_TIMEOUT_S = 120.0


@pytest.fixture(
    params=[
        pytest.param({}, id="default-costs"),
        pytest.param({"commission_per_contract": 0.62, "slippage_ticks": 2}, id="costs-from-settings"),
    ]
)
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    return Settings(
        data={"data_dir": str(tmp_path / "data")}, mcp={"auth_token": TOKEN}, execution=request.param
    )


@pytest.fixture
def http(settings: Settings) -> Iterator[TestClient]:
    from nq_ray.serve.app import build_app

    app = build_app(settings, use_actors=False)
    with TestClient(app, base_url="http://127.0.0.1", headers={"Authorization": f"Bearer {TOKEN}"}) as c:
        yield c


def python_api(settings: Settings) -> tuple[float, int]:
    """What a quant writes: load the bars and backtest with ``BacktestConfig``'s defaults, plus the
    deployment's cost overrides (``execution.*``) where it has any."""
    bars = load_bars("NQ", "5m", source="sample", settings=settings)
    costs = settings.execution.costs().model_dump(include=settings.execution.model_fields_set)
    report = run_backtest(bars, RUN["strategy"], RUN["params"], BacktestConfig(symbol="NQ", **costs))
    return report.metrics.net_pnl_usd, len(report.trades)


async def mcp_tool(settings: Settings) -> tuple[float, int]:
    mcp = build_mcp(build_registry(ToolContext(settings=settings)), who="test")
    async with Client(mcp) as client:
        out = (await client.call_tool("run_backtest", RUN)).structured_content
    assert out is not None
    return out["metrics"]["net_pnl_usd"], out["n_trades"]


def rest(http: TestClient) -> tuple[float, int]:
    resp = http.post("/api/tools/run_backtest", json=RUN)
    assert resp.status_code == 200, resp.text
    out = resp.json()
    return out["metrics"]["net_pnl_usd"], out["n_trades"]


def ui_client(http: TestClient, settings: Settings) -> tuple[float, int]:
    """The UI's path: ``ApiClient`` submits ``run_backtest`` as a job with the form's costs (contracts,
    commission, slippage as typed in the Backtesting tab: here the deployment's) and polls it."""
    from nq_ray_ui.client import ApiClient

    client = ApiClient("http://127.0.0.1", token=TOKEN)
    client._http.close()
    client._http = http  # the same request code, over the in-process app instead of a socket
    costs = {"contracts": 1, **settings.execution.costs().model_dump()}
    state = client.post("/api/jobs", {"tool": "run_backtest", "arguments": RUN | {"costs": costs}})
    deadline = time.monotonic() + JOB_TIMEOUT_S
    while state["status"] not in ("succeeded", "failed", "cancelled"):
        assert time.monotonic() < deadline, f"job still {state['status']} after {JOB_TIMEOUT_S} s"
        time.sleep(0.05)
        state = client.get(f"/api/jobs/{state['id']}")
    assert state["status"] == "succeeded", state
    out: dict[str, Any] = state["result"]
    return out["metrics"]["net_pnl_usd"], out["n_trades"]


async def test_one_backtest_gives_the_same_pnl_from_python_mcp_rest_and_the_ui(
    settings: Settings, http: TestClient
) -> None:
    expected = python_api(settings)

    via_mcp = await mcp_tool(settings)
    via_rest = rest(http)
    via_ui = ui_client(http, settings)

    assert expected[1] > 0
    assert via_mcp == pytest.approx(expected)
    assert via_rest == pytest.approx(expected)
    assert via_ui == pytest.approx(expected)


def test_the_default_costs_are_a_traders_not_zero() -> None:
    """$2.25 per contract per side and one tick: a backtest with costs nets less than one without."""
    bars = load_bars("NQ", "5m", source="sample")
    free = BacktestConfig(commission_per_contract=0, slippage_ticks=0)
    gross = run_backtest(bars, RUN["strategy"], RUN["params"], free)
    net = run_backtest(bars, RUN["strategy"], RUN["params"])

    assert (net.config.commission_per_contract, net.config.slippage_ticks) == (2.25, 1)
    assert net.metrics.commission_usd == pytest.approx(2 * 2.25 * len(net.trades))
    assert net.metrics.net_pnl_usd < gross.metrics.net_pnl_usd
