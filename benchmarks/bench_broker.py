"""Paper broker throughput through the Ray actor, with the nothing-lost / nothing-twice check.

    .venv/bin/python -m benchmarks.bench_broker [--quick]

1,000 market orders (buy and sell, 1–2 contracts) from 8 concurrent callers, each call a
``place_order`` round trip to the ``BrokerActor`` (risk check + write-ahead journal + accept, two
commits per order), then one bar fills them all. Reported per database (SQLite file in WAL mode with
``synchronous=FULL``; PostgreSQL on 127.0.0.1:5432 when it is up): orders/s, call latency p50/p99,
orders lost (sent but not stored), duplicated (stored or filled twice), and whether every position
equals the sum of its fills. Quick mode sends 200 orders.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

from nq_ray.config import Settings
from nq_ray.domain.bars import Bar
from nq_ray.domain.orders import Order
from nq_ray.execution.broker import fills_by_symbol
from nq_ray.runtime.broker import get_or_create_broker
from nq_ray.store.testing import port_open, temp_database

ET = ZoneInfo("America/New_York")
OPEN_LIMITS = {
    "max_contracts_per_symbol": None,
    "max_total_contracts": None,
    "max_notional_usd": None,
    "max_margin_use_pct": None,
    "max_daily_loss_usd": None,
    "trailing_drawdown_usd": None,
    "max_orders_per_minute": None,
    "max_consecutive_losses": None,
}


def _bar(minute: int) -> Bar:
    t = datetime(2026, 3, 10, 10, minute, tzinfo=ET)
    return Bar(time=t, open=20000.0, high=20002.0, low=19998.0, close=20000.0, volume=1e6)


def run_load(
    url: str, *, n_orders: int = 1000, callers: int = 8, data_dir: Path | None = None
) -> dict[str, Any]:
    """Send ``n_orders`` through a fresh broker actor on ``url`` from ``callers`` threads; the counts."""
    import ray

    settings = Settings(
        store={"url": url},
        data={"data_dir": str(data_dir or tempfile.mkdtemp())},
        risk={"limits": OPEN_LIMITS},
    )
    name = f"bench_broker_{uuid.uuid4().hex[:8]}"
    h = get_or_create_broker(settings, name=name, namespace="nq_bench", clock="bar")
    try:
        ray.get(h.on_bar.remote("NQ", _bar(0)))
        per = [list(range(k, n_orders, callers)) for k in range(callers)]

        def caller(ids: list[int]) -> list[float]:
            lat = []
            for i in ids:
                o = Order(side="buy" if i % 2 else "sell", quantity=1 + i % 2, client_order_id=f"L{i}")
                t0 = time.perf_counter()
                ray.get(h.place_order.remote(o))
                lat.append(time.perf_counter() - t0)
            return lat

        t0 = time.perf_counter()
        with ThreadPoolExecutor(callers) as pool:
            lat = np.array([x for chunk in pool.map(caller, per) for x in chunk])
        elapsed = time.perf_counter() - t0
        ray.get(h.on_bar.remote("NQ", _bar(5)))
        orders, fills, port = ray.get([h.orders.remote(), h.fills.remote(), h.portfolio.remote()])
    finally:
        ray.kill(h, no_restart=True)
    sent = {f"L{i}" for i in range(n_orders)}
    stored = [o.client_order_id for o in orders]
    filled = [f.fill.client_order_id for f in fills]
    positions = {s: r["quantity"] for s, r in port["positions"].items()}
    return {
        "orders": n_orders,
        "callers": callers,
        "seconds": elapsed,
        "orders_per_s": n_orders / elapsed,
        "p50_ms": float(np.percentile(lat, 50) * 1e3),
        "p99_ms": float(np.percentile(lat, 99) * 1e3),
        "lost": len(sent - set(stored)),
        "duplicated": (len(stored) - len(set(stored))) + (len(filled) - len(set(filled))),
        "unfilled": len(sent - set(filled)),
        "positions_match_fills": positions.get("NQ", 0) == fills_by_symbol(fills).get("NQ", 0),
    }


def main(quick: bool = False) -> None:
    import ray

    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    started = False
    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
        started = True
    n = 200 if quick else 1000
    kinds = ["sqlite"] + (["postgresql"] if port_open() else [])
    rows = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for kind in kinds:
                with temp_database(kind, Path(tmp)) as url:
                    rows.append((kind, run_load(url, n_orders=n, callers=8, data_dir=Path(tmp))))
    finally:
        if started:
            ray.shutdown()
    print(
        "| database | orders | callers | seconds | orders/s | p50 ms | p99 ms | lost | duplicated | "
        "unfilled | positions = Σ fills |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    for kind, r in rows:
        print(
            f"| {kind} | {r['orders']} | {r['callers']} | {r['seconds']:.2f} | {r['orders_per_s']:.0f} | "
            f"{r['p50_ms']:.1f} | {r['p99_ms']:.1f} | {r['lost']} | {r['duplicated']} | {r['unfilled']} | "
            f"{'yes' if r['positions_match_fills'] else 'NO'} |"
        )
    if "postgresql" not in kinds:
        print(
            "\nPostgreSQL was not reachable on 127.0.0.1:5432 "
            "(bash ../shared/services.sh postgres starts it)."
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_broker")
    parser.add_argument("--quick", action="store_true", help="200 orders instead of 1,000")
    main(quick=parser.parse_args().quick)
