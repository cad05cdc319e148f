"""The exchange clock under the page header: replay time (New York), speed, running / paused / ended and
the source, or "wall clock"; with the replay's controls (pause, resume, speed, jump, step one bar).

The status comes from ``GET /api/market/replay`` (on the wall clock that answers 409 ``not_replay``, and
``/health``'s ``clock`` says so) when the page loads and as the answer of every control. Between those,
the clock moves with what the WebSocket pushes: each ``market_update`` carries the replay time its bar
was released at, and each control change anywhere (another page, the CLI) comes as a
``system_notification`` with the whole status. A 1 s timer drains those pushed events and makes no API
request; while the replay runs it also advances the shown time at the replay's speed, never past the
next bar's close (the server skips the halts and weekends; the next push puts the clock right).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import gradio as gr

from nq_ray_ui.client import ApiClient, ApiError, NotAvailable
from nq_ray_ui.render import error_html, esc
from nq_ray_ui.state import Ctx

ET = ZoneInfo("America/New_York")
SPEEDS = [1, 10, 60, 600]
TICK_S = 1.0
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def read_clock(client: ApiClient) -> dict[str, Any]:
    """The exchange clock's status: the replay's (``GET /api/market/replay``), else ``/health``'s
    ``clock`` (``{"clock": "wall", ...}``); an older server without either runs on the wall clock.
    Any other failure is an ``ApiError`` (shown, not swallowed)."""
    try:
        status: dict[str, Any] = client.get("/api/market/replay")
        return status
    except NotAvailable:
        pass
    except ApiError as exc:
        if exc.code != "not_replay":
            raise
    try:
        clock = (client.get("/health") or {}).get("clock")
    except ApiError:
        clock = None
    return dict(clock) if isinstance(clock, dict) and clock.get("clock") else {"clock": "wall"}


def _time(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        t = datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return t if t.tzinfo is not None else t.replace(tzinfo=ET)


def interval_s(interval: Any) -> float | None:
    """``"5m"`` → 300.0 (``None`` when it cannot be read)."""
    text = str(interval or "").strip().lower()
    if len(text) < 2 or text[-1] not in _UNITS or not text[:-1].isdigit():
        return None
    return float(int(text[:-1]) * _UNITS[text[-1]])


def view_state(status: dict[str, Any], wall: float | None = None) -> dict[str, Any]:
    """A page session's clock: the status and the wall-clock instant it was true at."""
    return {"status": dict(status), "wall": time.time() if wall is None else wall, "pushed": None}


def take_events(
    view: dict[str, Any], events: list[dict[str, Any]], wall: float | None = None
) -> dict[str, Any]:
    """The clock after pushed events (oldest first): a ``system_notification`` that carries a replay
    status replaces the status; a ``market_update`` moves replay time to its bar's release."""
    view = dict(view)
    status = dict(view.get("status") or {})
    for e in events:
        raw = e.get("data")
        data: dict[str, Any] = raw if isinstance(raw, dict) else {}
        clock = data.get("clock")
        if e.get("type") == "system_notification" and isinstance(clock, dict) and clock.get("clock"):
            status = dict(clock)
            view["wall"] = e.get("received_at") or (time.time() if wall is None else wall)
            view["pushed"] = None
        elif e.get("type") == "market_update" and data.get("clock") == "replay":
            at = _time(data.get("released_at"))
            known = _time(view.get("pushed"))
            if at is not None and (known is None or at > known):
                view["pushed"] = at.isoformat()
                if isinstance(data.get("seq"), int):
                    status["seq"] = data["seq"]
                if data.get("interval"):
                    status.setdefault("interval", data["interval"])
                if status.get("clock") != "replay":  # a replay this page has not seen the status of
                    status = {"clock": "replay", "source": data.get("source"), "speed": None}
    view["status"] = status
    return view


def replay_now(view: dict[str, Any], wall: float | None = None) -> datetime | None:
    """Replay time as the page knows it: the later of the status's ``now`` and the last pushed release,
    advanced at the replay's speed since then while it runs, capped at the next bar's close and at the
    replay's end."""
    status = view.get("status") or {}
    base = _time(status.get("now"))
    pushed = _time(view.get("pushed"))
    anchor = max([t for t in (base, pushed) if t is not None], default=None)
    if anchor is None:
        return None
    if status.get("paused") or status.get("ended") or status.get("finished") or not status.get("speed"):
        return anchor
    w = time.time() if wall is None else wall
    since = max(0.0, w - float(view.get("wall") or w))
    t = anchor + timedelta(seconds=since * float(status["speed"]))
    caps: list[datetime | None] = [_time(status.get("until"))]
    step = interval_s(status.get("interval"))
    if step is not None:
        caps.append(anchor + timedelta(seconds=step))
    for cap in caps:
        if cap is not None and t > cap:
            t = cap
    return t


