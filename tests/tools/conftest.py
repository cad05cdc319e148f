"""Fixtures for the tool tests: a registry on the embedded default, a fixed clock, a temp store."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from nq_ray.config import Settings
from nq_ray.domain.audit import AuditRecord
from nq_ray.store.desk import DeskStore
from nq_ray.store.repository import Repository
from nq_ray.tools.context import ToolContext
from nq_ray.tools.registry import ToolRegistry, build_registry

FIXED_NOW = datetime(2026, 3, 10, 15, 0, tzinfo=UTC)  # Tuesday 11:00 New York: RTH open

EXPECTED_TOOLS = {
    "get_nq_price",
    "get_historical_data",
    "get_market_hours",
    "get_session_calendar",
    "get_economic_calendar",
    "get_contract_info",
    "calculate_technical_indicators",
    "detect_patterns",
    "analyze_momentum",
    "find_support_resistance",
    "place_order",
    "manage_position",
    "calculate_position_size",
    "assess_portfolio_risk",
    "check_risk_limits",
    "calculate_var",
    "run_backtest",
    "generate_performance_report",
    "compare_strategies",
    "generate_mock_data",
    "run_sweep",
    "run_walk_forward",
    "scan_market",
    "scan_backtests",
    "list_agents",
    "run_agent_task",
}

# one valid call per tool (fast arguments: small grids, few simulations)
VALID_CALLS: dict[str, dict[str, Any]] = {
    "get_nq_price": {"symbol": "NQ=F"},
    "get_historical_data": {"symbol": "NQ", "interval": "1h", "period": "5d", "limit": 50},
    "get_market_hours": {"at": "2026-03-09T10:00-04:00"},
    "get_session_calendar": {"start": "2026-11-23", "days": 7},
    "get_economic_calendar": {"start": "2026-03-01", "end": "2026-03-31", "kinds": ["fomc", "nfp"]},
    "get_contract_info": {"symbol": "MNQ"},
    "calculate_technical_indicators": {"indicators": ["rsi", "macd"], "tail": 3},
    "detect_patterns": {"chart_bars": 300},
    "analyze_momentum": {"periods": [1, 5]},
    "find_support_resistance": {"max_zones": 4},
    "place_order": {"symbol": "NQ", "side": "buy", "contracts": 1, "order_type": "limit", "price": 20000.0},
    "manage_position": {"action": "status"},
    "calculate_position_size": {"method": "fixed_fractional", "stop_ticks": 40, "risk_pct": 1},
    "assess_portfolio_risk": {"positions": {"NQ": 1, "ES": -1}},
    "check_risk_limits": {"symbol": "NQ", "side": "buy", "contracts": 2},
    "calculate_var": {"symbol": "NQ", "contracts": 2, "confidence": 0.99, "method": "normal"},
    "run_backtest": {"strategy": "ema_cross", "params": {"fast": 8, "slow": 21}, "period": "1mo"},
    "generate_performance_report": {"period": "1mo", "n_sims": 100},
    "compare_strategies": {
        "strategies": ["sma_cross", {"strategy": "ema_cross", "label": "ema"}],
        "period": "1mo",
    },
    "generate_mock_data": {"bars": 200, "seed": 1},
    "run_sweep": {"grid": {"fast": [5, 10], "slow": [30, 50]}, "period": "1mo", "top": 3},
    "run_walk_forward": {"grid": {"fast": [5, 10], "slow": [30, 50]}, "period": "1mo", "n_folds": 2},
    "scan_market": {"symbols": ["NQ", "ES"], "timeframes": ["1h"], "top": 5},
    "scan_backtests": {"symbols": ["NQ", "ES"], "timeframes": ["1h"], "min_trades": 5, "period": "1mo"},
    "list_agents": {},
    # needs the runtime's desk (Runtime.registry); a memory read asks no model
    "run_agent_task": {"agent_id": "analysis_agent", "type": "get_recent_memory", "parameters": {"n": 5}},
}


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data={"data_dir": str(tmp_path / "data")})


@pytest.fixture
async def store(settings: Settings) -> AsyncIterator[DeskStore]:
    """The desk's store of ``settings`` (its approval mode, agents), closed afterwards."""
    repo = await Repository.connect(settings.store_url)
    try:
        yield DeskStore(repo)
    finally:
        await repo.close()


@pytest.fixture
def registry(settings: Settings) -> ToolRegistry:
    """Every tool, no broker (tests that need one use ``broker_registry``), no audit sink."""
    return build_registry(ToolContext(settings=settings, clock=lambda: FIXED_NOW))


class ListAuditor:
    """An audit sink that keeps the records (the store-backed one is tested in test_actor.py)."""

    def __init__(self) -> None:
        self.records: list[AuditRecord] = []

    async def audit(self, record: AuditRecord) -> None:
        self.records.append(record)


@pytest.fixture
def broker_registry(ray_session: Any, settings: Settings) -> Iterator[ToolRegistry]:
    """A registry whose broker is a real ``BrokerActor`` on a temp SQLite store, under a unique name; the
    actor's gate runs on the registry's fixed clock (an RTH hour), not the wall clock, so what it accepts
    does not depend on when the test runs (the daily halt, a weekend)."""
    import uuid

    from nq_ray.market.clock import FixedClock
    from nq_ray.runtime.broker import RayBroker, get_or_create_broker

    name = f"paper_broker_test_{uuid.uuid4().hex[:8]}"
    handles: list[Any] = []

    def factory(s: Settings) -> Any:
        h = get_or_create_broker(s, name=name, clock=FixedClock(FIXED_NOW))
        handles.append(h)
        return RayBroker(h)

    yield build_registry(ToolContext(settings=settings, clock=lambda: FIXED_NOW, broker_factory=factory))
    for h in handles:
        ray_session.kill(h)
