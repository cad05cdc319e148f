"""Structured outputs: request formats, parsing, one repair, typed failure."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel, Field, ValidationError

from nq_ray.llm import structured
from nq_ray.llm.errors import StructuredOutputError
from nq_ray.llm.protocol import ChatResponse, Usage


class Idea(BaseModel):
    side: str = Field(pattern="^(long|short|flat)$")
    stop_ticks: int = Field(gt=0)


def scripted(*texts: str) -> tuple[list[list[dict[str, Any]]], Any]:
    """A raw call that answers ``texts`` in order and records what it was sent."""
    seen: list[list[dict[str, Any]]] = []
    answers = list(texts)

    async def call(messages: list[dict[str, Any]], fmt: dict[str, Any] | None) -> ChatResponse:
        seen.append(messages)
        return ChatResponse(text=answers.pop(0), model="m", usage=Usage(10, 5))

    return seen, call


def test_response_format_by_mode() -> None:
    schema = structured.response_format(Idea, "json_schema")
    mode = structured.response_format(Idea, "json_object")

    assert schema is not None and schema["json_schema"]["schema"] == Idea.model_json_schema()
    assert mode == {"type": "json_object"} and structured.response_format(Idea, "none") is None


def test_parse_accepts_fenced_json_and_rejects_prose() -> None:
    assert structured.parse('```json\n{"side": "long", "stop_ticks": 8}\n```', Idea) == Idea(
        side="long", stop_ticks=8
    )
    with pytest.raises(ValidationError):
        structured.parse("go long", Idea)


async def test_valid_first_answer_needs_no_repair() -> None:
    seen, call = scripted('{"side": "short", "stop_ticks": 12}')

    resp = await structured.complete(
        call, [{"role": "user", "content": "idea?"}], Idea, "json_schema", provider="p"
    )

    assert resp.parsed == Idea(side="short", stop_ticks=12) and not resp.repaired and len(seen) == 1


async def test_one_repair_shows_the_validation_error_and_sums_usage() -> None:
    seen, call = scripted('{"side": "sideways", "stop_ticks": 0}', '{"side": "flat", "stop_ticks": 4}')

    resp = await structured.complete(
        call, [{"role": "user", "content": "idea?"}], Idea, "json_object", provider="p"
    )

    assert resp.parsed == Idea(side="flat", stop_ticks=4) and resp.repaired
    assert resp.usage == Usage(20, 10)
    repair = seen[1][-1]["content"]
    assert "side" in repair and "stop_ticks" in repair and seen[0][0]["role"] == "system"


async def test_second_invalid_answer_is_a_typed_failure_without_the_answer() -> None:
    _, call = scripted("nope", "still nope")

    with pytest.raises(StructuredOutputError) as err:
        await structured.complete(
            call, [{"role": "user", "content": "idea?"}], Idea, "json_schema", provider="p"
        )

    assert err.value.code == "llm_invalid_output" and err.value.details["prompt_tokens"] == 20