def _state(status: dict[str, Any]) -> tuple[str, str]:
    if status.get("ended") or status.get("finished"):
        return "ENDED", "nq-badge-down"
    if status.get("paused"):
        return "PAUSED", "nq-badge-warn"
    return "RUNNING", "nq-badge-live"


def _speed(speed: Any) -> str:
    if not speed:
        return "x?"
    s = float(speed)
    return f"x{s:g}"


def clock_html(view: dict[str, Any], wall: float | None = None) -> str:
    """The clock bar: ``REPLAY · RUNNING  Mon 2026-04-20 09:35:12 ET  x600  source …`` or the wall clock."""
    status = view.get("status") or {}
    if status.get("clock") != "replay":
        wall_now = datetime.fromtimestamp(time.time() if wall is None else wall, UTC).astimezone(ET)
        return (
            '<div class="nq-clock" data-testid="clock" data-clock="wall">'
            '<span class="nq-badge nq-badge-sample">WALL CLOCK</span>'
            f'<b data-testid="clock-time">{wall_now:%a %Y-%m-%d %H:%M:%S} ET</b>'
            '<span class="nq-dim">live source on exchange time; replay history with '
            "<code>nq-ray up --replay START --speed X</code></span></div>"
        )
    now = replay_now(view, wall)
    label, cls = _state(status)
    shown = f"{now.astimezone(ET):%a %Y-%m-%d %H:%M:%S} ET" if now else "—"
    details = [f"source {esc(status.get('source') or '?')}"]
    if (start := _time(status.get("start"))) is not None:
        until = _time(status.get("until"))
        span = f"{start.astimezone(ET):%m-%d %H:%M}"
        span += f" → {until.astimezone(ET):%m-%d %H:%M}" if until else ""
        details.append(esc(span))
    if status.get("bars_left") is not None:
        details.append(f"{int(status['bars_left']):,} bars left")
    if status.get("errors"):
        details.append(
            f'<span class="nq-badge nq-badge-down" title="{esc(status.get("last_error") or "")}">'
            f"{int(status['errors'])} errors</span>"
        )
    iso = esc(now.astimezone(ET).isoformat() if now else "")
    return (
        f'<div class="nq-clock" data-testid="clock" data-clock="replay" data-now="{iso}" '
        f'data-state="{label.lower()}">'
        f'<span class="nq-badge {cls}" data-testid="clock-state">REPLAY · {label}</span>'
        f'<b data-testid="clock-time">{shown}</b>'
        f'<b data-testid="clock-speed">{_speed(status.get("speed"))}</b>'
        f'<span class="nq-dim">{" · ".join(details)}</span></div>'
    )


def _error(html: str) -> Any:
    """The error line under the clock: shown with a message, hidden (no empty gap) without one."""
    return gr.update(value=html, visible=bool(html))


def _controls(view: dict[str, Any]) -> Any:
    return gr.update(visible=(view.get("status") or {}).get("clock") == "replay")


def load(ctx: Ctx) -> tuple[Any, ...]:
    """Page load: the status from the API, the clock bar, the controls (replay only), no error."""
    ctx.feed.start()
    seen, _ = ctx.feed.since(ctx.feed.received)
    try:
        view = view_state(read_clock(ctx.client))
    except ApiError as exc:
        view = view_state({"clock": "unknown"})
        view["seen"] = seen
        return _unknown_html(), gr.update(visible=False), _error(error_html(exc, "exchange clock")), view
    view["seen"] = seen
    return clock_html(view), _controls(view), _error(""), view


def _unknown_html() -> str:
    return (
        '<div class="nq-clock" data-testid="clock" data-clock="unknown">'
        '<span class="nq-badge nq-badge-down">CLOCK UNKNOWN</span></div>'
    )


