"""``PromptTemplateEngine``: the seed's prompt templates as Jinja2 files, rendered in a sandbox.

Templates live in ``templates/*.j2`` (``_base.j2`` is the shared layout). Rendering uses Jinja2's
``ImmutableSandboxedEnvironment`` with ``StrictUndefined``: a missing context key is an
``InvalidArgumentError`` naming it, never an empty string in a prompt. Each template has a version —
its declared ``{#- version: N -#}`` plus a hash of its source and its layout's — and every render
returns it, so the version can be recorded with the call (``LLMRouter.chat(prompt_version=...)``).
"""

from __future__ import annotations

import hashlib
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
        self._versions: dict[str, str] = {}
        self._env = ImmutableSandboxedEnvironment(
            loader=FunctionLoader(self._load),
            undefined=StrictUndefined,
            autoescape=False,
            trim_blocks=True,
            lstrip_blocks=True,
            auto_reload=True,
        )

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

        Names are lower-case identifiers; the seed's templates are replaced only with ``replace=True``."""
        if not isinstance(name, str) or not _NAME.match(name):
            raise InvalidArgumentError(f"template name must match {_NAME.pattern}, got {name!r}")
        if not isinstance(text, str) or not text.strip():
            raise InvalidArgumentError("template text must be a non-empty string")
        if len(text) > MAX_TEMPLATE_CHARS:
            raise InvalidArgumentError(
                f"template text is {len(text)} characters; the limit is {MAX_TEMPLATE_CHARS}"
            )
        if name in self._sources and not replace:
            raise InvalidArgumentError(f"template {name!r} exists; pass replace=True to replace it")
        try:
            parsed = self._env.parse(text)
        except TemplateSyntaxError as exc:
            raise InvalidArgumentError(
                f"template {name!r} does not parse: line {exc.lineno}: {exc.message}"
            ) from None
        for ref in meta.find_referenced_templates(parsed):
            if ref is None or ref.removesuffix(".j2") not in self._sources:
                raise InvalidArgumentError(f"template {name!r} refers to an unknown template {ref!r}")
        self._sources[name] = text
        self._versions.clear()  # a layout change changes the version of every template that extends it
        return self.version(name)
