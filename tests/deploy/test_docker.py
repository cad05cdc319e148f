"""``Dockerfile`` and ``Dockerfile.gpu`` install nq-ray with the same steps as ``make setup`` (the GPU image
adds the ``gpu`` extra), on the Python that ``pyproject.toml`` requires, with everything the Serve configs
reference copied in. (No Docker engine here: the build itself is not run.)"""

from __future__ import annotations

import re
import tomllib

import pytest

from tests.deploy.deployfiles import ROOT, SERVE_CONFIGS, load_yaml

DOCKERFILES = ["Dockerfile", "Dockerfile.gpu"]


def logical_lines(text: str) -> list[str]:
    """Lines with ``\\`` continuations joined and comments dropped."""
    out, cur = [], ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            cur += line[:-1] + " "
            continue
        out.append(cur + line)
        cur = ""
    return out


def normalise(cmd: str) -> str:
    return re.sub(r"\s+", " ", cmd.replace('"', "'")).strip()


def make_setup_steps() -> tuple[str, list[str]]:
    """The venv directory and the pip commands of the Makefile's ``$(STAMP)`` recipe (``make setup``)."""
    text = (ROOT / "Makefile").read_text(encoding="utf-8")
    venv = re.search(r"^VENV\s*\?=\s*(\S+)", text, re.M).group(1)
    recipe = re.search(r"^\$\(STAMP\):.*?\n((?:\t.*\n)+)", text, re.M).group(1)
    bin_dir = f"{venv}/bin"
    cmds = [
        normalise(line.strip().replace("$(BIN)", bin_dir))
        for line in recipe.splitlines()
        if "pip install" in line
    ]
    return venv, cmds


def docker_steps(name: str) -> tuple[dict[str, str], list[str], list[str]]:
    """(ARG defaults, RUN commands, other instructions) of a Dockerfile, ARGs substituted."""
    lines = logical_lines((ROOT / name).read_text(encoding="utf-8"))
    args = dict(re.findall(r"^ARG (\w+)=(\S+)", "\n".join(lines), re.M))
    runs = []
    for line in lines:
        if line.startswith("RUN "):
            cmd = line[4:]
            for k, v in args.items():
                cmd = cmd.replace("${" + k + "}", v).replace("$" + k, v)
            runs += [normalise(c) for c in cmd.split("&&")]
    return args, runs, [ln for ln in lines if not ln.startswith("RUN ")]


def extras(cmd: str) -> set[str]:
    m = re.search(r"\.\[([^\]]*)\]", cmd)
    return set(m.group(1).split(",")) if m else set()


def test_cpu_image_runs_exactly_the_make_setup_pip_steps() -> None:
    venv, make_cmds = make_setup_steps()
    _, runs, _ = docker_steps("Dockerfile")

    assert f"python -m venv {venv}" in runs
    assert [r for r in runs if "pip install" in r] == make_cmds


def test_gpu_image_runs_the_same_steps_plus_the_gpu_extra() -> None:
    _, make_cmds = make_setup_steps()
    _, runs, _ = docker_steps("Dockerfile.gpu")
    pip = [r for r in runs if "pip install" in r]

    assert len(pip) == len(make_cmds)
    for got, want in zip(pip, make_cmds, strict=True):
        assert extras(got) == extras(want) | ({"gpu"} if extras(want) else set())
        assert re.sub(r"\.\[[^\]]*\]", ".[]", got) == re.sub(r"\.\[[^\]]*\]", ".[]", want)


def test_gpu_extra_is_ray_serve_llm_from_pyproject() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]

    assert any(d.startswith("ray[serve,llm]") for d in project["optional-dependencies"]["gpu"])


@pytest.mark.parametrize("name", DOCKERFILES)
def test_base_image_is_the_python_pyproject_requires(name: str) -> None:
    _, _, other = docker_steps(name)
    base = next(ln for ln in other if ln.startswith("FROM "))
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"][
        "requires-python"
    ]
    minor = re.search(r">=\s*(\d+\.\d+)", requires).group(1)

    assert re.match(rf"FROM python:{re.escape(minor)}[-\s]", base + " "), base


@pytest.mark.parametrize("name", DOCKERFILES)
def test_image_copies_the_package_and_everything_the_serve_configs_name(name: str) -> None:
    _, _, other = docker_steps(name)
    copied = {
        src.rstrip("/").removeprefix("./")
        for ln in other
        if ln.startswith("COPY ")
        for src in [t for t in ln.split()[1:-1] if not t.startswith("--")]
    }
    named = {"nq_ray", "serve_configs", "pyproject.toml"}
    for path in SERVE_CONFIGS:
        for app in load_yaml(path)["applications"]:
            for rel in (app.get("args") or {}).get("llm_configs", []):
                named.add(rel.split("/")[0])

    assert named <= copied, named - copied


@pytest.mark.parametrize("name", DOCKERFILES)
def test_venv_is_on_path_in_the_working_directory(name: str) -> None:
    _, _, other = docker_steps(name)
    text = "\n".join(other)

    assert "WORKDIR /app" in text and "PATH=/app/.venv/bin:$PATH" in text
    assert re.search(r"EXPOSE .*\b6379\b.*\b8265\b.*\b8000\b.*\b8080\b", text)


def test_dockerignore_keeps_local_state_and_secrets_out_of_the_build_context() -> None:
    ignored = set((ROOT / ".dockerignore").read_text(encoding="utf-8").split())

    assert {".git", ".venv", ".nq_data", ".env"} <= ignored
