"""Errors on the HTTP API as RFC 9457 problem details: typed ``NQRayError``s, request validation errors,
Starlette's HTTP errors (404, 405, ...) and anything unexpected, each with a stable ``code``."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from nq_ray.errors import InvalidArgumentError, NQRayError
from nq_ray.tools.wire import as_nq_error, problem_details

PROBLEM = "application/problem+json"


def _problem(err: NQRayError, request: Request) -> JSONResponse:
    return JSONResponse(
        problem_details(err, str(request.url.path)), status_code=err.http_status, media_type=PROBLEM
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
        return JSONResponse(body, status_code=exc.status_code, media_type=PROBLEM, headers=exc.headers)

    @api.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        err = as_nq_error(exc) or NQRayError("internal error")
        return _problem(err, request)
