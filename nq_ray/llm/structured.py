"""Structured outputs: ask for a JSON schema (vLLM guided decoding, OpenAI structured outputs) where the
backend has it, JSON mode otherwise; validate with pydantic; one repair attempt that shows the model its
validation errors; then ``StructuredOutputError`` — an unparsed answer is never passed on."""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from typing import Any

from pydantic import BaseModel, ValidationError

from nq_ray.llm.errors import StructuredOutputError
from nq_ray.llm.protocol import ChatResponse, Message

_FENCE = re.compile(r"^\s*```(?:json)?\s*(.*?)\s*```\s*$", re.DOTALL)

RawCall = Callable[[list[dict[str, Any]], dict[str, Any] | None], Awaitable[ChatResponse]]


def _strict_schema(model: type[BaseModel]) -> dict[str, Any] | None:
    try:  # the openai SDK's own converter to the strict subset of JSON schema it accepts
        from openai.lib._pydantic import to_strict_json_schema

        return to_strict_json_schema(model)
    except Exception:  # the model uses a feature strict mode cannot express: fall back to non-strict
        return None


def response_format(model: type[BaseModel], mode: str, *, strict: bool = False) -> dict[str, Any] | None:
    """The ``response_format`` request parameter for ``mode`` (json_schema | json_object | none)."""
    if mode == "json_schema":
        schema = _strict_schema(model) if strict else None
        return {
            "type": "json_schema",
            "json_schema": {
                "name": model.__name__,
                "schema": schema or model.model_json_schema(),
                "strict": schema is not None,
            },
        }
    if mode == "json_object":
        return {"type": "json_object"}
    return None


def schema_instruction(model: type[BaseModel]) -> str:
    """A system line that states the schema, for backends that only have JSON mode (or nothing)."""
    return (
        "Reply with one JSON object only, no prose and no code fences, matching this JSON schema:\n"
        + json.dumps(model.model_json_schema(), separators=(",", ":"))
    )


def parse(text: str, model: type[BaseModel]) -> BaseModel:
    """Validate ``text`` (a JSON object, optionally inside a ``` fence) as ``model``; raises
    ``ValidationError`` (pydantic's, with the reasons) when it does not fit."""
    m = _FENCE.match(text)
    return model.model_validate_json(m.group(1) if m else text.strip())


def _describe(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(map(str, e['loc'])) or '<root>'}: {e['msg']}" for e in exc.errors(include_url=False)
    )[:1500]


async def complete(
    raw_call: RawCall,
    messages: Sequence[Message],
    model: type[BaseModel],
    mode: str,
    *,
    provider: str,
    strict: bool = False,
) -> ChatResponse:
    """Call, validate, repair once, else raise ``StructuredOutputError``. Usage sums both calls."""
    fmt = response_format(model, mode, strict=strict)
    msgs = [dict(m) for m in messages]
    if mode != "json_schema":
        msgs = [{"role": "system", "content": schema_instruction(model)}, *msgs]
    first = await raw_call(msgs, fmt)
    try:
        return replace(first, parsed=parse(first.text, model))
    except ValidationError as exc:
        reason = _describe(exc)
    repair = [
        *msgs,
        {"role": "assistant", "content": first.text},
        {
            "role": "user",
            "content": f"That reply is not valid for the schema: {reason}. "
            "Reply again with only the corrected JSON object.",
        },
    ]
    second = await raw_call(repair, fmt)
    usage = first.usage + second.usage
    try:
        return replace(second, parsed=parse(second.text, model), usage=usage, repaired=True)
    except ValidationError as exc:
        raise StructuredOutputError(
            f"{provider} returned output that does not validate as {model.__name__} after one repair "
            "attempt; the answer was discarded",
            provider=provider,
            schema=model.__name__,
            errors=_describe(exc),
            raw_start=second.text[:300],
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
        ) from None
