"""``ToolRegistry``: the MCP tools by name, with input/output JSON schemas generated from pydantic models.

A tool is one typed ``async`` function in ``nq_ray/tools/<category>.py``. Its parameters become a
pydantic input model (``extra="forbid"``, so unknown arguments are refused), its return annotation is
its output model. ``call(name, arguments)`` validates, runs, audits and returns the output as JSON-able
data; every failure comes out as a typed ``NQRayError`` (see ``nq_ray.tools.wire``).
"""

from __future__ import annotations

import inspect
import time
import typing
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, create_model

from nq_ray.domain.audit import AuditRecord
from nq_ray.errors import InvalidArgumentError, NQRayError
from nq_ray.ports import Auditor
from nq_ray.tools.args import FlatArgs
from nq_ray.tools.context import Progress, ToolContext, bind
from nq_ray.tools.wire import as_nq_error, json_safe, validation_message

ToolFn = Callable[..., Awaitable[BaseModel]]


class UnknownToolError(NQRayError, KeyError):
    """A tool name the registry does not hold."""

    code = "unknown_tool"
    http_status = 404

    def __str__(self) -> str:
        return f"[{self.code}] {self.message}"


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid")


@dataclass(frozen=True)
class ToolSpec:
    """One tool: its function, category, generated input model and output model."""

    name: str
    fn: ToolFn
    category: str
    input_model: type[BaseModel]
    output_model: type[BaseModel]
    long_running: bool = False
    read_only: bool = True
    groups: tuple[tuple[str, type[FlatArgs]], ...] = ()  # flattened parameters: (name, model)

    def arguments(self, args: BaseModel) -> dict[str, Any]:
        """The keyword arguments of ``fn`` for a validated input: flattened groups rebuilt as models."""
        values = {k: getattr(args, k) for k in type(args).model_fields}
        for param, group in self.groups:
            values[param] = group.model_validate({k: values.pop(k) for k in group.model_fields})
        return values

    @property
    def description(self) -> str:
        return inspect.cleandoc(self.fn.__doc__ or self.name)

    def input_schema(self) -> dict[str, Any]:
        return self.input_model.model_json_schema()

    def output_schema(self) -> dict[str, Any]:
        return self.output_model.model_json_schema(mode="serialization")

    def info(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "category": self.category,
            "description": self.description,
            "long_running": self.long_running,
            "read_only": self.read_only,
            "input_schema": self.input_schema(),
            "output_schema": self.output_schema(),
        }


def spec_of(fn: ToolFn, category: str, *, long_running: bool = False, read_only: bool = True) -> ToolSpec:
    """A ``ToolSpec`` whose input model is built from ``fn``'s typed parameters; a parameter typed as a
    ``FlatArgs`` model (e.g. ``BarsQuery``) contributes its fields as top-level arguments."""
    hints = typing.get_type_hints(fn, include_extras=True)
    fields: dict[str, Any] = {}
    groups: list[tuple[str, type[FlatArgs]]] = []
    for p in inspect.signature(fn).parameters.values():
        hint = hints[p.name]
        if isinstance(hint, type) and issubclass(hint, FlatArgs):
            inner = typing.get_type_hints(hint, include_extras=True)
            new = {name: (inner[name], info.default) for name, info in hint.model_fields.items()}
            groups.append((p.name, hint))
        else:
            new = {p.name: (hint, ... if p.default is inspect.Parameter.empty else p.default)}
        if clash := set(new) & set(fields):
            raise InvalidArgumentError(f"{fn.__name__}: argument {sorted(clash)} given twice")
        fields |= new
    out = hints["return"]
    model = create_model(f"{_camel(fn.__name__)}Input", __base__=_Input, __module__=fn.__module__, **fields)
    model.__doc__ = f"Arguments of the {fn.__name__} tool."
    return ToolSpec(fn.__name__, fn, category, model, out, long_running, read_only, tuple(groups))


