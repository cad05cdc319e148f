"""A backtest under a prop-firm pack: hand-built bars, hand-worked numbers.

Every frame here is NQ ($20 a point, tick 0.25), one contract, no commission, no slippage, no margin check,
5-minute bars in America/New_York, so each bar's equity is start + 20 × (close − entry).
"""

from __future__ import annotations

from datetime import date, time
from typing import Any

import numpy as np
import pandas as pd
import pytest

from nq_ray.backtest import BacktestConfig, run_backtest
from nq_ray.backtest.engine import prepare_market
from nq_ray.backtest.propfirm import PackSession, backtest_under_pack, event_masks, pack_config
from nq_ray.backtest.strategies import BarData, Signals
from nq_ray.propfirm.model import RulePack

SRC = "https://example.com/rules"
FREE = {"commission_per_contract": 0.0, "slippage_ticks": 0.0, "margin_check": False}


def pack(*rules: dict[str, Any], start: float = 50_000.0) -> RulePack:
    full = [{"source": SRC, "checked": date(2026, 12, 1), **r} for r in rules]
    return RulePack(
        name="hand-50k",
        firm="Hand",
        program="Test",
        phase="evaluation",
        account_size_usd=start,
        starting_balance_usd=start,
        version=1,
        checked=date(2026, 12, 1),
        sources=[SRC],
        rules=full,
    )


def bars(start: str, closes: list[float]) -> pd.DataFrame:
    """5-minute bars from ``start`` (NY): each opens at the previous close; high/low bracket the body."""
    idx = pd.date_range(pd.Timestamp(start, tz="America/New_York"), periods=len(closes), freq="5min")
    c = np.asarray(closes, dtype=np.float64)
    o = np.concatenate([[c[0]], c[:-1]])
    return pd.DataFrame(
        {"open": o, "high": np.maximum(o, c), "low": np.minimum(o, c), "close": c, "volume": 1.0}, index=idx
    )


def scripted(long_entries: list[int], long_exits: list[int] = ()):  # type: ignore[assignment]
    """A signal function entering long on the given bars' closes (and exiting on others')."""

    def fn(data: BarData, params: Any) -> Signals:
        n = len(data.close)
        le, lx = np.zeros(n, np.bool_), np.zeros(n, np.bool_)
        le[list(long_entries)] = True
        lx[list(long_exits)] = True
        return Signals(le, lx, np.zeros(n, np.bool_), np.zeros(n, np.bool_))

    fn.__name__ = "scripted"
    return fn


MAX_LOSS_1000 = {"kind": "max_loss", "name": "max_loss", "amount_usd": 1000.0, "trailing": "static"}


def test_max_loss_fails_on_the_exact_bar_and_no_pack_keeps_trading() -> None:
    # bar:    0      1      2      3      4      5      6      7      8      9
    # close: 20000  20000  19990  19980  19960  19950  19970  20000  20010  20020
    # Long signal on bar 0's close → filled at bar 1's open, 20000. Equity at each close = 50,000 +
    # 20 × (close − 20000): bar 3 49,600, bar 4 49,200, bar 5 49,000. The static floor is
    # 50,000 − 1,000 = 49,000 and "breached when equity ≤ floor": bar 5 is the first, so the account
    # fails there, flat at bar 5's close (19950, −$1,000). The script's second entry (bar 6's signal,
    # due at bar 7's open) is refused under the pack.
    frame = bars("2026-03-02 10:00", [20000, 20000, 19990, 19980, 19960, 19950, 19970, 20000, 20010, 20020])
    fn = scripted(long_entries=[0, 6], long_exits=[5])
    cfg = BacktestConfig(**FREE)

    run = backtest_under_pack(frame, pack(MAX_LOSS_1000), fn, config=cfg)
    free = run_backtest(frame, fn, config=cfg.model_copy(update={"initial_capital": 50_000.0}))

    assert run.outcome == "failed"
    fail = run.failure
    assert fail is not None and fail.rule == "max_loss"
    assert fail.bar_time == frame.index[5] and fail.at == frame.index[5] + pd.Timedelta(minutes=5)
    assert fail.equity_usd == pytest.approx(49_000.0) and fail.balance_usd == pytest.approx(49_000.0)
    trades = run.report.trades
    assert len(trades) == 1
    assert trades.exit_reason.iloc[0] == "prop_rule" and trades.exit_price.iloc[0] == 19950.0
    assert trades.pnl_usd.iloc[0] == pytest.approx(-1000.0)
    assert (run.report.position.iloc[6:] == 0).all()
    assert run.blocked_entries == 1  # the entry of bar 6's signal, refused at bar 7's open
    # the same strategy under no pack: exits on its own signal at bar 6's open, re-enters at bar 7's open
    assert len(free.trades) == 2 and free.trades.exit_reason.tolist() == ["signal", "end_of_data"]


