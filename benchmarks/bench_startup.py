"""``nq-ray up`` as a user runs it: time to a healthy ``/health``, what is running then (processes, total
RSS, listening ports), and what Ctrl-C leaves behind, pressed once and pressed twice.

    .venv/bin/python -m benchmarks.bench_startup [--quick] [--runs N]

Each run starts ``python -m nq_ray.cli up`` in a subprocess with its own port, data dir and Ray temp dir
(``nq_ray.testing.instance.UpInstance``), polls ``/health`` every 0.1 s, takes stock of the ``up``
process and all its descendants (Ray's GCS, raylet, workers, Serve's actors, HAProxy), sends SIGINT (a
second one 0.5 s later in the "twice" runs) and times the exit; then lists the processes and listening
ports of that instance still there 5 s later. RSS is summed over the processes (shared pages count once
per process, as ``ps`` shows them). Quick mode: one run of each.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from typing import Any

from nq_ray.testing.instance import UpInstance


def one_run(times: int, args: tuple[str, ...] = ()) -> dict[str, Any]:
    """One ``up`` start and stop; its numbers."""
    inst = UpInstance(args=args)
    try:
        inst.start()
        healthy_s = inst.wait_healthy(timeout_s=180)
        snap = inst.snapshot()
        inst.interrupt(times=times)
        try:
            stop_s = inst.wait_exit(timeout_s=120)
        except Exception:
            stop_s = float("nan")
        alive, ports = inst.leftovers(timeout_s=5)
        return {
            "healthy_s": healthy_s,
            "stop_s": stop_s,
            "processes": snap.count,
            "rss_mib": snap.rss_bytes / 2**20,
            "listening": sorted(snap.listening),
            "left_processes": alive,
            "left_ports": ports,
            "exit_code": inst.proc.returncode if inst.proc else None,
        }
    finally:
        inst.kill()


def table(rows: list[tuple[str, dict[str, Any]]]) -> str:
    out = [
        "| run | /health after (s) | stop after SIGINT (s) | processes | RSS (MiB) | left processes "
        "| left ports |",
        "| --- | ---: | ---: | ---: | ---: | --- | --- |",
    ]
    for name, r in rows:
        out.append(
            f"| {name} | {r['healthy_s']:.1f} | {r['stop_s']:.1f} | {r['processes']} | {r['rss_mib']:,.0f} | "
            f"{len(r['left_processes'])} | {', '.join(r['left_ports']) or 'none'} |"
        )
    return "\n".join(out)


def main(
    quick: bool = False, runs: int | None = None, args: tuple[str, ...] = ()
) -> list[tuple[str, dict[str, Any]]]:
    n = runs or (1 if quick else 3)
    rows: list[tuple[str, dict[str, Any]]] = []
    for i in range(n):
        rows.append((f"Ctrl-C once #{i + 1}", one_run(1, args)))
        print(table(rows[-1:]).splitlines()[-1], flush=True)
    rows.append(("Ctrl-C twice", one_run(2, args)))
    print()
    print(table(rows))
    ones = [r for name, r in rows if "once" in name]
    print(
        f"\nmedian: /health {statistics.median(r['healthy_s'] for r in ones):.1f} s, stop "
        f"{statistics.median(r['stop_s'] for r in ones):.1f} s, {ones[0]['processes']} processes, "
        f"{statistics.median(r['rss_mib'] for r in ones):,.0f} MiB RSS; listening: {rows[0][1]['listening']}"
    )
    for name, r in rows:
        if r["left_processes"] or r["left_ports"]:
            print(f"{name} left: {r['left_processes']} {r['left_ports']}")
    return rows


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_startup")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--runs", type=int, default=None)
    parser.add_argument("up_args", nargs="*", help="extra arguments to `nq-ray up` (after --)")
    ns = parser.parse_args()
    main(ns.quick, ns.runs, tuple(ns.up_args))
    sys.exit(0)
