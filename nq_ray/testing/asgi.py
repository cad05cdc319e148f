"""An ASGI app on a real uvicorn server on loopback, in a thread of this process (tests, local fakes).

The socket is bound before the server starts (port 0: the kernel picks a free port), so there is no race
between finding a free port and listening on it. ``start`` returns once uvicorn says it has started.
"""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

import uvicorn


class ThreadedUvicorn:
    """``with ThreadedUvicorn(app) as srv: httpx.get(srv.url + "/health")``.

    ``config`` goes to ``uvicorn.Config`` (``lifespan``, ``ws``, ...); ``force_exit`` stops without
    waiting for requests still running (scripted hangs)."""

    def __init__(self, app: Any, *, name: str = "uvicorn", force_exit: bool = False, **config: Any) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self.port = int(self._sock.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self._force_exit = force_exit
        config = {"log_level": "warning", "access_log": False, **config}
        self.server = uvicorn.Server(uvicorn.Config(app, **config))
        self._thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self._sock]}, name=f"{name}-{self.port}", daemon=True
        )

    def start(self, timeout_s: float = 30.0) -> ThreadedUvicorn:
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while not self.server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                self.stop()
                raise RuntimeError(f"uvicorn on {self.url} did not start within {timeout_s:.0f} s")
            time.sleep(0.01)
        return self

    def stop(self, timeout_s: float = 15.0) -> None:
        self.server.should_exit = True
        self.server.force_exit = self._force_exit
        if self._thread.is_alive():
            self._thread.join(timeout=timeout_s)
        self._sock.close()

    def __enter__(self) -> ThreadedUvicorn:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
