"""Structured logs: one JSON object per line, each carrying the request id of the work that wrote it.

``configure_logging(settings)`` installs the JSON handler on the root logger at ``settings.log_level``
(idempotent: a second call replaces the first handler). The request id lives in a ``ContextVar``, so it
follows ``await`` and ``asyncio`` tasks within one process: ``RequestIdMiddleware`` sets it per HTTP /
WebSocket request (from the ``X-Request-ID`` header, else a new one) and echoes it in the response;
``request_context()`` sets it anywhere else (a job, an agent step). Across a Ray call pass it explicitly
and re-enter ``request_context(rid)`` on the other side: context variables do not cross processes.

Log collectors (Loki, CloudWatch, Ray's log files under ``session_*/logs``) then filter on
``request_id`` to follow one request through the API, the tool registry and the broker.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import uuid
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import IO, Any, Literal, Protocol

REQUEST_ID_HEADER = "x-request-id"
_MAX_INCOMING_ID = 128

_request_id: ContextVar[str | None] = ContextVar("nq_request_id", default=None)

# The attributes every LogRecord has; anything else on a record came from ``extra=`` and is logged.
_STANDARD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}


URL_PASSWORD = "***"
# scheme://user:password@host: the password runs to the last "@" before the host (it may hold "@", not
# "/" or whitespace); the user may be empty (redis://:pw@host)
_URL_USERINFO = re.compile(r"(?P<head>\b[A-Za-z][A-Za-z0-9+.-]*://(?P<user>[^:@/\s]*)):(?P<pw>[^/\s]*)@")


def redact_url(text: str) -> str:
    """``text`` with the password of every URL in it shown as ``***``:
    ``postgresql+asyncpg://user:secret@host/db`` → ``postgresql+asyncpg://user:***@host/db``,
    ``redis://:pw@host`` → ``redis://:***@host``. The one URL redaction for whatever is shown, logged or
    journaled (settings, the banner, ``nq-ray status``, log lines); ``nq_ray.config`` re-exports it."""
    if "://" not in text:
        return text
    return _URL_USERINFO.sub(lambda m: f"{m['head']}:{URL_PASSWORD}@" if m["pw"] else m[0], text)


class RedactUrlsFilter(logging.Filter):
    """Hides the password of every URL in a record's message (``redact_url``) before any handler
    writes it: a store or cache URL logged by a library or by mistake never reaches the log."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # a malformed %-format: leave it to the handler's error path
            return True
        redacted = redact_url(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


class _HasLogLevel(Protocol):
    @property
    def log_level(self) -> str: ...


def new_request_id() -> str:
    """A fresh request id (32 hex characters)."""
    return uuid.uuid4().hex


def get_request_id() -> str | None:
    """The request id of the current context, if one is set."""
    return _request_id.get()


@contextmanager
def request_context(request_id: str | None = None) -> Iterator[str]:
    """Run the block with ``request_id`` (a new one when None) as the current request id."""
    rid = request_id or new_request_id()
    token = _request_id.set(rid)
    try:
        yield rid
    finally:
        _request_id.reset(token)


class JsonFormatter(logging.Formatter):
    """``{"ts", "level", "logger", "msg", "request_id", ...extra, "exc"}`` on one line; UTC ISO times."""

    def __init__(self, service: str = "nq-ray") -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
            "service": self.service,
            "request_id": getattr(record, "request_id", None) or get_request_id(),
            "pid": record.process,
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and key not in out:
                out[key] = value
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        if record.stack_info:
            out["stack"] = self.formatStack(record.stack_info)
        return json.dumps(out, default=str, ensure_ascii=False)


class _NQHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Marks the handler ``configure_logging`` installed, so a second call replaces it."""


def configure_logging(
    settings: _HasLogLevel,
    *,
    fmt: Literal["json", "text"] = "json",
    stream: IO[str] | None = None,
    service: str = "nq-ray",
) -> logging.Handler:
    """Send every log record to ``stream`` (stderr) as JSON lines (or plain text) at ``settings.log_level``.

    Call it once at each process entry point (CLI, ``nq-ray up``, the Serve app builder, actor
    ``__init__``); calling it again replaces the handler instead of duplicating lines."""
    root = logging.getLogger()
    for h in [h for h in root.handlers if isinstance(h, _NQHandler)]:
        root.removeHandler(h)
    handler = _NQHandler(stream or sys.stderr)
    handler.addFilter(RedactUrlsFilter())
    if fmt == "json":
        handler.setFormatter(JsonFormatter(service))
    else:
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s")
        )
        handler.addFilter(_text_request_id)
    root.addHandler(handler)
    root.setLevel(settings.log_level)
    # libraries that log every migration step or HTTP request at INFO: heard at DEBUG only
    chatty_level = logging.DEBUG if settings.log_level == "DEBUG" else logging.WARNING
    for name in CHATTY_LOGGERS:
        logging.getLogger(name).setLevel(chatty_level)
    return handler


CHATTY_LOGGERS = (
    "alembic",
    "httpx",
    "httpx2",
    "httpcore",
    "mcp.server.streamable_http",
    "mcp.server.streamable_http_manager",
)


def _text_request_id(record: logging.LogRecord) -> bool:
    if not hasattr(record, "request_id"):
        record.request_id = get_request_id() or "-"
    return True


Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class RequestIdMiddleware:
    """ASGI middleware: the request id of each HTTP / WebSocket request is the incoming ``X-Request-ID``
    (when it is short and printable) or a new one; it is set for the request's context and sent back
    in the response's ``X-Request-ID`` header. ``app.add_middleware(RequestIdMiddleware)``.

    ``echo=False`` is for an app behind a proxy that echoes the header itself (Ray Serve's proxy sets
    ``X-Request-ID`` on the request when the client sent none and appends it to every response): the id
    is then the request's header as the proxy passed it, so the logs carry the id the client sees, and
    the response gets no second ``X-Request-ID``."""

    def __init__(self, app: ASGIApp, *, echo: bool = True) -> None:
        self.app = app
        self.echo = echo

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        if not self.echo:
            with request_context(_incoming_id(scope, checked=False)):
                await self.app(scope, receive, send)
            return
        rid = _incoming_id(scope) or new_request_id()

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"x-request-id"]
                message["headers"] = [*headers, (b"x-request-id", rid.encode())]
            await send(message)

        with request_context(rid):
            await self.app(scope, receive, send_with_id)


def _incoming_id(scope: Scope, *, checked: bool = True) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == b"x-request-id":
            text = value.decode("latin-1").strip()
            if not checked or (0 < len(text) <= _MAX_INCOMING_ID and text.isprintable()):
                return text or None
    return None