def test_daily_loss_stops_the_day_and_trading_resumes_the_next_session_day() -> None:
    # Monday 2026-03-02 10:00: long at 20000 (bar 0 signal, bar 1 open). Daily loss $500 on equity:
    # bar 2 closes 19985 (−$300), bar 3 19975 (−$500 ≤ −500) → stop for the day at bar 3's close,
    # flat at 19975. The bar-4 entry signal (fill at bar 5's open) is refused: same session day.
    # Tuesday 2026-03-03 10:00 (a new CME session day): the bar-0 signal of that day enters again.
    mon = bars("2026-03-02 10:00", [20000, 20000, 19985, 19975, 19990, 20000, 20005])
    tue = bars("2026-03-03 10:00", [20005, 20010, 20020, 20030])
    frame = pd.concat([mon, tue])
    fn = scripted(long_entries=[0, 4, 7])
    p = pack(
        {"kind": "daily_loss", "name": "daily_loss", "amount_usd": 500.0, "consequence": "stop_day"},
        {"kind": "max_loss", "name": "max_loss", "amount_usd": 2000.0, "trailing": "static"},
    )

    run = backtest_under_pack(frame, p, fn, config=BacktestConfig(**FREE))

    assert run.outcome == "in_progress" and run.failure is None
    [stop] = run.stopped_days
    assert stop.bar_time == frame.index[3] and stop.session_day == "2026-03-02"
    assert stop.equity_usd == pytest.approx(49_500.0)
    t = run.report.trades
    assert t.exit_reason.tolist() == ["prop_rule", "end_of_data"]
    assert t.entry_time.tolist() == [frame.index[1], frame.index[8]]
    assert t.pnl_usd.tolist() == pytest.approx([-500.0, 20 * (20030 - 20005)])
    assert run.blocked_entries == 1
    daily = run.daily.set_index("session_day")
    assert bool(daily.loc["2026-03-02", "stopped"]) and not bool(daily.loc["2026-03-03", "stopped"])
    assert daily.loc["2026-03-02", "pnl_usd"] == pytest.approx(-500.0)
    assert daily.loc["2026-03-02", "daily_loss_room_usd"] == pytest.approx(0.0)


def test_flat_by_time_forces_the_exit_before_it_and_blocks_entries_after_it() -> None:
    # flat by 16:10 ET. Bars 15:50 … 16:25. Long signal on the 15:50 close → in at the 15:55 open. The
    # 16:10 bar is the first that closes after 16:10, so entries are blocked from it to the reopen and
    # the position goes at the close of the 16:05 bar (16:10 sharp), at 20020. The 16:10 bar's signal
    # (fill due at the 16:15 open) is refused.
    frame = bars("2026-03-02 15:50", [20000, 20010, 20015, 20020, 20030, 20040, 20050, 20060])
    fn = scripted(long_entries=[0, 4])
    p = pack(MAX_LOSS_1000, {"kind": "flat_by", "name": "flat_by", "time": time(16, 10)})

    run = backtest_under_pack(frame, p, fn, config=BacktestConfig(**FREE))

    t = run.report.trades
    assert len(t) == 1
    assert t.exit_time.iloc[0] == pd.Timestamp("2026-03-02 16:05", tz="America/New_York")
    assert t.exit_reason.iloc[0] == "prop_rule" and t.exit_price.iloc[0] == 20020.0
    assert run.blocked_entries == 1
    assert (run.report.position.iloc[4:] == 0).all()


