"""A real multi-node Ray cluster on this machine (a head and worker nodes, each its own raylet and worker
processes), for the multi-node tests and the cluster benchmark.

    python -m nq_ray.testing.multinode scenario          # sweep + analysis on 3 nodes, then a node killed
    python -m nq_ray.testing.multinode bench --nodes 3   # a timed sweep on 1 or 3 nodes

Each command prints one JSON object on its last line of stdout. It runs in a process of its own: a process
connects to one Ray instance, and the pytest session already holds one (``ray_session``). ``RAY_TMPDIR``
is pointed at a private directory so the cluster's address file never leaks to other ``ray.init`` calls.

Per-node task counts come from wrapping the sweep's chunk function and ``analyze_task`` (module-level
functions here, so workers import them by reference) with a start/finish record in a ``Tally`` actor
pinned to the head. The tally also holds tasks at their start (each node has one CPU, so a held task
steers the next one elsewhere): to make every node run part of the sweep and of the analysis, and to make
the chosen worker run a chunk that it is killed in the middle of, so the retry is observed, not raced.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import secrets
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

NAMESPACE = "nq-multinode"
TALLY = "tally"
HOLD_TIMEOUT_S = 60.0

# ``nq_ray.backtest`` re-exports the ``sweep`` function under the module's name: fetch the module itself.
sweep_mod: Any = importlib.import_module("nq_ray.backtest.sweep")
_ORIGINAL_CROSS_CHUNK = sweep_mod._cross_chunk

SCENARIO_GRID = {"fast": list(range(2, 60)), "slow": list(range(20, 300, 2))}
SCENARIO_CHUNKS = 12
ANALYSIS_SYMBOLS = ["NQ", "ES"]
ANALYSIS_INTERVALS = ["5m", "15m", "1h", "1d"]


def _ray_env() -> str | None:
    """Ray's environment for a private local cluster, with Ray's token auth on (a fresh token in the
    private temp dir, mode 0600: every node and the driver read it from ``RAY_AUTH_TOKEN_PATH``); the temp
    dir made here (None if already set)."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    os.environ.pop("RAY_ADDRESS", None)
    made = None
    if "RAY_TMPDIR" not in os.environ:
        made = os.environ["RAY_TMPDIR"] = tempfile.mkdtemp(prefix="nqmn", dir="/tmp")
    if os.environ.get("RAY_AUTH_MODE") != "token" or not os.environ.get("RAY_AUTH_TOKEN_PATH"):
        token = Path(os.environ["RAY_TMPDIR"]) / "auth_token"
        if not token.exists():
            fd = os.open(token, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_urlsafe(32))
        from nq_ray.runtime.cluster import use_auth

        use_auth("token", token)
    return made


class Tally:
    """Start/finish counts of traced tasks by node, and the fault-injection hold.

    Held tasks wait at their start and keep their node's only CPU busy, so the scheduler must place the
    next task on another node. ``spread(n)``: every task waits until tasks have started on ``n`` distinct
    nodes (each node then runs part of the work, whatever the scheduler's locality preferences).
    ``arm(victim)``: every task waits until one has started on ``victim``; then tasks elsewhere run on
    while the victim's stay held until the driver kills that node."""

    def __init__(self) -> None:
        self.started: Counter[str] = Counter()
        self.finished: Counter[str] = Counter()
        self.victim: str | None = None
        self.victim_started = False
        self.min_nodes = 0

    def start(self, node: str) -> bool:
        """Record a start; True when the task must wait (poll ``held``)."""
        self.started[node] += 1
        if node == self.victim:
            self.victim_started = True
        return self.held(node)

    def finish(self, node: str) -> None:
        self.finished[node] += 1

    def arm(self, victim: str | None) -> None:
        self.victim, self.victim_started = victim, False

    def spread(self, min_nodes: int) -> None:
        self.min_nodes = min_nodes

    def held(self, node: str) -> bool:
        if self.victim is not None:
            return node == self.victim or not self.victim_started
        return len(self.started) < self.min_nodes

    def counts(self) -> dict[str, dict[str, int]]:
        return {"started": dict(self.started), "finished": dict(self.finished)}

    def reset(self) -> None:
        self.started.clear()
        self.finished.clear()


