"""The backtest sweep on one Ray node vs a 3-node local cluster (head + 2 worker nodes, 1 CPU each).

    .venv/bin/python -m benchmarks.bench_cluster [--quick]

Every (fast, slow) SMA-cross pair with 2 ≤ fast < slow ≤ 100 (4,851) on 100,000 synthetic 1-minute NQ
bars, split into 12 chunks. Each cluster runs in its own process (``python -m nq_ray.testing.multinode
bench``): a warm-up sweep first (numba's cached kernels load in every worker), then the best of 2 timed
sweeps. Reported: seconds on 1 node and on 3 nodes, the ratio, and the chunks each node ran. The nodes
share this machine's cores, so the ratio is bounded by the physical cores, not by the node count.
Quick mode: 20,000 bars, windows ≤ 60.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SIZES = {False: {"bars": 100_000, "max_window": 100}, True: {"bars": 20_000, "max_window": 60}}
CHUNKS = 12
TIMEOUT_S = 600


def run_cluster(
    nodes: int, bars: int, max_window: int, chunks: int = CHUNKS, repeat: int = 2
) -> dict[str, Any]:
    """One ``nq_ray.testing.multinode bench`` run in a subprocess; its JSON result."""
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "RAY_TMPDIR")}
    env.update(RAY_AUTH_MODE="disabled", RAY_USAGE_STATS_ENABLED="0")
    cmd = [
        sys.executable,
        "-m",
        "nq_ray.testing.multinode",
        "bench",
        f"--nodes={nodes}",
        f"--bars={bars}",
        f"--max-window={max_window}",
        f"--chunks={chunks}",
        f"--repeat={repeat}",
    ]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=TIMEOUT_S)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _nodes(counts: dict[str, int]) -> str:
    order = sorted(counts, key=lambda n: (n != "head", n))
    return ", ".join(f"{n} {counts[n]}" for n in order)


def table(one: dict[str, Any], three: dict[str, Any]) -> str:
    """The markdown table of one 1-node and one 3-node run."""
    ratio = one["seconds"] / three["seconds"]
    rows = [
        "| run | nodes × CPUs | seconds | speed-up vs 1 node | chunks run per node (all timed sweeps) |",
        "| --- | --- | ---: | ---: | --- |",
        f"| in-process (`parallel=False`) | driver only | {one['in_process_s']:.2f} | "
        f"{one['seconds'] / one['in_process_s']:.2f}× | - |",
        f"| Ray, 1 node | 1 × 1 | {one['seconds']:.2f} | 1.00× | {_nodes(one['tasks_by_node'])} |",
        f"| Ray, 3 nodes | 3 × 1 | {three['seconds']:.2f} | {ratio:.2f}× | "
        f"{_nodes(three['tasks_by_node'])} |",
    ]
    head = (
        f"Sweep: {three['combinations']:,} SMA-cross pairs on {three['bars']:,} one-minute bars, "
        f"{three['chunks']} chunks, best of {three['repeat']} after a warm-up; "
        f"cluster start-up {one['startup_s']:.1f} s (1 node) / {three['startup_s']:.1f} s (3 nodes), "
        f"{os.cpu_count()} CPUs on this machine."
    )
    return head + "\n\n" + "\n".join(rows)


def main(quick: bool = False) -> dict[str, Any]:
    size = SIZES[quick]
    one = run_cluster(1, size["bars"], size["max_window"])
    three = run_cluster(3, size["bars"], size["max_window"])
    print(table(one, three), flush=True)
    return {"one_node": one, "three_nodes": three, "ratio": one["seconds"] / three["seconds"]}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_cluster")
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke run")
    main(quick=parser.parse_args().quick)
