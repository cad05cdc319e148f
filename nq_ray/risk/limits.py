"""Risk limits for one account: the numbers the gate (``check_order``) enforces.

The models are defined in ``nq_ray.settings.risk`` (below ``nq_ray.config`` in the layering, which embeds
``RiskLimits`` as ``Settings.risk.limits``) and re-exported here, their public home.
"""

from nq_ray.settings.risk import RiskLimits, TimeWindow

__all__ = ["RiskLimits", "TimeWindow"]
