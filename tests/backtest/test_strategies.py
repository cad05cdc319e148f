"""Built-in strategies against hand-checked events, the registry, and parameter validation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import talib

from nq_ray.backtest import BacktestConfig, BarData, Signals, get_strategy, list_strategies, run_backtest
from nq_ray.backtest.strategies import cross_above, cross_below
from nq_ray.errors import InvalidArgumentError
from tests.backtest.bars import NO_COSTS, make_bars


def test_cross_above_needs_a_strict_change_of_side():
    """a − b: −1, 0, +1, +1, −1, +1 → crosses above at 2 and 5 (equality in between does not reset)."""
    a = np.array([1.0, 2.0, 3.0, 3.0, 1.0, 3.0])
    b = np.full(6, 2.0)
    assert np.flatnonzero(cross_above(a, b)).tolist() == [2, 5]
    assert np.flatnonzero(cross_below(a, b)).tolist() == [4]


def test_cross_ignores_nan_warmup():
    a = np.array([np.nan, 1.0, 3.0])
    b = np.array([2.0, 2.0, 2.0])
    assert cross_above(a, b).tolist() == [False, False, True]


def test_sma_cross_events_match_talib_sma(nq_bars):
    """Long entries are exactly the bars where TA-Lib SMA(10) goes from below to above SMA(30) (ties keep the
    previous side)."""
    data = BarData.from_frame(nq_bars)
    sig = get_strategy("sma_cross").signals(data, {"fast": 10, "slow": 30})
    f, s = talib.SMA(data.close, 10), talib.SMA(data.close, 30)
    side = pd.Series(np.sign(f - s)).replace(0.0, np.nan).ffill().to_numpy()  # a tie keeps the last side
    expected = [i for i in range(1, len(side)) if side[i] > 0 and side[i - 1] < 0 and f[i] > s[i]]
    assert np.flatnonzero(sig.long_entry).tolist() == expected
    assert (sig.short_entry == sig.long_exit).all()


def test_sma_cross_is_always_in_the_market_after_first_cross(nq_bars):
    """With shorts allowed the position never returns to flat between the first entry and the end."""
    r = run_backtest(nq_bars, "sma_cross", {"fast": 10, "slow": 30}, BacktestConfig(session_calendar=False))
    pos = r.position.to_numpy()
    first = np.flatnonzero(pos)[0]
    assert (pos[first:-1] != 0).all()
    assert set(r.trades.side) == {"long", "short"}


@pytest.mark.parametrize(
    "name", ["ema_cross", "rsi_reversion", "bollinger_breakout", "macd_cross", "opening_range_breakout"]
)
def test_builtins_trade_on_real_bars(nq_bars, name):
    r = run_backtest(nq_bars, name)
    assert r.metrics.n_trades > 0
    assert not any(np.isnan(v) for v in r.metrics.model_dump().values())


def test_opening_range_breakout_enters_after_the_range_and_exits_by_rth_close(nq_bars):
    """Every entry is after 10:00 ET (30-minute range from 09:30) and every position is closed by the
    16:00 ET open
    that follows the last RTH bar's exit signal, the same day."""
    r = run_backtest(nq_bars, "opening_range_breakout", {"minutes": 30})
    t = r.trades
    entry_minutes = t.entry_time.dt.hour * 60 + t.entry_time.dt.minute
    assert (entry_minutes >= 10 * 60).all()
    exit_minutes = t.exit_time.dt.hour * 60 + t.exit_time.dt.minute
    assert (exit_minutes <= 16 * 60).all()  # the 15:55 bar's exit signal fills at the 16:00 open
    assert (t.exit_time.dt.date == t.entry_time.dt.date).all()


def test_vwap_reversion_runs_when_indicators_exist(nq_bars):
    import nq_ray.analysis.indicators  # noqa: F401  (vwap_reversion needs them; a missing module fails here)

    r = run_backtest(nq_bars, "vwap_reversion", {"band_pct": 0.2})
    assert r.metrics.n_trades > 0


def test_user_signal_function_plugs_in():
    """A user's function returning a dict: long on bar 0 → buy bar 1 open 101, closed at last close 104 =
    $60."""
    bars = make_bars([(100, 101, 99, 100), (101, 102, 100, 101), (102, 103, 101, 102), (103, 104, 102, 104)])

    def my_signals(data, params):
        le = np.zeros(len(data), dtype=bool)
        le[0] = True
        return {"long_entry": le}

    r = run_backtest(bars, my_signals, config=BacktestConfig(**NO_COSTS))
    assert r.strategy == "my_signals" and r.trades.pnl_usd.tolist() == [60.0]


def test_user_function_with_wrong_length_is_rejected():
    bars = make_bars([(100, 101, 99, 100)] * 3)
    with pytest.raises(InvalidArgumentError, match="shape"):
        run_backtest(bars, lambda d, p: {"long_entry": np.zeros(2, dtype=bool)})


def test_unknown_strategy_names_the_known_ones():
    with pytest.raises(InvalidArgumentError, match="unknown strategy 'nope'.*sma_cross"):
        get_strategy("nope")


def test_unknown_parameter_is_named():
    with pytest.raises(InvalidArgumentError, match="unknown parameter.*fastt"):
        get_strategy("sma_cross").resolve_params({"fastt": 3})


@pytest.mark.parametrize("params", [{"fast": 30, "slow": 10}, {"fast": 20, "slow": 20}])
def test_fast_not_below_slow_is_rejected(params):
    with pytest.raises(InvalidArgumentError, match="fast"):
        get_strategy("sma_cross").resolve_params(params)


def test_non_integer_period_is_rejected():
    with pytest.raises(InvalidArgumentError, match="integer"):
        get_strategy("ema_cross").resolve_params({"fast": 2.5})


def test_registry_lists_all_builtins():
    assert {
        "sma_cross",
        "ema_cross",
        "rsi_reversion",
        "bollinger_breakout",
        "macd_cross",
        "opening_range_breakout",
        "vwap_reversion",
    } <= set(list_strategies())


def test_signals_coerce_accepts_a_dataframe():
    df = pd.DataFrame({"long_entry": [1, 0], "long_exit": [0, 1]})
    s = Signals.coerce(df, 2)
    assert s.long_entry.tolist() == [True, False] and s.short_entry.tolist() == [False, False]
