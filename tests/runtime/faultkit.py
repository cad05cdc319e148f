"""The fault matrix's runtime process (``python -m tests.runtime.faultkit ...``) and what it shares with
``test_faults.py``: the order pattern, the bar clock and the log.

Run as a process it is the runtime without Ray — the paper broker (``BrokerService``, what ``LocalBroker``
hosts) and the live settings (``LiveSettings``, what ``/api/config`` serves without Ray) — on a store
another runtime used before it. It reports the live state it started with, re-sends the orders a killed
predecessor sent but never had answered (a client's retry, same client order id), then sends a burst,
pushing a price every few orders so market orders fill. Every order is logged ``sent`` before it goes and
``ack`` once its record comes back (one JSON object a line, flushed), so the test can SIGKILL it mid-burst
and know which orders a caller saw acknowledged.

With ``--ray`` it is the Ray runtime instead, what ``nq-ray up`` runs: ``Runtime(settings, "local")`` with the
run's actor names starts a local Ray of its own (``cluster.connect``: token auth, loopback, free ports, its
processes recorded under ``<data_dir>/ray_sessions``; a Ray a SIGKILLed predecessor left for the same data
dir is stopped first and reported). It can patch the limit live (``--patch``: the registry actor's
``update_settings``, what ``PATCH /api/config`` does on Ray), reports what it started with (the Ray it
stopped, its own Ray's processes, the live limit and version, the halt), retries a predecessor's unanswered
orders, can lift the halt (``--resume``), then sends the burst from four concurrent callers, two through the
broker port (``RayBroker`` → the ``paper_broker`` actor) and two through the registry's tools
(``RayTools`` → ``place_order``), and pulls the desk's kill switch (halt + flatten) after ``--halt-at``
answers. Each ``sent`` row says whether a halt was in force when the order went.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from nq_ray.config import Settings
from tests.execution.helpers import OPEN_LIMITS

T0 = datetime(2026, 3, 10, 10, 0, tzinfo=ZoneInfo("America/New_York"))  # a Tuesday, CME open
PRICE = 20000.0
# every limit off but the one the test patches live (start-up value 4, patched to 2)
START_LIMITS = {**OPEN_LIMITS, "max_contracts_per_symbol": 4}


def settings_for(url: str, data_dir: str) -> Settings:
    """The start-up settings every runtime of the matrix is created with (the config file)."""
    from nq_ray.settings.llm import LLMConfig, ProviderConfig

    rules = ProviderConfig(name="rules", kind="rules", model="nq-rules-v1", priority=1000)
    return Settings(
        store={"url": url},
        data={"data_dir": data_dir},
        risk={"limits": START_LIMITS},
        llm=LLMConfig(providers=[rules], health_interval_s=0),
    )


def bar_time(m0: float) -> datetime:
    """The market clock every process of one run shares: T0 plus the (system-wide) monotonic time since
    ``m0``, so prices pushed by any process, before or after a kill, only move forward."""
    return T0 + timedelta(seconds=time.monotonic() - m0)


def spec(i: int) -> dict[str, Any]:
    """Order ``i`` of a burst: buys and sells of 1–3 NQ (some over the patched limit of 2)."""
    return {"symbol": "NQ", "side": "buy" if i % 4 in (0, 1) else "sell", "quantity": 1 + i % 3}


def read_log(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:  # the line a SIGKILL cut short
            continue
    return out


def unanswered(path: Path) -> list[dict[str, Any]]:
    """Orders logged ``sent`` without an ``ack``: what a killed client retries."""
    rows = read_log(path)
    acked = {r["id"] for r in rows if r["ev"] == "ack"}
    return [r for r in rows if r["ev"] == "sent" and r["id"] not in acked]


PATCH = {"risk": {"limits": {"max_contracts_per_symbol": 2}}}


def _ray_processes() -> list[dict[str, Any]]:
    """This process's descendants (its Ray: GCS, raylet, dashboard, workers) and the ports they listen on."""
    import psutil

    out = []
    for proc in psutil.Process().children(recursive=True):
        try:
            ports = [c.laddr.port for c in proc.net_connections("inet") if c.status == psutil.CONN_LISTEN]
            out.append({"pid": proc.pid, "name": proc.name(), "ports": ports})
        except psutil.Error:
            continue
    return out


