"""Errors on the HTTP API as RFC 9457 problem details: typed ``NQRayError``s, request validation errors,
Starlette's HTTP errors (404, 405, ...) and anything unexpected, each with a stable ``code`` and the
request id that the response's ``X-Request-ID`` header and the logs carry.

``document_problems`` makes the OpenAPI document say so: every operation's error responses (its own, the
401 of the bearer token, the 413 of the body limit, the 422 of validation, and ``4XX``/``5XX`` for the
rest) are ``application/problem+json`` with the ``Problem`` schema.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from nq_ray.errors import InvalidArgumentError, NQRayError
from nq_ray.logs import get_request_id
from nq_ray.tools.wire import as_nq_error, problem_details

PROBLEM = "application/problem+json"


class Problem(BaseModel):
    """An error: RFC 9457 problem details with nq-ray's stable ``code`` (clients branch on it)."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(description="a URI naming the kind of problem (ends with the code)")
    title: str
    status: int = Field(description="the HTTP status code")
    detail: str = Field(description="what went wrong and what to do about it")
    code: str = Field(description="stable machine code, e.g. invalid_argument, body_too_large, not_found")
    instance: str | None = Field(default=None, description="the request path")
    details: dict[str, Any] | None = Field(default=None, description="structured details (fields, limits)")
    request_id: str | None = Field(default=None, description="the request's X-Request-ID (as in the logs)")


def problem_body(err: NQRayError, instance: str | None = None) -> dict[str, Any]:
    """Problem details for ``err`` with the current request id."""
    body = problem_details(err, instance)
    if rid := get_request_id():
        body["request_id"] = rid
    return body


def _problem(err: NQRayError, request: Request) -> JSONResponse:
    return JSONResponse(
        problem_body(err, str(request.url.path)), status_code=err.http_status, media_type=PROBLEM
    )


def add_problem_handlers(api: FastAPI) -> None:
    """Answer every error ``api`` raises as problem details."""

    @api.exception_handler(NQRayError)
    async def _nq_error(request: Request, exc: NQRayError) -> JSONResponse:
        return _problem(exc, request)

    @api.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errs = [
            {
                "field": ".".join(str(p) for p in e.get("loc", ())),
                "problem": str(e.get("msg", "")),
                "type": e.get("type"),
            }
            for e in exc.errors()[:20]
        ]
        msg = "; ".join(f"{e['field']}: {e['problem']}" for e in errs[:5])
        return _problem(InvalidArgumentError(f"invalid request: {msg}", errors=errs), request)

    @api.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        body = {
            "type": "about:blank",
            "title": str(exc.detail) if exc.detail else "error",
            "status": exc.status_code,
            "detail": str(exc.detail),
            "code": "not_found" if exc.status_code == 404 else "http_error",
            "instance": str(request.url.path),
        }
        if rid := get_request_id():
            body["request_id"] = rid
        return JSONResponse(body, status_code=exc.status_code, media_type=PROBLEM, headers=exc.headers)

    @api.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        err = as_nq_error(exc) or NQRayError("internal error")
        return _problem(err, request)


# the errors any operation may answer besides its own (the descriptions are what the docs show)
_ERRORS = {
    "413": "request body larger than serve.max_body_bytes (code body_too_large)",
    "422": "invalid request: the problem lists every refused field (code invalid_argument)",
    "4XX": "any other client error (404 not_found / unknown_symbol, 409, ...)",
    "5XX": "a server error or a service that is down (internal_error, store_unavailable, ...)",
}
_UNAUTHORIZED = "missing or invalid bearer token (code unauthorized)"
_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


def _default_content(declared: dict[str, Any] | None) -> bool:
    """Whether a response's content is FastAPI's default (none, an empty JSON schema, its validation
    error) rather than a model the route declared (``/health`` answers its report with a 503)."""
    if not declared:
        return True
    schema = declared.get("application/json", {}).get("schema") if len(declared) == 1 else None
    return schema is not None and (not schema or schema.get("$ref", "").endswith("/HTTPValidationError"))


def document_problems(api: FastAPI, *, open_paths: tuple[str, ...] | None = None) -> None:
    """Make ``api``'s OpenAPI document describe its error responses as ``application/problem+json``.

    ``open_paths``: when a bearer token is required, the paths that need none (the others get a 401)."""
    generate = api.openapi  # FastAPI's generator (it caches the document in ``api.openapi_schema``)
    done: list[bool] = []

    def openapi() -> dict[str, Any]:
        schema = generate()
        if not done:
            problem_responses(schema, open_paths=open_paths)
            done.append(True)
        return schema

    api.openapi = openapi  # type: ignore[method-assign]


def problem_responses(schema: dict[str, Any], *, open_paths: tuple[str, ...] | None) -> dict[str, Any]:
    """``schema`` (changed in place) with every operation's 4xx/5xx responses ``application/problem+json``
    ``Problem``, and the 401 / 413 / 422 / ``4XX`` / ``5XX`` each operation may answer listed."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components["Problem"] = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    content = {PROBLEM: {"schema": {"$ref": "#/components/schemas/Problem"}}}
    for path, item in schema.get("paths", {}).items():
        for method, op in item.items():
            if method not in _METHODS:
                continue
            responses = op.setdefault("responses", {})
            for code, response in responses.items():
                if code[0] in "45" and _default_content(response.get("content")):
                    response["content"] = content
            wanted = dict(_ERRORS)
            if "requestBody" not in op:
                wanted.pop("413")
                if not op.get("parameters"):
                    wanted.pop("422")
            if open_paths is not None and not (path in open_paths or path.startswith("/docs")):
                wanted["401"] = _UNAUTHORIZED
            for code, description in wanted.items():
                responses.setdefault(code, {"description": description, "content": content})
    # FastAPI's own validation-error schemas are no longer referenced (a 422 is a Problem)
    for name in ("HTTPValidationError", "ValidationError"):
        rest = {k: v for k, v in components.items() if k != name}
        if f"/{name}'" not in str(schema.get("paths")) + str(rest):
            components.pop(name, None)
    return schema


__all__ = [
    "PROBLEM",
    "Problem",
    "add_problem_handlers",
    "document_problems",
    "problem_body",
    "problem_responses",
]
