"""``compare_strategies``: several strategies on the same bars and costs, one row of metrics each."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from nq_ray.backtest.config import BacktestConfig
from nq_ray.backtest.engine import BacktestReport, prepare_market, report_from_signals
from nq_ray.backtest.stats import METRIC_NAMES
from nq_ray.backtest.strategies import get_strategy
from nq_ray.errors import InvalidArgumentError

StrategySpec = str | tuple[str, Mapping[str, Any]] | Mapping[str, Any]


def _parse(spec: StrategySpec) -> tuple[str, Any, Mapping[str, Any] | None]:
    """(label, strategy, params) from a name, a (name, params) pair or {strategy, params, label}."""
    if isinstance(spec, str):
        return spec, spec, None
    if isinstance(spec, tuple) and len(spec) == 2:
        name, params = spec
        return str(getattr(name, "__name__", name)), name, params
    if isinstance(spec, Mapping) and "strategy" in spec:
        strategy = spec["strategy"]
        label = spec.get("label") or str(getattr(strategy, "__name__", strategy))
        return label, strategy, spec.get("params")
    raise InvalidArgumentError(
        f"cannot read strategy spec {spec!r}; give a name, (name, params) or {{'strategy', 'params', "
        f"'label'}}"
    )


def compare_strategies(
    bars: pd.DataFrame,
    strategies: Sequence[StrategySpec],
    config: BacktestConfig | None = None,
    *,
    return_reports: bool = False,
) -> pd.DataFrame | tuple[pd.DataFrame, dict[str, BacktestReport]]:
    """A table (one row per strategy, indexed by label, metrics as columns) of backtests that share the
    bars, contract and costs; labels repeat a name with ``#2``, ``#3`` when a strategy appears twice."""
    if not strategies:
        raise InvalidArgumentError("no strategies to compare; give at least one name")
    config = config or BacktestConfig()
    parsed = []
    for spec in strategies:
        label, strategy, params = _parse(spec)
        strat = get_strategy(strategy)
        parsed.append((label, strat, strat.resolve_params(params)))
    market = prepare_market(bars, config, max(s.warmup(p) for _, s, p in parsed))
    reports: dict[str, BacktestReport] = {}
    rows = []
    for label, strat, params in parsed:
        key, k = label, 2
        while key in reports:
            key, k = f"{label}#{k}", k + 1
        report = report_from_signals(market, strat.signals(market.data, params), config, strat.name, params)
        reports[key] = report
        rows.append({"strategy": key, "params": params, **report.metrics.model_dump()})
    table = pd.DataFrame(rows).set_index("strategy")[["params", *METRIC_NAMES]]
    return (table, reports) if return_reports else table