def test_event_masks_block_a_news_window_and_flatten_before_it() -> None:
    # FOMC statement 2026-03-18 14:00 ET (bundled calendar); the rule flattens from 2 minutes before
    # to 5 after: 13:58–14:05. 5-minute bars: the 13:55 bar (closes 14:00) and the 14:00 bar (closes
    # 14:05) overlap it → no entry; flatten at the close of the 13:50 bar (13:55), the last before it.
    frame = bars("2026-03-18 13:40", [20000.0] * 8)
    p = pack(
        MAX_LOSS_1000,
        {
            "kind": "news",
            "name": "fomc",
            "kinds": ["fomc"],
            "before_min": 2,
            "after_min": 5,
            "action": "flatten",
        },
    )
    market = prepare_market(frame, BacktestConfig())

    masks = event_masks(market, p)

    times = frame.index.strftime("%H:%M")
    assert list(times[masks.no_entry]) == ["13:55", "14:00"]
    assert list(times[masks.flatten]) == ["13:50", "13:55", "14:00"]
    assert masks.windows[0]["event"].startswith("fomc")


def test_contracts_are_capped_at_the_packs_limit_in_mini_equivalents() -> None:
    cap = {"kind": "max_contracts", "name": "max_contracts", "minis": 2}
    p = pack(MAX_LOSS_1000, cap)

    assert pack_config(p, BacktestConfig(contracts=5)).contracts == 2
    assert pack_config(p, BacktestConfig(symbol="MNQ", contracts=50)).contracts == 20  # 10 micros a mini
    assert pack_config(p, BacktestConfig(contracts=1)).initial_capital == 50_000.0


def test_a_session_advanced_bar_by_bar_ends_where_the_one_shot_run_does() -> None:
    # The daily-loss frame again, with the signals revealed one bar at a time (as an agent backtest
    # decides): the state at each close only depends on the signals of earlier bars.
    mon = bars("2026-03-02 10:00", [20000, 20000, 19985, 19975, 19990, 20000, 20005])
    tue = bars("2026-03-03 10:00", [20005, 20010, 20020, 20030])
    frame = pd.concat([mon, tue])
    p = pack(
        {"kind": "daily_loss", "name": "daily_loss", "amount_usd": 500.0, "consequence": "stop_day"},
        {"kind": "max_loss", "name": "max_loss", "amount_usd": 2000.0, "trailing": "static"},
    )
    cfg = BacktestConfig(**FREE)
    market = prepare_market(frame, pack_config(p, cfg))
    full = scripted(long_entries=[0, 4, 7])(market.data, {})

    session = PackSession(market, cfg, p)
    seen = []
    for i in range(len(frame)):
        known = Signals(
            *(
                np.where(np.arange(len(frame)) < i, a, False)
                for a in (full.long_entry, full.long_exit, full.short_entry, full.short_exit)
            )
        )
        seen.append(session.advance(known, i).stopped_day)
    stepped = session.finish(full, name="scripted", params={})
    one_shot = backtest_under_pack(frame, p, scripted(long_entries=[0, 4, 7]), config=cfg)

    pd.testing.assert_frame_equal(stepped.report.trades, one_shot.report.trades)
    assert seen[2] is None and seen[3] == "2026-03-02"  # known at bar 3's close, not before


def test_a_pass_at_a_session_close_ends_the_challenge() -> None:
    # Monday: long at 20000 (bar 1's open), out at 20030 (bar 3's open): +$600 ≥ the $500 target. The
    # pass is judged at Monday's session close (seen at Tuesday's first mark); Tuesday's entry signal
    # (bar 4, due at bar 5's open) is refused: the evaluation is over.
    mon = bars("2026-03-02 10:00", [20000, 20000, 20030, 20030])
    tue = bars("2026-03-03 10:00", [20030, 20030, 20055, 20055])
    frame = pd.concat([mon, tue])
    target = {"kind": "profit_target", "name": "target", "amount_usd": 500.0}

    run = backtest_under_pack(frame, pack(target, MAX_LOSS_1000), scripted([0, 4], [2, 6]), config=cfg())

    assert run.outcome == "passed"
    assert run.passed is not None and run.passed.session_day == "2026-03-02"
    assert len(run.report.trades) == 1 and run.report.trades.pnl_usd.iloc[0] == pytest.approx(600.0)
    assert run.blocked_entries == 1


def cfg() -> BacktestConfig:
    return BacktestConfig(**FREE)
