"""A short, bounded load test: 1,000 orders from 8 concurrent callers through the broker actor.

The same driver as ``benchmarks/bench_broker.py``; here it asserts that nothing is lost or duplicated
and reports orders/s (run the benchmark for the table on both databases)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

# ``benchmarks`` is a top-level folder run as ``python -m benchmarks`` from the repository root
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from benchmarks.bench_broker import run_load


@pytest.mark.slow
def test_1000_orders_from_8_callers_lose_and_duplicate_nothing(ray_session: Any, tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'load.db'}"
    r = run_load(url, n_orders=1000, callers=8, data_dir=tmp_path)
    print(f"\nbroker load: {r['orders_per_s']:.0f} orders/s, p99 {r['p99_ms']:.0f} ms")
    assert (r["lost"], r["duplicated"], r["unfilled"]) == (0, 0, 0)
    assert r["positions_match_fills"]
    assert r["orders_per_s"] > 10  # a floor that catches a pathological slowdown, not a benchmark
