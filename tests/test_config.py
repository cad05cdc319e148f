"""Settings: env prefix, nesting, YAML with ${VAR:-default}, validation messages, journaled updates."""

import json
from pathlib import Path

import pytest

from nq_ray.config import Settings, expand_vars, load_settings
from nq_ray.errors import ConfigError


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for k in list(os.environ):
        if k.startswith("NQ_"):
            monkeypatch.delenv(k)


def test_defaults_are_the_embedded_setup() -> None:
    s = load_settings()
    assert (
        s.execution.mode == "paper" and s.cache.url is None and s.store_url.startswith("sqlite+aiosqlite:///")
    )


def test_nested_env_with_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NQ_CACHE__URL", "redis://127.0.0.1:6379/0")
    monkeypatch.setenv("NQ_DATA__OUTLIER_Z", "4.5")
    s = load_settings()
    assert s.cache.url == "redis://127.0.0.1:6379/0" and s.data.outlier_z == 4.5


def test_invalid_value_names_key_value_and_rule(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NQ_SERVE__PORT", "99999")
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert "serve.port='99999'" in info.value.message and "less than or equal to 65535" in info.value.message


def test_unknown_key_is_refused() -> None:
    with pytest.raises(ConfigError, match="risk.max_leverage"):
        load_settings(risk={"max_leverage": 3})


def test_bad_store_scheme_is_refused() -> None:
    with pytest.raises(ConfigError, match="postgresql\\+asyncpg"):
        load_settings(store={"url": "mysql://x"})


def test_yaml_file_with_var_expansion(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "nq.yaml"
    cfg.write_text(
        "cache:\n  url: ${REDIS_URL:-redis://127.0.0.1:6379/1}\nllm:\n  openai_api_key: ${OPENAI_KEY}\n"
    )
    monkeypatch.setenv("NQ_CONFIG_FILE", str(cfg))
    monkeypatch.setenv("OPENAI_KEY", "sk-test")
    monkeypatch.delenv("REDIS_URL", raising=False)
    s = load_settings()
    assert s.cache.url == "redis://127.0.0.1:6379/1"
    assert s.llm.api_keys["openai"].get_secret_value() == "sk-test"


def test_env_beats_yaml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "nq.yaml"
    cfg.write_text("serve:\n  port: 8100\n")
    monkeypatch.setenv("NQ_CONFIG_FILE", str(cfg))
    monkeypatch.setenv("NQ_SERVE__PORT", "8200")
    assert load_settings().serve.port == 8200


def test_missing_variable_without_default_is_an_error() -> None:
    with pytest.raises(ConfigError, match="NOPE_NOT_SET"):
        expand_vars("x: ${NOPE_NOT_SET}", env={})


def test_missing_config_file_is_an_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("NQ_CONFIG_FILE", str(tmp_path / "nope.yaml"))
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings()


def test_secrets_never_appear_in_dumps(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NQ_LLM__GROQ_API_KEY", "gsk-very-secret")
    s = load_settings()
    assert "gsk-very-secret" not in json.dumps(s.redacted()) and "gsk-very-secret" not in repr(s)


def test_update_validates_the_merged_result_and_journals(tmp_path: Path) -> None:
    s = Settings(data={"data_dir": tmp_path})
    journal = tmp_path / "journal.jsonl"
    new = s.update({"risk": {"account_size_usd": 50_000}, "llm": {"openai_api_key": "sk-x"}}, journal=journal)
    assert new.risk.account_size_usd == 50_000 and s.risk.account_size_usd == 100_000
    entry = json.loads(journal.read_text().splitlines()[-1])
    assert entry["patch"]["risk"] == {"account_size_usd": 50_000}
    assert entry["patch"]["llm"]["openai_api_key"] == "**********"


def test_rejected_update_changes_nothing_and_is_not_journaled(tmp_path: Path) -> None:
    s = Settings(data={"data_dir": tmp_path})
    journal = tmp_path / "journal.jsonl"
    with pytest.raises(ConfigError, match="serve.port"):
        s.update({"serve": {"port": 0}}, journal=journal)
    assert s.serve.port == 8000 and not journal.exists()


def test_live_patch_takes_live_keys_and_names_every_refused_one() -> None:
    from nq_ray.config import live_patch

    s = load_settings()
    ok = live_patch(
        s, {"risk": {"limits": {"max_total_contracts": 3}}, "llm": {"providers": {"groq": {"priority": 7}}}}
    )
    merged = s.merged(ok)
    assert merged.risk.limits.max_total_contracts == 3
    assert {p.name: p.priority for p in merged.llm.providers}["groq"] == 7
    assert s.risk.limits.max_total_contracts != 3  # the original is untouched
    with pytest.raises(ConfigError) as info:
        live_patch(s, {"serve": {"port": 1}, "risk": {"account_size_usd": 1, "limits": {"x": 1}}, "zzz": 1})
    keys = {e["key"] for e in info.value.details["errors"]}
    assert keys == {"serve", "risk.account_size_usd", "zzz"}  # risk.limits.x is left to validation
    with pytest.raises(ConfigError):
        s.merged(live_patch(s, {"risk": {"limits": {"x": 1}}}))


def test_tool_settings_are_validated() -> None:
    with pytest.raises(ConfigError, match="tools.max_running_jobs"):
        load_settings(tools={"max_running_jobs": 0})


# ---- auth token, URL passwords, data roots ----------------------------------------------------------


@pytest.mark.parametrize("blank", ["", "   ", "\t\n"])
def test_an_empty_or_blank_token_is_no_token(monkeypatch: pytest.MonkeyPatch, blank: str) -> None:
    monkeypatch.setenv("NQ_MCP__AUTH_TOKEN", blank)
    assert load_settings().mcp.auth_token is None
    assert Settings(mcp={"auth_token": blank}).mcp.auth_token is None


def test_a_blank_token_does_not_open_a_non_loopback_bind(monkeypatch: pytest.MonkeyPatch) -> None:
    from nq_ray.serve.runtime import check_bind

    monkeypatch.setenv("NQ_MCP__AUTH_TOKEN", "")
    with pytest.raises(ConfigError, match="without a bearer token"):
        check_bind(load_settings(serve={"host": "0.0.0.0"}))


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql+asyncpg://user:secret@host/db", "postgresql+asyncpg://user:***@host/db"),
        (
            "postgresql+asyncpg://user:p@ss:w0rd@db.internal:5432/nq",
            "postgresql+asyncpg://user:***@db.internal:5432/nq",
        ),
        ("redis://:pw@cache:6379/0", "redis://:***@cache:6379/0"),
        ("rediss://default:tok3n@cache", "rediss://default:***@cache"),
        ("postgresql+asyncpg://user@host/db", "postgresql+asyncpg://user@host/db"),  # no password
        ("http://host:8080/path@x", "http://host:8080/path@x"),  # a port, not a password
        ("sqlite+aiosqlite:////tmp/nq.db", "sqlite+aiosqlite:////tmp/nq.db"),
        ("store redis://a:b@c, db postgresql://d:e@f/g", "store redis://a:***@c, db postgresql://d:***@f/g"),
    ],
)
def test_redact_url_hides_only_the_password(url: str, shown: str) -> None:
    from nq_ray.config import redact_url

    assert redact_url(url) == shown


STORE_URL = "postgresql+asyncpg://nq:s3cret-pg@db.internal:5432/nq"
CACHE_URL = "redis://:s3cret-redis@cache.internal:6379/0"


def test_redacted_settings_hide_url_passwords() -> None:
    s = Settings(store={"url": STORE_URL}, cache={"url": CACHE_URL})
    shown = s.redacted()
    assert shown["store"]["url"] == "postgresql+asyncpg://nq:***@db.internal:5432/nq"
    assert shown["cache"]["url"] == "redis://:***@cache.internal:6379/0"
    assert "s3cret" not in json.dumps(shown)
    assert s.store.url == STORE_URL  # the settings themselves keep the real URL


def test_the_journal_hides_url_passwords(tmp_path: Path) -> None:
    s = Settings(data={"data_dir": tmp_path})
    journal = tmp_path / "journal.jsonl"
    s.update({"store": {"url": STORE_URL}, "cache": {"url": CACHE_URL}}, journal=journal)
    line = journal.read_text().splitlines()[-1]
    assert "s3cret" not in line
    assert json.loads(line)["patch"]["store"]["url"] == "postgresql+asyncpg://nq:***@db.internal:5432/nq"


def test_data_roots_default_to_the_data_dir_and_the_samples(tmp_path: Path) -> None:
    from nq_ray.config import SAMPLES_DIR

    s = Settings(data={"data_dir": tmp_path / "data"})
    assert s.data.file_roots() == [(tmp_path / "data").resolve(), SAMPLES_DIR.resolve()]
    assert (SAMPLES_DIR / "NQ_5min.csv").is_file()
    other = Settings(data={"roots": [str(tmp_path / "x"), str(tmp_path / "y")]})
    assert other.data.file_roots() == [(tmp_path / "x").resolve(), (tmp_path / "y").resolve()]


def test_a_live_patch_may_not_point_the_default_source_outside_the_data_roots(tmp_path: Path) -> None:
    from nq_ray.config import live_patch

    s = Settings(data={"data_dir": tmp_path})
    (tmp_path / "nq.csv").write_text("datetime,open,high,low,close,volume\n")
    assert live_patch(s, {"data": {"default_source": f"csv:{tmp_path / 'nq.csv'}"}})
    with pytest.raises(ConfigError) as info:
        live_patch(s, {"data": {"default_source": "csv:/etc/passwd"}})
    (err,) = info.value.details["errors"]
    assert err["key"] == "data.default_source" and "data.roots" in err["allowed"]
