"""The run_walk_forward tool through the registry: windows read off the bars, choices equal run_sweep on
each training window alone, stitched OOS P&L equals the folds' sum, bad input refused before work."""

from __future__ import annotations

import itertools
from typing import Any

import pandas as pd
import pytest

from nq_ray.errors import InvalidArgumentError

GRID = {"fast": [5, 10], "slow": [30, 50]}
WINDOW = {"start": "2026-03-02", "end": "2026-03-27"}  # four weeks of bundled 5m NQ bars


@pytest.fixture
def window_bars(nq_5m: pd.DataFrame) -> pd.DataFrame:
    """The bars the tool sees for WINDOW (from the start date's midnight, New York, up to the end date's),
    read off the sample file."""
    start = pd.Timestamp(WINDOW["start"], tz="America/New_York")
    end = pd.Timestamp(WINDOW["end"], tz="America/New_York")
    return nq_5m.loc[(nq_5m.index >= start) & (nq_5m.index < end)]


async def test_rolling_folds_are_contiguous_equal_blocks_read_off_the_bars(registry, window_bars) -> None:
    out = await registry.call("run_walk_forward", {"grid": GRID, "n_folds": 3, **WINDOW})

    block = len(window_bars) // 4  # n_folds + 1 equal blocks
    idx = window_bars.index
    assert out["origin"]["bars"] == len(window_bars) and len(out["folds"]) == 3
    assert out["first_bar_time"] == idx[0].isoformat()
    for k, f in enumerate(out["folds"]):
        assert f["train_bars"] == f["test_bars"] == block
        assert f["train_start"] == idx[k * block].isoformat()
        assert f["train_end"] == idx[(k + 1) * block - 1].isoformat()
        assert f["test_start"] == idx[(k + 1) * block].isoformat()  # the bar right after train_end
        assert f["test_end"] == idx[(k + 2) * block - 1].isoformat()
        assert pd.Timestamp(f["train_end"]) < pd.Timestamp(f["test_start"])  # no overlap
    for a, b in zip(out["folds"], out["folds"][1:], strict=False):
        assert b["test_start"] == idx[idx.get_loc(pd.Timestamp(a["test_end"])) + 1].isoformat()


async def test_each_fold_trades_what_run_sweep_picks_on_its_training_window(registry) -> None:
    out = await registry.call("run_walk_forward", {"grid": GRID, "n_folds": 3, **WINDOW})

    for f in out["folds"]:
        sweep = await registry.call(
            "run_sweep", {"grid": GRID, "start": f["train_start"], "end": f["train_end"], "top": 1}
        )
        assert sweep["origin"]["bars"] == f["train_bars"]
        assert f["best_params"] == sweep["best_params"]
        assert f["in_sample_score"] == pytest.approx(sweep["top"][0]["sharpe"])
        assert f["in_sample"]["net_pnl_usd"] == pytest.approx(sweep["top"][0]["net_pnl_usd"])
        assert f["params"] == ", ".join(f"{k}={v}" for k, v in f["best_params"].items())


async def test_stitched_oos_pnl_is_the_sum_of_the_folds_and_efficiency_follows_its_definition(
    registry,
) -> None:
    out = await registry.call("run_walk_forward", {"grid": GRID, "n_folds": 3, **WINDOW})

    folds = out["folds"]
    assert out["oos_metrics"]["net_pnl_usd"] == pytest.approx(sum(f["oos_net_pnl_usd"] for f in folds))
    assert out["oos_metrics"]["n_trades"] == sum(f["oos_n_trades"] for f in folds)
    curve = out["oos_equity_curve"]
    assert curve[0][0] == folds[0]["test_start"] and curve[-1][0] == folds[-1]["test_end"]
    assert curve[-1][1] == pytest.approx(100_000 + out["oos_metrics"]["net_pnl_usd"])
    is_pnl = sum(f["in_sample"]["net_pnl_usd"] for f in folds)
    oos_rate = sum(f["oos_net_pnl_usd"] for f in folds) / sum(f["test_bars"] for f in folds)
    is_rate = is_pnl / sum(f["train_bars"] for f in folds)
    assert out["efficiency_ratio"] == (pytest.approx(oos_rate / is_rate) if is_pnl > 0 else None)


async def test_anchored_folds_all_train_from_the_first_bar(registry, window_bars) -> None:
    out = await registry.call("run_walk_forward", {"grid": GRID, "n_folds": 3, "mode": "anchored", **WINDOW})

    first = window_bars.index[0].isoformat()
    assert [f["train_start"] for f in out["folds"]] == [first] * 3
    assert [f["train_bars"] for f in out["folds"]] == [len(window_bars) // 4 * (k + 1) for k in range(3)]


async def test_progress_is_reported_once_per_fold(registry) -> None:
    seen: list[tuple[float, float | None, str | None]] = []

    await registry.call(
        "run_walk_forward",
        {"grid": GRID, "n_folds": 4, **WINDOW},
        progress=lambda d, t, m: seen.append((d, t, m)),
    )

    # one advance per fold; a heartbeat may repeat the last count while no fold finishes (map_tasks on Ray)
    steps = [k for k, _ in itertools.groupby((d, t) for d, t, _ in seen)]
    assert [s for s in steps if s[0]] == [(1, 4), (2, 4), (3, 4), (4, 4)] and steps == sorted(steps)
    assert seen[-1][2] == "4/4 folds"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"grid": {"fast": list(range(2, 52)), "slow": list(range(60, 160))}}, "5000 per walk-forward"),
        ({"grid": {"fast": list(range(2, 27)), "slow": list(range(30, 80))}, "n_folds": 5}, "6250 backtests"),
        ({"interval": "1d", "period": "1mo", "n_folds": 20}, "too few for 20 folds"),
        ({"interval": "1d", "period": "3mo", "n_folds": 4}, "needs 101 to warm up"),
        ({"train_bars": 100_000, **WINDOW}, "no test window"),
        ({"grid": {"fast": [5], "slow": [30]}, "metric": "luck"}, "unknown metric"),
        ({"grid": {"fast": [50], "slow": [30]}}, r"fast \(50\) must be < slow \(30\)"),
        ({"grid": {"speed": [5]}}, "unknown parameter"),
    ],
)
async def test_bad_input_is_a_typed_error(registry, args: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidArgumentError, match=message):
        await registry.call("run_walk_forward", args)


@pytest.mark.parametrize("args", [{"n_folds": 0}, {"n_folds": 21}, {"mode": "sideways"}, {"test_bars": 1}])
async def test_out_of_range_arguments_are_refused_by_the_schema(registry, args: dict[str, Any]) -> None:
    with pytest.raises(InvalidArgumentError):
        await registry.call("run_walk_forward", args)


async def test_folds_as_ray_tasks_equal_the_in_process_core(registry, ray_session: Any, window_bars) -> None:
    from nq_ray.backtest import walk_forward
    from nq_ray.config import Settings
    from nq_ray.tools.backtesting import _config, costs_of

    out = await registry.call("run_walk_forward", {"grid": GRID, "n_folds": 3, **WINDOW})
    config = _config("NQ", costs_of(None, Settings()))  # the tool's default costs
    core = walk_forward(window_bars, "sma_cross", GRID, config, n_folds=3, parallel=False)

    assert ray_session.is_initialized()
    assert [f["best_params"] for f in out["folds"]] == list(core.folds["params"])
    assert [f["oos_net_pnl_usd"] for f in out["folds"]] == pytest.approx(list(core.folds["oos_net_pnl_usd"]))
    assert out["oos_metrics"]["sharpe"] == pytest.approx(core.metrics.sharpe)
