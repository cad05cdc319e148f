"""Each tool once with valid arguments through the registry; numbers checked against the core."""

from __future__ import annotations

import json

import pytest

from tests.tools.conftest import VALID_CALLS

# the broker's tools and the desk's (tests/tools/test_agents.py) need a runtime; this registry has neither
NO_BROKER = sorted(
    set(VALID_CALLS)
    - {"place_order", "manage_position", "check_risk_limits", "list_agents", "run_agent_task"}
)


@pytest.mark.parametrize("name", NO_BROKER)
async def test_tool_answers_valid_call_with_json(registry, name: str) -> None:
    out = await registry.call(name, VALID_CALLS[name])
    json.dumps(out, allow_nan=False)


async def test_contract_info_matches_the_contract_spec_and_roll_calendar(registry) -> None:
    out = await registry.call("get_contract_info", {"symbol": "NQ"})
    # FIXED_NOW is 2026-03-10: NQH26 is front until its roll on 2026-03-12, expiry 2026-03-20 (docs/futures)
    assert out["front_contract"] == "NQH26"
    assert out["front_expiry"] == "2026-03-20" and out["next_roll"] == "2026-03-12"


async def test_var_equals_the_core_value_at_risk(registry) -> None:
    from nq_ray.data import load_bars
    from nq_ray.risk.var import value_at_risk

    out = await registry.call("calculate_var", {"contracts": 2, "confidence": 0.99, "method": "normal"})
    bars = load_bars("NQ", "1d", source="sample")
    core = value_at_risk({"NQ": 2}, {"NQ": bars}, method="normal", confidence=0.99)
    assert out["var"]["var_usd"] == pytest.approx(core.var_usd)


async def test_position_size_shows_fixed_fractional_working(registry) -> None:
    out = await registry.call("calculate_position_size", VALID_CALLS["calculate_position_size"])
    # ⌊100,000 × 1% ÷ (40 ticks × $5)⌋ = ⌊1000 / 200⌋ = 5
    assert out["size"]["contracts"] == 5


async def test_sweep_reports_progress_and_returns_best_params(registry) -> None:
    seen: list[tuple[float, float | None]] = []
    out = await registry.call(
        "run_sweep", VALID_CALLS["run_sweep"], progress=lambda d, t, m: seen.append((d, t))
    )
    assert out["combinations"] == 4 and len(out["top"]) == 3
    assert set(out["best_params"]) == {"fast", "slow"}
    assert seen and seen[-1][0] == seen[-1][1]


async def test_sweep_grid_too_large_is_refused_before_work(registry) -> None:
    from nq_ray.errors import InvalidArgumentError

    grid = {"fast": list(range(1, 101)), "slow": list(range(101, 201))}
    with pytest.raises(InvalidArgumentError, match="10000 combinations"):
        await registry.call("run_sweep", {"grid": grid})


async def test_performance_report_has_monte_carlo_percentiles(registry) -> None:
    out = await registry.call("generate_performance_report", VALID_CALLS["generate_performance_report"])
    assert set(out["monte_carlo"]) == {"5", "25", "50", "75", "95"}
    assert out["monte_carlo_sims"] == 100 and "Monte Carlo" in out["text"]


async def test_session_calendar_lists_sessions_early_closes_and_holidays(registry) -> None:
    out = await registry.call("get_session_calendar", {"start": "2026-12-21", "days": 7})
    days = {s["session_date"]: s for s in out["sessions"]}
    # the CME calendar nq-ray uses (nq_ray.market.sessions): Christmas Day shut, Christmas Eve closes early
    assert out["closed_weekdays"] == ["2026-12-25"] and "2026-12-25" not in days
    assert (
        days["2026-12-24"]["early_close"] is True
        and days["2026-12-24"]["close"] == "2026-12-24T13:00:00-05:00"
    )
    assert days["2026-12-21"]["open"] == "2026-12-20T18:00:00-05:00" and not days["2026-12-21"]["early_close"]
    assert (out["start"], out["end"]) == ("2026-12-21", "2026-12-27")
