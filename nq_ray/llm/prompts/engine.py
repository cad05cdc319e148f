"""``PromptTemplateEngine``: the seed's prompt templates as Jinja2 files, rendered in a sandbox.

Templates live in ``templates/*.j2`` (``_base.j2`` is the shared layout). Rendering uses Jinja2's
``ImmutableSandboxedEnvironment`` with ``StrictUndefined``: a missing context key is an
``InvalidArgumentError`` naming it, never an empty string in a prompt. Each template has a version —
its declared ``{#- version: N -#}`` plus a hash of its source and its layout's — and every render
returns it, so the version can be recorded with the call (``LLMRouter.chat(prompt_version=...)``).

Two placeholder styles. A template with any Jinja syntax (``{{``, ``{%`` or ``{#``) is Jinja. A template
with none is seed-style, as the seed's ``add_template("custom_analysis", "... {symbol} ...")`` writes
them: ``{name}`` (also ``{name.attr}``, ``{name[key]}`` and a format spec, ``{price:.2f}``) is a
placeholder, rendered strictly like ``{{ name }}``; any other brace (a JSON example) is literal text. A
seed-style template that needs a literal ``{word}`` is written in Jinja instead (``{{ "{word}" }}``).

Per-agent templates: ``with_overrides({"analysis_base": text, ...})`` is a new engine sharing the built-in
templates with some of them replaced (each agent renders through its own, so overrides never leak
between agents); ``check_override`` validates one without adding it anywhere.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import StrictUndefined, TemplateError, TemplateSyntaxError, UndefinedError, meta
from jinja2.loaders import FunctionLoader
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError

from nq_ray.errors import InvalidArgumentError

TEMPLATE_DIR = Path(__file__).parent / "templates"
SEED_TEMPLATES: tuple[str, ...] = (
    "analysis_base",
    "pattern_recognition",
    "market_summary",
    "execution_base",
    "risk_assessment",
    "order_management",
)
AGENT_TYPES: frozenset[str] = frozenset({"analysis", "risk", "execution", "desk", "assistant"})
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_VERSION = re.compile(r"\{#-?\s*version:\s*([\w.\-]+)\s*-?#\}")
MAX_TEMPLATE_CHARS = 20_000
_JINJA = re.compile(r"\{\{|\{%|\{#")
# a seed (str.format-style) field: a name, then .attr / [key] parts, then an optional :format spec
_SEED_FIELD = re.compile(
    r"\{([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*|\[[A-Za-z0-9_]+\])*)(?::([^{}\n]{0,24}))?\}"
)


def is_seed_style(text: str) -> bool:
    """True when ``text`` has no Jinja syntax: its ``{name}`` fields are the seed's placeholders."""
    return _JINJA.search(text) is None


def seed_to_jinja(text: str) -> str:
    """A seed-style template as Jinja: ``{name}`` → ``{{ name }}``, ``{x:.2f}`` →
    ``{{ x | seed_format(".2f") }}``; Jinja source is returned unchanged."""
    if not is_seed_style(text):
        return text

    def key(k: re.Match[str]) -> str:  # str.format's a[key] is a["key"], a[0] is a[0]
        inner = k.group(1)
        return f"[{inner}]" if inner.isdigit() else f"[{inner!r}]"

    def field(m: re.Match[str]) -> str:
        name, spec = re.sub(r"\[([A-Za-z0-9_]+)\]", key, m.group(1)), m.group(2)
        return "{{ " + name + (f" | seed_format({spec!r})" if spec else "") + " }}"

    return _SEED_FIELD.sub(field, text)


def _seed_format(value: Any, spec: str) -> str:
    try:
        return format(value, spec)
    except (TypeError, ValueError) as exc:
        raise InvalidArgumentError(f"cannot format {value!r} with {spec!r}: {exc}") from None


def _finalize(value: Any) -> Any:
    """What ``{{ x }}`` prints: mappings and lists as JSON (a model reads that better than a Python repr)."""
    if isinstance(value, Mapping | list | tuple):
        return json.dumps(value, default=str, ensure_ascii=False, separators=(", ", ": "))
    return value


