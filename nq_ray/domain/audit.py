"""``AuditRecord``: one tool call as the audit log keeps it (who, which tool, arguments, outcome, time).

The one shape of an audit entry: the registry makes it, the auditors (``nq_ray.tools.audit``) forward
and batch it, the store's repository persists it (``audit_log`` table). ``bounded()`` fits it to the
table's columns and redacts secret-looking arguments before anything is stored or sent.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from nq_ray.config import redact

MAX_ARGUMENTS_BYTES = 8192
_WIDTHS = {"who": 64, "tool": 64, "outcome": 16, "error_code": 64}  # the audit_log column widths


class AuditRecord(BaseModel):
    """A tool call: who called which tool with what, when, how it ended and how long it took."""

    model_config = ConfigDict(frozen=True)

    at: datetime
    who: str
    tool: str
    arguments: dict[str, Any] | None = None
    outcome: str = Field(description="ok | error | cancelled")
    error_code: str | None = Field(default=None, description="the NQRayError code when outcome is error")
    duration_ms: float | None = None

    def bounded(self) -> AuditRecord:
        """This record as stored: strings cut to the column widths, arguments redacted and, when larger
        than ``MAX_ARGUMENTS_BYTES`` as JSON, replaced by a stub naming their keys."""
        cut = {k: v[:n] for k, n in _WIDTHS.items() if isinstance(v := getattr(self, k), str)}
        return self.model_copy(update=cut | {"arguments": redact(bounded_arguments(self.arguments))})


def bounded_arguments(arguments: dict[str, Any] | None) -> dict[str, Any] | None:
    """The arguments, or a stub naming their keys when they are too large to store."""
    if arguments is None:
        return None
    try:
        text = json.dumps(arguments, default=str)
    except (TypeError, ValueError):
        return {"_unserialisable": True, "keys": [str(k)[:64] for k in list(arguments)[:50]]}
    if len(text) > MAX_ARGUMENTS_BYTES:
        return {"_truncated": True, "bytes": len(text), "keys": [str(k)[:64] for k in list(arguments)[:50]]}
    return arguments
