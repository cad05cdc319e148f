"""Every tool, by category, in the order MCP clients list them."""

from __future__ import annotations

from nq_ray.tools import analysis, backtesting, data, execution, risk
from nq_ray.tools.registry import ToolSpec, spec_of


def specs() -> list[ToolSpec]:
    return [
        spec_of(data.get_nq_price, "data"),
        spec_of(data.get_historical_data, "data"),
        spec_of(data.get_market_hours, "data"),
        spec_of(data.get_contract_info, "data"),
        spec_of(data.generate_mock_data, "data"),
        spec_of(analysis.calculate_technical_indicators, "analysis"),
        spec_of(analysis.detect_patterns, "analysis"),
        spec_of(analysis.analyze_momentum, "analysis"),
        spec_of(analysis.find_support_resistance, "analysis"),
        spec_of(execution.place_order, "execution", read_only=False),
        spec_of(execution.manage_position, "execution", read_only=False),
        spec_of(risk.calculate_position_size, "execution"),
        spec_of(risk.assess_portfolio_risk, "risk"),
        spec_of(risk.check_risk_limits, "risk"),
        spec_of(risk.calculate_var, "risk"),
        spec_of(backtesting.run_backtest, "backtesting", long_running=True),
        spec_of(backtesting.generate_performance_report, "backtesting", long_running=True),
        spec_of(backtesting.compare_strategies, "backtesting", long_running=True),
        spec_of(backtesting.run_sweep, "backtesting", long_running=True),
        spec_of(backtesting.run_walk_forward, "backtesting", long_running=True),
    ]
