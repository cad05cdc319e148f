"""Rule packs on disk: the bundled YAML packs (``nq_ray/propfirm/packs/*.yaml``) and the user's own.

A pack is one YAML file named ``<name>.yaml`` whose ``name:`` is that same slug (docs/propfirm.md has the
format with a complete example). Users add packs without code: a file in ``settings.propfirm.packs_dir``
(``extra_dirs`` here). A malformed pack fails at load with the file, the line (from the YAML node marks)
and the rule named; an unknown name lists the known ones; two packs of one name are refused, not merged.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from nq_ray.errors import ConfigError, InvalidArgumentError
from nq_ray.propfirm.model import RulePack

BUNDLED_DIR = Path(__file__).resolve().parent / "packs"
_SUFFIXES = (".yaml", ".yml")


def _pack_files(extra_dirs: Sequence[Path]) -> dict[str, Path]:
    """Every pack file by name (its stem); two files of one name are refused."""
    found: dict[str, Path] = {}
    for folder in (BUNDLED_DIR, *[Path(d).expanduser() for d in extra_dirs]):
        if not folder.is_dir():
            if folder != BUNDLED_DIR:
                raise ConfigError(
                    f"propfirm packs_dir {folder} is not a directory; create it or unset propfirm.packs_dir",
                    file=str(folder),
                )
            continue
        for path in sorted(p for p in folder.iterdir() if p.suffix in _SUFFIXES and p.is_file()):
            if path.stem in found and found[path.stem].resolve() != path.resolve():
                raise ConfigError(
                    f"two packs named {path.stem!r}: {found[path.stem]} and {path}; rename one (file name "
                    "and its name: field) — packs are never merged",
                    file=str(path),
                )
            found[path.stem] = path
    return found


def known_pack_names(*, extra_dirs: Sequence[Path] = ()) -> list[str]:
    """The names of every pack that can be loaded (bundled and in ``extra_dirs``), sorted."""
    return sorted(_pack_files(extra_dirs))


def settings_pack(name: str, settings: Any) -> RulePack:
    """``load_pack(name)`` with the user's packs (``settings.propfirm.packs_dir``) searched too."""
    d = settings.propfirm.packs_dir
    return load_pack(name, extra_dirs=[Path(d)] if d else [])


def load_pack(name_or_path: str | Path, *, extra_dirs: Sequence[Path] = ()) -> RulePack:
    """The pack named ``name_or_path`` (e.g. ``topstep-50k``), or the pack in that YAML file.

    Raises ``InvalidArgumentError`` for an unknown name (listing the known ones) and ``ConfigError`` for a
    malformed pack (file, line and rule in the message and in ``details``)."""
    text = str(name_or_path)
    if isinstance(name_or_path, Path) or text.endswith(_SUFFIXES) or "/" in text or "\\" in text:
        path = Path(text).expanduser()
        if not path.is_file():
            raise InvalidArgumentError(f"pack file {path} does not exist", file=str(path))
        return _load_file(path)
    files = _pack_files(extra_dirs)
    if text not in files:
        known = ", ".join(sorted(files)) or "(none)"
        raise InvalidArgumentError(
            f"unknown prop-firm pack {text!r}; known packs: {known} "
            "(or add <name>.yaml to propfirm.packs_dir)",
            pack=text,
            known=sorted(files),
        )
    return _load_file(files[text])


def list_packs(*, extra_dirs: Sequence[Path] = ()) -> list[dict[str, Any]]:
    """One row per pack: name, firm, program, phase, account size, file (each pack is validated)."""
    rows = []
    for name, path in sorted(_pack_files(extra_dirs).items()):
        pack = _load_file(path)
        rows.append(
            {
                "name": name,
                "firm": pack.firm,
                "program": pack.program,
                "phase": pack.phase,
                "account_size_usd": pack.account_size_usd,
                "file": str(path),
            }
        )
    return rows


# --------------------------------------------------------------------------------------------------
# reading one file, with line numbers for every error


