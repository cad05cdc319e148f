"""``ContextManager``: build an agent's prompt context from the seed's sources within a token budget.

Sources and their priority (importance; the higher survives trimming): ``risk_parameters`` (100),
``open_positions`` (90), ``working_orders`` (85), ``current_market_data`` (80), ``scheduled_events`` (70),
``indicators_levels`` (60), ``recent_trades`` (50), ``agent_memory`` (20). When the sections do not fit,
the least important source is trimmed first — lists lose their oldest items, text and mappings their
last lines — then the next, until the whole fits; a section trimmed to nothing is dropped. The result
lists what was dropped and the text ends with a note saying so, so neither the model nor a reader
mistakes a trimmed context for a complete one. Tokens are estimated as ⌈characters / 4⌉ unless a counter
is given.

Where the content comes from: ``data=`` given to ``build_context``, the manager's ``providers``, or the
sources bound around the call (``bind_sources``; ``nq_ray.agents.sources`` gathers them from an agent's
tools point in time). A known source with none of these is not an error: its section says so. That is
the seed's ``ContextManager().build_context(["current_market_data", ...])`` with nothing bound.
"""

from __future__ import annotations

import contextvars
import json
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from nq_ray.errors import InvalidArgumentError

SEED_SOURCES: dict[str, int] = {
    "risk_parameters": 100,
    "open_positions": 90,
    "working_orders": 85,
    "current_market_data": 80,
    "scheduled_events": 70,
    "indicators_levels": 60,
    "recent_trades": 50,
    "agent_memory": 20,
}
TITLES: dict[str, str] = {
    "risk_parameters": "Risk parameters",
    "open_positions": "Open positions",
    "working_orders": "Working orders",
    "current_market_data": "Current market data",
    "scheduled_events": "Scheduled events today",
    "indicators_levels": "Indicators and levels",
    "recent_trades": "Recent trades (oldest first)",
    "agent_memory": "Agent memory (oldest first)",
}
NOT_BOUND = (
    "nothing: no source is bound (bind an agent's tools with nq_ray.agents.sources.bound_sources, "
    "or pass data=)"
)
_bound: contextvars.ContextVar[Mapping[str, Any] | None] = contextvars.ContextVar(
    "nq_context_sources", default=None
)


@contextmanager
def bind_sources(contents: Mapping[str, Any]) -> Iterator[None]:
    """Within the block, ``build_context`` reads a source that has no ``data=`` or provider from
    ``contents`` (source name → content), e.g. what ``nq_ray.agents.sources`` gathered."""
    token = _bound.set(contents)
    try:
        yield
    finally:
        _bound.reset(token)


_NOTE_RESERVE = 40  # tokens kept free for the "context trimmed" note


def approx_tokens(text: str) -> int:
    """⌈len(text) / 4⌉: the usual English-text estimate, close enough for budgeting."""
    return math.ceil(len(text) / 4)


@dataclass(frozen=True)
class ContextSource:
    """One part of the context. ``content`` is text, a mapping (rendered ``key: value``) or a sequence of
    items, oldest first (rendered as a list)."""

    name: str
    content: Any
    importance: int = 50
    title: str | None = None


@dataclass(frozen=True)
class Dropped:
    source: str
    what: str
    tokens: int


@dataclass(frozen=True)
class BuiltContext:
    text: str
    tokens: int
    token_budget: int
    sections: tuple[str, ...]
    dropped: tuple[Dropped, ...] = field(default_factory=tuple)

    @property
    def trimmed(self) -> bool:
        return bool(self.dropped)


def _item(x: Any) -> str:
    if isinstance(x, str):
        return x
    if isinstance(x, Mapping):
        return ", ".join(f"{k}={v}" for k, v in x.items())
    if hasattr(x, "model_dump"):
        return _item(x.model_dump(mode="json"))
    return json.dumps(x, default=str) if isinstance(x, list | tuple) else str(x)


def _lines(content: Any) -> tuple[list[str], bool]:
    """The body as lines, and whether they are list items (trimmed from the front, oldest first)."""
    if content is None:
        return [], False
    if isinstance(content, str):
        return [ln for ln in content.strip().splitlines()], False
    if isinstance(content, Mapping):
        return [f"{k}: {_item(v)}" for k, v in content.items()], False
    if hasattr(content, "model_dump"):
        return _lines(content.model_dump(mode="json"))
    if hasattr(content, "to_prompt"):
        return _lines(content.to_prompt())
    if isinstance(content, Sequence):
        return [f"- {_item(x)}" for x in content], True
    return [str(content)], False


@dataclass
class _Section:
    source: ContextSource
    lines: list[str]
    is_list: bool
    total: int
    header: str

    def render(self) -> str:
        return self.header + "\n" + "\n".join(self.lines)


