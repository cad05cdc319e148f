"""``python -m nq_ray.scale sweep``: the RayJob entry point for large sweeps."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from nq_ray.backtest.sweep import sweep
from nq_ray.errors import InvalidArgumentError
from nq_ray.scale import main, parse_grid, run_sweep

GRID = {"fast": [5, 10], "slow": [20, 50]}


def test_grid_json_becomes_lists() -> None:
    assert parse_grid('{"fast": [5, 10], "slow": 50}') == {"fast": [5, 10], "slow": [50]}


@pytest.mark.parametrize("text", ["not json", "[1, 2]", "{}"])
def test_bad_grid_is_a_clear_error(text: str) -> None:
    with pytest.raises(InvalidArgumentError, match="--grid"):
        parse_grid(text)


def test_summary_reports_the_best_row_of_the_same_table_sweep_returns(
    nq_5m: pd.DataFrame, tmp_path: Path
) -> None:
    out = tmp_path / "sweep.parquet"

    summary = run_sweep(nq_5m, "sma_cross", GRID, out=out, echo=lambda _: None)

    table = sweep(nq_5m, "sma_cross", GRID, parallel=False)
    best = table.sort_values("sharpe", ascending=False, kind="stable").iloc[0]
    assert summary["combinations"] == len(table) == 4
    assert summary["best_params"] == {"fast": int(best["fast"]), "slow": int(best["slow"])}
    pd.testing.assert_frame_equal(pd.read_parquet(out), table, check_exact=True)


def test_unknown_metric_is_refused(nq_5m: pd.DataFrame) -> None:
    with pytest.raises(InvalidArgumentError, match="unknown metric"):
        run_sweep(nq_5m, "sma_cross", GRID, metric="luck", echo=lambda _: None)


def test_cli_prints_one_json_summary_line(capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["sweep", "--local", "--grid", json.dumps(GRID)])

    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert rc == 0 and json.loads(last)["combinations"] == 4


def test_cli_error_exits_2_with_the_code(capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["sweep", "--local", "--grid", "{"])

    assert rc == 2 and "error [invalid_argument]" in capsys.readouterr().err
