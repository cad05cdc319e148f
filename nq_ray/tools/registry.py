"""``ToolRegistry``: the MCP tools by name, with input/output JSON schemas generated from pydantic models.

A tool is one typed ``async`` function in ``nq_ray/tools/<category>.py``. Its parameters become a
pydantic input model (``extra="forbid"``, so unknown arguments are refused), its return annotation is
its output model. ``call(name, arguments)`` validates, runs, audits and returns the output as JSON-able
data; every failure comes out as a typed ``NQRayError`` (see ``nq_ray.tools.wire``).
"""

from __future__ import annotations

import copy
import functools
import inspect
import json
import time
import typing
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, create_model, model_validator
from pydantic.json_schema import JsonSchemaMode

from nq_ray.config import TOOLSETS, MCPSettings
from nq_ray.domain.audit import AuditRecord
from nq_ray.errors import InvalidArgumentError, NQRayError
from nq_ray.ports import Auditor
from nq_ray.tools.args import DEFAULT_SOURCE, FlatArgs, resolve_source
from nq_ray.tools.context import Progress, ToolContext, bind
from nq_ray.tools.wire import as_nq_error, json_safe

__all__ = [
    "TOOLSETS",
    "ToolRegistry",
    "ToolSpec",
    "UnknownToolError",
    "build_registry",
    "spec_of",
    "tools_for",
]

ToolFn = Callable[..., Awaitable[BaseModel]]


class UnknownToolError(NQRayError, KeyError):
    """A tool name the registry does not hold."""

    code = "unknown_tool"
    http_status = 404

    def __str__(self) -> str:
        return f"[{self.code}] {self.message}"


@functools.cache
def _json_schema(model: type[BaseModel], mode: JsonSchemaMode) -> dict[str, Any]:
    """A model's JSON schema, generated once per process (pydantic takes ~5 ms a model; every tool
    listing asks for all of them). Shared: ``ToolSpec``'s schema methods hand out deep copies, and the
    input models' JSON-text decoding only reads it."""
    return model.model_json_schema(mode=mode)


