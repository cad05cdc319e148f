"""The scripted OpenAI-compatible test server: honest, scripted answers over real HTTP."""

from __future__ import annotations

import httpx
import pytest

from nq_ray.testing import ScriptedLLMServer, Step, free_port

pytestmark = pytest.mark.timeout(30)
BODY = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}


def test_scripted_steps_then_default_and_requests_recorded() -> None:
    with ScriptedLLMServer(default_text="default") as srv:
        srv.push(Step(text="first"), Step(status=429, text="wait", retry_after_s=2))

        r1 = httpx.post(f"{srv.base_url}/chat/completions", json=BODY)
        r2 = httpx.post(f"{srv.base_url}/chat/completions", json=BODY)
        r3 = httpx.post(
            f"{srv.base_url}/chat/completions", json={**BODY, "response_format": {"type": "json_object"}}
        )

        assert r1.json()["choices"][0]["message"]["content"] == "first"
        assert r2.status_code == 429 and r2.headers["retry-after"] == "2"
        assert r3.json()["choices"][0]["message"]["content"] == "default"
        assert srv.requests[2]["response_format"] == {"type": "json_object"}


def test_each_model_gets_its_own_queue_then_default_else_the_shared_ones() -> None:
    with ScriptedLLMServer(default_text="shared") as srv:
        srv.push_for("bull", Step(text="bull first")).set_default_for("bull", Step(text="bull default"))

        def ask(model: str) -> str:
            r = httpx.post(f"{srv.base_url}/chat/completions", json={**BODY, "model": model})
            return str(r.json()["choices"][0]["message"]["content"])

        answers = [ask("bull"), ask("bull"), ask("other")]
        srv.reset()
        after_reset = ask("bull")

        assert answers == ["bull first", "bull default", "shared"] and after_reset == "shared"


def test_models_endpoint_and_groq_prefix() -> None:
    with ScriptedLLMServer(models=["qwen"]) as srv:
        models = httpx.get(f"{srv.base_url}/models").json()
        groq = httpx.post(f"{srv.url}/openai/v1/chat/completions", json=BODY)

        assert [m["id"] for m in models["data"]] == ["qwen"] and groq.status_code == 200


def test_stream_is_server_sent_events_ending_in_done() -> None:
    with ScriptedLLMServer() as srv:
        srv.push(Step(text="ab", chunks=("a", "b")))

        r = httpx.post(f"{srv.base_url}/chat/completions", json={**BODY, "stream": True})

        lines = [ln for ln in r.text.splitlines() if ln.startswith("data: ")]
        assert r.headers["content-type"].startswith("text/event-stream") and lines[-1] == "data: [DONE]"
        assert sum('"content": "a"' in ln or '"content": "b"' in ln for ln in lines) == 2


def test_stopped_server_refuses_connections() -> None:
    srv = ScriptedLLMServer().start()
    url = srv.base_url
    srv.stop()

    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url}/models")
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{free_port()}/v1/models")