@contextmanager
def _traced() -> Iterator[None]:
    import ray

    node = ray.get_runtime_context().get_node_id()
    tally = ray.get_actor(TALLY, namespace=NAMESPACE)
    if ray.get(tally.start.remote(node)):
        deadline = time.monotonic() + HOLD_TIMEOUT_S
        while time.monotonic() < deadline and ray.get(tally.held.remote(node)):
            time.sleep(0.05)  # the driver kills this node meanwhile
    yield
    ray.get(tally.finish.remote(node))


def traced_cross_chunk(payload_ref: Any, fast_idx: np.ndarray, slow_idx: np.ndarray) -> np.ndarray:
    """``sweep._cross_chunk`` with a start/finish record of the node that ran it."""
    with _traced():
        return _ORIGINAL_CROSS_CHUNK(payload_ref, fast_idx, slow_idx)


def traced_analyze(bars: pd.DataFrame, symbol: str, interval: str, base: str, options: dict[str, Any]) -> Any:
    """``analyze_task``'s body with a start/finish record of the node that ran it."""
    from nq_ray.analysis.distributed import _run

    with _traced():
        return _run(bars, symbol, interval, base, options)


def _warm_worker() -> str:
    """Start each node's worker process, import the analysis code and load the sweep's cached numba
    kernels there with a tiny in-process sweep, so timed runs measure steady state."""
    import ray

    import nq_ray.analysis.distributed  # noqa: F401
    from nq_ray.data import load_bars

    bars = load_bars("NQ", "5m", source="sample").iloc[:2000]
    sweep_mod.sweep(bars, "sma_cross", {"fast": [2, 3], "slow": [5, 8]}, parallel=False)
    return ray.get_runtime_context().get_node_id()


class LocalCluster:
    """``ray.cluster_utils.Cluster``: a head (1 CPU, no dashboard) plus ``workers`` nodes of 1 CPU each,
    the driver connected, and a ``Tally`` actor pinned to the head."""

    def __init__(self, workers: int = 2, health_check_period_ms: int = 500) -> None:
        _ray_env()
        import ray
        from ray.cluster_utils import Cluster
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        t0 = time.perf_counter()
        self.cluster = Cluster(
            initialize_head=True,
            head_node_args={
                "num_cpus": 1,
                "include_dashboard": False,
                "_system_config": {
                    "health_check_period_ms": health_check_period_ms,
                    "health_check_failure_threshold": 3,
                    # hybrid scheduling packs a node up to this utilisation before spilling; 0 spreads
                    "scheduler_spread_threshold": 0.0,
                },
            },
        )
        self.workers = [self.cluster.add_node(num_cpus=1) for _ in range(workers)]
        from nq_ray.runtime.cluster import connect

        self.token_auth = connect(self.cluster.address, namespace=NAMESPACE).auth
        self.cluster.wait_for_nodes()
        self.head_id = ray.get_runtime_context().get_node_id()
        self.names = {self.head_id: "head"}
        self.names.update({n.node_id: f"worker-{i + 1}" for i, n in enumerate(self.workers)})
        tally_actor: Any = ray.remote(num_cpus=0)(Tally)
        self.tally: Any = tally_actor.options(
            name=TALLY,
            namespace=NAMESPACE,
            scheduling_strategy=NodeAffinitySchedulingStrategy(self.head_id, soft=False),
        ).remote()
        ray.get(self.tally.counts.remote())
        self.startup_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        warm = ray.remote(num_cpus=1)(_warm_worker)
        ray.get(
            [
                warm.options(scheduling_strategy=NodeAffinitySchedulingStrategy(n, soft=False)).remote()
                for n in self.names
            ]
        )
        self.warm_s = time.perf_counter() - t0

    def counts(self) -> dict[str, dict[str, int]]:
        import ray

        raw = ray.get(self.tally.counts.remote())
        return {k: {self.names.get(n, n): c for n, c in v.items()} for k, v in raw.items()}

    def reset(self) -> None:
        import ray

        ray.get(self.tally.reset.remote())

    def alive_nodes(self, expect: int | None = None, timeout_s: float = 15.0) -> int:
        """Nodes the GCS reports alive; with ``expect``, wait up to ``timeout_s`` for that count (the
        GCS marks a killed node dead after a few missed health checks)."""
        import ray

        deadline = time.monotonic() + timeout_s
        while True:
            alive = sum(1 for n in ray.nodes() if n["Alive"])
            if expect is None or alive == expect or time.monotonic() > deadline:
                return alive
            time.sleep(0.2)

    def shutdown(self) -> None:
        import ray

        ray.shutdown()
        self.cluster.shutdown()


