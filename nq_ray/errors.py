"""Typed errors with a stable ``code``; every boundary (HTTP, MCP, CLI) maps them once.

Expected outcomes are values (a risk denial is a ``RiskVerdict``); these exceptions are for input the
caller must fix or a resource that is not there. Each message says what to do about it.
"""

from __future__ import annotations

from typing import Any, ClassVar


class NQRayError(Exception):
    """Base of every nq-ray error: a stable machine ``code``, a human ``message`` and ``details``."""

    code: ClassVar[str] = "internal_error"
    http_status: ClassVar[int] = 500

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def to_dict(self) -> dict[str, Any]:
        """The wire form used by HTTP problem details and MCP tool errors."""
        return {"code": self.code, "message": self.message, "details": self.details}

    def __str__(self) -> str:
        return f"[{self.code}] {self.message}"


class InvalidArgumentError(NQRayError, ValueError):
    """A parameter is out of range or of the wrong kind (period ≤ 0, fast ≥ slow, confidence ∉ (0,1))."""

    code = "invalid_argument"
    http_status = 422


class PathNotAllowedError(InvalidArgumentError):
    """A ``csv:``/``parquet:`` file named by an API or MCP caller outside the configured data roots. One
    error, the same whether the file exists or not, so it reveals nothing about the server's files."""

    code = "path_not_allowed"
    http_status = 422


class ConfigError(NQRayError, ValueError):
    """A setting is invalid; the message names the key, the value and what is allowed."""

    code = "invalid_config"
    http_status = 422


class BodyTooLargeError(NQRayError):
    """A request body is larger than ``serve.max_body_bytes``; the message says the limit and the setting."""

    code = "body_too_large"
    http_status = 413


class UnknownSymbolError(NQRayError, KeyError):
    """A symbol or contract code that nq-ray does not know."""

    code = "unknown_symbol"
    http_status = 404

    def __str__(self) -> str:  # KeyError would repr() the message
        return f"[{self.code}] {self.message}"


class InvalidContractError(NQRayError, ValueError):
    """A contract code that cannot be parsed (``NQH26`` and ``NQH6`` are the accepted shapes)."""

    code = "invalid_contract"
    http_status = 422


class InvalidBarsError(NQRayError, ValueError):
    """Bars that cannot be used as given: missing columns, text in prices, unsorted or duplicate times."""

    code = "invalid_bars"
    http_status = 422


class DataUnavailableError(NQRayError):
    """No data for the request: a missing file, an empty range, a source that is down or not configured."""

    code = "data_unavailable"
    http_status = 404


class NotFoundError(NQRayError, KeyError):
    """A referenced object (order id, job id, agent id) does not exist."""

    code = "not_found"
    http_status = 404

    def __str__(self) -> str:  # KeyError would repr() the message
        return f"[{self.code}] {self.message}"


class StoreUnavailableError(NQRayError):
    """The database cannot be reached or refused the write; nothing was committed."""

    code = "store_unavailable"
    http_status = 503


class NotReplayError(NQRayError):
    """A market-replay control (pause, resume, speed, jump, step) asked of a runtime on the wall clock:
    there is no replay to control (start one with ``nq-ray up --replay START`` or
    ``NQ_REPLAY__CLOCK=replay``)."""

    code = "not_replay"
    http_status = 409


class InvalidOrderError(NQRayError, ValueError):
    """An order that is malformed (off the tick grid, bracket on the wrong side, zero quantity)."""

    code = "invalid_order"
    http_status = 422


class DuplicateClientOrderIdError(NQRayError):
    """A ``client_order_id`` already used for a different order (as a venue refuses it): nothing was
    placed and the first order is unchanged. The same id with the same order is a retry and returns it."""

    code = "duplicate_client_order_id"
    http_status = 409


class RiskDeniedError(NQRayError):
    """Raised only at boundaries that must refuse outright; the core returns a ``RiskVerdict`` instead."""

    code = "risk_denied"
    http_status = 403


class ProviderUnavailableError(NQRayError):
    """A remote provider (Yahoo, an LLM backend, Tradovate) cannot be reached or is not configured."""

    code = "provider_unavailable"
    http_status = 503


class CredentialsMissingError(ProviderUnavailableError):
    """A source or provider needs credentials that the settings do not hold."""

    code = "credentials_missing"
    http_status = 503