def _load_file(path: Path) -> RulePack:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the pack ({exc})", file=str(path)) from None
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        raise ConfigError(
            f"{path}:{line}: not valid YAML ({exc.problem or exc})", file=str(path), line=line, rule=None
        ) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})", file=str(path)) from None
    if not isinstance(data, dict) or root is None:
        raise ConfigError(f"{path}:1: a pack is a mapping (name:, firm:, rules: ...)", file=str(path), line=1)
    _refuse_duplicate_keys(path, root, data)
    try:
        pack = RulePack.model_validate(data)
    except ValidationError as exc:
        raise _located(path, root, data, exc) from None
    if pack.name != path.stem:
        raise ConfigError(
            f"{path}:{_line(_find(root, ('name',)))}: the pack's name {pack.name!r} must be its file name "
            f"{path.stem!r}",
            file=str(path),
            line=_line(_find(root, ("name",))),
        )
    return pack


def _walk(node: yaml.Node) -> Iterator[yaml.MappingNode]:
    if isinstance(node, yaml.MappingNode):
        yield node
        for k, v in node.value:
            yield from _walk(k)
            yield from _walk(v)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            yield from _walk(item)


def _refuse_duplicate_keys(path: Path, root: yaml.Node, data: dict[str, Any]) -> None:
    """YAML keeps the last of two equal keys; a pack refuses them (two values would be merged silently)."""
    for mapping in _walk(root):
        seen: set[str] = set()
        for key, _ in mapping.value:
            k = str(key.value)
            if k in seen:
                line = key.start_mark.line + 1
                rule = _rule_at_line(root, data, line)
                raise ConfigError(
                    f"{path}:{line}: key {k!r} appears twice in one mapping"
                    + (f" (rule {rule})" if rule else "")
                    + "; keep one",
                    file=str(path),
                    line=line,
                    rule=rule,
                )
            seen.add(k)


def _find(root: yaml.Node, loc: Sequence[Any]) -> yaml.Node:
    """The deepest node along a pydantic error location (keys it cannot follow, like a union tag, are
    skipped)."""
    node = root
    for part in loc:
        if isinstance(node, yaml.MappingNode) and isinstance(part, str):
            nxt = next((v for k, v in node.value if str(k.value) == part), None)
            if nxt is None:
                continue
            node = nxt
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
            node = node.value[part]
    return node


def _line(node: yaml.Node) -> int:
    return int(node.start_mark.line) + 1


def _rules_nodes(root: yaml.Node) -> list[yaml.Node]:
    rules = _find(root, ("rules",))
    return list(rules.value) if isinstance(rules, yaml.SequenceNode) else []


def _rule_name(data: dict[str, Any], index: int) -> str | None:
    rules = data.get("rules")
    if isinstance(rules, list) and 0 <= index < len(rules) and isinstance(rules[index], dict):
        name = rules[index].get("name")
        return str(name) if name is not None else f"#{index + 1}"
    return None


def _rule_at_line(root: yaml.Node, data: dict[str, Any], line: int) -> str | None:
    for i, node in enumerate(_rules_nodes(root)):
        if node.start_mark.line + 1 <= line <= node.end_mark.line + 1:
            return _rule_name(data, i)
    return None


def _located(path: Path, root: yaml.Node, data: dict[str, Any], exc: ValidationError) -> ConfigError:
    """The first validation error with its file, line and rule."""
    err = exc.errors(include_url=False)[0]
    loc = tuple(err.get("loc", ()))
    msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
    rule: str | None = None
    node = _find(root, loc)
    if len(loc) >= 2 and loc[0] == "rules" and isinstance(loc[1], int):
        rule = _rule_name(data, loc[1])
    elif not loc:  # a pack-wide check: point at the first rule it names
        hits = []
        for i in range(len(_rules_nodes(root))):
            name = _rule_name(data, i)
            for pattern in (f"rule {name}", f"rules {name}"):
                if name and (at := msg.find(pattern)) >= 0:
                    hits.append((at, i, name))
        if hits:  # the rule the message names first
            _, i, rule = min(hits)
            node = _rules_nodes(root)[i]
    line = _line(node)
    field = ".".join(str(p) for p in loc)
    where = f" (rule {rule})" if rule else ""
    return ConfigError(
        f"{path}:{line}: {field + ': ' if field else ''}{msg}{where}",
        file=str(path),
        line=line,
        rule=rule,
        field=field or None,
    )
