"""``nq_ray.settings``: the setting models ``Settings`` embeds, defined below ``nq_ray.config`` and
re-exported from their public homes (their behaviour is tested in tests/llm/test_config.py and
tests/risk/test_limits.py)."""

from __future__ import annotations

import pytest

import nq_ray.llm
import nq_ray.llm.config
import nq_ray.risk
import nq_ray.risk.limits
from nq_ray.config import Settings, load_settings
from nq_ray.errors import ConfigError
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


# ---- propfirm ----------------------------------------------------------------------------------------


def test_propfirm_pack_defaults_to_none_and_accepts_a_bundled_pack():
    assert load_settings().propfirm.pack is None
    assert load_settings(propfirm={"pack": "topstep-50k"}).propfirm.pack == "topstep-50k"


def test_propfirm_unknown_pack_is_a_config_error_listing_known_packs():
    with pytest.raises(ConfigError) as err:
        load_settings(propfirm={"pack": "topstep-75k"})
    assert "unknown prop-firm pack 'topstep-75k'" in err.value.message and "apex-pa-50k" in err.value.message


def test_propfirm_pack_from_packs_dir(tmp_path):
    (tmp_path / "my-firm-25k.yaml").write_text("name: my-firm-25k\n", encoding="utf-8")
    s = load_settings(propfirm={"pack": "my-firm-25k", "packs_dir": str(tmp_path)})
    assert s.propfirm.pack == "my-firm-25k" and s.propfirm.packs_dir == tmp_path
