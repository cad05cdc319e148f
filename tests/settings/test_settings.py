"""``nq_ray.settings``: the setting models ``Settings`` embeds, defined below ``nq_ray.config`` and
re-exported from their public homes (their behaviour is tested in tests/llm/test_config.py and
tests/risk/test_limits.py)."""

from __future__ import annotations

import nq_ray.llm
import nq_ray.llm.config
import nq_ray.risk
import nq_ray.risk.limits
from nq_ray.config import Settings
from nq_ray.settings import llm, risk


def test_the_public_import_paths_name_the_same_classes() -> None:
    for name in nq_ray.llm.config.__all__:
        assert getattr(nq_ray.llm.config, name) is getattr(llm, name)
    assert nq_ray.llm.LLMConfig is llm.LLMConfig
    assert nq_ray.risk.limits.RiskLimits is risk.RiskLimits
    assert nq_ray.risk.limits.TimeWindow is risk.TimeWindow
    assert nq_ray.risk.RiskLimits is risk.RiskLimits


def test_settings_embed_them() -> None:
    settings = Settings()
    assert isinstance(settings.llm, nq_ray.llm.config.LLMConfig)
    assert isinstance(settings.risk.limits, nq_ray.risk.limits.RiskLimits)
