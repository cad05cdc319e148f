"""``benchmarks/bench_cluster.py`` renders its table from the two runs' JSON (the runs themselves need a
local cluster: ``python -m benchmarks.bench_cluster``)."""

from __future__ import annotations

from benchmarks.bench_cluster import table

ONE = {"nodes": 1, "bars": 100_000, "combinations": 4851, "chunks": 12, "repeat": 2, "seconds": 4.8,
       "in_process_s": 4.8, "tasks_by_node": {"head": 24}, "startup_s": 3.0}  # fmt: skip
THREE = {**ONE, "nodes": 3, "seconds": 3.2, "tasks_by_node": {"worker-2": 4, "head": 11, "worker-1": 9}}


def test_ratio_is_one_node_seconds_over_three_node_seconds() -> None:
    rows = table(ONE, THREE).splitlines()

    three = next(r for r in rows if r.startswith("| Ray, 3 nodes"))
    assert "| 3.20 | 1.50× |" in three


def test_per_node_counts_list_the_head_first() -> None:
    three = next(r for r in table(ONE, THREE).splitlines() if r.startswith("| Ray, 3 nodes"))

    assert three.endswith("| head 11, worker-1 9, worker-2 4 |")
