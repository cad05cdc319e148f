"""The ``llm`` section of ``Settings``: a list of providers and the router's policies.

The models are defined in ``nq_ray.settings.llm`` (below ``nq_ray.config`` in the layering, which embeds
``LLMConfig``) and re-exported here, their public home; see that module for the per-provider overrides.
"""

from nq_ray.settings.llm import (
    ALL_TASKS,
    DEFAULT_STRUCTURED_MODE,
    KEY_REQUIRED,
    TASK_TYPES,
    BreakerConfig,
    LLMConfig,
    ProviderConfig,
    ProviderKind,
    RulesConfig,
    StructuredMode,
)

__all__ = [
    "ALL_TASKS",
    "DEFAULT_STRUCTURED_MODE",
    "KEY_REQUIRED",
    "TASK_TYPES",
    "BreakerConfig",
    "LLMConfig",
    "ProviderConfig",
    "ProviderKind",
    "RulesConfig",
    "StructuredMode",
]
