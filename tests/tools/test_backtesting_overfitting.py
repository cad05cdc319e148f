"""run_sweep's overfitting report through the registry: the trial count and DSR always, PBO when asked,
over the bars the tool loads."""

from __future__ import annotations

GRID = {"fast": [5, 10], "slow": [30, 50]}


async def test_run_sweep_reports_trials_and_deflated_sharpe(registry) -> None:
    out = await registry.call("run_sweep", {"grid": GRID, "period": "1mo"})

    o = out["overfitting"]
    assert o["n_trials"] == out["combinations"] == 4
    assert 0.0 <= o["dsr"] <= o["psr"] <= 1.0  # deflating against E[max] of 4 trials can only lower it
    assert o["pbo"] is None


async def test_run_sweep_with_pbo_reports_cscv(registry) -> None:
    out = await registry.call("run_sweep", {"grid": GRID, "period": "3mo", "pbo": True})

    pbo = out["overfitting"]["pbo"]
    assert pbo["n_configurations"] == 4 and pbo["n_combinations"] == 12870
    assert 0.0 <= pbo["pbo"] <= 1.0
    assert 0.0 <= pbo["probability_of_loss"] <= 1.0
