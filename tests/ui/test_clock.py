"""``nq_ray_ui.clock``: the exchange clock bar follows the pushed events and shows the API's refusals.

Pure parts (times worked by hand) without a server; ``read_clock`` and the controls against the real API
on the replay clock (the package's ``api_server``) and on the wall clock (one more API app of its own).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import gradio as gr
import httpx
from nq_ray_ui import clock
from nq_ray_ui.client import ApiClient
from nq_ray_ui.state import Ctx

ET = ZoneInfo("America/New_York")
W0 = 1_800_000_000.0  # a wall-clock instant (epoch seconds) the hand-worked times count from


def _replay(**over: Any) -> dict[str, Any]:
    status = {
        "clock": "replay",
        "now": "2026-04-20T09:30:00-04:00",
        "start": "2026-04-20T09:30:00-04:00",
        "until": "2026-04-28T23:40:00-04:00",
        "speed": 600.0,
        "paused": False,
        "ended": False,
        "source": "sample",
        "interval": "5m",
        "bars_left": 3000,
    }
    return status | over


def _push(released_at: str, seq: int = 1, **data: Any) -> dict[str, Any]:
    return {
        "type": "market_update",
        "data": {"seq": seq, "symbol": "NQ", "clock": "replay", "released_at": released_at} | data,
    }


def test_interval_lengths() -> None:
    assert [clock.interval_s(x) for x in ("5m", "1h", "30s", "1d")] == [300.0, 3600.0, 30.0, 86400.0]
    assert clock.interval_s("5x") is None and clock.interval_s(None) is None


def test_replay_time_runs_at_the_speed_until_the_next_bars_close() -> None:
    view = clock.view_state(_replay(), wall=W0)

    at_quarter = clock.replay_now(view, W0 + 0.25)  # 0.25 s × 600 = 150 s of replay time
    at_5s = clock.replay_now(view, W0 + 5.0)  # 3000 s, but the next bar closes 300 s after 09:30

    assert at_quarter == datetime(2026, 4, 20, 9, 32, 30, tzinfo=ET)
    assert at_5s == datetime(2026, 4, 20, 9, 35, tzinfo=ET)


def test_a_paused_replay_stands_still() -> None:
    view = clock.view_state(_replay(paused=True), wall=W0)

    assert clock.replay_now(view, W0 + 60) == datetime(2026, 4, 20, 9, 30, tzinfo=ET)
    assert 'data-state="paused"' in clock.clock_html(view, W0 + 60)


def test_a_pushed_bar_moves_the_clock_to_its_release() -> None:
    view = clock.view_state(_replay(paused=False), wall=W0)

    view = clock.take_events(view, [_push("2026-04-20T09:45:00-04:00", seq=3)])

    assert clock.replay_now(view, W0) == datetime(2026, 4, 20, 9, 45, tzinfo=ET)
    assert view["status"]["seq"] == 3


def test_an_older_push_never_takes_the_clock_back() -> None:
    view = clock.view_state(_replay(paused=True), wall=W0)
    events = [_push("2026-04-20T09:45:00-04:00", 2), _push("2026-04-20T09:40:00-04:00", 1)]

    view = clock.take_events(view, events)

    assert clock.replay_now(view, W0) == datetime(2026, 4, 20, 9, 45, tzinfo=ET)


def test_a_pushed_status_replaces_the_pages_status() -> None:
    view = clock.view_state(_replay(), wall=W0)
    paused = _replay(now="2026-04-20T10:00:00-04:00", paused=True, speed=60.0)

    view = clock.take_events(
        view, [{"type": "system_notification", "data": {"message": "replay paused", "clock": paused}}]
    )
    html = clock.clock_html(view, W0 + 100)

    assert "REPLAY · PAUSED" in html and "x60" in html
    assert "Mon 2026-04-20 10:00:00 ET" in html


def test_the_replay_end_caps_the_time_and_reads_ended() -> None:
    status = _replay(now="2026-04-28T23:38:00-04:00", until="2026-04-28T23:40:00-04:00")
    running = clock.view_state(status, wall=W0)
    ended = clock.view_state(status | {"now": status["until"], "ended": True}, wall=W0)

    assert clock.replay_now(running, W0 + 60) == datetime(2026, 4, 28, 23, 40, tzinfo=ET)
    assert "REPLAY · ENDED" in clock.clock_html(ended, W0)


def test_the_wall_clock_shows_new_york_time() -> None:
    view = clock.view_state({"clock": "wall"}, wall=W0)

    html = clock.clock_html(view, W0)

    assert "WALL CLOCK" in html
    assert f"{datetime.fromtimestamp(W0, ET):%H:%M:%S} ET" in html


def test_a_speed_that_is_not_a_number_is_refused_on_the_page_without_a_request() -> None:
    ctx = Ctx(ApiClient("http://127.0.0.1:1", timeout_s=2))

    _shown, err, view = clock.control(ctx, "speed", {"seen": 4}, "fast")

    assert "speed &#x27;fast&#x27; is not a number" in err["value"] and err["visible"]
    assert view == {"seen": 4}


def test_an_unreachable_api_is_shown_under_the_clock() -> None:
    ctx = Ctx(ApiClient("http://127.0.0.1:1", timeout_s=2))

    _shown, err, _view = clock.control(ctx, "pause", {})

    assert "cannot reach the nq-ray API at http://127.0.0.1:1" in err["value"] and err["visible"]


def test_a_tick_before_the_page_has_its_clock_writes_nothing_back() -> None:
    """Gradio runs a tick beside the page's load: a tick that still holds the empty view must not write
    it over the clock the load set (the page's clock would stay as loaded for good)."""
    ctx = Ctx(ApiClient("http://127.0.0.1:1", timeout_s=2))

    for early in ({}, None, {"status": {"clock": "unknown"}, "seen": 3}):
        outputs = clock.tick(ctx, early)

        assert outputs == tuple(gr.skip() for _ in range(4))  # the view (the 4th) is left as it is


# ------------------------------------------------------------------------------- against the real API
def test_read_clock_is_the_apis_replay_status(api_server: Any) -> None:
    status = clock.read_clock(ApiClient(api_server.url))
    direct = httpx.get(api_server.url + "/api/market/replay", timeout=30).json()

    assert status["clock"] == "replay" and status["source"] == direct["source"] == "sample"
    assert status["start"] == direct["start"]


def test_a_jump_back_is_refused_with_the_apis_message(api_server: Any) -> None:
    ctx = Ctx(ApiClient(api_server.url))

    _shown, err, _view = clock.control(ctx, "jump", {}, "2026-04-17T09:30")

    assert "nq-error" in err["value"] and "fills are final" in err["value"]


def test_read_clock_on_the_wall_clock_is_healths_clock(server_class: Any, tmp_path: Any) -> None:
    from nq_ray.serve.app import build_app

    settings = {"data": {"data_dir": str(tmp_path)}, "log_level": "WARNING", "replay": {"clock": "wall"}}
    server = server_class(build_app(settings, use_actors=False, broker_name="paper_broker_ui_wall"))
    server.start("/api/tools")
    try:
        refused = httpx.get(server.url + "/api/market/replay", timeout=30)
        status = clock.read_clock(ApiClient(server.url))
    finally:
        server.stop()

    assert refused.status_code == 409 and refused.json()["code"] == "not_replay"
    assert status["clock"] == "wall"


def test_the_answer_to_a_control_is_the_clock_shown(api_server: Any) -> None:
    ctx = Ctx(ApiClient(api_server.url))

    running_html, err_resume, running = clock.control(ctx, "resume", {})
    paused_html, err_pause, paused = clock.control(ctx, "pause", running)  # the package's replay paused

    assert err_resume["value"] == err_pause["value"] == "" and not err_pause["visible"]
    assert running["status"]["paused"] is False and "REPLAY · RUNNING" in running_html
    assert paused["status"]["paused"] is True and "REPLAY · PAUSED" in paused_html
