"""The fault matrix's runtime process (``python -m tests.runtime.faultkit ...``) and what it shares with
``test_faults.py``: the order pattern, the bar clock and the log.

Run as a process it is the runtime without Ray — the paper broker (``BrokerService``, what ``LocalBroker``
hosts) and the live settings (``LiveSettings``, what ``/api/config`` serves without Ray) — on a store
another runtime used before it. It reports the live state it started with, re-sends the orders a killed
predecessor sent but never had answered (a client's retry, same client order id), then sends a burst,
pushing a price every few orders so market orders fill. Every order is logged ``sent`` before it goes and
``ack`` once its record comes back (one JSON object a line, flushed), so the test can SIGKILL it mid-burst
and know which orders a caller saw acknowledged.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from nq_ray.config import Settings

T0 = datetime(2026, 3, 10, 10, 0, tzinfo=ZoneInfo("America/New_York"))  # a Tuesday, CME open
PRICE = 20000.0
START_LIMITS = {
    "max_contracts_per_symbol": 4,  # the start-up value; the test patches it to 2 live
    "max_total_contracts": None,
    "max_notional_usd": None,
    "max_margin_use_pct": None,
    "max_daily_loss_usd": None,
    "trailing_drawdown_usd": None,
    "max_orders_per_minute": None,
    "max_consecutive_losses": None,
}


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


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--url", required=True)
    p.add_argument("--data", required=True)
    p.add_argument("--log", required=True, type=Path)
    p.add_argument("--retry", type=Path, help="the log of a killed predecessor")
    p.add_argument("--prefix", required=True)
    p.add_argument("--count", type=int, required=True)
    p.add_argument("--m0", type=float, required=True)
    a = p.parse_args()

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
