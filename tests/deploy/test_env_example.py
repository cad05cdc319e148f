"""``.env.example`` names every setting ``Settings`` reads (derived from the model), only those among its
``NQ_*`` names, with example values that validate, and documents every variable the compose files use."""

from __future__ import annotations

import re

import pytest

from nq_ray.config import load_settings
from tests.deploy.deployfiles import ROOT, env_file_entries, extra_env_names, is_settings_env, leaf_env_names

ENTRIES = env_file_entries(ROOT / ".env.example")
NAMES = {name for name, _, _ in ENTRIES}


def test_every_setting_is_listed() -> None:
    wanted = set(leaf_env_names()) | extra_env_names()
    # a dict-valued setting is listed whole (JSON) or per key (NQ_LLM__API_KEYS__OPENAI)
    missing = {w for w in wanted if w not in NAMES and not any(n.startswith(w + "__") for n in NAMES)}

    assert not missing, f"add to .env.example: {sorted(missing)}"


def test_every_nq_name_listed_is_a_setting() -> None:
    unknown = sorted(n for n in NAMES if n.startswith("NQ_") and not is_settings_env(n))

    assert not unknown


@pytest.mark.parametrize(
    ("name", "value"),
    [(n, v) for n, v, _ in ENTRIES if n.startswith("NQ_") and v and n != "NQ_CONFIG_FILE"],
    ids=lambda x: x if isinstance(x, str) and x.startswith("NQ_") else "",
)
def test_example_value_validates(name: str, value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(name, value)

    load_settings()


def test_active_lines_validate_together(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value, active in ENTRIES:
        if active and name.startswith("NQ_"):
            monkeypatch.setenv(name, value)

    load_settings()


def test_every_compose_variable_is_documented() -> None:
    text = (ROOT / "docker-compose.yml").read_text() + (ROOT / "docker-compose.gpu.yml").read_text()
    used = set(re.findall(r"(?<!\$)\$\{([A-Z][A-Z0-9_]*)", text)) - {"SERVE_CONFIG"}

    assert used <= NAMES, f"document in .env.example: {sorted(used - NAMES)}"
