"""The broker's price feed: marks from the configured data source, so market orders fill in a fresh
runtime; live risk limits; ``refresh_marks`` pushes only newer bars."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from nq_ray.config import Settings
from nq_ray.data import load_bars
from nq_ray.errors import DuplicateClientOrderIdError
from nq_ray.market.clock import FixedClock
from nq_ray.runtime.broker import get_or_create_broker
from nq_ray.runtime.feed import MarkFeed, latest_bar
from tests.execution.helpers import OPEN_LIMITS

# the wall clock's feed (a live source's behaviour, on the sample's bars) at a moment the market is open,
# after the sample's last bar, whatever day the test runs: the broker's exchange clock, not a limit off
OPEN = FixedClock("2026-12-02T10:00")


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data={"data_dir": str(tmp_path)}, risk={"limits": OPEN_LIMITS})


def test_latest_bar_is_the_last_row_of_the_configured_source(settings: Settings) -> None:
    frame = load_bars("NQ", "5m", source="sample")
    bar = latest_bar(settings, "NQ=F")
    assert bar.time == frame.index[-1].to_pydatetime() and bar.close == frame["close"].iloc[-1]
    synthetic = settings.merged({"data": {"default_source": "synthetic"}})
    assert latest_bar(synthetic, "NQ").close != bar.close


def test_feed_caches_quotes_and_gives_none_when_the_source_has_no_data(settings: Settings) -> None:
    calls: list[str] = []

    def loader(s: Any, sym: str) -> Any:
        calls.append(sym)
        return latest_bar(s, sym)

    feed = MarkFeed(settings, ttl_s=60, loader=loader)
    assert feed.quote("NQ") is feed.quote("NQ") and calls == ["NQ"]
    assert feed.quote("NQ", fresh=True) is not None and calls == ["NQ", "NQ"]
    assert feed.quote("YM") is None and feed.failures == 1  # no YM sample: the order waits for a bar


@pytest.fixture
def broker(ray_session: Any, settings: Settings) -> Any:
    h = get_or_create_broker(
        settings, name=f"paper_broker_feed_{uuid.uuid4().hex[:8]}", namespace="nq_test", feed=True, clock=OPEN
    )
    yield h
    ray_session.kill(h, no_restart=True)


def test_market_order_fills_at_the_latest_close_plus_slippage(ray_session: Any, broker: Any) -> None:
    close = float(load_bars("NQ", "5m", source="sample")["close"].iloc[-1])
    buy = ray_session.get(broker.place_order.remote({"symbol": "NQ", "side": "buy", "quantity": 2}))
    assert buy.status.value == "filled" and buy.avg_fill_price == close + 0.25  # 1 tick against the buy
    sell = ray_session.get(broker.place_order.remote({"symbol": "NQ", "side": "sell", "quantity": 2}))
    assert sell.status.value == "filled" and sell.avg_fill_price == close - 0.25
    retry = {"symbol": "NQ", "side": "sell", "quantity": 2, "client_order_id": sell.client_order_id}
    again = ray_session.get(broker.place_order.remote(retry))
    assert again.duplicate and again.side.value == "sell"  # the stored order; nothing fills twice
    with pytest.raises(DuplicateClientOrderIdError):  # the same id for another order: refused
        ray_session.get(broker.place_order.remote(retry | {"side": "buy"}))
    assert ray_session.get(broker.portfolio.remote())["positions"]["NQ"]["quantity"] == 0


def test_limit_order_rests_and_refresh_marks_ignores_an_old_bar(ray_session: Any, broker: Any) -> None:
    close = float(load_bars("NQ", "5m", source="sample")["close"].iloc[-1])
    far = round((close * 0.5) / 0.25) * 0.25
    rec = ray_session.get(
        broker.place_order.remote(
            {"symbol": "NQ", "side": "buy", "quantity": 1, "order_type": "limit", "limit_price": far}
        )
    )
    assert rec.status.value == "accepted"
    out = ray_session.get(broker.refresh_marks.remote())
    assert out["symbols"] == ["NQ"] and out["fills"] == 0
    assert ray_session.get(broker.order.remote(rec.client_order_id)).status.value == "accepted"


def test_apply_settings_changes_the_gate_for_the_next_order(
    ray_session: Any, broker: Any, settings: Settings
) -> None:
    tighter = settings.merged({"risk": {"limits": {"max_contracts_per_symbol": 1}}})
    assert ray_session.get(broker.apply_settings.remote(tighter))["limits"]["max_contracts_per_symbol"] == 1
    rec = ray_session.get(broker.place_order.remote({"symbol": "NQ", "side": "buy", "quantity": 3}))
    assert rec.status.value == "filled" and rec.quantity == 1  # reduced to the new limit, then filled
