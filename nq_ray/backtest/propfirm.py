"""A backtest under a prop-firm rule pack: the run stops or blocks where the firm would.

Two kinds of rule shape the run (``nq_ray.propfirm`` defines them; docs/challenge.md has the details):

* **Event-time rules** are known before the run, as bar masks for the kernel (``simulate_masked``):
  the flat-by time (no entry on a bar that reaches it, flatten at the close of the last bar before it)
  and the pack's news rules over the economic calendar (no entry on a bar that overlaps a window; a
  ``flatten`` window also flattens at the close of the bar before it). The contract cap is applied to the
  size of each entry (mini-equivalents, at the starting balance's scaling step).
* **Path-dependent rules** (maximum loss, daily loss) are found by walking the run's per-bar equity (at
  each bar's close) and closed balance through ``propfirm.mark``: at the first breach the masks grow —
  ``fail``: flatten at that bar's close and no entry ever after; ``stop_day``: flatten at that close and
  no entry for the rest of that session day — and the kernel runs again. Each new run changes only bars
  from the breach on, so the walk resumes there; it ends when a walk finds no new breach. A pass (the
  pack's passing conditions met at a session close) ends the challenge the same way: no entry after it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Literal

import numpy as np
import pandas as pd

from nq_ray.backtest.config import BacktestConfig
from nq_ray.backtest.engine import (
    BacktestReport,
    Market,
    prepare_market,
    run_signals,
    trades_frame,
)
from nq_ray.backtest.kernel import T_ENTRY_IDX, T_EXIT_IDX, T_PNL
from nq_ray.backtest.stats import Metrics, compute_metrics
from nq_ray.backtest.strategies import SignalFunction, Signals, Strategy, get_strategy
from nq_ray.domain.contracts import normalize_symbol
from nq_ray.errors import InvalidArgumentError
from nq_ray.market.sessions import to_exchange_index
from nq_ray.propfirm.model import FlatBy, MaxContracts, NewsRule, RulePack, RuleStatus
from nq_ray.propfirm.state import PropState, close_day, evaluate, mark, max_loss_floor, start

Outcome = Literal["passed", "failed", "in_progress"]
MAX_ITERATIONS = 10_000


@dataclass(frozen=True)
class RuleEvent:
    """Where a path-dependent rule (or the pass) acted: the bar, its close time, rule and balances."""

    kind: Literal["fail", "stop_day", "passed"]
    bar: int
    bar_time: pd.Timestamp  # the bar's start (its close is ``at``)
    at: pd.Timestamp  # the close of the bar the rule acted on
    session_day: str
    rule: str
    message: str
    balance_usd: float
    equity_usd: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "bar_time": self.bar_time.isoformat(),
            "at": self.at.isoformat(),
            "session_day": self.session_day,
            "rule": self.rule,
            "message": self.message,
            "balance_usd": round(self.balance_usd, 2),
            "equity_usd": round(self.equity_usd, 2),
        }


@dataclass(frozen=True)
class EventMasks:
    """The event-time masks and what made them (for the report)."""

    no_entry: np.ndarray
    flatten: np.ndarray
    windows: list[dict[str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class PackRun:
    """A backtest under a pack: the enforced run's report and the account's path under the pack."""

    pack: RulePack
    report: BacktestReport
    state: PropState
    outcome: Outcome
    events: list[RuleEvent]
    daily: pd.DataFrame
    statuses: list[RuleStatus]
    contracts: int
    blocked_entries: int
    iterations: int
    windows: list[dict[str, str]]

    @property
    def failure(self) -> RuleEvent | None:
        return next((e for e in self.events if e.kind == "fail"), None)

    @property
    def passed(self) -> RuleEvent | None:
        return next((e for e in self.events if e.kind == "passed"), None)

    @property
    def stopped_days(self) -> list[RuleEvent]:
        return [e for e in self.events if e.kind == "stop_day"]

    def summary(self) -> dict[str, Any]:
        """JSON-able: outcome, the pass or the failure, every rule's final status, the daily table."""
        s = self.state
        fail, won = self.failure, self.passed
        return {
            "pack": self.pack.name,
            "firm": self.pack.firm,
            "program": self.pack.program,
            "strategy": self.report.strategy,
            "params": self.report.params,
            "outcome": self.outcome,
            "passed": won.as_dict() if won else None,
            "failed": fail.as_dict() if fail else None,
            "stopped_days": [e.as_dict() for e in self.stopped_days],
            "start_balance_usd": s.start_balance_usd,
            "balance_usd": round(s.balance_usd, 2),
            "equity_usd": round(s.equity_usd, 2),
            "trading_days": len(s.traded_days),
            "session_days": len(self.daily),
            "contracts": self.contracts,
            "blocked_entries": self.blocked_entries,
            "n_trades": self.report.metrics.n_trades,
            "net_pnl_usd": round(self.report.metrics.net_pnl_usd, 2),
            "rules": [r.model_dump(mode="json") for r in self.statuses],
            "daily": [
                {k: (round(v, 2) if isinstance(v, float) else v) for k, v in row.items()}
                for row in self.daily.to_dict(orient="records")
            ],
            "windows": self.windows[:50],
            "iterations": self.iterations,
        }


