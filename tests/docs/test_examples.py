"""Every ```python block in README.md and docs/*.md runs, on the bundled sample data, offline.

A quant developer copies the examples first, so they must be true. Each block runs on its own, in a
fresh namespace (copying one block must be enough); top-level ``await`` is allowed. A block that cannot
run offline (a running server, an LLM, a cluster) starts with ``# docs: no-run — <why>``; those are
counted, and each must say why. A small extractor rather than pytest-examples: that plugin also lints
and formats the blocks with ruff/black, which the docs' short comment-aligned lines do not follow.
"""

from __future__ import annotations

import ast
import asyncio
import inspect
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NO_RUN = "# docs: no-run"
FENCE = re.compile(r"^```python[^\n]*\n(.*?)^```", re.DOTALL | re.MULTILINE)
# Pages whose examples a quant developer runs first: each must have at least one runnable block.
MUST_RUN = ("getting-started.md", "data.md", "analysis.md", "backtesting.md", "risk.md")


@dataclass(frozen=True)
class Block:
    path: Path
    line: int
    code: str

    @property
    def id(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"

    @property
    def runs(self) -> bool:
        return not self.code.lstrip().startswith(NO_RUN)


def doc_files() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def blocks() -> list[Block]:
    out = []
    for path in doc_files():
        text = path.read_text(encoding="utf-8")
        for m in FENCE.finditer(text):
            out.append(Block(path, text.count("\n", 0, m.start()) + 1, m.group(1)))
    return out


ALL = blocks()
RUNNABLE = [b for b in ALL if b.runs]
SKIPPED = [b for b in ALL if not b.runs]


@pytest.mark.parametrize("block", RUNNABLE, ids=[b.id for b in RUNNABLE])
def test_example_runs(block: Block, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Arrange: an empty working directory and data dir, so a block writes nothing into the checkout
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NQ_DATA__DATA_DIR", str(tmp_path / ".nq_data"))
    code = compile(block.code, block.id, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    namespace: dict[str, object] = {"__name__": "__docs__"}

    # Act: run it (a block with top-level await evaluates to a coroutine)
    result = eval(code, namespace)
    if inspect.iscoroutine(result):
        asyncio.run(result)


def test_no_run_blocks_say_why_and_are_few() -> None:
    # Arrange
    reasons = {b.id: b.code.lstrip().splitlines()[0][len(NO_RUN) :].strip(" —-:") for b in SKIPPED}

    # Assert: every skipped block states why; skipping stays the exception, not the rule
    missing = [k for k, v in reasons.items() if not v]
    assert not missing, f"no-run blocks without a reason: {missing}"
    assert len(SKIPPED) <= len(RUNNABLE) // 2, f"{len(SKIPPED)} no-run vs {len(RUNNABLE)} runnable: {reasons}"


@pytest.mark.parametrize("page", MUST_RUN)
def test_quant_pages_have_runnable_examples(page: str) -> None:
    assert any(b.path == ROOT / "docs" / page for b in RUNNABLE), f"docs/{page} has no runnable python block"