@contextmanager
def traced_tasks() -> Iterator[None]:
    """Route ``sweep``'s MA-cross chunks and ``analyze_many``'s tasks through the traced wrappers."""
    import ray

    from nq_ray.analysis import distributed

    saved = (sweep_mod._cross_chunk, distributed.analyze_task)
    sweep_mod._cross_chunk = traced_cross_chunk
    distributed.analyze_task = ray.remote(num_cpus=1, max_retries=2)(traced_analyze)
    try:
        yield
    finally:
        sweep_mod._cross_chunk, distributed.analyze_task = saved


def _analysis_rows(results: list[Any]) -> list[dict[str, Any]]:
    rows = [r.model_dump(mode="json", exclude={"elapsed_s"}) for r in results]
    return sorted(rows, key=lambda r: (r["symbol"], r["interval"]))


def _frames_equal(a: pd.DataFrame, b: pd.DataFrame) -> bool:
    try:
        pd.testing.assert_frame_equal(a, b, check_exact=True)
    except AssertionError:
        return False
    return True


def scenario() -> dict[str, Any]:
    """Sweep and multi-symbol analysis on head + 2 workers vs in-process (every node runs part of each:
    ``Tally.spread``); then a worker killed while it runs a sweep chunk (``Tally.arm``)."""
    import ray

    from nq_ray.analysis.distributed import analyze_many
    from nq_ray.data import load_bars

    bars = load_bars("NQ", "5m", source="sample")
    t0 = time.perf_counter()
    expected = sweep_mod.sweep(bars, "sma_cross", SCENARIO_GRID, parallel=False)
    local_s = time.perf_counter() - t0
    expected_analysis = _analysis_rows(analyze_many(ANALYSIS_SYMBOLS, ANALYSIS_INTERVALS, backend="local"))

    lc = LocalCluster(workers=2)
    out: dict[str, Any] = {
        "startup_s": round(lc.startup_s, 2),
        "warm_s": round(lc.warm_s, 2),
        "nodes_alive": lc.alive_nodes(),
        "token_auth": lc.token_auth,
    }
    try:
        with traced_tasks():
            ray.get(lc.tally.spread.remote(len(lc.names)))
            t0 = time.perf_counter()
            got = sweep_mod.sweep(bars, "sma_cross", SCENARIO_GRID, chunks=SCENARIO_CHUNKS)
            out["sweep"] = {
                "combinations": len(expected),
                "chunks": SCENARIO_CHUNKS,
                "equal": _frames_equal(got, expected),
                "local_s": round(local_s, 2),
                "cluster_s": round(time.perf_counter() - t0, 2),
                "tasks_by_node": lc.counts()["finished"],
            }
            lc.reset()
            got_analysis = _analysis_rows(analyze_many(ANALYSIS_SYMBOLS, ANALYSIS_INTERVALS, backend="ray"))
            out["analysis"] = {
                "results": len(got_analysis),
                "equal": got_analysis == expected_analysis,
                "tasks_by_node": lc.counts()["finished"],
            }
            lc.reset()
            ray.get(lc.tally.spread.remote(0))
            out["failover"] = _failover(lc, bars, expected)
    finally:
        lc.shutdown()
    return out