class ContextManager:
    """Builds context text for an agent from named sources within ``token_budget`` tokens."""

    def __init__(
        self,
        token_budget: int = 2000,
        *,
        providers: Mapping[str, Callable[[], Any]] | None = None,
        importance: Mapping[str, int] | None = None,
        counter: Callable[[str], int] = approx_tokens,
    ) -> None:
        if token_budget <= _NOTE_RESERVE:
            raise InvalidArgumentError(f"token_budget must be > {_NOTE_RESERVE}", token_budget=token_budget)
        self.token_budget = token_budget
        self._providers = dict(providers or {})
        self._importance = {**SEED_SOURCES, **(importance or {})}
        self._count = counter

    def _resolve(self, src: str | ContextSource, data: Mapping[str, Any]) -> ContextSource:
        if isinstance(src, ContextSource):
            return src
        if not isinstance(src, str):
            raise InvalidArgumentError(
                f"a context source is a name or a ContextSource, got {type(src).__name__}"
            )
        bound = _bound.get() or {}
        if src in data:
            content = data[src]
        elif src in self._providers:
            content = self._providers[src]()
        elif src in bound:
            content = bound[src]
        elif src in TITLES:
            content = NOT_BOUND
        else:
            known = sorted(set(self._providers) | set(data) | set(bound) | set(TITLES))
            raise InvalidArgumentError(
                f"no data for context source {src!r}: pass it in data= or register a provider "
                f"(known: {known})"
            )
        return ContextSource(src, content, self._importance.get(src, 50), TITLES.get(src))

    def _items_to_drop(self, sec: _Section, room: int) -> int:
        """The fewest lines to drop (oldest items / last lines) so the section fits in ``room`` tokens;
        binary search, since the size only shrinks as lines go. All of them if even one line is too many."""
        n = len(sec.lines)

        def fits(k: int) -> bool:
            kept = sec.lines[k:] if sec.is_list else sec.lines[: n - k]
            return bool(kept) and self._count(sec.header + "\n" + "\n".join(kept)) <= room

        if fits(0):
            return 0
        lo, hi = 1, n  # invariant: dropping hi lines is enough (dropping all always "fits")
        while lo < hi:
            mid = (lo + hi) // 2
            if fits(mid):
                hi = mid
            else:
                lo = mid + 1
        return lo

    def build_context(
        self,
        sources: Sequence[str | ContextSource],
        *,
        data: Mapping[str, Any] | None = None,
        token_budget: int | None = None,
    ) -> BuiltContext:
        """Render ``sources`` (in the given order) to fit the budget, trimming the least important first."""
        budget = token_budget or self.token_budget
        if budget <= _NOTE_RESERVE:
            raise InvalidArgumentError(f"token_budget must be > {_NOTE_RESERVE}", token_budget=budget)
        resolved = [self._resolve(s, data or {}) for s in sources]
        names = [s.name for s in resolved]
        if len(set(names)) != len(names):
            raise InvalidArgumentError(f"context sources repeat: {names}")
        sections: list[_Section] = []
        for s in resolved:
            lines, is_list = _lines(s.content)
            header = f"## {s.title or s.name}"
            sec = _Section(s, lines, is_list, 0, header)
            sec.total = self._count(sec.render())
            sections.append(sec)
        dropped: list[Dropped] = []
        total = sum(sec.total for sec in sections)
        if total > budget:
            room = budget - _NOTE_RESERVE
            for sec in sorted(sections, key=lambda x: x.source.importance):
                if total <= room:
                    break
                before, n_before = sec.total, len(sec.lines)
                others = total - sec.total
                k = self._items_to_drop(sec, room - others)
                sec.lines = sec.lines[k:] if sec.is_list else sec.lines[: len(sec.lines) - k]
                sec.total = self._count(sec.render()) if sec.lines else 0
                total = others + sec.total
                if not sec.lines:
                    what = f"all {n_before} {'items' if sec.is_list else 'lines'}"
                    dropped.append(Dropped(sec.source.name, what, before))
                elif k:
                    what = (
                        f"{k} oldest of {n_before} items" if sec.is_list else f"last {k} of {n_before} lines"
                    )
                    dropped.append(Dropped(sec.source.name, what, before - sec.total))
        kept = [sec for sec in sections if sec.lines]
        text = "\n\n".join(sec.render() for sec in kept)
        if dropped:
            note = "; ".join(f"{d.source}: {d.what}" for d in dropped)
            text += f"\n\n[context trimmed to fit {budget} tokens — dropped {note}]"
        return BuiltContext(
            text=text,
            tokens=self._count(text),
            token_budget=budget,
            sections=tuple(sec.source.name for sec in kept),
            dropped=tuple(dropped),
        )
