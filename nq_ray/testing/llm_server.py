"""A small scriptable OpenAI-compatible HTTP server for tests and benchmarks — honest test infrastructure.

Its answers are scripted by the caller: a queue of ``Step``s (text, status code, delay, Retry-After,
stream chunks, usage), then a default reply — or, per requested model, a queue and default of that model's
own (``push_for`` / ``set_default_for``: one server plays several models that answer differently). It
implements ``POST /v1/chat/completions`` (JSON, and
``stream=true`` SSE, optionally cut mid-stream; ``response_format`` is recorded, and ``json_schema`` /
``json_object`` requests get the scripted text as the message content), ``GET /v1/models``, and the same
under ``/openai/v1`` (where the Groq SDK points). It runs uvicorn on 127.0.0.1 with a random port in a
background thread::

    with ScriptedLLMServer(default_text="hello") as srv:
        srv.push(Step(status=429, retry_after_s=0.1), Step(text='{"bias": "long"}'))
        ... AsyncOpenAI(base_url=srv.base_url, api_key="x") ...
        srv.requests  # every request body received, in order
        srv.set_default_for("bear-7b", Step(text='{"bias": "short"}'))  # what model "bear-7b" answers
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from nq_ray.testing.asgi import ThreadedUvicorn


@dataclass(frozen=True)
class Step:
    """One scripted answer. ``status`` ≠ 200 answers an OpenAI-style error body; ``retry_after_s`` adds a
    ``Retry-After`` header; ``delay_s`` waits before answering (a large one is a hung server);
    ``chunks`` are the SSE pieces when the client streams (default: ``text`` split into words)."""

    text: str = "ok"
    status: int = 200
    delay_s: float = 0.0
    retry_after_s: float | None = None
    chunks: tuple[str, ...] | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    finish_reason: str = "stop"
    abort_after_chunks: bool = False  # drop the connection mid-stream, after the chunks
    chunk_delay_s: float = 0.0  # wait before each streamed chunk (a model producing tokens over time)


@dataclass
class _State:
    steps: deque[Step] = field(default_factory=deque)
    default: Step = field(default_factory=Step)
    model_steps: dict[str, deque[Step]] = field(default_factory=dict)
    model_defaults: dict[str, Step] = field(default_factory=dict)
    latency_s: float = 0.0
    requests: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _tokens(text: str) -> int:
    return max(1, len(text) // 4)


def _error(step: Step) -> Response:
    kind = (
        "rate_limit_exceeded"
        if step.status == 429
        else "server_error"
        if step.status >= 500
        else "invalid_request_error"
    )
    headers = {"retry-after": f"{step.retry_after_s:g}"} if step.retry_after_s is not None else None
    body = {"error": {"message": step.text or f"scripted {step.status}", "type": kind, "code": kind}}
    return JSONResponse(body, status_code=step.status, headers=headers)


def _next_step(state: _State, model: str) -> Step:
    """The requested model's own queue, then its own default, then the shared queue and default."""
    own = state.model_steps.get(model)
    if own:
        return own.popleft()
    if model in state.model_defaults:
        return state.model_defaults[model]
    return state.steps.popleft() if state.steps else state.default


def build_app(state: _State, models: list[str]) -> FastAPI:
    app = FastAPI(title="scripted OpenAI-compatible test server")

    async def list_models() -> dict[str, Any]:
        return {
            "object": "list",
            "data": [{"id": m, "object": "model", "created": 0, "owned_by": "test"} for m in models],
        }

    async def chat(request: Request) -> Response:
        body = await request.json()
        with state.lock:
            state.requests.append(body)
            step = _next_step(state, str(body.get("model", "")))
        delay = state.latency_s + step.delay_s
        if delay:
            try:
                await asyncio.sleep(delay)
            except asyncio.CancelledError:  # the server is stopping under a scripted hang
                return Response(status_code=503)
        if step.status != 200:
            return _error(step)
        model = body.get("model", "scripted")
        prompt_tokens = step.prompt_tokens or sum(
            _tokens(str(m.get("content", ""))) for m in body["messages"]
        )
        completion_tokens = step.completion_tokens or _tokens(step.text)
        cid = f"chatcmpl-{uuid.uuid4().hex[:12]}"
        created = int(time.time())
        if body.get("stream"):
            chunks = step.chunks if step.chunks is not None else tuple(_words(step.text))
            usage = bool((body.get("stream_options") or {}).get("include_usage"))
            return StreamingResponse(
                _sse(cid, created, model, chunks, step, prompt_tokens, completion_tokens, usage),
                media_type="text/event-stream",
            )
        return JSONResponse(
            {
                "id": cid,
                "object": "chat.completion",
                "created": created,
                "model": model,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": step.text},
                        "finish_reason": step.finish_reason,
                    }
                ],
                "usage": {
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": completion_tokens,
                    "total_tokens": prompt_tokens + completion_tokens,
                },
            }
        )

    for prefix in ("/v1", "/openai/v1"):
        app.add_api_route(f"{prefix}/models", list_models, methods=["GET"])
        app.add_api_route(f"{prefix}/chat/completions", chat, methods=["POST"])
    return app


