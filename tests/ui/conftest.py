"""The real API app and the real UI app on loopback, and a headless Debian Chromium driven by Playwright."""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from nq_ray.testing.asgi import ThreadedUvicorn

CHROMIUM = "/usr/bin/chromium"
BROKER = "paper_broker_ui_tests"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


class _Server(ThreadedUvicorn):
    """uvicorn in a thread on 127.0.0.1 whose ``start`` also waits for ``ready_path`` to answer."""

    def start(self, ready_path: str = "/", timeout_s: float = 60.0) -> _Server:
        super().start(timeout_s)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + ready_path, timeout=2).status_code < 500:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"server on {self.url} did not answer {ready_path}")


@pytest.fixture(scope="session")
def server_class() -> type[_Server]:
    """For tests that start one more app of their own on loopback."""
    return _Server


@pytest.fixture(scope="package")
def ui_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("nq_ui_data")


# What the scripted OpenAI-compatible server answers as the desk's LLM analyst (a valid MarketView).
SCRIPTED_VIEW = {
    "bias": "long",
    "confidence": 0.72,
    "key_levels": [27191.75, 27294.0],
    "invalidation": 27191.75,
    "horizon": "intraday",
    "reasoning": "Scripted test analyst: higher lows above the overnight low, price above VWAP.",
}


@pytest.fixture(scope="package")
def llm_server() -> Iterator[Any]:
    """A real local OpenAI-compatible server (``nq_ray.testing.llm_server``) as the desk's LLM."""
    from nq_ray.testing.llm_server import ScriptedLLMServer

    with ScriptedLLMServer(default_text=json.dumps(SCRIPTED_VIEW), models=["scripted-analyst"]) as srv:
        yield srv


# The market the tests see: a replay of the bundled sample from a Monday's RTH open, fast enough that a bar
# is released every half second while it runs (5 minutes of replay time per 0.5 s). It runs on the replay
# clock, so the market is open at replay time whatever day the tests run on.
REPLAY_START = "2026-04-20T09:30"
REPLAY_SPEED = 600.0


def replay_api(api: httpx.Client, action: str, body: Any = None) -> dict[str, Any]:
    """``POST /api/market/replay/<action>``: the replay's new status (fails the test on a refusal)."""
    resp = api.post(f"/api/market/replay/{action}", json=body)
    assert resp.status_code == 200, resp.text
    status: dict[str, Any] = resp.json()
    return status


@pytest.fixture(scope="package")
def api_server(ray_session: Any, ui_data_dir: Path, llm_server: Any) -> Iterator[_Server]:
    """The real nq-ray API (``build_app(use_actors=False)``) with a temporary SQLite store, the scripted
    LLM as its one provider, on a market replay from ``REPLAY_START`` at ``REPLAY_SPEED``, prepared as the
    entry points prepare it (``prepare_replay``). The replay is paused once the API is up, so the tests
    that compare the page with the API read the same bars; a test that wants the market to move resumes
    it (or steps it) and pauses it again."""
    from nq_ray.config import Settings
    from nq_ray.runtime.replay import prepare_replay
    from nq_ray.serve.app import build_app

    raw = {
        "data": {"data_dir": str(ui_data_dir)},
        "log_level": "WARNING",
        "replay": {"clock": "replay", "start": REPLAY_START, "speed": REPLAY_SPEED},
        # the package's tests trade one account along one replayed day under the default limits ($2,000
        # daily loss): the desk sizes one contract (1 % risk, 2 ATR stop) so the day's losses stay inside
        "desk": {"risk_pct": 1.0, "atr_multiple": 2.0},
        "llm": {
            "providers": [
                {
                    "name": "serve",
                    "kind": "serve",
                    "base_url": llm_server.base_url,
                    "model": "scripted-analyst",
                    "priority": 10,
                }
            ]
        },
    }
    settings = Settings.model_validate(raw)
    prepare_replay(settings)
    app = build_app(settings, use_actors=False, broker_name=BROKER)
    server = _Server(app).start("/api/tools")
    with httpx.Client(base_url=server.url, timeout=60) as api:
        replay_api(api, "pause")
    yield server
    server.stop()
    with contextlib.suppress(ValueError):  # the paper broker actor the API created for the tests
        ray_session.kill(ray_session.get_actor(BROKER, namespace="nq"))


@pytest.fixture
def replay(api_server: _Server) -> Iterator[Callable[..., dict[str, Any]]]:
    """``replay("resume")``, ``replay("step", {"bars": 1})``, ...: control the package's replay over the
    API (its answer, the new status). After the test that used it the replay is paused and the account
    flat (flatten_all, filled at the next bar's open): the next test inherits no position, whatever this
    one left or however it failed."""
    with httpx.Client(base_url=api_server.url, timeout=60) as api:
        yield lambda action, body=None: replay_api(api, action, body)
        replay_api(api, "pause")
        flatten(api)


def flatten(api: httpx.Client) -> None:
    """Close every position of the tests' paper account: ``flatten_all``, then one replayed bar fills it."""
    resp = api.post("/api/tools/manage_position", json={"action": "flatten_all"})
    assert resp.status_code == 200, resp.text
    if resp.json()["orders"]:
        replay_api(api, "step", {"bars": 1})


@pytest.fixture(scope="package")
def ui_server(api_server: _Server) -> Iterator[_Server]:
    """The real UI (``nq_ray_ui.mount``) on its own port, talking to the API over HTTP."""
    from fastapi import FastAPI
    from nq_ray_ui import mount

    app = mount(FastAPI(), api_server.url, path="/ui")
    server = _Server(app).start("/ui/")
    yield server
    server.stop()
    app.state.nq_ui.nq_ctx.feed.stop()


@pytest.fixture(scope="package")
def playwright() -> Iterator[Any]:
    """Playwright's sync driver on a thread of its own (``nq_ray.testing.browser``): its event loop never
    shows as running in the main thread, so async tests after these in the same process still work."""
    from nq_ray.testing.browser import ThreadedPlaywright

    with ThreadedPlaywright() as pw:
        yield pw


@pytest.fixture(scope="package")
def browser(playwright: Any) -> Iterator[Any]:
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} missing: run `make setup` (it installs Debian's chromium)")
    b = playwright.launch_chromium(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
    yield b
    b.close()


@pytest.fixture(scope="package")
def expect(playwright: Any) -> Any:
    """Playwright's auto-waiting ``expect`` for the proxied pages and locators."""
    return playwright.expect


@pytest.fixture(scope="package")
def shots_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Full-size screenshots of every tab (the test output): ``NQ_UI_TEST_OUTPUT`` or a pytest temp dir.
    ``NQ_UI_SCREENSHOTS=docs/screenshots`` also writes the small committed copies there."""
    if out := os.environ.get("NQ_UI_TEST_OUTPUT"):
        path = Path(out)
        path.mkdir(parents=True, exist_ok=True)
        return path
    return tmp_path_factory.mktemp("ui_screenshots")
