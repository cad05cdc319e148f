"""The UI's only way into nq-ray: its HTTP API and WebSocket (never the core).

``ApiClient`` turns every failure into an ``ApiError`` whose message a trader can read (the problem
details' ``detail`` and field errors, or "server unreachable"); ``NotAvailable`` is the 404/405 of an
endpoint this server does not have, so a tab can say so instead of failing. ``LiveFeed`` listens on
``/ws`` in a background thread and numbers the events it keeps, so each page session drains what was
pushed since its last look (``LiveFeed.since``) without asking the API anything.
"""

from __future__ import annotations

import collections
import contextlib
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx

TIMEOUT_S = 60.0


class ApiError(Exception):
    """A failed API call, with a message fit for the page (no stack trace, no raw JSON)."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        errors: list[dict[str, Any]] | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message, self.status, self.errors = message, status, errors or []
        self.code = code  # the problem's stable ``code`` (e.g. ``not_replay``), when the API sent one

    def __str__(self) -> str:
        return self.message


class NotAvailable(ApiError):
    """The endpoint does not exist on this server (an older or partial nq-ray)."""


def _problem_message(resp: httpx.Response) -> tuple[str, list[dict[str, Any]], str | None]:
    try:
        body = resp.json()
    except ValueError:
        return f"HTTP {resp.status_code}: {resp.text[:200] or resp.reason_phrase}", [], None
    if not isinstance(body, dict):
        return f"HTTP {resp.status_code}", [], None
    detail = body.get("detail")
    if isinstance(detail, list):  # FastAPI's own validation shape
        detail = "; ".join(str(d.get("msg", d)) if isinstance(d, dict) else str(d) for d in detail)
    errors = body.get("errors")
    if errors is None and isinstance(body.get("details"), dict):
        errors = body["details"].get("errors")
    errs = [e for e in (errors or []) if isinstance(e, dict)]
    code = body.get("code")
    return (
        str(detail or body.get("title") or f"HTTP {resp.status_code}"),
        errs,
        code if isinstance(code, str) else None,
    )


class ApiClient:
    """Synchronous client of one nq-ray server (Gradio runs handlers in worker threads)."""

    def __init__(self, api_url: str, token: str | None = None, timeout_s: float = TIMEOUT_S) -> None:
        self.api_url = api_url.rstrip("/")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(base_url=self.api_url, headers=headers, timeout=timeout_s)
        self.token = token

    @property
    def ws_url(self) -> str:
        return self.api_url.replace("http", "ws", 1) + "/ws"

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            resp = self._http.request(method, path, **kwargs)
        except httpx.TimeoutException as exc:
            raise ApiError(
                f"{self.api_url} did not answer {method} {path} in time ({exc.__class__.__name__})"
            ) from None
        except httpx.HTTPError as exc:
            raise ApiError(
                f"cannot reach the nq-ray API at {self.api_url}: {exc.__class__.__name__}"
            ) from None
        if resp.status_code in (404, 405) and not _is_problem_from_route(resp):
            raise NotAvailable(f"{method} {path} is not available from this server", status=resp.status_code)
        if resp.status_code >= 400:
            message, errors, code = _problem_message(resp)
            raise ApiError(message, status=resp.status_code, errors=errors, code=code)
        if resp.status_code == 204 or not resp.content:
            return None
        return resp.json()

    def get(self, path: str, **params: Any) -> Any:
        return self.request("GET", path, params={k: v for k, v in params.items() if v is not None})

    def post(self, path: str, body: Any = None) -> Any:
        return self.request("POST", path, json=body)

    def put(self, path: str, body: Any = None) -> Any:
        return self.request("PUT", path, json=body)

    def patch(self, path: str, body: Any = None) -> Any:
        return self.request("PATCH", path, json=body)

    def delete(self, path: str) -> Any:
        return self.request("DELETE", path)

    def stream(self, path: str, body: Any = None) -> Iterator[dict[str, Any]]:
        """``POST path`` answered as server-sent events: each ``data:`` object as it arrives (not after
        the whole answer). A refusal before the stream opens raises ``ApiError`` as ``request`` does; an
        ``event: error`` in the stream raises one with the problem's ``detail``."""
        try:
            with self._http.stream("POST", path, json=body, headers={"Accept": "text/event-stream"}) as resp:
                if resp.status_code >= 400:
                    resp.read()
                    if resp.status_code in (404, 405) and not _is_problem_from_route(resp):
                        raise NotAvailable(
                            f"POST {path} is not available from this server", status=resp.status_code
                        )
                    message, errors, code = _problem_message(resp)
                    raise ApiError(message, status=resp.status_code, errors=errors, code=code)
                kind, data = "message", []
                for line in resp.iter_lines():
                    if line.startswith("event:"):
                        kind = line[6:].strip()
                    elif line.startswith("data:"):
                        data.append(line[5:].strip())
                    elif not line and data:
                        event = json.loads("\n".join(data))
                        if kind == "error":
                            detail = event.get("detail") if isinstance(event, dict) else None
                            raise ApiError(str(detail or event), code=event.get("code"))
                        yield event
                        kind, data = "message", []
        except httpx.TimeoutException as exc:
            raise ApiError(
                f"{self.api_url} stopped answering POST {path} ({exc.__class__.__name__})"
            ) from None
        except httpx.HTTPError as exc:
            raise ApiError(f"the stream from {self.api_url} broke: {exc.__class__.__name__}") from None

    def tool(self, name: str, **arguments: Any) -> Any:
        return self.post(f"/api/tools/{name}", {k: v for k, v in arguments.items() if v is not None})

    def tool_names(self) -> set[str]:
        return {t["name"] for t in self.get("/api/tools")}

    def close(self) -> None:
        self._http.close()


