"""``nq-ray up`` on the replay clock, as a user starts it (a real ``python -m nq_ray.cli up``: Ray, the
``market_replay`` actor, Serve): the price the API gives is the replayed bar's close and it advances; a
market order fills at the next replayed bar's open plus slippage; a bad replay is refused before
anything starts; and the default ``up`` on the bundled sample has the desk trading on replay time."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest

from nq_ray.testing.instance import UpInstance

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"
ET = "America/New_York"


def wait_for(check: Callable[[], Any], timeout_s: float, what: str) -> Any:
    """The first truthy answer of ``check`` (asked every 0.2 s) within ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        out = check()
        if out:
            return out
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture(scope="module")
def csv_replay(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[UpInstance, pd.DataFrame]]:
    root = tmp_path_factory.mktemp("upreplay")
    csv = root / "nq.csv"
    shutil.copy(SHARED / "NQ_5min.csv", csv)
    bars = pd.read_csv(csv, parse_dates=["datetime"]).set_index("datetime")
    bars.index = bars.index.tz_localize(ET)
    env = {
        "NQ_DATA__DEFAULT_SOURCE": f"csv:{csv}",
        "NQ_REPLAY__SYMBOLS": '["NQ"]',
        "NQ_REPLAY__START_DESK": "false",  # the test's own orders only
    }
    inst = UpInstance(root=root / "up", args=("--replay", "2026-04-20T09:30", "--speed", "600"), env=env)
    with inst:
        inst.wait_healthy(timeout_s=240)
        wait_for(lambda: "nq-ray is up" in inst.output(), 120, "the banner")  # after the replay started
        yield inst, bars


def test_up_replays_a_csv_source_and_the_price_advances(csv_replay: tuple[UpInstance, pd.DataFrame]) -> None:
    inst, bars = csv_replay
    assert "replay of csv:" in inst.output() and "starts at Mon 2026-04-20 09:30 ET, x600" in inst.output()
    with httpx.Client(base_url=inst.base, timeout=30) as c:
        first = c.get("/api/market/nq-price").json()
        t0 = pd.Timestamp(first["bar_time"])
        assert first["price"] == bars.loc[t0, "close"] and first["origin"]["source"].startswith("csv:")

        def later() -> dict[str, Any] | None:
            q = c.get("/api/market/nq-price").json()
            return q if pd.Timestamp(q["bar_time"]) > t0 else None

        second = wait_for(later, 30, "the replayed price to advance")
        assert second["price"] == bars.loc[pd.Timestamp(second["bar_time"]), "close"]


def test_a_market_order_fills_at_the_next_replayed_bars_open_plus_slippage(
    csv_replay: tuple[UpInstance, pd.DataFrame],
) -> None:
    inst, bars = csv_replay
    order = {"symbol": "NQ", "side": "buy", "contracts": 1, "order_type": "market", "client_order_id": "up-1"}
    with httpx.Client(base_url=inst.base, timeout=30) as c:

        def accepted() -> dict[str, Any] | None:  # the replay may sit in the 17:00 halt: try again then
            out = c.post(
                "/api/tools/place_order", json=order | {"client_order_id": f"up-{time.monotonic_ns()}"}
            )
            body: dict[str, Any] = out.json()
            return body if body["accepted"] else None

        placed = wait_for(accepted, 60, "an accepted market order")
        created = pd.Timestamp(placed["order"]["created_at"]).tz_convert(ET)

        def position() -> dict[str, Any] | None:
            risk = c.post("/api/tools/assess_portfolio_risk", json={}).json()
            pos = (risk["portfolio"] or {}).get("positions", {}).get("NQ")
            return pos if pos and pos["quantity"] else None

        pos = wait_for(position, 30, "the fill")
    # the next bar released after the order: the one that opens at the order's 5-minute slot
    fill_bar = bars.loc[bars.index >= created.floor("5min")].iloc[0]
    assert pos["quantity"] == 1 and pos["avg_price"] == fill_bar["open"] + 0.25  # one tick of slippage


def test_a_bad_replay_is_refused_before_anything_starts(tmp_path: Path) -> None:
    inst = UpInstance(root=tmp_path / "bad", args=("--replay", "2020-01-06T09:30"))
    with inst:
        assert inst.wait_exit(timeout_s=60) < 30
        assert inst.proc is not None and inst.proc.returncode == 2
        assert "before the first NQ bar" in inst.output()
        assert "nq-ray is up" not in inst.output()


def test_the_default_up_has_the_desk_trading_on_the_sample_within_a_minute(
    tmp_path: Path, record_property: Any
) -> None:
    """Within a minute of the banner (14 s measured here, the machine otherwise idle); the test allows two,
    for a suite whose other worker keeps both cores busy, and records what it took."""
    inst = UpInstance(root=tmp_path / "default")
    with inst:
        inst.wait_healthy(timeout_s=240)
        wait_for(lambda: "nq-ray is up" in inst.output(), 120, "the banner")
        up_at = time.monotonic()
        assert "replay of sample starts at" in inst.output()
        with httpx.Client(base_url=inst.base, timeout=30) as c:

            def traded() -> dict[str, Any] | None:
                for d in c.get("/api/decisions").json():
                    if d["action"] in ("buy", "sell") and d["approved"]:
                        full = c.get(f"/api/decisions/{d['id']}").json()
                        if full["orders"]:  # the broker's order desk-<id>
                            return full
                return None

            first = wait_for(traded, 120, "the desk's first placed order")
        took = time.monotonic() - up_at
        record_property("summary", f"default up: the desk's first order {took:.0f} s after the banner")
        assert took < 120
        order = first["orders"][0]
        assert order["client_order_id"] == f"desk-{first['id']}" and order["status"] in ("accepted", "filled")
        # on replay time: the decision is stamped in the sample's history, not today
        assert pd.Timestamp(first["at"]) < pd.Timestamp("2026-04-29", tz="UTC")