# --------------------------------------------------------------------------------------------------
# event-time masks


def bar_length(index: pd.DatetimeIndex) -> pd.Timedelta:
    """The shortest step between bars (the bar length)."""
    steps = np.diff(index.as_unit("ns").asi8)
    steps = steps[steps > 0]
    return pd.Timedelta(int(steps.min()) if steps.size else 0, unit="ns")


def _window_masks(
    starts_ns: np.ndarray, ends_ns: np.ndarray, tradable: np.ndarray, windows: Sequence[tuple[int, int]]
) -> tuple[np.ndarray, np.ndarray]:
    """Bars overlapping any ``[start, end)`` window (no entry there), and the bars to flatten for it:
    the last tradable bar that closes at or before the window opens, and tradable bars inside it."""
    n = starts_ns.shape[0]
    blocked = np.zeros(n, dtype=np.bool_)
    before = np.zeros(n, dtype=np.bool_)
    for w0, w1 in windows:
        lo = int(np.searchsorted(ends_ns, w0, side="right"))  # first bar closing after w0
        hi = int(np.searchsorted(starts_ns, w1, side="left"))  # first bar starting at or after w1
        if lo >= hi:
            continue
        blocked[lo:hi] = True
        prev = np.flatnonzero(tradable[:lo])
        if prev.size:
            before[prev[-1]] = True
    return blocked, (before & ~blocked) | (blocked & tradable)


def _flat_by_windows(rule: FlatBy, index_et: pd.DatetimeIndex) -> list[tuple[int, int]]:
    """One ``[flat time, 18:00 ET)`` window per calendar day of the bars that is one of the rule's days."""
    days = pd.DatetimeIndex(index_et.normalize().unique())
    names = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
    out = []
    for d in days:
        if names[d.weekday()] not in rule.days:
            continue
        t0 = d + pd.Timedelta(hours=rule.time.hour, minutes=rule.time.minute)
        t1 = d + pd.Timedelta(hours=18)
        out.append((int(t0.value), int(t1.value)))
    return out