def _is_problem_from_route(resp: httpx.Response) -> bool:
    """A 404 that a real route answered (e.g. "no agent with id x") rather than "no such route":
    nq-ray's own errors carry a ``https://nq-ray.dev/problems/...`` type, Starlette's "Not Found" does not."""
    if resp.status_code != 404:
        return False
    try:
        body = resp.json()
    except ValueError:
        return False
    return isinstance(body, dict) and str(body.get("type", "about:blank")) != "about:blank"


class LiveFeed:
    """Background WebSocket listener: the last events from ``/ws``, numbered, and the connection state.

    Every event gets ``n`` (1, 2, ... in the order received); a page session keeps the last ``n`` it saw
    and asks ``since(n)`` for the rest, so a tick drains pushed events and makes no request of its own.
    ``latest_market`` holds the last ``market_update`` per symbol."""

    def __init__(self, ws_url: str, token: str | None = None, keep: int = 600) -> None:
        self.ws_url, self.token = ws_url, token
        self.events: collections.deque[dict[str, Any]] = collections.deque(maxlen=keep)
        self.latest: dict[str, dict[str, Any]] = {}
        self.latest_market: dict[str, dict[str, Any]] = {}
        self.state = "connecting"
        self.received = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def start(self) -> LiveFeed:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="nq-ui-ws", daemon=True)
                self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def snapshot(self) -> tuple[str, list[dict[str, Any]]]:
        """The connection state and the kept events, newest first."""
        with self._lock:
            return self.state, list(self.events)

    def since(self, seen: int) -> tuple[int, list[dict[str, Any]]]:
        """The number of the newest event and the kept events after ``seen``, oldest first (events
        older than the ``keep`` kept are gone: a session that fell that far behind gets what is kept)."""
        with self._lock:
            fresh = [e for e in self.events if e["n"] > seen]
            return self.received, fresh[::-1]

    def add(self, event: dict[str, Any]) -> None:
        """Keep one event (what the listener does with each frame; tests feed events through it too)."""
        event.setdefault("received_at", time.time())
        with self._lock:
            self.received += 1
            event["n"] = self.received
            self.events.appendleft(event)
            kind = str(event.get("type"))
            self.latest[kind] = event
            data = event.get("data")
            if kind == "market_update" and isinstance(data, dict) and data.get("symbol"):
                self.latest_market[str(data["symbol"])] = event

    def _run(self) -> None:
        from websockets.sync.client import connect

        headers = {"Authorization": f"Bearer {self.token}"} if self.token else None
        while not self._stop.is_set():
            try:
                with connect(self.ws_url, additional_headers=headers, open_timeout=10) as ws:
                    self.state = "connected"
                    while not self._stop.is_set():
                        try:
                            raw = ws.recv(timeout=1.0)
                        except TimeoutError:
                            continue
                        with contextlib.suppress(ValueError, TypeError):
                            event = json.loads(raw)
                            if isinstance(event, dict):
                                self.add(event)
            except Exception as exc:  # any network failure: show it, wait, reconnect
                self.state = f"disconnected ({exc.__class__.__name__}); retrying"
                self._stop.wait(3.0)