@dataclass(frozen=True)
class RenderedPrompt:
    """One render: the text and the template's name and version (record both with the LLM call)."""

    name: str
    version: str
    text: str
    agent_type: str
    tools: tuple[str, ...]

    @property
    def prompt_version(self) -> str:
        return f"{self.name}@{self.version}"

    def as_messages(self, user: str | None = None) -> list[dict[str, str]]:
        """The render as the system message (plus ``user`` as the user message, if given)."""
        msgs = [{"role": "system", "content": self.text}]
        if user:
            msgs.append({"role": "user", "content": user})
        return msgs


class PromptTemplateEngine:
    """Sandboxed, strict, versioned prompt templates."""

    def __init__(self, template_dir: Path = TEMPLATE_DIR) -> None:
        self._sources: dict[str, str] = {
            p.stem: p.read_text(encoding="utf-8") for p in sorted(template_dir.glob("*.j2"))
        }
        self._builtin = frozenset(self._sources)
        self._overridden: frozenset[str] = frozenset()
        self._versions: dict[str, str] = {}
        self._env = self._new_env()

    def _new_env(self) -> ImmutableSandboxedEnvironment:
        env = ImmutableSandboxedEnvironment(
            loader=FunctionLoader(self._load),
            undefined=StrictUndefined,
            autoescape=False,
            trim_blocks=True,
            lstrip_blocks=True,
            auto_reload=True,
            finalize=_finalize,
        )
        env.filters["seed_format"] = _seed_format
        return env

    def _load(self, name: str) -> tuple[str, None, Any] | None:
        stem = name.removesuffix(".j2")
        src = self._sources.get(stem)
        if src is None:
            return None
        return src, None, lambda: self._sources.get(stem) == src

    @property
    def templates(self) -> list[str]:
        """Renderable templates (the layout ``_base`` is not one)."""
        return sorted(n for n in self._sources if not n.startswith("_"))

    def version(self, name: str) -> str:
        """``<declared>+<sha of the template and its layouts>``, e.g. ``1+3f9a0c12``."""
        cached = self._versions.get(name)
        if cached is None:
            cached = self._versions[name] = self._compute_version(name)
        return cached

    def _compute_version(self, name: str) -> str:
        src = self._source(name)
        declared = _VERSION.search(src)
        h = hashlib.sha256()
        for part in self._chain(name):
            h.update(self._sources[part].encode())
        return f"{declared.group(1) if declared else '0'}+{h.hexdigest()[:8]}"

    def is_override(self, name: str) -> bool:
        """Whether ``name`` renders an agent's override rather than the built-in template."""
        return name in self._overridden

    def _chain(self, name: str) -> list[str]:
        out, seen = [name], {name}
        cur = name
        while True:
            parents = [
                p.removesuffix(".j2")
                for p in meta.find_referenced_templates(self._env.parse(self._sources[cur]))
                if p
            ]
            nxt = next((p for p in parents if p in self._sources and p not in seen), None)
            if nxt is None:
                return out
            out.append(nxt)
            seen.add(nxt)
            cur = nxt

    def _source(self, name: str) -> str:
        src = self._sources.get(name)
        if src is None or name.startswith("_"):
            raise InvalidArgumentError(
                f"unknown prompt template {name!r}; known: {', '.join(self.templates)}"
            )
        return src

    def variables(self, name: str) -> set[str]:
        """Context keys the template (and its layout) reads."""
        out: set[str] = set()
        for part in self._chain(name):
            out |= meta.find_undeclared_variables(self._env.parse(self._sources[part]))
        return out

    def generate_prompt(
        self,
        template_name: str,
        context: Mapping[str, Any],
        agent_type: str = "analysis",
        tools: Sequence[str | Mapping[str, str]] | None = None,
    ) -> RenderedPrompt:
        """Render ``template_name`` with ``context``; ``agent_type`` and ``tools`` are given to it too."""
        self._source(template_name)
        if agent_type not in AGENT_TYPES:
            raise InvalidArgumentError(f"agent_type must be one of {sorted(AGENT_TYPES)}, got {agent_type!r}")
        if not isinstance(context, Mapping):
            raise InvalidArgumentError("context must be a mapping of template variables")
        tool_list = list(tools or [])
        values = {**context, "agent_type": agent_type, "tools": tool_list}
        try:
            text = self._env.get_template(f"{template_name}.j2").render(values)
        except UndefinedError as exc:
            raise InvalidArgumentError(
                f"prompt template {template_name!r} needs a context value: {exc.message}",
                template=template_name,
                needs=sorted(self.variables(template_name) - set(values)),
            ) from None
        except SecurityError as exc:
            raise InvalidArgumentError(
                f"prompt template {template_name!r} tried an unsafe operation: {exc}"
            ) from None
        except TemplateError as exc:
            raise InvalidArgumentError(f"prompt template {template_name!r} failed to render: {exc}") from None
        names = tuple(t if isinstance(t, str) else str(t.get("name", "")) for t in tool_list)
        return RenderedPrompt(
            template_name, self.version(template_name), text.strip() + "\n", agent_type, names
        )

    def add_template(self, name: str, text: str, *, replace: bool = False) -> str:
        """Add (or, with ``replace=True``, replace) a template after checking it parses; returns its version.

        Names are lower-case identifiers; the seed's templates are replaced only with ``replace=True``.
        ``text`` is Jinja or seed-style (see the module docstring)."""
        source = self._checked(name, text)
        if name in self._sources and not replace:
            raise InvalidArgumentError(f"template {name!r} exists; pass replace=True to replace it")
        self._sources[name] = source
        self._versions.clear()  # a layout change changes the version of every template that extends it
        return self.version(name)

    def _checked(self, name: str, text: str) -> str:
        """``text`` as Jinja source after checking the name, the size, that it parses and that every
        template it extends or includes exists; the error says which check failed."""
        if not isinstance(name, str) or not _NAME.match(name):
            raise InvalidArgumentError(f"template name must match {_NAME.pattern}, got {name!r}")
        if not isinstance(text, str) or not text.strip():
            raise InvalidArgumentError(f"template {name!r}: text must be a non-empty string")
        if len(text) > MAX_TEMPLATE_CHARS:
            raise InvalidArgumentError(
                f"template {name!r} is {len(text)} characters; the limit is {MAX_TEMPLATE_CHARS}"
            )
        source = seed_to_jinja(text)
        try:
            parsed = self._env.parse(source)
        except TemplateSyntaxError as exc:
            raise InvalidArgumentError(
                f"template {name!r} does not parse: line {exc.lineno}: {exc.message}"
            ) from None
        for ref in meta.find_referenced_templates(parsed):
            if ref is None or ref.removesuffix(".j2") not in self._sources:
                raise InvalidArgumentError(f"template {name!r} refers to an unknown template {ref!r}")
        return source

    def check_override(self, name: str, text: str) -> str:
        """Validate ``text`` as an override of the seed template ``name`` (known name, size, parses,
        extends only known templates) and return its version; nothing is added to this engine."""
        if name not in SEED_TEMPLATES:
            raise InvalidArgumentError(
                f"no seed template {name!r} to override; overridable: {', '.join(SEED_TEMPLATES)}"
            )
        return self.with_overrides({name: text}).version(name)

    def with_overrides(self, overrides: Mapping[str, str]) -> PromptTemplateEngine:
        """A new engine: this one's templates with ``overrides`` (seed template name → text) in place of
        the built-in ones. This engine is not changed, so overrides never reach another agent."""
        child = PromptTemplateEngine.__new__(PromptTemplateEngine)
        child._sources = dict(self._sources)
        child._builtin = self._builtin
        child._overridden = self._overridden
        child._versions = {}
        child._env = child._new_env()
        for name, text in overrides.items():
            if name not in SEED_TEMPLATES:
                raise InvalidArgumentError(
                    f"no seed template {name!r} to override; overridable: {', '.join(SEED_TEMPLATES)}"
                )
            child._sources[name] = child._checked(name, text)
        child._overridden = child._overridden | frozenset(overrides)
        return child


@functools.cache
def builtin_engine() -> PromptTemplateEngine:
    """One engine over the built-in templates, to check overrides against (never add templates to it)."""
    return PromptTemplateEngine()