def event_masks(market: Market, pack: RulePack, calendar: Any | None = None) -> EventMasks:
    """The pack's flat-by and news rules as kernel masks over ``market``'s bars. ``calendar``: an
    ``EconomicCalendar`` (default: the bundled one) for the news rules."""
    index = market.index
    n = len(index)
    no_entry = np.zeros(n, dtype=np.bool_)
    flatten = np.zeros(n, dtype=np.bool_)
    shown: list[dict[str, str]] = []
    if n == 0 or index.tz is None:
        return EventMasks(no_entry, flatten, shown)
    length = bar_length(index)
    et = to_exchange_index(index)
    starts = index.as_unit("ns").asi8.astype(np.int64)
    ends = starts + int(length.value)
    for rule in pack.rules_of("flat_by"):
        blocked, flat = _window_masks(starts, ends, market.tradable, _flat_by_windows(rule, et))
        no_entry |= blocked
        flatten |= flat
    news = [r for r in pack.rules_of("news") if isinstance(r, NewsRule)]
    if news:
        if calendar is None:
            from nq_ray.market.calendar import bundled_calendar

            calendar = bundled_calendar()
        lo, hi = et[0] - pd.Timedelta(days=1), et[-1] + pd.Timedelta(days=1)
        for rule in news:
            wins = []
            for ev in calendar.between(lo.to_pydatetime(), hi.to_pydatetime(), kinds=list(rule.kinds)):
                t = pd.Timestamp(ev.time)
                w0, w1 = t - pd.Timedelta(minutes=rule.before_min), t + pd.Timedelta(minutes=rule.after_min)
                wins.append((int(w0.value), int(w1.value)))
                shown.append(
                    {
                        "rule": rule.name,
                        "event": f"{ev.kind} {ev.title}".strip(),
                        "from": w0.isoformat(),
                        "to": w1.isoformat(),
                        "action": rule.action,
                    }
                )
            blocked, flat = _window_masks(starts, ends, market.tradable, wins)
            no_entry |= blocked
            if rule.action == "flatten":
                flatten |= flat
    return EventMasks(no_entry, flatten, shown)


def capped_contracts(pack: RulePack, config: BacktestConfig) -> int:
    """The entry size under the pack's contract cap (mini-equivalents; the scaling step in force at the
    starting balance: the size is fixed for the whole run, so the first step is the conservative one)."""
    rule = pack.rule("max_contracts")
    if not isinstance(rule, MaxContracts):
        return config.contracts
    cap_minis = rule.cap_for(pack.starting_balance_usd)
    weight = rule.weight(normalize_symbol(config.symbol))
    return max(0, min(config.contracts, int(np.floor(cap_minis / weight + 1e-9))))


def pack_config(pack: RulePack, config: BacktestConfig | None) -> BacktestConfig:
    """``config`` for a run under ``pack``: the pack's starting balance and the capped size."""
    config = config or BacktestConfig()
    contracts = capped_contracts(pack, config)
    if contracts < 1:
        raise InvalidArgumentError(
            f"pack {pack.name} allows no contract of {config.symbol}", pack=pack.name, symbol=config.symbol
        )
    return config.model_copy(update={"initial_capital": pack.starting_balance_usd, "contracts": contracts})


# --------------------------------------------------------------------------------------------------
# the walk through propfirm.mark


def closed_balance(trades: np.ndarray, n: int, capital: float) -> np.ndarray:
    """Closed balance at each bar's close: capital + net P&L of the trades exited by then."""
    real = np.zeros(n, dtype=np.float64)
    if trades.shape[0]:
        np.add.at(real, trades[:, T_EXIT_IDX].astype(np.int64), trades[:, T_PNL])
    return capital + np.cumsum(real)


def fill_bars(trades: np.ndarray, n: int) -> np.ndarray:
    """True on the bars with a fill (an entry or an exit)."""
    out = np.zeros(n, dtype=np.bool_)
    if trades.shape[0]:
        out[trades[:, T_ENTRY_IDX].astype(np.int64)] = True
        out[trades[:, T_EXIT_IDX].astype(np.int64)] = True
    return out


@dataclass
class _Walk:
    """The marks so far: the state after each marked bar, for resuming after a re-run."""

    bars: list[int] = field(default_factory=list)
    states: list[PropState] = field(default_factory=list)

    def resume(self, bar: int, initial: PropState) -> tuple[int, PropState]:
        """Drop the marks at or after ``bar``; the bar to resume from and the state before it."""
        k = int(np.searchsorted(np.asarray(self.bars, dtype=np.int64), bar, side="left"))
        del self.bars[k:]
        del self.states[k:]
        return (self.bars[-1] + 1, self.states[-1]) if self.bars else (0, initial)


