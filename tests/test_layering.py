"""The layering that ``make lint`` checks: pyproject's ``[tool.importlinter]`` contracts hold on this tree
and bite when a module breaks them (a copy of the package with one import added must fail, naming the
contract), and the bottom modules import none of the layers above them at run time."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    """``lint-imports`` on the tree at ``root`` (its pyproject, its nq_ray and ui/nq_ray_ui), no cache."""
    env = {**os.environ, "PYTHONPATH": f"{root}{os.pathsep}{root / 'ui'}", "COLUMNS": "200"}  # no wrapping
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--no-logo", str(root / "pyproject.toml")],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def copy_tree(dest: Path) -> Path:
    """The Python files of nq_ray and nq_ray_ui, and pyproject.toml, under ``dest``."""
    only_py = shutil.ignore_patterns("__pycache__", "samples", "*.csv", "*.j2", "*.mako", "*.md")
    shutil.copytree(ROOT / "nq_ray", dest / "nq_ray", ignore=only_py)
    shutil.copytree(ROOT / "ui" / "nq_ray_ui", dest / "ui" / "nq_ray_ui", ignore=only_py)
    shutil.copy(ROOT / "pyproject.toml", dest / "pyproject.toml")
    return dest


def test_the_tree_keeps_every_contract() -> None:
    out = lint_imports(ROOT)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "0 broken" in out.stdout


@pytest.mark.parametrize(
    ("module", "line", "contract", "edge"),
    [
        (
            "nq_ray/backtest/engine.py",
            "import ray",
            "the core imports no Ray",
            "nq_ray.backtest.engine -> ray",
        ),
        (
            "nq_ray/domain/orders.py",
            "import sqlalchemy",
            "the core imports no Ray",
            "nq_ray.domain.orders -> sqlalchemy",
        ),
        (
            "nq_ray/config.py",
            "import nq_ray.llm.router",
            "nq_ray layers",
            "nq_ray.config -> nq_ray.llm.router",
        ),
        (
            "nq_ray/data/loader.py",
            "import nq_ray.store.cache",
            "nq_ray layers",
            "nq_ray.data.loader -> nq_ray.store.cache",
        ),
        (
            "nq_ray/risk/gate.py",
            "import nq_ray.store.records",
            "the core does not import the store",
            "nq_ray.risk.gate -> nq_ray.store.records",
        ),
        (
            "nq_ray/data/frames.py",
            "import httpx",
            "data reaches the network only",
            "nq_ray.data.frames -> httpx",
        ),
        ("nq_ray/tools/data.py", "import nq_ray_ui", "nq_ray does not import the UI", "-> nq_ray_ui"),
    ],
)
def test_a_broken_contract_fails_the_lint_naming_it(
    tmp_path: Path, module: str, line: str, contract: str, edge: str
) -> None:
    tree = copy_tree(tmp_path)
    path = tree / module
    path.write_text(path.read_text(encoding="utf-8") + f"\n{line}  # the synthetic violation\n", "utf-8")

    out = lint_imports(tree)

    assert out.returncode == 1, out.stdout + out.stderr
    assert "0 broken" not in out.stdout, out.stdout
    broken = out.stdout.split("Broken contracts", 1)[1]
    assert contract in broken, out.stdout
    assert edge in broken, out.stdout


@pytest.mark.parametrize(
    ("module", "absent"),
    [
        ("nq_ray.config", ("nq_ray.llm", "nq_ray.risk", "nq_ray.store", "nq_ray.data")),
        ("nq_ray.data", ("nq_ray.store", "redis", "sqlalchemy", "ray")),
        ("nq_ray.risk.limits", ("nq_ray.llm", "nq_ray.store")),
    ],
)
def test_a_bottom_module_loads_none_of_the_layers_above(module: str, absent: tuple[str, ...]) -> None:
    code = (
        f"import sys, {module}\n"
        f"loaded = sorted(m for m in sys.modules if m.split('.')[0] in {{'ray', 'redis', 'sqlalchemy'}}"
        f" or any(m == a or m.startswith(a + '.') for a in {absent!r}))\n"
        "print(loaded)\n"
        "sys.exit(1 if loaded else 0)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'ui'}"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, f"importing {module} loaded {out.stdout.strip()} {out.stderr}"