class _Input(BaseModel):
    """Base of every tool's input model: unknown arguments refused, JSON text for an object or array
    decoded (``json_strings_decoded``) before validation, wherever the model validates (the registry,
    FastAPI's REST routes)."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _json_text(cls, data: Any) -> Any:
        return json_strings_decoded(data, _json_schema(cls, "validation")) if isinstance(data, dict) else data


@dataclass(frozen=True)
class ToolSpec:
    """One tool: its function, category, generated input model and output model, and how MCP clients
    see it: a ``title``, its ``toolset`` (one of ``TOOLSETS``) and the behaviour hints of the MCP
    annotations — ``read_only`` (changes nothing), ``destructive`` (may undo or replace what is there:
    orders, positions), ``idempotent`` (a repeat with the same arguments changes nothing more) and
    ``open_world`` (may reach a source outside nq-ray: Yahoo or Tradovate)."""

    name: str
    fn: ToolFn
    category: str
    input_model: type[BaseModel]
    output_model: type[BaseModel]
    long_running: bool = False
    read_only: bool = True
    groups: tuple[tuple[str, type[FlatArgs]], ...] = ()  # flattened parameters: (name, model)
    title: str = ""
    toolset: str = ""
    destructive: bool = False
    idempotent: bool = True
    open_world: bool = False

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
        return copy.deepcopy(_json_schema(self.input_model, "validation"))

    def output_schema(self) -> dict[str, Any]:
        return copy.deepcopy(_json_schema(self.output_model, "serialization"))

    def info(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "title": self.title,
            "category": self.category,
            "toolset": self.toolset,
            "description": self.description,
            "long_running": self.long_running,
            "read_only": self.read_only,
            "destructive": self.destructive,
            "idempotent": self.idempotent,
            "open_world": self.open_world,
            "input_schema": self.input_schema(),
            "output_schema": self.output_schema(),
        }


def spec_of(
    fn: ToolFn,
    category: str,
    *,
    long_running: bool = False,
    read_only: bool = True,
    title: str | None = None,
    toolset: str | None = None,
    destructive: bool = False,
    idempotent: bool | None = None,
    open_world: bool | None = None,
) -> ToolSpec:
    """A ``ToolSpec`` whose input model is built from ``fn``'s typed parameters; a parameter typed as a
    ``FlatArgs`` model (e.g. ``BarsQuery``) contributes its fields as top-level arguments.

    Defaults: ``toolset`` = ``category`` (``backtesting`` → ``backtest``); ``title`` from the name; a
    read-only tool is idempotent, one that changes something is not unless it says so; ``open_world``
    is true for a tool that takes a data ``source`` (``yahoo`` and ``tradovate`` are outside sources,
    and ``default`` may be one)."""
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
    toolset = toolset or _TOOLSET_OF.get(category, category)
    if toolset not in TOOLSETS:
        raise InvalidArgumentError(f"{fn.__name__}: toolset {toolset!r} is not one of {', '.join(TOOLSETS)}")
    if read_only and destructive:
        raise InvalidArgumentError(f"{fn.__name__}: a read-only tool cannot be destructive")
    return ToolSpec(
        fn.__name__,
        fn,
        category,
        model,
        out,
        long_running,
        read_only,
        tuple(groups),
        title=title or fn.__name__.replace("_", " ").capitalize(),
        toolset=toolset,
        destructive=destructive,
        idempotent=read_only if idempotent is None else idempotent,
        open_world="source" in fields if open_world is None else open_world,
    )


_TOOLSET_OF = {"backtesting": "backtest"}  # the categories (REST tags) that are not toolset names


def tools_for(registry: ToolRegistry, mcp: MCPSettings | None = None) -> list[ToolSpec]:
    """The tools a server with ``mcp`` settings exposes (default: the registry's own settings): those
    in ``mcp.toolsets``, and only the read-only ones when ``mcp.read_only`` is set."""
    mcp = mcp if mcp is not None else registry.context.settings.mcp
    return select(registry.specs.values(), mcp.toolsets, read_only=mcp.read_only)


def select(specs: Iterable[ToolSpec], toolsets: Iterable[str], *, read_only: bool = False) -> list[ToolSpec]:
    """The ``specs`` in ``toolsets`` (read-only ones only, with ``read_only``), in their order."""
    chosen = set(toolsets)
    if unknown := chosen - set(TOOLSETS):
        raise InvalidArgumentError(
            f"unknown toolset(s) {sorted(unknown)}; toolsets are {', '.join(TOOLSETS)}"
        )
    return [s for s in specs if s.toolset in chosen and (s.read_only or not read_only)]


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
        try:  # the input model decodes JSON text for objects and arrays first (``_Input``)
            args = spec.input_model.model_validate(arguments or {})
        except ValidationError as exc:
            raise InvalidArgumentError(
                f"{name}: {arguments_message(exc, spec)}", errors=validation_errors(exc)
            ) from None
        except (TypeError, ValueError) as exc:  # a constraint pydantic could not apply to the value
            raise InvalidArgumentError(f"{name}: invalid arguments ({exc})") from None
        if getattr(args, "source", None) == DEFAULT_SOURCE:  # the server's own source, named
            args = args.model_copy(update={"source": resolve_source(self.context.settings, DEFAULT_SOURCE)})
        return args

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


def json_strings_decoded(arguments: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """``arguments`` with each string that stands where ``schema`` expects an object or an array (and
    not a string) replaced by the JSON it parses to, when that is an object or an array as expected.
    Some MCP clients send nested arrays and objects as JSON text (a ``grid`` as the string
    ``{"fast": [5, 10]}``); a string that does not parse, or parses to something else, is left for
    validation to refuse."""
    out = _decoded(arguments, schema, schema.get("$defs", {}), 0)
    return out if isinstance(out, dict) else arguments


_MAX_DEPTH = 32  # how deep into the schema strings are looked for (ours nest 4 levels at most)


def _decoded(value: Any, schema: dict[str, Any], defs: dict[str, Any], depth: int) -> Any:
    if depth > _MAX_DEPTH or not isinstance(value, str | dict | list):  # numbers, booleans, null
        return value
    branches = _branches_of(schema, defs)
    if isinstance(value, str):
        kinds = {b.get("type") for b in branches}
        if "string" in kinds or not kinds & {"object", "array"}:
            return value
        try:
            parsed = json.loads(value)
        except (ValueError, RecursionError):
            return value
        want = "object" if isinstance(parsed, dict) else "array" if isinstance(parsed, list) else None
        if want is None or want not in kinds:
            return value
        value = parsed
    if isinstance(value, dict):
        branch = next((b for b in branches if b.get("type") == "object"), None)
        if branch is None:
            return value
        props, extra = branch.get("properties", {}), branch.get("additionalProperties")
        out = {}
        for k, v in value.items():
            sub = props.get(k, extra)
            out[k] = _decoded(v, sub, defs, depth + 1) if isinstance(sub, dict) else v
        return out
    if isinstance(value, list):
        branch = next((b for b in branches if b.get("type") == "array"), None)
        items = branch.get("items") if branch is not None else None
        if not isinstance(items, dict):
            return value
        return [_decoded(v, items, defs, depth + 1) for v in value]
    return value


_BRANCHES: dict[int, tuple[dict[str, Any], list[dict[str, Any]]]] = {}


def _branches_of(schema: dict[str, Any], defs: dict[str, Any]) -> list[dict[str, Any]]:
    """``_branches``, memoised per schema object (the input models' schemas live as long as the process;
    the schema is kept with its entry, so its id is never reused while the entry exists)."""
    hit = _BRANCHES.get(id(schema))
    if hit is not None and hit[0] is schema:
        return hit[1]
    branches = _branches(schema, defs)
    if len(_BRANCHES) < 10_000:
        _BRANCHES[id(schema)] = (schema, branches)
    return branches


def _branches(schema: dict[str, Any], defs: dict[str, Any]) -> list[dict[str, Any]]:
    """The alternatives of ``schema`` with ``$ref`` resolved, one per JSON type (``anyOf``/``oneOf``
    split, a list of types split)."""
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        target = defs.get(ref.removeprefix("#/$defs/"))
        return _branches(target, defs) if isinstance(target, dict) else []
    alternatives = schema.get("anyOf") or schema.get("oneOf") or schema.get("allOf")
    if isinstance(alternatives, list):
        return [b for alt in alternatives if isinstance(alt, dict) for b in _branches(alt, defs)]
    kind = schema.get("type")
    if isinstance(kind, list):
        return [{**schema, "type": k} for k in kind]
    return [schema] if kind is not None else []


def arguments_message(exc: ValidationError, spec: ToolSpec) -> str:
    """What is wrong with a call's arguments, so a model can correct it: each bad argument, what it
    should be, and what was sent; an unknown argument with the names the tool takes; a missing one."""
    parts = []
    errors = exc.errors(include_url=False)
    for e in errors[:8]:
        where = ".".join(map(str, e["loc"])) or "arguments"
        if e["type"] == "missing":
            parts.append(f"{where}: required argument missing")
        elif e["type"] == "extra_forbidden" and len(e["loc"]) == 1:
            names = ", ".join(spec.input_model.model_fields)
            parts.append(f"{where}: unknown argument; {spec.name} takes {names}")
        elif isinstance(e.get("input"), str) and e["type"] in _CONTAINER_ERRORS:
            kind = _CONTAINER_ERRORS[e["type"]]
            parts.append(
                f"{where}: expected {kind} (JSON text is accepted only when it parses to {kind}; "
                f"got {_shown(e['input'])})"
            )
        else:
            parts.append(f"{where}: {e['msg']} (got {_shown(e.get('input'))})")
    if len(errors) > 8:
        parts.append(f"and {len(errors) - 8} more")
    return "; ".join(parts)


_CONTAINER_ERRORS = {
    "dict_type": "an object",
    "model_type": "an object",
    "model_attributes_type": "an object",
    "list_type": "an array",
    "tuple_type": "an array",
    "set_type": "an array",
}


def _shown(value: Any, limit: int = 60) -> str:
    try:
        text = json.dumps(value, default=str, allow_nan=True)
    except (TypeError, ValueError, RecursionError):
        text = type(value).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


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