def _walk(
    pack: RulePack,
    market: Market,
    equity: np.ndarray,
    balance: np.ndarray,
    traded: np.ndarray,
    walk: _Walk,
    first: int,
    state: PropState,
    known: set[tuple[str, int]],
    last: int,
) -> tuple[PropState, tuple[str, int, str, str] | None]:
    """Mark bars ``first`` … ``last`` until a breach or pass not yet enforced:
    (state, (kind, bar, rule, message) or None)."""
    if state.failed is not None:
        return state, None  # a failed account is marked no more
    index, day = market.index, market.day_id
    n = len(index)
    prev_eq = equity[first - 1] if first else state.equity_usd
    prev_bal = balance[first - 1] if first else state.balance_usd
    prev_day = day[first - 1] if first else -1
    for i in range(first, last + 1):
        if (
            equity[i] == prev_eq
            and balance[i] == prev_bal
            and not traded[i]
            and day[i] == prev_day
            and i != n - 1
        ):
            continue
        before = state
        state = mark(
            pack,
            state,
            at=index[i].to_pydatetime(),
            balance_usd=float(balance[i]),
            equity_usd=float(equity[i]),
            traded=bool(traded[i]),
        )
        walk.bars.append(i)
        walk.states.append(state)
        prev_eq, prev_bal, prev_day = equity[i], balance[i], day[i]
        if state.passed_at is not None and before.passed_at is None and ("passed", i) not in known:
            return state, ("passed", i, "", "every passing condition met at the session close")
        if state.failed is not None and before.failed is None:
            if ("fail", i) in known:
                return state, None
            return state, ("fail", i, state.failed.rule, state.failed.message)
        new_stop = state.stopped_day is not None and state.stopped_day != before.stopped_day
        if new_stop and ("stop_day", i) not in known:
            rows = evaluate(pack, state)
            row = next((r for r in rows if r.consequence == "stop_day" and r.state == "breached"), None)
            return state, ("stop_day", i, row.rule if row else "", row.message if row else "")
        if state.failed is not None:
            return state, None
    return state, None


def _daily_table(
    pack: RulePack, market: Market, equity: np.ndarray, balance: np.ndarray, walk: _Walk
) -> pd.DataFrame:
    """One row per session day: start/end balance, P&L, worst equity, and the room left to the daily loss
    limit and to the max-loss floor at the day's worst mark (≤ 0: breached)."""
    from nq_ray.propfirm.model import DailyLoss, MaxLoss

    ml, dl = pack.rule("max_loss"), pack.rule("daily_loss")
    rows: dict[str, dict[str, Any]] = {}
    for st in walk.states:
        d = st.session_day.isoformat()
        row = rows.get(d)
        if row is None:
            row = rows[d] = {
                "session_day": d,
                "start_balance_usd": st.day_start_balance_usd,
                "end_balance_usd": st.balance_usd,
                "pnl_usd": 0.0,
                "low_equity_usd": st.equity_usd,
                "daily_loss_room_usd": None,
                "max_loss_floor_usd": None,
                "max_loss_room_usd": None,
                "traded": False,
                "stopped": False,
                "failed": False,
            }
        row["end_balance_usd"] = st.balance_usd
        row["pnl_usd"] = st.balance_usd - st.day_start_balance_usd
        row["low_equity_usd"] = min(row["low_equity_usd"], st.equity_usd)
        row["traded"] = row["traded"] or d in st.traded_days
        row["stopped"] = row["stopped"] or st.stopped_day == d
        row["failed"] = row["failed"] or st.failed is not None
        if isinstance(dl, DailyLoss):
            level = st.equity_usd if dl.basis == "equity" else st.balance_usd
            room = level - st.day_start_balance_usd + dl.amount_usd
            old = row["daily_loss_room_usd"]
            row["daily_loss_room_usd"] = room if old is None else min(old, room)
        if isinstance(ml, MaxLoss):
            floor = max_loss_floor(pack, st, ml)
            room = st.equity_usd - floor
            old = row["max_loss_room_usd"]
            if old is None or room < old:
                row["max_loss_room_usd"] = room
                row["max_loss_floor_usd"] = floor
    return pd.DataFrame(list(rows.values()))


