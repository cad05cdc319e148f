"""The real API app and the real UI app on loopback, and a headless Debian Chromium driven by Playwright."""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Iterator
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


@pytest.fixture(scope="package")
def api_server(ray_session: Any, ui_data_dir: Path, llm_server: Any) -> Iterator[_Server]:
    """The real nq-ray API (``build_app(use_actors=False)``) with a temporary SQLite store, the scripted
    LLM as its one provider, and the session-hours limit off so the tests do not depend on the clock."""
    from nq_ray.serve.app import build_app

    settings = {
        "data": {"data_dir": str(ui_data_dir)},
        "log_level": "WARNING",
        "risk": {"limits": {"trade_only_when_open": False}},
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
    app = build_app(settings, use_actors=False, broker_name=BROKER)
    server = _Server(app).start("/api/tools")
    yield server
    server.stop()
    with contextlib.suppress(ValueError):  # the paper broker actor the API created for the tests
        ray_session.kill(ray_session.get_actor(BROKER, namespace="nq"))


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