def _words(text: str) -> Iterator[str]:
    parts = text.split(" ")
    for i, p in enumerate(parts):
        yield p if i == len(parts) - 1 else p + " "


async def _sse(
    cid: str,
    created: int,
    model: str,
    chunks: tuple[str, ...],
    step: Step,
    prompt_tokens: int,
    completion_tokens: int,
    include_usage: bool,
) -> AsyncIterator[bytes]:
    def event(obj: dict[str, Any]) -> bytes:
        return f"data: {json.dumps(obj)}\n\n".encode()

    base = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": model}
    yield event({**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]})
    for c in chunks:
        if step.chunk_delay_s:
            await asyncio.sleep(step.chunk_delay_s)
        yield event({**base, "choices": [{"index": 0, "delta": {"content": c}, "finish_reason": None}]})
    if step.abort_after_chunks:
        raise ConnectionAbortedError("scripted mid-stream disconnect")
    yield event({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": step.finish_reason}]})
    if include_usage:
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        }
        yield event({**base, "choices": [], "usage": usage})
    yield b"data: [DONE]\n\n"


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (a refused connection, for failover tests)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ScriptedLLMServer:
    """The server in a background thread; a context manager that starts and stops it."""

    def __init__(
        self,
        *,
        default_text: str = "ok",
        latency_s: float = 0.0,
        models: list[str] | None = None,
    ) -> None:
        self._state = _State(default=Step(text=default_text), latency_s=latency_s)
        self._models = models or ["scripted-model"]
        self._server: ThreadedUvicorn | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        """The OpenAI-SDK base URL (``.../v1``)."""
        return f"{self.url}/v1"

    @property
    def requests(self) -> list[dict[str, Any]]:
        with self._state.lock:
            return list(self._state.requests)

    def push(self, *steps: Step) -> ScriptedLLMServer:
        """Queue scripted answers, used in order before the default."""
        with self._state.lock:
            self._state.steps.extend(steps)
        return self

    def push_for(self, model: str, *steps: Step) -> ScriptedLLMServer:
        """Queue scripted answers for requests that name ``model``, used before that model's default."""
        with self._state.lock:
            self._state.model_steps.setdefault(model, deque()).extend(steps)
        return self

    def set_default_for(self, model: str, step: Step) -> None:
        """What requests naming ``model`` get once its queue is empty (instead of the shared default)."""
        with self._state.lock:
            self._state.model_defaults[model] = step

    def set_default(self, step: Step) -> None:
        with self._state.lock:
            self._state.default = step

    def set_latency(self, latency_s: float) -> None:
        self._state.latency_s = latency_s

    def reset(self) -> None:
        with self._state.lock:
            self._state.steps.clear()
            self._state.model_steps.clear()
            self._state.model_defaults.clear()
            self._state.requests.clear()

    def start(self) -> ScriptedLLMServer:
        self._server = ThreadedUvicorn(
            build_app(self._state, self._models),
            name="llm-server",
            force_exit=True,  # do not wait for scripted hangs to finish
            lifespan="off",
            timeout_graceful_shutdown=1,
        ).start(timeout_s=10)
        self.port = self._server.port
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop(timeout_s=5)
        self._server = None

    def __enter__(self) -> ScriptedLLMServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> None:
    """Run the server in the foreground (its own process, e.g. for benchmarks):
    ``python -m nq_ray.testing.llm_server --port 8765 --text hello --delay-s 0``."""
    import argparse

    ap = argparse.ArgumentParser(prog="python -m nq_ray.testing.llm_server")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--text", default="ok")
    ap.add_argument("--delay-s", type=float, default=0.0)
    args = ap.parse_args(argv)
    state = _State(default=Step(text=args.text, delay_s=args.delay_s))
    uvicorn.run(
        build_app(state, ["scripted-model"]),
        host="127.0.0.1",
        port=args.port,
        log_level="warning",
        timeout_graceful_shutdown=1,
    )


if __name__ == "__main__":
    main()
