"""Readers shared by the deployment-file tests: the env names ``Settings`` reads (derived from the model,
never hand-listed), compose-style ``${VAR:-default}`` interpolation, and the repository's files."""

from __future__ import annotations

import re
import types
import typing
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from nq_ray.config import Settings

ROOT = Path(__file__).resolve().parents[2]
SERVE_CONFIGS = sorted((ROOT / "serve_configs").glob("*.yaml"))
PREFIX = Settings.model_config["env_prefix"]
DELIM = Settings.model_config["env_nested_delimiter"]


def _unwrap(ann: Any) -> Any:
    """``X | None`` → ``X``; other annotations unchanged."""
    if typing.get_origin(ann) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(ann) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return ann


def _is_model(ann: Any) -> bool:
    return isinstance(ann, type) and issubclass(ann, BaseModel)


def leaf_env_names(model: type[BaseModel] = Settings, prefix: str = PREFIX) -> list[str]:
    """Every env name that sets one leaf of ``model`` (nested models expanded; dicts and lists are leaves
    that take JSON)."""
    out: list[str] = []
    for name, field in model.model_fields.items():
        ann = _unwrap(field.annotation)
        env = f"{prefix}{name.upper()}"
        out += leaf_env_names(ann, env + DELIM) if _is_model(ann) else [env]
    return out


def extra_env_names() -> set[str]:
    """``NQ_*`` names ``nq_ray/config.py`` reads from ``os.environ`` itself (e.g. ``NQ_CONFIG_FILE``)."""
    text = (ROOT / "nq_ray" / "config.py").read_text(encoding="utf-8")
    return set(re.findall(r"environ\.get\(\s*[\"'](" + PREFIX + r"[A-Z0-9_]+)[\"']", text))


def is_settings_env(name: str) -> bool:
    """True when ``name`` is an env var ``Settings`` reads: a leaf, or one key of a dict-valued leaf
    (``NQ_LLM__API_KEYS__OPENAI``), or one of ``extra_env_names()``."""
    if name in extra_env_names():
        return True
    if not name.upper().startswith(PREFIX):
        return False
    parts = name[len(PREFIX) :].lower().split(DELIM.lower())
    model: Any = Settings
    for i, part in enumerate(parts):
        if not _is_model(model) or part not in model.model_fields:
            return False
        ann = _unwrap(model.model_fields[part].annotation)
        rest = parts[i + 1 :]
        if _is_model(ann):
            model = ann
            continue
        if typing.get_origin(ann) is dict:
            return len(rest) <= 1 and all(rest)
        return not rest
    return False


_VAR = re.compile(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}")


def interpolate(value: str, env: dict[str, str] | None = None) -> str:
    """Compose interpolation: ``${VAR}``, ``${VAR:-default}``, ``${VAR:?error}`` (→ ``<VAR>`` when unset),
    and ``$$`` → ``$``."""
    env = env or {}

    def repl(m: re.Match[str]) -> str:
        name, op, arg = m.group(1), m.group(2), m.group(3)
        if env.get(name):
            return env[name]
        if op and op.endswith("-"):
            return arg
        return f"<{name}>"

    return _VAR.sub(repl, value).replace("$$", "$")


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def load_all(path: Path) -> list[Any]:
    return [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d is not None]


def env_file_entries(path: Path) -> list[tuple[str, str, bool]]:
    """``(name, value, active)`` for each ``NAME=value`` line of an env file, commented (``# NAME=...``)
    or not; trailing ``# comments`` are dropped."""
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        m = re.match(r"^(#\s*)?([A-Z][A-Z0-9_]*)=(.*)$", line.strip())
        if m:
            value = re.split(r"\s+#\s", m.group(3), maxsplit=1)[0].strip()
            out.append((m.group(2), value, m.group(1) is None))
    return out
