"""``POST /api/llm/stream``: the LLM chain's answer as server-sent events, each chunk sent as the model
produces it (a real uvicorn, the scripted OpenAI-compatible server streaming with pauses between chunks)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from nq_ray.config import Settings
from nq_ray.runtime.replay import prepare_replay
from nq_ray.testing.asgi import ThreadedUvicorn
from nq_ray.testing.llm_server import ScriptedLLMServer, Step

pytestmark = pytest.mark.timeout(120)
CHAT = {"messages": [{"role": "user", "content": "NQ above VWAP; comment."}], "task": "market_summary"}


@pytest.fixture
def llm() -> Iterator[ScriptedLLMServer]:
    with ScriptedLLMServer(default_text="ok", models=["scripted"]) as srv:
        yield srv


@pytest.fixture
def api(tmp_path: Path, llm: ScriptedLLMServer) -> Iterator[str]:
    from nq_ray.serve.app import build_app

    serve = {"name": "serve", "kind": "serve", "base_url": llm.base_url, "model": "scripted", "priority": 10}
    serve["max_retries"] = 0
    s = Settings(
        data={"data_dir": str(tmp_path / "data")},
        llm={"providers": [serve], "health_interval_s": 0},
        replay={"clock": "replay", "start": "2026-04-20T09:30", "speed": 1, "symbols": ["NQ"]},
    )
    prepare_replay(s)
    with ThreadedUvicorn(build_app(s, use_actors=False)) as server:
        yield server.url


def _events(url: str, body: dict[str, Any]) -> list[tuple[float, dict[str, Any]]]:
    """Each ``data:`` object of the answer with the time it arrived here."""
    out = []
    with httpx.stream("POST", url + "/api/llm/stream", json=body, timeout=60) as resp:
        assert resp.status_code == 200, resp.read()
        assert resp.headers["content-type"].startswith("text/event-stream")
        for line in resp.iter_lines():
            if line.startswith("data:"):
                out.append((time.monotonic(), json.loads(line[5:])))
    return out


def test_chunks_arrive_as_the_model_produces_them(api: str, llm: ScriptedLLMServer) -> None:
    chunks = ("Higher ", "lows ", "above ", "the ", "overnight ", "low.")
    llm.push(Step(text="".join(chunks), chunks=chunks, chunk_delay_s=0.3))

    events = _events(api, CHAT)

    deltas = [(t, e["delta"]) for t, e in events if "delta" in e]
    done_at, done = events[-1]
    assert "".join(d for _, d in deltas) == "".join(chunks)
    assert [d for _, d in deltas] == list(chunks)  # one event per model chunk, none held back
    assert done["done"] is True and done["provider"] == "serve" and done["is_llm"] is True
    assert done["completion_tokens"] > 0
    # the first chunk was here while the model was still producing the other five (5 × 0.3 s)
    assert done_at - deltas[0][0] >= 1.0
    assert llm.requests[-1]["stream"] is True


def test_a_bad_chat_is_a_problem_not_a_stream(api: str) -> None:
    r = httpx.post(api + "/api/llm/stream", json={"messages": []}, timeout=30)

    assert r.status_code == 422 and r.headers["content-type"].startswith("application/problem+json")
    assert "messages" in r.text


def test_a_failing_model_falls_over_to_the_rules_analyst_and_says_so(
    api: str, llm: ScriptedLLMServer
) -> None:
    llm.set_default(Step(text="scripted outage", status=500))

    events = [e for _, e in _events(api, CHAT)]

    done = events[-1]
    assert done["done"] is True and done["provider"] == "rules" and done["is_llm"] is False
    assert "rules analyst" in "".join(e.get("delta", "") for e in events)


def test_on_ray_the_stream_comes_from_the_desk_actor(ray_session: Any, tmp_path: Path) -> None:
    """The production path: the desk is the ``trading_desk`` actor and its ``chat_stream`` a Ray streaming
    generator (rules-only chain: the rules analyst answers, labelled as not an LLM)."""
    from fastapi.testclient import TestClient

    from nq_ray.serve.app import build_app
    from nq_ray.testing.wait import wait_until

    names = ("trading_desk", "tool_registry", "paper_broker")

    def named() -> set[str]:
        return {a["name"] for a in ray_session.util.list_named_actors(all_namespaces=True)}

    for name in names:  # left behind by another test, with another store
        try:
            ray_session.kill(ray_session.get_actor(name, namespace="nq"), no_restart=True)
        except ValueError:
            continue
    wait_until(lambda: not set(names) & named(), timeout_s=30, interval_s=0.2, message="old actors gone")
    s = Settings(
        data={"data_dir": str(tmp_path / "data")},
        llm={
            "providers": [{"name": "rules", "kind": "rules", "model": "nq-rules-v1"}],
            "health_interval_s": 0,
        },
        replay={"clock": "replay", "start": "2026-04-20T09:30", "speed": 1, "symbols": ["NQ"]},
    )
    prepare_replay(s)
    before = named()
    try:
        with TestClient(build_app(s), base_url="http://127.0.0.1") as c:
            r = c.post("/api/llm/stream", json=CHAT)
    finally:
        for name in named() - before:
            try:
                ray_session.kill(ray_session.get_actor(name, namespace="nq"), no_restart=True)
            except ValueError:
                continue

    assert r.status_code == 200, r.text
    events = [json.loads(line[5:]) for line in r.text.splitlines() if line.startswith("data:")]
    assert events[-1]["done"] is True and events[-1]["provider"] == "rules" and events[-1]["is_llm"] is False
    assert "rules analyst" in "".join(e.get("delta", "") for e in events)