def _event_day(kind: str, state: PropState) -> str:
    """The session day a rule acted on: a pass is judged at the close of the day before the mark that
    rolled it (the last closed day), a breach on the mark's own day."""
    if kind == "passed" and state.day_pnl_usd:
        return max(state.day_pnl_usd)
    return state.session_day.isoformat()


class PackSession:
    """A run under a pack that can advance bar by bar: ``advance(signals, upto)`` gives the account's
    state at bar ``upto``'s close for the signals known so far. Signals added later (on a later bar's
    close) change only later bars, so an agent backtest can ask for the state at each decision and pass
    it to the risk gate (``agents.backtest``). ``finish`` gives the ``PackRun``."""

    def __init__(
        self,
        market: Market,
        config: BacktestConfig,
        pack: RulePack,
        *,
        calendar: Any | None = None,
        start_balance_usd: float | None = None,
    ) -> None:
        cfg = pack_config(pack, config)
        if start_balance_usd is not None:
            cfg = cfg.model_copy(update={"initial_capital": float(start_balance_usd)})
        self.market, self.pack, self.config = market, pack, cfg
        self.n = len(market.index)
        self.masks = event_masks(market, pack, calendar)
        self.no_entry, self.flatten = self.masks.no_entry.copy(), self.masks.flatten.copy()
        self.initial = start(pack, market.index[0].to_pydatetime(), cfg.initial_capital)
        self.length = bar_length(market.index)
        self.known: set[tuple[str, int]] = set()
        self.events: list[RuleEvent] = []
        self.walk = _Walk()
        self.opts = cfg.options()
        self.iterations = 0
        self.first, self.state = 0, self.initial
        self._run: tuple[Any, ...] | None = None

    def advance(self, signals: Signals, upto: int | None = None) -> PropState:
        """Walk the bars up to ``upto`` (default: the last) and return the state at its close."""
        m = self.market
        last = self.n - 1 if upto is None else min(int(upto), self.n - 1)
        while True:
            self.iterations += 1
            equity, position, trades, rejected = run_signals(
                m, signals, self.config, self.opts, no_entry=self.no_entry, flatten=self.flatten
            )
            balance = closed_balance(trades, self.n, self.config.initial_capital)
            traded = fill_bars(trades, self.n)
            self._run = (equity, position, trades, rejected, balance)
            state, hit = _walk(
                self.pack, m, equity, balance, traded, self.walk, self.first, self.state, self.known, last
            )
            if hit is None or self.iterations >= MAX_ITERATIONS:
                self.state, self.first = state, max(self.first, last + 1)
                return state
            kind, bar, rule, message = hit
            self.known.add((kind, bar))
            self.events.append(
                RuleEvent(
                    kind=kind,  # type: ignore[arg-type]
                    bar=bar,
                    bar_time=m.index[bar],
                    at=m.index[bar] + self.length,
                    session_day=_event_day(kind, self.walk.states[-1]),
                    rule=rule,
                    message=message,
                    balance_usd=float(balance[bar]),
                    equity_usd=float(equity[bar]),
                )
            )
            self.flatten[bar] = True
            if kind == "stop_day":  # flat, no entry for the rest of that session day
                same = np.flatnonzero(m.day_id == m.day_id[bar])
                self.no_entry[bar + 1 : same[-1] + 1] = True
            elif kind == "fail":  # flat, and nothing more, ever
                self.no_entry[bar + 1 :] = True
            else:  # passed at this session close: the challenge is over
                self.no_entry[bar:] = True
            self.first, self.state = self.walk.resume(bar, self.initial)

    def finish(self, signals: Signals, *, name: str, params: Mapping[str, Any]) -> PackRun:
        """Walk to the end, close the last session day and report."""
        state = self.advance(signals)
        assert self._run is not None
        equity, position, trades, rejected, balance = self._run
        m, pack, n, cfg = self.market, self.pack, self.n, self.config
        final = close_day(pack, state)
        events = list(self.events)
        if final.passed_at is not None and not any(e.kind == "passed" for e in events):
            events.append(
                RuleEvent(
                    kind="passed",
                    bar=n - 1,
                    bar_time=m.index[n - 1],
                    at=m.index[n - 1] + self.length,
                    session_day=final.session_day.isoformat(),
                    rule="",
                    message="every passing condition met at the last session close of the data",
                    balance_usd=float(balance[n - 1]),
                    equity_usd=float(equity[n - 1]),
                )
            )
        # the balances where each rule acted, in the final run (after its own flatten)
        events = sorted(
            (replace(e, balance_usd=float(balance[e.bar]), equity_usd=float(equity[e.bar])) for e in events),
            key=lambda e: e.bar,
        )
        outcome: Outcome = "in_progress"
        if final.failed is not None:
            outcome = "failed"
        elif final.passed_at is not None or any(e.kind == "passed" for e in events):
            outcome = "passed"
        values = compute_metrics(equity, position, trades, m.day_id, m.times_ns, cfg.initial_capital)
        report = BacktestReport(
            strategy=name,
            params=dict(params),
            config=cfg,
            trades=trades_frame(trades, m.index),
            equity=pd.Series(equity, index=m.index, name="equity_usd"),
            position=pd.Series(position.astype(np.int64), index=m.index, name="contracts"),
            metrics=Metrics.from_array(values),
            rejected_entries=int(rejected),
        )
        return PackRun(
            pack=pack,
            report=report,
            state=final,
            outcome=outcome,
            events=events,
            daily=_daily_table(pack, m, equity, balance, self.walk),
            statuses=evaluate(pack, final),
            contracts=cfg.contracts,
            blocked_entries=int(rejected),
            iterations=self.iterations,
            windows=self.masks.windows,
        )


