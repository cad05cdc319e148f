"""Risk engine: position sizing, VaR/ES and the pre-trade gate. Pure: no Ray, no network."""

from nq_ray.risk.gate import RiskAction, RiskReason, RiskVerdict, check_order
from nq_ray.risk.limits import RiskLimits, TimeWindow
from nq_ray.risk.sizing import (
    KellyEstimate,
    PositionSize,
    atr_points,
    atr_stop,
    fixed_contracts,
    fixed_fractional,
    fractional_kelly,
    kelly_estimate,
    volatility_target,
)
from nq_ray.risk.var import (
    VaRBacktest,
    VaRResult,
    backtest_var,
    cornish_fisher_is_monotone,
    cornish_fisher_var_es,
    historical_var_es,
    kupiec_pof,
    normal_var_es,
    value_at_risk,
)

__all__ = [
    "KellyEstimate",
    "PositionSize",
    "RiskAction",
    "RiskLimits",
    "RiskReason",
    "RiskVerdict",
    "TimeWindow",
    "VaRBacktest",
    "VaRResult",
    "atr_points",
    "atr_stop",
    "backtest_var",
    "check_order",
    "cornish_fisher_is_monotone",
    "cornish_fisher_var_es",
    "fixed_contracts",
    "fixed_fractional",
    "fractional_kelly",
    "historical_var_es",
    "kelly_estimate",
    "kupiec_pof",
    "normal_var_es",
    "value_at_risk",
    "volatility_target",
]
