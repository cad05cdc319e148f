"""Real local OpenAI-compatible servers, scripted by each test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from nq_ray.testing import ScriptedLLMServer


@pytest.fixture
def server() -> Iterator[ScriptedLLMServer]:
    with ScriptedLLMServer(default_text="primary answer") as srv:
        yield srv


@pytest.fixture
def server2() -> Iterator[ScriptedLLMServer]:
    with ScriptedLLMServer(default_text="secondary answer") as srv:
        yield srv
