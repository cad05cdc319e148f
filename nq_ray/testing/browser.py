"""Playwright's sync API on a thread of its own, so it never touches the caller's asyncio state.

Between two sync calls Playwright leaves its event loop marked as *running* in the thread that uses it
(``asyncio._set_running_loop``; that is how its greenlets hand control back and forth). In a pytest
process that thread is the main thread, so every ``asyncio.run`` and every pytest-asyncio test after the
browser tests failed with "cannot be called from a running event loop" until the driver stopped.
``ThreadedPlaywright`` starts the driver on one dedicated thread and hands out proxies: each attribute
read and call on a ``Proxy`` runs on that thread and answers with plain values or more proxies, so the
test code reads exactly like the sync API (``page.get_by_role("tab", name="Risk").click()``).

    with ThreadedPlaywright() as pw:
        browser = pw.launch_chromium(executable_path="/usr/bin/chromium", headless=True)
        page = browser.new_page()
        pw.expect(page.locator("#quote")).to_contain_text("NQ")
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Callable
from typing import Any


def _is_playwright_object(value: Any) -> bool:
    module = type(value).__module__ or ""
    return module.startswith("playwright.") and not isinstance(value, BaseException)


class Proxy:
    """A Playwright object that lives on the Playwright thread; reads and calls run there."""

    __slots__ = ("_run", "_target")

    def __init__(self, target: Any, run: Callable[..., Any]) -> None:
        object.__setattr__(self, "_target", target)
        object.__setattr__(self, "_run", run)

    def _wrap(self, value: Any) -> Any:
        if _is_playwright_object(value):
            return Proxy(value, self._run)
        if isinstance(value, list):
            return [self._wrap(v) for v in value]
        return value

    def __getattr__(self, name: str) -> Any:
        value = self._run(getattr, self._target, name)
        if callable(value) and not _is_playwright_object(value):  # a bound method: call it there too

            def call(*args: Any, **kwargs: Any) -> Any:
                return self._wrap(self._run(value, *_unwrap(args), **_unwrap(kwargs)))

            return call
        return self._wrap(value)

    def __setattr__(self, name: str, value: Any) -> None:
        self._run(setattr, self._target, name, _unwrap(value))

    def __repr__(self) -> str:
        return f"Proxy({type(self._target).__name__})"


def _unwrap(value: Any) -> Any:
    if isinstance(value, Proxy):
        return object.__getattribute__(value, "_target")
    if isinstance(value, tuple):
        return tuple(_unwrap(v) for v in value)
    if isinstance(value, list):
        return [_unwrap(v) for v in value]
    if isinstance(value, dict):
        return {k: _unwrap(v) for k, v in value.items()}
    return value


class ThreadedPlaywright:
    """The sync Playwright driver on its own thread (``start``/``stop`` or a ``with`` block)."""

    def __init__(self) -> None:
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None
        self._manager: Any = None
        self._playwright: Any = None

    def _run(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if self._pool is None:
            raise RuntimeError("ThreadedPlaywright is not started")
        return self._pool.submit(fn, *args, **kwargs).result()

    def start(self) -> ThreadedPlaywright:
        from playwright.sync_api import sync_playwright

        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="playwright")
        self._manager = sync_playwright()
        self._playwright = self._run(self._manager.start)
        return self

    @property
    def playwright(self) -> Proxy:
        """The ``Playwright`` object (``.chromium``, ``.devices``, ...) as a proxy."""
        return Proxy(self._playwright, self._run)

    def launch_chromium(self, **kwargs: Any) -> Proxy:
        """``playwright.chromium.launch(**kwargs)``: a proxied ``Browser``."""
        return Proxy(self._run(self._playwright.chromium.launch, **kwargs), self._run)

    def expect(self, target: Proxy, **kwargs: Any) -> Proxy:
        """Playwright's ``expect`` (auto-waiting assertions) on a proxied page or locator."""
        from playwright.sync_api import expect

        return Proxy(self._run(expect, _unwrap(target), **kwargs), self._run)

    def stop(self) -> None:
        """Stop the driver (this closes its browsers) and end the thread."""
        if self._pool is None:
            return
        try:
            if self._manager is not None:
                self._run(self._manager.__exit__, None, None, None)
        finally:
            self._pool.shutdown(wait=True)
            self._pool = None

    def __enter__(self) -> ThreadedPlaywright:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
