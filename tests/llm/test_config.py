"""The ``llm`` settings section: the provider list, per-name keys/URLs from the environment, validation."""

from __future__ import annotations

import pytest
from pydantic import Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from nq_ray.llm.config import LLMConfig, ProviderConfig


class _Settings(BaseSettings):
    """The same env wiring as ``nq_ray.config.Settings`` (prefix NQ_, nested '__')."""

    model_config = SettingsConfigDict(env_prefix="NQ_", env_nested_delimiter="__", extra="ignore")
    llm: LLMConfig = Field(default_factory=LLMConfig)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for k in list(os.environ):
        if k.startswith("NQ_"):
            monkeypatch.delenv(k)


def test_default_chain_is_serve_ollama_openai_groq_rules() -> None:
    cfg = LLMConfig()

    chain = sorted(cfg.resolved(), key=lambda p: p.priority)

    assert [p.name for p in chain] == ["serve", "ollama", "openai", "groq", "rules"]
    assert chain[1].model == "phi3:mini" and chain[-1].is_llm is False
    assert cfg.health_interval_s == 30 and all(p.api_key is None for p in chain)


def test_keys_urls_and_models_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NQ_LLM__API_KEYS__OPENAI", "sk-from-env")
    monkeypatch.setenv("NQ_LLM__BASE_URLS__SERVE", "http://gpu-node:8000/llm/v1/")
    monkeypatch.setenv("NQ_LLM__MODELS__OLLAMA", "llama3.1:8b")
    monkeypatch.setenv("NQ_LLM__HEALTH_INTERVAL_S", "10")

    cfg = _Settings().llm
    by_name = {p.name: p for p in cfg.resolved()}

    assert by_name["openai"].api_key == SecretStr("sk-from-env")
    assert by_name["serve"].base_url == "http://gpu-node:8000/llm/v1"
    assert by_name["ollama"].model == "llama3.1:8b" and cfg.health_interval_s == 10
    assert "sk-from-env" not in repr(cfg) and "sk-from-env" not in cfg.model_dump_json()


def test_the_whole_provider_list_can_be_given_as_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "NQ_LLM__PROVIDERS",
        '[{"name": "gpu", "kind": "external", "base_url": "https://llm.example/v1", "model": "qwen",'
        ' "api_key": "k", "priority": 1, "tasks": ["technical_analysis"], "timeout_s": 20}]',
    )

    cfg = _Settings().llm

    names = [p.name for p in cfg.resolved()]
    assert names == ["gpu", "rules"] and cfg.providers[0].tasks == ["technical_analysis"]


@pytest.mark.parametrize(
    ("providers", "message"),
    [
        ([{"name": "a", "kind": "serve", "model": "m"}], "needs base_url"),
        ([{"name": "A b", "kind": "rules", "model": "m"}], "lower case"),
        ([{"name": "a", "kind": "serve", "base_url": "ftp://x", "model": "m"}], "http"),
        (
            [
                {"name": "a", "kind": "serve", "base_url": "http://x/v1", "model": "m"},
                {"name": "a", "kind": "ollama", "base_url": "http://y/v1", "model": "m"},
            ],
            "unique",
        ),
        (
            [
                {"name": "r", "kind": "rules", "model": "m", "priority": 1},
                {"name": "a", "kind": "serve", "base_url": "http://x/v1", "model": "m", "priority": 5},
            ],
            "must be last",
        ),
    ],
)
def test_invalid_chains_are_rejected_with_a_clear_message(
    providers: list[dict[str, object]], message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        LLMConfig.model_validate({"providers": providers})


def test_flat_per_provider_names_and_provider_names_are_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NQ_LLM__GROQ_API_KEY", "gsk-flat")
    monkeypatch.setenv("NQ_LLM__SERVE_URL", "http://gpu:8000/llm/v1")

    cfg = _Settings().llm
    names = LLMConfig.model_validate({"providers": ["ollama", "groq", "rules"]})

    by_name = {p.name: p for p in cfg.resolved()}
    assert (
        by_name["groq"].api_key == SecretStr("gsk-flat")
        and by_name["serve"].base_url == "http://gpu:8000/llm/v1"
    )
    assert [(p.name, p.priority) for p in names.providers] == [("ollama", 10), ("groq", 20), ("rules", 1000)]


def test_overrides_for_providers_not_in_the_chain_are_ignored() -> None:
    cfg = LLMConfig(api_keys={"nope": SecretStr("x")})

    assert "nope" not in {p.name for p in cfg.resolved()}


def test_structured_mode_defaults_by_kind_and_can_be_overridden() -> None:
    serve = ProviderConfig(name="s", kind="serve", base_url="http://x/v1", model="m")
    ext = ProviderConfig(
        name="e", kind="external", base_url="http://x/v1", model="m", structured_mode="json_schema"
    )

    assert serve.effective_structured_mode == "json_schema" and ext.effective_structured_mode == "json_schema"
    assert ProviderConfig(
        name="o", kind="ollama", base_url="http://x/v1", model="m"
    ).effective_structured_mode == ("json_object")


def test_the_yaml_example_in_the_docs_is_a_valid_llm_section() -> None:
    import re
    from pathlib import Path

    import yaml

    from nq_ray.config import expand_vars

    doc = (Path(__file__).resolve().parents[2] / "docs" / "llm.md").read_text(encoding="utf-8")
    block = next(b for b in re.findall(r"```yaml\n(.*?)```", doc, re.DOTALL) if b.startswith("llm:"))

    cfg = LLMConfig.model_validate(yaml.safe_load(expand_vars(block, env={}))["llm"])

    by_name = {p.name: p for p in cfg.resolved()}
    assert set(by_name) == {"ollama", "openai", "groq", "gpu-east", "serve", "rules"}
    assert by_name["gpu-east"].tasks == ["technical_analysis", "pattern_recognition"]
    assert by_name["openai"].api_key is not None and not by_name["openai"].api_key.get_secret_value()
