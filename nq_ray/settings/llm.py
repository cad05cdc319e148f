"""The ``llm`` section of ``Settings``: a list of providers and the router's policies.

Every provider is one ``ProviderConfig`` (``name``, ``kind``, ``base_url``, ``model``, ``api_key``,
``priority`` — lower first —, ``tasks``, ``timeout_s``, ...). Keys and URLs can also be set per provider
name without rewriting the list: ``NQ_LLM__API_KEYS__OPENAI=sk-...``, ``NQ_LLM__BASE_URLS__SERVE=http://gpu:8000/llm/v1``,
``NQ_LLM__MODELS__OLLAMA=llama3.1:8b``. A provider that needs a key and has none is skipped (reported as
"not configured"); the deterministic rules analyst is always last in the chain. Overrides naming a
provider that is not in the list are ignored (a key for a provider you do not use is harmless).

Defined here, below ``nq_ray.config`` (which embeds ``LLMConfig``); import it from ``nq_ray.llm.config``.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

ProviderKind = Literal["serve", "ollama", "openai", "groq", "external", "rules"]
StructuredMode = Literal["json_schema", "json_object", "none"]
ALL_TASKS = "*"
TASK_TYPES: tuple[str, ...] = (
    "technical_analysis",
    "pattern_recognition",
    "market_summary",
    "risk_assessment",
    "execution",
    "order_management",
    "general",
)
_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,39}$")
_FLAT = re.compile(r"^(?P<name>[a-z][a-z0-9]*)_(?P<what>api_key|base_url|url|model)$")

# Structured-output capability by backend: vLLM guided decoding and OpenAI structured outputs take a
# JSON schema; the others are asked for JSON mode and validated here.
DEFAULT_STRUCTURED_MODE: dict[str, StructuredMode] = {
    "serve": "json_schema",
    "openai": "json_schema",
    "ollama": "json_object",
    "groq": "json_object",
    "external": "json_object",
    "rules": "none",
}
KEY_REQUIRED: frozenset[str] = frozenset({"openai", "groq", "external"})


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class ProviderConfig(_Section):
    """One backend in the chain."""

    name: str = Field(description="unique id, lower case (e.g. 'serve', 'ollama', 'gpu-east')")
    kind: ProviderKind
    base_url: str | None = Field(default=None, description="OpenAI-compatible base URL (ends in /v1)")
    model: str
    api_key: SecretStr | None = None
    priority: int = Field(default=100, ge=0, description="lower is tried first")
    task_priorities: dict[str, int] = Field(
        default_factory=dict, description="per-task overrides of priority, e.g. {risk_assessment: 5}"
    )
    tasks: list[str] = Field(default_factory=lambda: [ALL_TASKS], description="task types served; '*' = all")
    timeout_s: float = Field(default=30.0, gt=0, description="per-request timeout")
    max_concurrency: int = Field(default=8, ge=1, description="requests in flight at once")
    max_retries: int = Field(default=2, ge=0, le=10, description="same-provider retries on 5xx / 429")
    connect_retries: int = Field(
        default=0, ge=0, le=5, description="same-provider retries on refused connections / timeouts"
    )
    cost_per_1k_prompt_usd: float = Field(default=0.0, ge=0)
    cost_per_1k_completion_usd: float = Field(default=0.0, ge=0)
    structured_mode: StructuredMode | None = Field(
        default=None, description="json_schema | json_object | none; default by kind"
    )
    supports_streaming: bool = True
    temperature: float = Field(default=0.2, ge=0, le=2)
    max_tokens: int | None = Field(default=None, gt=0)
    enabled: bool = True

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not _NAME.match(v):
            raise ValueError(
                "must be lower case letters, digits, '-' or '_' (max 40), starting with a letter"
            )
        return v

    @field_validator("base_url")
    @classmethod
    def _url(cls, v: str | None) -> str | None:
        if v is not None and not v.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return v.rstrip("/") if v else v

    @model_validator(mode="after")
    def _needs_url(self) -> ProviderConfig:
        if self.kind not in ("rules", "groq") and not self.base_url:
            raise ValueError(f"provider {self.name!r} of kind {self.kind!r} needs base_url")
        return self

    @property
    def effective_structured_mode(self) -> StructuredMode:
        return self.structured_mode or DEFAULT_STRUCTURED_MODE[self.kind]

    @property
    def is_llm(self) -> bool:
        return self.kind != "rules"

    def serves(self, task: str) -> bool:
        return ALL_TASKS in self.tasks or task in self.tasks

    def priority_for(self, task: str) -> int:
        return self.task_priorities.get(task, self.priority)


class BreakerConfig(_Section):
    """Per-provider circuit breaker: open after ``failure_threshold`` consecutive failures, let one probe
    through (half-open) after ``reset_timeout_s``; a good probe closes it, a bad one re-opens it."""

    failure_threshold: int = Field(default=3, ge=1)
    reset_timeout_s: float = Field(default=30.0, gt=0)


class RulesConfig(_Section):
    """Where the rules analyst reads bars when the caller passes none."""

    symbol: str = "NQ"
    interval: str = "5m"
    source: str = "sample"
    lookback_bars: int = Field(default=600, ge=60)


SERVE_LLM_PATH = "/llm/v1"
DEFAULT_SERVE_URL = "http://127.0.0.1:8000" + SERVE_LLM_PATH


def serve_llm_url(host: str, port: int) -> str:
    """The LLM app of the Serve instance at ``host:port`` (a wildcard host is reached on loopback)."""
    shown = "127.0.0.1" if host in ("0.0.0.0", "::", "*") else host
    if ":" in shown and not shown.startswith("["):
        shown = f"[{shown}]"
    return f"http://{shown}:{port}{SERVE_LLM_PATH}"


def _default_providers() -> list[ProviderConfig]:
    return [
        ProviderConfig(
            name="serve",
            kind="serve",
            base_url=DEFAULT_SERVE_URL,
            model="qwen2.5-1.5b-instruct",
            priority=10,
            timeout_s=30,
        ),
        ProviderConfig(
            name="ollama",
            kind="ollama",
            base_url="http://127.0.0.1:11434/v1",
            model="phi3:mini",
            priority=20,
            timeout_s=60,
            max_concurrency=2,
        ),
        ProviderConfig(
            name="openai",
            kind="openai",
            base_url="https://api.openai.com/v1",
            model="gpt-4o-mini",
            priority=30,
            cost_per_1k_prompt_usd=0.00015,
            cost_per_1k_completion_usd=0.0006,
        ),
        ProviderConfig(
            name="groq",
            kind="groq",
            base_url=None,
            model="llama-3.3-70b-versatile",
            priority=40,
            cost_per_1k_prompt_usd=0.00059,
            cost_per_1k_completion_usd=0.00079,
        ),
        ProviderConfig(name="rules", kind="rules", model="nq-rules-v1", priority=1000),
    ]


class LLMConfig(_Section):
    """The ``llm`` section: the provider chain and the router's policies."""

    providers: list[ProviderConfig] = Field(
        default_factory=_default_providers, description="the chain; lower priority first, rules last"
    )
    api_keys: dict[str, SecretStr] = Field(
        default_factory=dict, description="keys by provider name (NQ_LLM__API_KEYS__OPENAI=...)"
    )
    base_urls: dict[str, str] = Field(default_factory=dict, description="URL overrides by provider name")
    models: dict[str, str] = Field(default_factory=dict, description="model overrides by provider name")
    health_interval_s: float = Field(default=30.0, ge=0, description="0 disables background health checks")
    health_timeout_s: float = Field(default=3.0, gt=0)
    breaker: BreakerConfig = Field(default_factory=BreakerConfig)
    deadline_s: float = Field(
        default=90.0, gt=0, description="overall deadline of one chat() across failover"
    )
    backoff_s: float = Field(default=0.25, ge=0, description="first retry back-off; doubles, with jitter")
    backoff_max_s: float = Field(default=4.0, ge=0)
    max_retry_after_s: float = Field(
        default=10.0, ge=0, description="a 429 asking to wait longer than this fails over instead"
    )
    load_balancing: Literal["round_robin", "least_latency"] = "round_robin"
    cache: Literal["off", "memory", "store"] = Field(
        default="off",
        description="response cache for replays: memory (LRU) or store (llm_cache table; "
        "build the router with nq_ray.llm.stored.open_store_router)",
    )
    cache_max_items: int = Field(default=512, gt=0)
    rules: RulesConfig = Field(default_factory=RulesConfig)

    @model_validator(mode="before")
    @classmethod
    def _flat_names(cls, data: object) -> object:
        """Accept the flat per-provider form too: ``openai_api_key``, ``serve_url``/``serve_base_url``,
        ``ollama_model`` (so ``NQ_LLM__OPENAI_API_KEY`` works), and ``providers`` given as names."""
        if not isinstance(data, dict):
            return data
        out = dict(data)
        targets = {"api_key": "api_keys", "url": "base_urls", "base_url": "base_urls", "model": "models"}
        for key in list(out):
            m = _FLAT.match(str(key).lower())
            if m and key not in cls.model_fields:
                target = targets[m.group("what")]
                value = out.pop(key)
                if value is not None:
                    out[target] = {**dict(out.get(target) or {}), m.group("name"): value}
        providers = out.get("providers")
        if isinstance(providers, list) and providers and all(isinstance(p, str) for p in providers):
            defaults = {p.name: p for p in _default_providers()}
            unknown = [p for p in providers if p not in defaults]
            if unknown:
                raise ValueError(f"unknown provider names {unknown}; known: {sorted(defaults)}")
            out["providers"] = [
                defaults[p].model_copy(update={"priority": (i + 1) * 10 if p != "rules" else 1000})
                for i, p in enumerate(providers)
            ]
        return out

    @field_validator("api_keys", "base_urls", "models", mode="before")
    @classmethod
    def _lower_keys(cls, v: object) -> object:
        return {str(k).lower(): x for k, x in v.items()} if isinstance(v, dict) else v

    @model_validator(mode="after")
    def _chain(self) -> LLMConfig:
        names = [p.name for p in self.providers]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"provider names must be unique; repeated: {', '.join(dupes)}")
        rules = [p for p in self.providers if p.kind == "rules"]
        others = [p for p in self.providers if p.kind != "rules"]
        if rules and others:
            worst = max(max([p.priority, *p.task_priorities.values()]) for p in others)
            for r in rules:
                if min([r.priority, *r.task_priorities.values()]) <= worst:
                    raise ValueError(
                        f"the rules analyst {r.name!r} must be last: give it a priority above {worst}"
                    )
        return self

    def follow_serve(self, host: str, port: int) -> None:
        """Point every ``serve`` provider still on the default URL (not given in ``base_urls`` either) at
        the Serve instance on ``host:port``; ``Settings`` calls it with ``serve.host``/``serve.port``."""
        for p in self.providers:
            if p.kind == "serve" and p.base_url == DEFAULT_SERVE_URL and p.name not in self.base_urls:
                p.base_url = serve_llm_url(host, port)

    def resolved(self) -> list[ProviderConfig]:
        """The providers with the per-name key/URL/model overrides applied; the rules analyst is appended
        (priority above every other) when the list has none."""
        out: list[ProviderConfig] = []
        for p in self.providers:
            patch: dict[str, object] = {}
            if p.name in self.api_keys:
                patch["api_key"] = self.api_keys[p.name]
            if p.name in self.base_urls:
                patch["base_url"] = self.base_urls[p.name].rstrip("/")
            if p.name in self.models:
                patch["model"] = self.models[p.name]
            out.append(p.model_copy(update=patch) if patch else p)
        if not any(p.kind == "rules" for p in out):
            top = max((max([p.priority, *p.task_priorities.values()]) for p in out), default=0)
            out.append(ProviderConfig(name="rules", kind="rules", model="nq-rules-v1", priority=top + 1000))
        return out