def _failover(lc: LocalCluster, bars: pd.DataFrame, expected: pd.DataFrame) -> dict[str, Any]:
    """Make worker-2 run a task and hold it there, kill that node, let the sweep finish elsewhere."""
    import ray

    victim = lc.workers[-1]
    ray.get(lc.tally.arm.remote(victim.node_id))
    killed: dict[str, Any] = {}

    def on_progress(done: int, total: int) -> None:
        if killed:
            return
        started = ray.get(lc.tally.counts.remote())["started"]
        if started.get(victim.node_id, 0) > 0:
            lc.cluster.remove_node(victim, allow_graceful=False)
            killed.update(node=lc.names[victim.node_id], after_chunks=done, at=time.perf_counter())

    t0 = time.perf_counter()
    got = sweep_mod.sweep(bars, "sma_cross", SCENARIO_GRID, chunks=SCENARIO_CHUNKS, progress=on_progress)
    end = time.perf_counter()
    ray.get(lc.tally.arm.remote(None))
    counts = lc.counts()
    return {
        "killed": killed.get("node"),
        "killed_after_chunks": killed.get("after_chunks"),
        "recovery_s": round(end - killed["at"], 2) if killed else None,
        "seconds": round(end - t0, 2),
        "equal": _frames_equal(got, expected),
        "rows": len(got),
        "chunks": SCENARIO_CHUNKS,
        "attempts": sum(counts["started"].values()),
        "started_by_node": counts["started"],
        "finished_by_node": counts["finished"],
        "nodes_alive_after": lc.alive_nodes(expect=len(lc.names) - 1),
    }


def bench_bars(n: int) -> pd.DataFrame:
    """The last ``n`` bars of the seeded synthetic NQ 1-minute generator."""
    from nq_ray.data import load_bars

    years = max(1, int(np.ceil(n / 350_000)))
    return load_bars("NQ", "1m", source="synthetic", start=f"{2025 - years}-01-01", end="2025-12-31").iloc[
        -n:
    ]


def bench_grid(max_window: int) -> dict[str, list[int]]:
    """Every (fast, slow) pair with 2 ≤ fast < slow ≤ ``max_window`` (invalid pairs are skipped)."""
    return {"fast": list(range(2, max_window)), "slow": list(range(3, max_window + 1))}


def bench(nodes: int, n_bars: int, max_window: int, chunks: int, repeat: int) -> dict[str, Any]:
    """Best-of-``repeat`` sweep time on a local cluster of ``nodes`` (1 = the head alone), after a
    warm-up sweep that loads numba's cached kernels in every worker; tasks per node of the timed runs."""
    bars = bench_bars(n_bars)
    grid = bench_grid(max_window)
    sweep_mod.sweep(bars, "sma_cross", grid, parallel=False)  # warm-up: numba kernels from the cache
    local = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        sweep_mod.sweep(bars, "sma_cross", grid, parallel=False)
        local.append(time.perf_counter() - t0)
    local_s = min(local)
    lc = LocalCluster(workers=nodes - 1)
    try:
        with traced_tasks():
            sweep_mod.sweep(bars, "sma_cross", grid, chunks=chunks)  # warm-up
            lc.reset()
            times = []
            for _ in range(repeat):
                t0 = time.perf_counter()
                table = sweep_mod.sweep(bars, "sma_cross", grid, chunks=chunks)
                times.append(time.perf_counter() - t0)
            counts = lc.counts()["finished"]
    finally:
        lc.shutdown()
    return {
        "nodes": nodes,
        "bars": len(bars),
        "combinations": len(table),
        "chunks": chunks,
        "repeat": repeat,
        "seconds": round(min(times), 3),
        "in_process_s": round(local_s, 3),
        "tasks_by_node": counts,
        "startup_s": round(lc.startup_s, 2),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nq_ray.testing.multinode")
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("scenario", help="sweep + analysis on 3 nodes vs in-process, then a worker killed")
    b = sub.add_parser("bench", help="a timed sweep on a local cluster of --nodes nodes")
    b.add_argument("--nodes", type=int, default=3)
    b.add_argument("--bars", type=int, default=100_000)
    b.add_argument("--max-window", type=int, default=100)
    b.add_argument("--chunks", type=int, default=12)
    b.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args(argv)
    made = _ray_env()
    run: Callable[[], dict[str, Any]]
    if args.cmd == "scenario":
        run = scenario
    else:

        def run() -> dict[str, Any]:
            return bench(args.nodes, args.bars, args.max_window, args.chunks, args.repeat)

    result = run()
    print(json.dumps(result), flush=True)
    if made:  # the cluster is down: its session directories (logs) go too; kept on failure
        shutil.rmtree(made, ignore_errors=True)
    return 0


if __name__ == "__main__":
    # Run the module under its package name, not as ``__main__``: cloudpickle ships ``__main__`` functions
    # by value to every worker (measured: the first sweep 17 s instead of 1 s), package ones by reference.
    from nq_ray.testing import multinode

    sys.exit(multinode.main())
