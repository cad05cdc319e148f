"""Helpers to build routers over real local servers."""

from __future__ import annotations

from typing import Any

from pydantic import SecretStr

from nq_ray.llm.config import LLMConfig, ProviderConfig
from nq_ray.llm.providers import make_provider
from nq_ray.llm.router import LLMRouter
from nq_ray.testing import free_port


def local(name: str, base_url: str, priority: int, **kw: Any) -> ProviderConfig:
    """A keyless OpenAI-compatible provider (kind 'serve') at ``base_url``."""
    kw.setdefault("kind", "serve")
    kw.setdefault("model", f"{name}-model")
    kw.setdefault("timeout_s", 2.0)
    return ProviderConfig(name=name, base_url=base_url, priority=priority, **kw)


def keyed(name: str, kind: str, base_url: str | None, priority: int, **kw: Any) -> ProviderConfig:
    kw.setdefault("model", f"{name}-model")
    kw.setdefault("timeout_s", 2.0)
    return ProviderConfig(
        name=name, kind=kind, base_url=base_url, priority=priority, api_key=SecretStr("test-key"), **kw
    )


def refused_url() -> str:
    return f"http://127.0.0.1:{free_port()}/v1"


def config(*providers: ProviderConfig, **kw: Any) -> LLMConfig:
    kw.setdefault("health_interval_s", 0)
    kw.setdefault("backoff_s", 0.01)
    kw.setdefault("deadline_s", 10)
    return LLMConfig(providers=list(providers), **kw)


RULES = ProviderConfig(name="rules", kind="rules", model="nq-rules-v1", priority=1000)
USER = [{"role": "user", "content": "What is the NQ bias?"}]


def without_rules(cfg: LLMConfig) -> LLMRouter:
    """A router over exactly ``cfg.providers`` (``from_config`` always appends the rules analyst)."""
    return LLMRouter([(pc, make_provider(pc)) for pc in cfg.providers], cfg)