async def ray_main(a: argparse.Namespace, write: Any) -> None:
    from nq_ray.runtime.broker import get_or_create_broker
    from nq_ray.runtime.builder import Runtime

    settings = settings_for(a.url, a.data)
    names = {f"{k}_name": f"{k}_{a.names}" for k in ("broker", "registry", "desk")}
    rt = Runtime(settings, "local", feed=False, num_cpus=2, dashboard=False, **names)
    conn = rt.connect()
    write({"ev": "ray", "pid": os.getpid(), "gcs": conn.gcs_address, "stopped_stale": conn.stopped_stale})
    get_or_create_broker(settings, name=rt.broker_name, clock="bar")  # Runtime's own: the wall clock
    broker, tools, reg = rt.broker(), rt.tools(), rt.registry_actor()
    desk = rt.desk().handle  # type: ignore[union-attr]
    await broker.on_price("NQ", PRICE, bar_time(a.m0))
    if a.patch:
        out = await reg.update_settings.remote(PATCH, "fault-matrix", None, rt.desk_name)
        write({"ev": "patched", "version": out["version"], "applied_to": out["applied_to"]})
    version, shown = await reg.settings.remote()
    live = await broker.live()
    halted = bool((await desk.status.remote())["halted"])
    write(
        {
            "ev": "state",
            "api_version": version,
            "api_limits": shown.risk.limits.model_dump(mode="json"),
            "broker": live,
            "desk_halted": halted,
            "processes": _ray_processes(),
        }
    )
    answered = 0

    async def send(port: Any, order_id: str, order: dict[str, Any]) -> None:
        nonlocal answered
        write({"ev": "sent", "id": order_id, "halted": halted, **order})
        if port is tools:
            args = {"symbol": order["symbol"], "side": order["side"], "contracts": order["quantity"]}
            rec = await tools.call("place_order", {**args, "client_order_id": order_id}, who="faultkit")
            rec = rec["order"]
            status, qty, codes = rec["status"], rec["quantity"], [r["code"] for r in rec.get("reasons") or []]
        else:
            r = await broker.place_order({**order, "client_order_id": order_id}, source="faultkit")
            status, qty, codes = r.status.value, r.quantity, [x.code for x in r.reasons or []]
        write({"ev": "ack", "id": order_id, "status": status, "qty": qty, "codes": codes})
        answered += 1

    ports = [broker, tools, broker, tools]
    retry = unanswered(a.retry) if a.retry else []
    await asyncio.gather(
        *(
            send(ports[k % 4], row["id"], {f: row[f] for f in ("symbol", "side", "quantity")})
            for k, row in enumerate(retry)
        )
    )
    if a.resume:
        halted = False  # from here on, a halt in force is B's own doing (none): conservative
        await desk.resume.remote("faultkit")
        write({"ev": "resumed"})

    async def caller(k: int) -> None:
        nonlocal halted
        for i in range(a.count):
            await send(ports[k], f"{a.prefix}-{k}-{i}", spec(k + i))
            if k == 0 and i % 2 == 1:
                await broker.on_price("NQ", PRICE, bar_time(a.m0))
            if k == 0 and a.halt_at is not None and not halted and answered >= a.halt_at:
                killed = await desk.kill.remote("fault matrix", "faultkit")
                flatten = [o["client_order_id"] for o in (killed.get("flatten") or {}).get("orders", [])]
                halted = bool(killed["halted"])
                write({"ev": "halt", "halted": halted, "error": killed["flatten_error"], "flatten": flatten})

    await asyncio.gather(*(caller(k) for k in range(len(ports))))
    await broker.on_price("NQ", PRICE, bar_time(a.m0))
    write({"ev": "done"})
    rt.close()


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--url", required=True)
    p.add_argument("--data", required=True)
    p.add_argument("--log", required=True, type=Path)
    p.add_argument("--retry", type=Path, help="the log of a killed predecessor")
    p.add_argument("--prefix", required=True)
    p.add_argument("--count", type=int, required=True)
    p.add_argument("--m0", type=float, required=True)
    p.add_argument("--ray", action="store_true", help="the Ray runtime (Runtime 'local') instead")
    p.add_argument("--names", default="fk", help="--ray: the actors' name suffix")
    p.add_argument("--patch", action="store_true", help="--ray: patch the limit to 2 live first")
    p.add_argument("--resume", action="store_true", help="--ray: lift the halt after the retries")
    p.add_argument("--halt-at", type=int, help="--ray: pull the kill switch after this many answers")
    a = p.parse_args()
    if a.ray:
        log = a.log.open("a", encoding="utf-8")

        def put(row: dict[str, Any]) -> None:
            row["t"] = round(time.monotonic() - a.m0, 2)  # the run's clock: where its time goes
            log.write(json.dumps(row, default=str) + "\n")
            log.flush()

        asyncio.run(ray_main(a, put))
        return

    from nq_ray.runtime.broker import BrokerService
    from nq_ray.runtime.registry import LiveSettings

    settings = settings_for(a.url, a.data)
    live = LiveSettings(settings, a.url)
    asyncio.run(live.restore())
    broker = BrokerService(settings, clock="bar")
    log = a.log.open("a", encoding="utf-8")

    def write(row: dict[str, Any]) -> None:
        log.write(json.dumps(row, default=str) + "\n")
        log.flush()

    def send(order_id: str, order: dict[str, Any]) -> None:
        write({"ev": "sent", "id": order_id, **order})
        rec = broker.place_order({**order, "client_order_id": order_id}, source="faultkit")
        codes = [r.code for r in rec.reasons or []]
        write({"ev": "ack", "id": order_id, "status": rec.status.value, "qty": rec.quantity, "codes": codes})

    broker.on_price("NQ", PRICE, bar_time(a.m0))
    write(
        {
            "ev": "state",
            "api_version": live.version,
            "api_limits": live.settings.risk.limits.model_dump(mode="json"),
            "broker": broker.live(),
        }
    )
    for row in unanswered(a.retry) if a.retry else []:
        send(row["id"], {k: row[k] for k in ("symbol", "side", "quantity")})
    for i in range(a.count):
        send(f"{a.prefix}-{i}", spec(i))
        if i % 3 == 2:
            broker.on_price("NQ", PRICE, bar_time(a.m0))
    broker.on_price("NQ", PRICE, bar_time(a.m0))
    write({"ev": "done"})
    broker.close()


if __name__ == "__main__":
    main()
