"""``nq_ray.testing.browser``: sync Playwright on its own thread leaves the caller's asyncio state alone.

The regression it guards: with the driver on the main thread, ``asyncio.run`` and every pytest-asyncio
test after the browser tests failed with "cannot be called from a running event loop"."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from typing import Any

import pytest

from nq_ray.testing.browser import Proxy, ThreadedPlaywright

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]

CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="module")
def pw() -> Iterator[ThreadedPlaywright]:
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} missing: run `make setup` (it installs Debian's chromium)")
    with ThreadedPlaywright() as threaded:
        yield threaded


@pytest.fixture(scope="module")
def page(pw: ThreadedPlaywright) -> Iterator[Any]:
    browser = pw.launch_chromium(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
    page = browser.new_page()
    yield page
    browser.close()


def test_proxied_page_reads_like_the_sync_api(page: Any, pw: ThreadedPlaywright) -> None:
    page.set_content("<p id='x'>hi</p><button>Go</button><ul><li>a</li><li>b</li></ul>")

    button = page.get_by_role("button", name="Go").first
    items = page.locator("li").all()

    assert isinstance(button, Proxy) and button.is_visible()
    assert page.inner_text("#x") == "hi"
    assert [i.inner_text() for i in items] == ["a", "b"]
    assert page.evaluate("() => [1, 2]") == [1, 2]
    pw.expect(page.locator("#x")).to_have_text("hi")


def test_no_event_loop_shows_as_running_in_this_thread_while_the_browser_is_open(page: Any) -> None:
    page.set_content("<p>still open</p>")

    assert asyncio._get_running_loop() is None
    assert asyncio.run(asyncio.sleep(0, result="ran")) == "ran"


async def test_an_async_test_after_the_browser_tests_runs(page: Any) -> None:
    assert await asyncio.sleep(0, result=42) == 42
    assert page.inner_text("p") == "still open"  # the driver is still alive on its own thread


def test_stop_ends_the_driver_thread() -> None:
    threaded = ThreadedPlaywright().start()
    threaded.stop()

    with pytest.raises(RuntimeError, match="not started"):
        threaded.launch_chromium(executable_path=CHROMIUM)
