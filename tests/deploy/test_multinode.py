"""A real multi-node Ray cluster on this machine: head + 2 worker nodes (separate raylets and worker
processes) run a parameter sweep and a multi-symbol analysis spread over the nodes (a start barrier makes
every node run part of each), with results equal to the in-process ones; then a worker node is killed
while it runs a sweep chunk, and the sweep still completes, identical, with that chunk re-run elsewhere.

The cluster lives in a subprocess (``python -m nq_ray.testing.multinode scenario``): this pytest process
may already hold the session's single-node Ray instance (``ray_session``) and one process can connect
to one Ray instance only. The subprocess prints one JSON object that the tests below read.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT_S = 240


@pytest.fixture(scope="module")
def scenario() -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "RAY_TMPDIR")}
    env.update(RAY_AUTH_MODE="disabled", RAY_USAGE_STATS_ENABLED="0")  # the scenario turns token auth on
    proc = subprocess.run(
        [sys.executable, "-m", "nq_ray.testing.multinode", "scenario"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_cluster_has_a_head_and_two_worker_nodes(scenario: dict[str, Any]) -> None:
    assert scenario["nodes_alive"] == 3


def test_cluster_requires_ray_token_auth(scenario: dict[str, Any]) -> None:
    # the driver joined only after the GCS refused it without the token (``cluster.probe``)
    assert scenario["token_auth"] is True


def test_sweep_on_three_nodes_equals_the_in_process_sweep(scenario: dict[str, Any]) -> None:
    sweep = scenario["sweep"]

    assert sweep["equal"] is True
    assert sweep["combinations"] > 1000
    assert sum(sweep["tasks_by_node"].values()) == sweep["chunks"]


def test_sweep_tasks_ran_on_every_node(scenario: dict[str, Any]) -> None:
    by_node = scenario["sweep"]["tasks_by_node"]

    assert set(by_node) == {"head", "worker-1", "worker-2"} and min(by_node.values()) >= 1, by_node


def test_multi_symbol_analysis_on_three_nodes_equals_the_in_process_one(scenario: dict[str, Any]) -> None:
    analysis = scenario["analysis"]

    assert analysis["equal"] is True
    assert analysis["results"] == 8  # NQ and ES × 5m, 15m, 1h, 1d
    assert sum(analysis["tasks_by_node"].values()) == 8
    assert set(analysis["tasks_by_node"]) == {"head", "worker-1", "worker-2"}, analysis["tasks_by_node"]


def test_killing_a_worker_mid_sweep_retries_its_task_elsewhere(scenario: dict[str, Any]) -> None:
    fo = scenario["failover"]

    assert fo["killed"] == "worker-2"
    assert fo["killed_after_chunks"] < fo["chunks"]  # the sweep was still running
    assert fo["started_by_node"]["worker-2"] >= 1 and "worker-2" not in fo["finished_by_node"]
    assert fo["attempts"] > fo["chunks"]  # the killed task ran again
    assert sum(fo["finished_by_node"].values()) == fo["chunks"]
    assert fo["nodes_alive_after"] == 2


def test_sweep_after_node_failure_is_complete_and_identical(scenario: dict[str, Any]) -> None:
    fo = scenario["failover"]

    assert fo["equal"] is True
    assert fo["rows"] == scenario["sweep"]["combinations"]
