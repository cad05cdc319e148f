"""The challenge simulator: hand-built day paths for the Monte Carlo walk, and the real NQ sample."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from nq_ray.backtest import BacktestConfig, best_params, sweep
from nq_ray.backtest.challenge import (
    DayBlocks,
    event_only_blocks,
    format_challenge,
    pass_probability,
    rules_vector,
    run_challenge,
    walk_days,
    wilson_interval,
)
from nq_ray.backtest.engine import prepare_market
from nq_ray.backtest.propfirm import pack_config
from nq_ray.backtest.strategies import get_strategy
from nq_ray.propfirm.packs import load_pack
from tests.backtest.test_propfirm import FREE, bars, pack, scripted

TARGET_1000 = {"kind": "profit_target", "name": "target", "amount_usd": 1000.0}
STATIC_1000 = {"kind": "max_loss", "name": "max_loss", "amount_usd": 1000.0, "trailing": "static"}


def blocks(*days: list[float]) -> DayBlocks:
    """Day blocks from per-bar equity changes (flat at each bar: balance moves with equity)."""
    deq = np.concatenate([np.asarray(d, dtype=np.float64) for d in days])
    sizes = np.array([len(d) for d in days])
    first = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
    last = (first + sizes - 1).astype(np.int64)
    traded = np.ones(deq.shape[0], dtype=np.bool_)
    return DayBlocks(deq, deq.copy(), traded, first, last, [f"d{i}" for i in range(len(days))])


def test_pass_probability_counts_the_winning_day_pairs_of_the_seeded_draw() -> None:
    # Day 0 wins $600, day 1 loses $600; target $1,000, static max loss $1,000; two-day paths.
    # WW: +1,200 ≥ 1,000 → passed on day 2. LL: −1,200, equity 48,800 ≤ floor 49,000 → failed on day 2.
    # WL / LW: 0 → in progress. So the passes are exactly the draws (0, 0), the failures (1, 1).
    b = blocks([600.0], [-600.0])
    p = pack(TARGET_1000, STATIC_1000)

    out = pass_probability(b, p, n_sims=400, seed=7, horizon_days=2)

    draws = np.random.default_rng(7).integers(0, 2, size=(400, 2), dtype=np.int64)
    assert out.passed == int(((draws[:, 0] == 0) & (draws[:, 1] == 0)).sum())
    assert out.failed == int(((draws[:, 0] == 1) & (draws[:, 1] == 1)).sum())
    assert out.in_progress == 400 - out.passed - out.failed
    assert out.probability == out.passed / 400
    assert out.ci_low < 0.25 < out.ci_high  # the true probability is 1/4
    assert out.median_days_to_pass == 2.0 and out.failed_by == {"max_loss": out.failed}


def test_an_intraday_dip_fails_a_day_that_ends_in_profit() -> None:
    # One day: −1,100 at the first bar (equity 48,900 ≤ 49,000), then +1,700 (would close +600).
    # The day's total is a profit; its path breaches the static floor first.
    out = pass_probability(blocks([-1100.0, 1700.0]), pack(TARGET_1000, STATIC_1000), n_sims=5, seed=0)

    assert out.failed == 5 and out.passed == 0


def test_a_daily_loss_stop_flattens_the_rest_of_the_day() -> None:
    # −500 hits the $500 daily loss (stop_day): the +2,000 after it never happens, the day closes −500.
    # Without the daily-loss rule the same day closes +1,500 and passes the $1,000 target.
    day = blocks([-500.0, 2000.0])
    daily = {"kind": "daily_loss", "name": "daily", "amount_usd": 500.0, "consequence": "stop_day"}
    loose = {"kind": "max_loss", "name": "max_loss", "amount_usd": 3000.0, "trailing": "static"}

    stopped = pass_probability(day, pack(TARGET_1000, loose, daily), n_sims=3, seed=0)
    free = pass_probability(day, pack(TARGET_1000, loose), n_sims=3, seed=0)

    assert stopped.passed == 0 and stopped.in_progress == 3
    assert free.passed == 3


def test_the_walk_agrees_with_the_backtest_under_the_pack_on_the_days_in_order() -> None:
    # Monday: long at bar 1's open 20000, out at bar 3's open 20030 (+$600); Tuesday: long at 20030, out
    # at 20055 (+$500). Balance 51,100 ≥ 50,000 + 1,000 at Tuesday's close: passed at that session close.
    mon = bars("2026-03-02 10:00", [20000, 20000, 20030, 20030])
    tue = bars("2026-03-03 10:00", [20030, 20030, 20055, 20055])
    frame = pd.concat([mon, tue])
    fn = scripted(long_entries=[0, 4], long_exits=[2, 6])
    p = pack(TARGET_1000, STATIC_1000)
    cfg = BacktestConfig(**FREE)

    res = run_challenge(frame, p, fn, config=cfg, n_sims=0)
    market = prepare_market(frame, pack_config(p, cfg))
    b = event_only_blocks(market, get_strategy(fn).signals(market.data, {}), cfg, p)
    walked = walk_days(b.deq, b.dbal, b.traded, b.day_first, b.day_last, np.array([[0, 1]]), rules_vector(p))

    assert res.run.outcome == "passed"
    assert res.run.passed is not None and res.run.passed.session_day == "2026-03-03"
    assert res.run.state.balance_usd == pytest.approx(51_100.0)
    assert walked[0].tolist() == [1.0, 2.0, -1.0]  # passed, on the second day, no failing rule
    assert b.days == ["2026-03-02", "2026-03-03"]


def test_wilson_interval_matches_the_textbook_value() -> None:
    # Wilson (1927) for 50 of 100 at z = 1.96: 0.5 ± 0.0962 → (0.4038, 0.5962)
    lo, hi = wilson_interval(50, 100)
    assert lo == pytest.approx(0.4038, abs=1e-4) and hi == pytest.approx(0.5962, abs=1e-4)


def test_bad_n_sims_is_a_clear_error() -> None:
    from nq_ray.errors import InvalidArgumentError

    with pytest.raises(InvalidArgumentError, match="n_sims"):
        pass_probability(blocks([1.0]), pack(TARGET_1000, STATIC_1000), n_sims=0)


def test_challenge_on_the_nq_sample_is_seeded_and_reports_every_rule(nq_5m: pd.DataFrame) -> None:
    p = load_pack("topstep-50k")

    first = run_challenge(nq_5m, p, "sma_cross", {"fast": 10, "slow": 30}, n_sims=200, seed=3)
    again = run_challenge(nq_5m, p, "sma_cross", {"fast": 10, "slow": 30}, n_sims=200, seed=3)

    s = first.summary()
    json.dumps(s)
    assert s == again.summary()
    assert s["outcome"] in ("passed", "failed", "in_progress")
    assert {r["rule"] for r in s["rules"]} == {r.name for r in p.rules}
    assert len(s["daily"]) == s["session_days"] >= 1  # the days until the challenge ended
    pp = s["pass_probability"]
    assert pp["passed"] + pp["failed"] + pp["in_progress"] == 200
    # every trade is flat by the pack's 16:10 ET flat time (or closed by a rule)
    exits = first.run.report.trades.exit_time.dt.tz_convert("America/New_York")
    late = exits[(exits.dt.hour * 60 + exits.dt.minute > 16 * 60 + 10) & (exits.dt.hour < 18)]
    assert late.empty
    assert "RESULT:" in format_challenge(s)


def test_a_sweep_ranks_parameters_by_pass_probability(nq_5m: pd.DataFrame) -> None:
    p = load_pack("topstep-50k")
    cfg = BacktestConfig(stop_loss_ticks=80, take_profit_ticks=160)
    grid = {"minutes": [15, 30, 60]}

    table = sweep(nq_5m, "opening_range_breakout", grid, cfg, pack=p, rank_by="pass_probability", n_sims=200)

    probs = table["pass_probability"].tolist()
    assert probs == sorted(probs, reverse=True) and len(probs) == 3
    for row in table.itertuples():  # each row is the challenge simulator's own estimate for its params
        one = run_challenge(nq_5m, p, "opening_range_breakout", {"minutes": row.minutes}, cfg, n_sims=200)
        assert one.probability is not None and row.pass_probability == one.probability.probability
        assert row.pass_ci_low <= row.pass_probability <= row.pass_ci_high
    assert best_params(table, "pass_probability") == {"minutes": int(table.minutes.iloc[0])}


def test_ranking_by_pass_probability_needs_a_pack(nq_5m: pd.DataFrame) -> None:
    from nq_ray.errors import InvalidArgumentError

    with pytest.raises(InvalidArgumentError, match="needs a prop-firm pack"):
        sweep(nq_5m, "sma_cross", {"fast": [5], "slow": [30]}, rank_by="pass_probability")


@pytest.mark.parametrize("pack_name", ["topstep-50k", "apex-50k", "tpt-50k"])
def test_the_numba_walk_and_propfirm_mark_agree_on_the_sample_in_its_own_order(
    nq_5m: pd.DataFrame, pack_name: str
) -> None:
    # The Monte Carlo walk re-implements the pack's path rules for speed; over the sample's own day
    # order it must end as the backtest under the pack (propfirm.mark) does: same outcome, same day.
    p = load_pack(pack_name)
    cfg = BacktestConfig(stop_loss_ticks=80, take_profit_ticks=160)
    res = run_challenge(nq_5m, p, "opening_range_breakout", {"minutes": 30}, cfg, n_sims=0)
    market = prepare_market(nq_5m, pack_config(p, cfg))
    strat = get_strategy("opening_range_breakout")
    b = event_only_blocks(market, strat.signals(market.data, {"minutes": 30}), cfg, p)

    walked = walk_days(
        b.deq, b.dbal, b.traded, b.day_first, b.day_last, np.arange(b.n_days)[None, :], rules_vector(p)
    )[0]

    outcome = {1: "passed", 2: "failed", 0: "in_progress"}[int(walked[0])]
    assert outcome == res.run.outcome
    ended = res.run.failure or res.run.passed
    if ended is not None:
        day = b.days[int(walked[1]) - 1]
        assert day == ended.session_day