def run_signals_under_pack(
    market: Market,
    signals: Signals,
    config: BacktestConfig,
    pack: RulePack,
    *,
    name: str,
    params: Mapping[str, Any],
    calendar: Any | None = None,
    start_balance_usd: float | None = None,
) -> PackRun:
    """Run ready signals under ``pack`` (see the module docstring). ``config`` is used as given except
    for the pack's starting balance and contract cap (``pack_config``)."""
    session = PackSession(market, config, pack, calendar=calendar, start_balance_usd=start_balance_usd)
    return session.finish(signals, name=name, params=params)


def backtest_under_pack(
    bars: pd.DataFrame,
    pack: RulePack,
    strategy: str | Strategy | SignalFunction = "sma_cross",
    params: Mapping[str, Any] | None = None,
    config: BacktestConfig | None = None,
    *,
    calendar: Any | None = None,
) -> PackRun:
    """``run_backtest`` under ``pack``: the run stops or blocks where the firm would."""
    config = pack_config(pack, config)
    strat = get_strategy(strategy)
    full = strat.resolve_params(params)
    market = prepare_market(bars, config, strat.warmup(full))
    signals = strat.signals(market.data, full)
    return run_signals_under_pack(
        market, signals, config, pack, name=strat.name, params=full, calendar=calendar
    )


def when(ts: datetime | pd.Timestamp | None) -> str | None:
    return None if ts is None else pd.Timestamp(ts).isoformat()
