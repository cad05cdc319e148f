"""Setting models that ``nq_ray.config.Settings`` embeds, below it in the layering.

``nq_ray.config`` sits at the bottom of the package: it imports only ``nq_ray.errors``, pydantic, yaml and
these models. They are plain pydantic models with no imports from the rest of nq-ray; their owning
packages re-export them where they always lived (``nq_ray.llm.config`` for ``LLMConfig`` and
``ProviderConfig``, ``nq_ray.risk.limits`` for ``RiskLimits`` and ``TimeWindow``), so import them from there.
"""