def _camel(name: str) -> str:
    return "".join(part.title() for part in name.split("_"))


CallHook = Callable[[str, str, float], None]  # (tool, outcome or error code, seconds)


@dataclass
class ToolRegistry:
    """Tools by name; ``call`` validates arguments, runs the tool in ``context`` and audits the call."""

    context: ToolContext
    auditor: Auditor | None = None
    on_call: CallHook | None = None
    specs: dict[str, ToolSpec] = field(default_factory=dict)

    def add(self, spec: ToolSpec) -> None:
        if spec.name in self.specs:
            raise InvalidArgumentError(f"tool {spec.name!r} is registered twice")
        self.specs[spec.name] = spec

    def extend(self, specs: Iterable[ToolSpec]) -> ToolRegistry:
        for s in specs:
            self.add(s)
        return self

    def names(self) -> list[str]:
        return list(self.specs)

    def get(self, name: str) -> ToolSpec:
        try:
            return self.specs[name]
        except KeyError:
            raise UnknownToolError(
                f"unknown tool {name!r}; GET /api/tools (or MCP tools/list) lists all {len(self.specs)}",
                tool=name,
            ) from None

    def list_tools(self) -> list[dict[str, Any]]:
        return [s.info() for s in self.specs.values()]

    def validate(self, name: str, arguments: dict[str, Any] | None) -> BaseModel:
        """The tool's input model for ``arguments``; ``InvalidArgumentError`` naming each bad field."""
        spec = self.get(name)
        if arguments is not None and not isinstance(arguments, dict):
            raise InvalidArgumentError(f"{name}: arguments must be a JSON object")
        try:
            return spec.input_model.model_validate(arguments or {})
        except ValidationError as exc:
            raise InvalidArgumentError(
                f"{name}: {validation_message(exc)}", errors=validation_errors(exc)
            ) from None
        except (TypeError, ValueError) as exc:  # a constraint pydantic could not apply to the value
            raise InvalidArgumentError(f"{name}: invalid arguments ({exc})") from None

    async def call(
        self,
        name: str,
        arguments: dict[str, Any] | None = None,
        *,
        who: str = "anonymous",
        progress: Progress | None = None,
    ) -> dict[str, Any]:
        """Run tool ``name``: its output as JSON-able data, or a typed ``NQRayError``."""
        t0 = time.perf_counter()
        outcome, code = "ok", None
        try:
            spec = self.get(name)
            args = self.validate(name, arguments)
            with bind(self.context, progress):
                result = await spec.fn(**spec.arguments(args))
            return json_safe(result.model_dump(mode="json"))
        except BaseException as exc:
            err = as_nq_error(exc)
            if err is None:  # cancellation and interpreter exits pass through
                outcome, code = "cancelled", "cancelled"
                raise
            outcome, code = "error", err.code
            raise err from (None if err is exc else exc)
        finally:
            dt = time.perf_counter() - t0
            if self.on_call is not None:
                self.on_call(name, code or outcome, dt)
            if self.auditor is not None:
                await self.auditor.audit(
                    AuditRecord(
                        at=datetime.now(UTC),
                        who=who,
                        tool=name,
                        arguments=arguments if isinstance(arguments, dict) else None,
                        outcome=outcome,
                        error_code=code,
                        duration_ms=dt * 1000,
                    )
                )


def validation_errors(exc: ValidationError) -> list[dict[str, Any]]:
    return [
        {"field": ".".join(map(str, e["loc"])) or "arguments", "problem": e["msg"], "type": e["type"]}
        for e in exc.errors(include_url=False)
    ]


def build_registry(
    context: ToolContext, *, auditor: Auditor | None = None, on_call: CallHook | None = None
) -> ToolRegistry:
    """The registry with every nq-ray tool."""
    from nq_ray.tools import catalog

    return ToolRegistry(context=context, auditor=auditor, on_call=on_call).extend(catalog.specs())