def tick(ctx: Ctx, view: dict[str, Any] | None) -> tuple[Any, ...]:
    """Timer tick: drain the pushed events since this page's last look; no API request.

    Before the page's load has set the clock (or when it could not read it) the tick changes nothing,
    the view included: Gradio runs a tick and the load side by side, and a tick that wrote back the
    empty view it was given after the load had set the real one would leave the clock stuck."""
    if not view or (view.get("status") or {}).get("clock") == "unknown":
        return gr.skip(), gr.skip(), gr.skip(), gr.skip()
    ctx.feed.start()
    seen, events = ctx.feed.since(int(view.get("seen") or 0))
    was = dict(view.get("status") or {})
    view = take_events(view, events)
    view["seen"] = seen
    controls = _controls(view) if view["status"].get("clock") != was.get("clock") else gr.skip()
    speed = view["status"].get("speed")
    shown_speed = _speed(speed) if speed and speed != was.get("speed") else gr.skip()
    return clock_html(view), controls, shown_speed, view


def control(ctx: Ctx, action: str, view: dict[str, Any] | None, value: Any = None) -> tuple[Any, ...]:
    """One control (``pause``, ``resume``, ``speed``, ``jump``, ``step``): its answer is the new status;
    a refusal (problem details) is shown under the clock and the clock stays as it was."""
    body: dict[str, Any] | None = None
    if action == "speed":
        text = str(value or "").strip().lstrip("xX")
        try:
            body = {"speed": float(text)}
        except ValueError:
            return gr.skip(), _error(error_html(f"speed {value!r} is not a number (e.g. 60)", "speed")), view
    elif action == "jump":
        text = str(value or "").strip()
        if not text:
            return (
                gr.skip(),
                error_html("type a time to jump to, e.g. 2026-04-21T09:30 (New York)", "jump"),
                view,
            )
        body = {"to": text}
    elif action == "step":
        body = {"bars": 1}
    try:
        status = ctx.client.post(f"/api/market/replay/{action}", body)
    except ApiError as exc:
        return gr.skip(), _error(error_html(exc, action)), view
    fresh = view_state(status)
    fresh["seen"] = (view or {}).get("seen", 0)
    return clock_html(fresh), _error(""), fresh


def build(ctx: Ctx, demo: gr.Blocks) -> None:
    """The clock bar, its controls and its timer, inside ``demo`` (loaded with the page)."""
    with gr.Row(elem_id="nq-clockbar", equal_height=True):
        clock = gr.HTML(elem_id="nq-clock")
        with gr.Row(visible=False, elem_id="clock-controls", equal_height=True) as controls:
            pause = gr.Button("Pause", size="sm", min_width=64, elem_id="clock-pause")
            resume = gr.Button("Resume", size="sm", min_width=70, elem_id="clock-resume")
            step = gr.Button("Step 1 bar", size="sm", min_width=84, elem_id="clock-step")
            speed = gr.Dropdown(
                [f"x{s}" for s in SPEEDS],
                value=None,
                label="Speed",
                show_label=False,
                container=False,
                allow_custom_value=True,
                min_width=84,
                elem_id="clock-speed",
            )
            jump_to = gr.Textbox(
                label="Jump to (New York)",
                show_label=False,
                container=False,
                placeholder="jump to 2026-04-21T09:30",
                lines=1,
                max_lines=1,
                min_width=200,
                elem_id="clock-jump",
            )
            jump = gr.Button("Jump", size="sm", min_width=56, elem_id="clock-jump-go")
        view = gr.State({})
        timer = gr.Timer(TICK_S)
    err = gr.HTML(elem_id="clock-error", visible=False)

    demo.load(lambda: load(ctx), outputs=[clock, controls, err, view]).then(
        lambda v: gr.update(value=_speed((v.get("status") or {}).get("speed"))), inputs=view, outputs=speed
    )
    timer.tick(
        lambda v: tick(ctx, v), inputs=view, outputs=[clock, controls, speed, view], show_progress="hidden"
    )
    for button, action in ((pause, "pause"), (resume, "resume"), (step, "step")):
        button.click(lambda v, a=action: control(ctx, a, v), inputs=view, outputs=[clock, err, view])
    speed.input(lambda x, v: control(ctx, "speed", v, x), inputs=[speed, view], outputs=[clock, err, view])
    for trigger in (jump.click, jump_to.submit):
        trigger(lambda x, v: control(ctx, "jump", v, x), inputs=[jump_to, view], outputs=[clock, err, view])
