"""Every tool, by toolset, in the order MCP clients list them, with its title and behaviour hints.

The hints are the MCP tool annotations (``nq_ray.tools.registry.ToolSpec``): every tool is read-only
but ``place_order``, ``manage_position`` and ``run_agent_task``, which change the paper book and are
destructive (an order can replace or close what is there; an agent's ``place_trade`` and
``manage_position`` tasks do the same, and every task is a new decision-log row). ``place_order`` is
idempotent by ``client_order_id``: the same id and order again returns the stored order and places
nothing (``nq_ray.execution.paper.PaperBroker.submit``).
``open_world`` is true for every tool that takes a data ``source``: ``yahoo`` and ``tradovate`` are
outside services, and ``default`` is one when the server's ``data.default_source`` names it.
"""

from __future__ import annotations

from nq_ray.tools import agents, analysis, backtesting, calendar, data, execution, risk, scanning
from nq_ray.tools.registry import ToolSpec, spec_of


def specs() -> list[ToolSpec]:
    return [
        # data
        spec_of(data.get_nq_price, "data", title="Latest price"),
        spec_of(data.get_historical_data, "data", title="Historical bars"),
        spec_of(data.get_contract_info, "data", title="Contract specification"),
        spec_of(data.generate_mock_data, "data", title="Synthetic bars"),
        # calendar
        spec_of(data.get_market_hours, "data", toolset="calendar", title="Market hours"),
        spec_of(data.get_session_calendar, "data", toolset="calendar", title="Session calendar"),
        spec_of(calendar.get_economic_calendar, "calendar", title="Economic calendar", open_world=False),
        # analysis
        spec_of(analysis.calculate_technical_indicators, "analysis", title="Technical indicators"),
        spec_of(analysis.detect_patterns, "analysis", title="Chart and candlestick patterns"),
        spec_of(analysis.analyze_momentum, "analysis", title="Momentum analysis"),
        spec_of(analysis.find_support_resistance, "analysis", title="Support and resistance"),
        spec_of(scanning.scan_market, "analysis", long_running=True, title="Market scan"),
        # execution: the two tools that change the paper book
        spec_of(
            execution.place_order,
            "execution",
            read_only=False,
            destructive=True,
            idempotent=True,  # by client_order_id (see the module docstring)
            title="Place a paper order",
        ),
        spec_of(
            execution.manage_position,
            "execution",
            read_only=False,
            destructive=True,
            title="Manage a paper position",
        ),
        # risk
        spec_of(risk.calculate_position_size, "execution", toolset="risk", title="Position size"),
        spec_of(risk.assess_portfolio_risk, "risk", title="Portfolio risk"),
        spec_of(risk.check_risk_limits, "risk", title="Pre-trade risk check"),
        spec_of(risk.calculate_var, "risk", title="Value at risk"),
        # backtest
        spec_of(
            backtesting.run_backtest, "backtesting", toolset="backtest", long_running=True, title="Backtest"
        ),
        spec_of(
            backtesting.generate_performance_report,
            "backtesting",
            toolset="backtest",
            long_running=True,
            title="Performance report",
        ),
        spec_of(
            backtesting.compare_strategies,
            "backtesting",
            toolset="backtest",
            long_running=True,
            title="Compare strategies",
        ),
        spec_of(
            backtesting.run_sweep,
            "backtesting",
            toolset="backtest",
            long_running=True,
            title="Parameter sweep",
        ),
        spec_of(
            backtesting.run_walk_forward,
            "backtesting",
            toolset="backtest",
            long_running=True,
            title="Walk-forward analysis",
        ),
        spec_of(
            scanning.scan_backtests,
            "backtesting",
            toolset="backtest",
            long_running=True,
            title="Backtest scan",
        ),
        # agents: the desk's agents (the runtime's one desk, as the agents API)
        spec_of(agents.list_agents, "agents", title="Desk agents"),
        spec_of(
            agents.run_agent_task,
            "agents",
            read_only=False,
            destructive=True,  # a place_trade task places an order (manage_position may close one)
            idempotent=False,
            title="Run an agent task",
        ),
    ]
