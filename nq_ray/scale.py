"""Entry point for large parameter sweeps as Ray Jobs (``kuberay/rayjob-sweep.yaml``, ``ray job submit``).

    python -m nq_ray.scale sweep --symbol NQ --interval 1m --source synthetic \\
        --start 2024-01-01 --end 2025-12-31 --strategy sma_cross \\
        --grid '{"fast": [5, 10, 20], "slow": [50, 100, 200]}' --out /data/sweeps/nq-sma.parquet

Joins the cluster named by ``RAY_ADDRESS`` (a Ray Job's entrypoint has it set) or starts a local Ray,
loads the bars once, runs ``nq_ray.backtest.sweep.sweep`` (chunks as Ray tasks spread over the cluster,
retried on node loss), writes every row to Parquet, prints progress and then one JSON summary line.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd

from nq_ray.errors import InvalidArgumentError, NQRayError


def parse_grid(text: str) -> dict[str, list[Any]]:
    """The ``--grid`` JSON object: parameter name → list of values (a scalar becomes a one-value list)."""
    try:
        grid = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidArgumentError(f"--grid is not JSON ({exc.msg}); e.g. '{{\"fast\": [5, 10]}}'") from None
    if not isinstance(grid, dict) or not grid:
        raise InvalidArgumentError("--grid must be a JSON object of parameter → list of values")
    return {str(k): v if isinstance(v, list) else [v] for k, v in grid.items()}


def run_sweep(
    bars: pd.DataFrame,
    strategy: str,
    grid: dict[str, list[Any]],
    *,
    symbol: str = "NQ",
    out: Path | None = None,
    metric: str = "sharpe",
    top: int = 5,
    echo: Any = print,
    parallel: bool | None = None,
) -> dict[str, Any]:
    """Sweep ``grid`` on ``bars``; write the table to ``out`` (Parquet) if given; a JSON-able summary."""
    from nq_ray.backtest import BacktestConfig
    from nq_ray.backtest.stats import METRIC_NAMES
    from nq_ray.backtest.sweep import sweep

    last = [0.0]

    def progress(done: int, total: int) -> None:
        now = time.monotonic()
        if done == total or now - last[0] >= 5:
            last[0] = now
            echo(f"sweep: {done}/{total} chunks")

    t0 = time.perf_counter()
    table = sweep(bars, strategy, grid, BacktestConfig(symbol=symbol), progress=progress, parallel=parallel)
    elapsed = time.perf_counter() - t0
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        table.to_parquet(out)
    if metric not in METRIC_NAMES:
        raise InvalidArgumentError(f"unknown metric {metric!r}; known: {', '.join(METRIC_NAMES)}")
    best = json.loads(
        table.sort_values(metric, ascending=False, kind="stable").head(top).to_json(orient="records")
    )
    params = [c for c in table.columns if c not in METRIC_NAMES]
    return {
        "strategy": table.attrs.get("strategy", strategy),
        "symbol": symbol,
        "bars": len(bars),
        "combinations": len(table),
        "skipped": table.attrs.get("skipped_combinations", 0),
        "seconds": round(elapsed, 3),
        "best_params": {k: best[0][k] for k in params},
        "top": best,
        "out": str(out) if out is not None else None,
    }


def _connect() -> bool:
    """Join ``RAY_ADDRESS`` when set, else start a local Ray (``nq_ray.runtime.connect``); True when this
    call started or joined Ray (and so should shut it down)."""
    from nq_ray.runtime.cluster import connect

    return not connect().already


def build_parser() -> argparse.ArgumentParser:
    """The command line of ``python -m nq_ray.scale`` (also used to check the RayJob's entrypoint)."""
    parser = argparse.ArgumentParser(prog="python -m nq_ray.scale")
    sub = parser.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("sweep", help="a parameter sweep over the cluster")
    s.add_argument("--symbol", default="NQ")
    s.add_argument("--interval", default="5m")
    s.add_argument("--source", default="sample")
    s.add_argument("--start")
    s.add_argument("--end")
    s.add_argument("--strategy", default="sma_cross")
    s.add_argument("--grid", required=True, help="JSON object: parameter → list of values")
    s.add_argument("--metric", default="sharpe")
    s.add_argument("--out", type=Path, help="Parquet file for the whole table")
    s.add_argument("--local", action="store_true", help="in-process, without Ray")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        from nq_ray.data import load_bars

        grid = parse_grid(args.grid)
        bars = load_bars(args.symbol, args.interval, start=args.start, end=args.end, source=args.source)
        started = False if args.local else _connect()
        try:
            summary = run_sweep(
                bars,
                args.strategy,
                grid,
                symbol=args.symbol,
                out=args.out,
                metric=args.metric,
                parallel=False if args.local else None,
            )
        finally:
            if started:
                import ray

                ray.shutdown()
    except NQRayError as exc:
        print(f"error [{exc.code}]: {exc.message}", file=sys.stderr)
        return 2
    print(json.dumps(summary, default=str), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
