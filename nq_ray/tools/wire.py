"""The one mapping from errors to the wire: typed ``NQRayError`` → RFC 9457 problem details (HTTP) and
MCP tool errors. Anything else that escapes a tool (a bug) becomes ``internal_error`` with no traceback
on the wire, so a bad call never takes a replica or an actor down."""

from __future__ import annotations

import asyncio
import logging
import math
from typing import Any

from pydantic import ValidationError

from nq_ray.errors import InvalidArgumentError, NQRayError

log = logging.getLogger(__name__)

PROBLEM_TYPE = "https://nq-ray.dev/problems/"


class JobCancelledError(NQRayError):
    """A job was cancelled by its caller."""

    code = "cancelled"
    http_status = 409


def validation_message(exc: ValidationError) -> str:
    parts = []
    for e in exc.errors(include_url=False)[:8]:
        loc = ".".join(map(str, e["loc"])) or "arguments"
        parts.append(f"{loc}: {e['msg']}")
    return "; ".join(parts)


def as_nq_error(exc: BaseException) -> NQRayError | None:
    """``exc`` as a typed error; None for cancellation and interpreter exits (those must propagate)."""
    cause = _ray_cause(exc)
    if cause is not None:
        return as_nq_error(cause)
    if isinstance(exc, NQRayError):
        return exc
    if isinstance(exc, asyncio.CancelledError | KeyboardInterrupt | SystemExit | GeneratorExit):
        return None
    if isinstance(exc, ValidationError):
        return InvalidArgumentError(validation_message(exc))
    if isinstance(exc, OverflowError | RecursionError | MemoryError):
        return InvalidArgumentError(f"the request is too large to compute: {type(exc).__name__}")
    log.exception("unexpected error in a tool", exc_info=exc)
    return NQRayError(f"internal error ({type(exc).__name__}); the request was not completed")


def _ray_cause(exc: BaseException) -> BaseException | None:
    """The user exception inside a Ray ``RayTaskError`` (Ray wraps and re-raises remote errors)."""
    cause = getattr(exc, "cause", None)
    if cause is not None and type(exc).__module__.startswith("ray.") and isinstance(cause, BaseException):
        return cause
    return None


def problem_details(err: NQRayError, instance: str | None = None) -> dict[str, Any]:
    """RFC 9457 problem details for ``err`` (``application/problem+json``)."""
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE + err.code,
        "title": err.code.replace("_", " "),
        "status": err.http_status,
        "detail": err.message,
        "code": err.code,
    }
    if instance:
        body["instance"] = instance
    if err.details:
        body["details"] = json_safe(err.details)
    return body


def tool_error_text(err: NQRayError) -> str:
    """The text of an MCP tool error: ``[code] message`` (the code is what clients branch on)."""
    return f"[{err.code}] {err.message}"


def json_safe(obj: Any) -> Any:
    """``obj`` with non-finite floats as None and unknown objects as strings (strict JSON)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [json_safe(v) for v in obj]
    if obj is None or isinstance(obj, str | int | bool):
        return obj
    return str(obj)
