"""Structured JSON logs with request ids (``nq_ray.logs``)."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Iterator

import httpx
import pytest
from fastapi import FastAPI

from nq_ray.config import Settings
from nq_ray.logs import RequestIdMiddleware, configure_logging, get_request_id, request_context

log = logging.getLogger("nq_ray.test_logs")


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    out = io.StringIO()
    configure_logging(Settings(log_level="INFO"), stream=out)
    yield out
    root.handlers[:], root.level = saved


def lines(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_each_record_is_one_json_line_with_level_logger_and_message(stream: io.StringIO) -> None:
    log.info("filled %d contracts", 2)

    (rec,) = lines(stream)

    assert rec["level"] == "INFO" and rec["logger"] == "nq_ray.test_logs"
    assert rec["msg"] == "filled 2 contracts" and rec["ts"].endswith("+00:00")


def test_extra_fields_and_exceptions_are_logged(stream: io.StringIO) -> None:
    try:
        raise ValueError("bad bar")
    except ValueError:
        log.exception("tool failed", extra={"tool": "get_nq_price", "elapsed_s": 0.25})

    (rec,) = lines(stream)

    assert rec["tool"] == "get_nq_price" and rec["elapsed_s"] == 0.25
    assert "ValueError: bad bar" in rec["exc"]


def test_records_inside_a_request_context_carry_its_id(stream: io.StringIO) -> None:
    log.info("outside")
    with request_context("req-123") as rid:
        log.info("inside")

    outside, inside = lines(stream)

    assert rid == "req-123" and inside["request_id"] == "req-123"
    assert outside["request_id"] is None and get_request_id() is None


def test_request_ids_do_not_leak_between_concurrent_tasks(stream: io.StringIO) -> None:
    async def work(rid: str) -> None:
        with request_context(rid):
            await asyncio.sleep(0.01)
            log.info("done")

    async def both() -> None:
        await asyncio.gather(work("a"), work("b"))

    asyncio.run(both())

    assert sorted(r["request_id"] for r in lines(stream)) == ["a", "b"]


def test_level_comes_from_settings(stream: io.StringIO) -> None:
    configure_logging(Settings(log_level="WARNING"), stream=stream)

    log.info("hidden")
    log.warning("shown")

    assert [r["msg"] for r in lines(stream)] == ["shown"]


def test_configuring_twice_does_not_duplicate_lines(stream: io.StringIO) -> None:
    configure_logging(Settings(log_level="INFO"), stream=stream)

    log.info("once")

    assert len(lines(stream)) == 1


def app_with_logging() -> FastAPI:
    app = FastAPI()
    app.add_middleware(RequestIdMiddleware)

    @app.get("/ping")
    async def ping() -> dict:
        log.info("ping")
        return {"request_id": get_request_id()}

    return app


async def test_middleware_uses_the_incoming_request_id_and_echoes_it(stream: io.StringIO) -> None:
    transport = httpx.ASGITransport(app=app_with_logging())
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        resp = await client.get("/ping", headers={"X-Request-ID": "abc-1"})

    assert resp.headers["x-request-id"] == "abc-1" and resp.json() == {"request_id": "abc-1"}
    assert [r["request_id"] for r in lines(stream) if r["msg"] == "ping"] == ["abc-1"]


async def test_middleware_makes_a_new_id_when_none_is_sent(stream: io.StringIO) -> None:
    transport = httpx.ASGITransport(app=app_with_logging())
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        first = await client.get("/ping")
        second = await client.get("/ping")

    ids = [first.headers["x-request-id"], second.headers["x-request-id"]]
    assert ids[0] != ids[1] and all(len(i) == 32 for i in ids)
    assert [r["request_id"] for r in lines(stream) if r["msg"] == "ping"] == ids


def test_chatty_libraries_are_quiet_at_info_and_heard_at_debug(stream: io.StringIO) -> None:
    logging.getLogger("alembic.runtime.migration").info("Running upgrade 0001 -> 0002")
    logging.getLogger("httpx2").info("HTTP Request: GET http://127.0.0.1/health")
    logging.getLogger("alembic").warning("multiple heads")
    assert [r["msg"] for r in lines(stream)] == ["multiple heads"]

    configure_logging(Settings(log_level="DEBUG"), stream=stream)
    logging.getLogger("alembic.runtime.migration").info("Running upgrade 0002 -> 0003")
    configure_logging(Settings(log_level="INFO"), stream=stream)  # quiet again for the tests after this
    assert lines(stream)[-1]["msg"] == "Running upgrade 0002 -> 0003"


def test_url_passwords_never_reach_the_log(stream: io.StringIO) -> None:
    url = "postgresql+asyncpg://nq:s3cret@db.internal/nq"
    log.warning("store %s unreachable", url)
    log.info(f"cache redis://:s3cret@cache:6379 and {url}")
    out = lines(stream)
    assert "s3cret" not in stream.getvalue()
    assert out[0]["msg"] == "store postgresql+asyncpg://nq:***@db.internal/nq unreachable"
    assert out[1]["msg"].startswith("cache redis://:***@cache:6379 and postgresql+asyncpg://nq:***@")
