"""The challenge simulator for a strategy: the evaluation on historical bars under a rule pack, and the
pass probability from Monte Carlo resampling of whole trading days.

``run_challenge`` runs the strategy under the pack (``nq_ray.backtest.propfirm``: pass, or the rule, time and
balances of the failure, the daily P&L against each rule) and then estimates how likely the strategy is
to pass: each simulation draws a sequence of session days with replacement (seeded) from the run's days,
each day keeping its own intraday path of bar-by-bar equity and balance changes (an intraday rule needs
the path, not the day's total), and walks the pack's rules over the new path: maximum loss (static,
end-of-day or intraday trailing, with its stop level), daily loss (stop for the day: the rest of that
day is flat; or fail), and at each session close the passing conditions (profit target, consistency,
minimum trading days). The days come from a run with the event-time rules only (flat-by, news, contract
cap): path-dependent rules act inside each simulation, so a day cut short in the historical run is
resampled whole. Outcomes per simulation: passed, failed, or still in progress after as many session days
as the data has. The probability comes with a 95% Wilson score interval.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from numba import njit

from nq_ray.backtest.config import BacktestConfig
from nq_ray.backtest.engine import Market, prepare_market, run_signals
from nq_ray.backtest.propfirm import (
    PackRun,
    closed_balance,
    event_masks,
    fill_bars,
    pack_config,
    run_signals_under_pack,
)
from nq_ray.backtest.strategies import SignalFunction, Signals, Strategy, get_strategy
from nq_ray.errors import InvalidArgumentError
from nq_ray.propfirm.model import Consistency, DailyLoss, MaxLoss, MinTradingDays, ProfitTarget, RulePack

_TRAILING = {"static": 0, "eod_balance": 1, "intraday_equity": 2}
_CONSEQUENCE = {"fail": 0, "stop_day": 1, "block": 2}
# layout of the rules vector the numba walk reads
(
    P_START,
    P_ML_ON,
    P_ML_AMT,
    P_ML_TRAIL,
    P_ML_STOP_AT,
    P_ML_CONS,
    P_DL_ON,
    P_DL_AMT,
    P_DL_BALANCE,
    P_DL_CONS,
    P_PT_ON,
    P_PT_AMT,
    P_CS_ON,
    P_CS_PCT,
    P_CS_STRICT,
    P_MD_ON,
    P_MD_DAYS,
    N_P,
) = range(18)
OUT_PASSED, OUT_FAILED, OUT_IN_PROGRESS = 1, 2, 0
Z95 = 1.959963984540054
MAX_SIMS = 100_000


def rules_vector(pack: RulePack, start_balance_usd: float | None = None) -> np.ndarray:
    """The pack's path rules as the float64 vector ``walk_days`` reads (layout: the ``P_*`` constants)."""
    p = np.zeros(N_P, dtype=np.float64)
    start = float(pack.starting_balance_usd if start_balance_usd is None else start_balance_usd)
    p[P_START] = start
    p[P_ML_STOP_AT] = np.nan
    ml = pack.rule("max_loss")
    if isinstance(ml, MaxLoss):
        p[P_ML_ON], p[P_ML_AMT], p[P_ML_TRAIL] = 1, ml.amount_usd, _TRAILING[ml.trailing]
        if ml.stop_at_usd is not None:
            p[P_ML_STOP_AT] = ml.stop_at_usd + (start - pack.starting_balance_usd)
        p[P_ML_CONS] = _CONSEQUENCE[ml.consequence]
    dl = pack.rule("daily_loss")
    if isinstance(dl, DailyLoss):
        p[P_DL_ON], p[P_DL_AMT] = 1, dl.amount_usd
        p[P_DL_BALANCE] = 1.0 if dl.basis == "balance" else 0.0
        p[P_DL_CONS] = _CONSEQUENCE[dl.consequence]
    pt = pack.rule("profit_target")
    if isinstance(pt, ProfitTarget):
        p[P_PT_ON], p[P_PT_AMT] = 1, pt.amount_usd
    cs = pack.rule("consistency")
    if isinstance(cs, Consistency):
        p[P_CS_ON], p[P_CS_PCT] = 1, cs.max_best_day_pct
        p[P_CS_STRICT] = 1.0 if getattr(cs, "strict", False) else 0.0
    md = pack.rule("min_trading_days")
    if isinstance(md, MinTradingDays):
        p[P_MD_ON], p[P_MD_DAYS] = 1, md.days
    return p


@njit(cache=True)
def _floor(p, high_eod, high_eq):
    trail = p[P_ML_TRAIL]
    if trail == 0:
        return p[P_START] - p[P_ML_AMT]
    ref = high_eod if trail == 1 else high_eq
    f = ref - p[P_ML_AMT]
    if not np.isnan(p[P_ML_STOP_AT]) and f > p[P_ML_STOP_AT]:
        f = p[P_ML_STOP_AT]
    return f


@njit(cache=True)
def walk_days(deq, dbal, traded, day_first, day_last, orders, p):
    """Walk each row of ``orders`` (session-day block numbers) through the pack's path rules.

    ``deq``/``dbal``: per-bar change of equity / closed balance; ``traded``: a fill on the bar; block b
    is bars ``day_first[b] .. day_last[b]``. Returns (sims × 3): outcome (0 in progress, 1 passed,
    2 failed), the simulated day it ended on (1-based; the horizon if in progress), and the failing rule
    (0 max loss, 1 daily loss, -1 none)."""
    eps = 1e-9
    n_sims, horizon = orders.shape
    out = np.zeros((n_sims, 3), dtype=np.float64)
    pnl = np.zeros(horizon, dtype=np.float64)
    for s in range(n_sims):
        start = p[P_START]
        bal = start
        eq = start
        high_eod = start
        high_eq = start
        n_traded = 0
        outcome = 0
        ended = horizon
        rule = -1
        for k in range(horizon):
            b = orders[s, k]
            day_start = bal
            stopped = False
            traded_today = False
            for j in range(day_first[b], day_last[b] + 1):
                if stopped:
                    break
                eq += deq[j]
                bal += dbal[j]
                if traded[j]:
                    traded_today = True
                if eq > high_eq:
                    high_eq = eq
                if p[P_ML_ON] > 0.5 and p[P_ML_CONS] < 1.5 and eq - _floor(p, high_eod, high_eq) <= eps:
                    if p[P_ML_CONS] < 0.5:
                        outcome, rule = 2, 0
                        break
                    stopped = True
                if p[P_DL_ON] > 0.5 and p[P_DL_CONS] < 1.5:
                    level = bal if p[P_DL_BALANCE] > 0.5 else eq
                    if level - day_start + p[P_DL_AMT] <= eps:
                        if p[P_DL_CONS] < 0.5:
                            outcome, rule = 2, 1
                            break
                        stopped = True
                if stopped:
                    bal = eq  # flat at this bar's close: the open P&L is realised
            if outcome == 2:
                ended = k + 1
                break
            pnl[k] = bal - day_start
            if bal > high_eod:
                high_eod = bal
            if traded_today:
                n_traded += 1
            if p[P_ML_ON] > 0.5 and p[P_ML_CONS] < 0.5 and eq - _floor(p, high_eod, high_eq) <= eps:
                outcome, rule, ended = 2, 0, k + 1
                break
            goals = 0
            met = 0
            if p[P_PT_ON] > 0.5:
                goals += 1
                if bal - start >= p[P_PT_AMT] - eps:
                    met += 1
            if p[P_CS_ON] > 0.5:
                goals += 1
                total = bal - start
                best = pnl[0]
                for q in range(1, k + 1):
                    if pnl[q] > best:
                        best = pnl[q]
                if total > eps:
                    pct = best / total * 100.0
                    if pct < p[P_CS_PCT] - eps or (p[P_CS_STRICT] < 0.5 and pct <= p[P_CS_PCT] + eps):
                        met += 1
            if p[P_MD_ON] > 0.5:
                goals += 1
                if n_traded >= p[P_MD_DAYS]:
                    met += 1
            if goals > 0 and met == goals:
                outcome, ended = 1, k + 1
                break
        out[s, 0] = outcome
        out[s, 1] = ended
        out[s, 2] = rule
    return out


def wilson_interval(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion (Wilson 1927)."""
    if n == 0:
        return 0.0, 1.0
    phat = successes / n
    den = 1 + z * z / n
    centre = (phat + z * z / (2 * n)) / den
    half = z * math.sqrt(phat * (1 - phat) / n + z * z / (4 * n * n)) / den
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass(frozen=True)
class DayBlocks:
    """Per-bar equity and balance changes of a run, cut into session days."""

    deq: np.ndarray
    dbal: np.ndarray
    traded: np.ndarray
    day_first: np.ndarray
    day_last: np.ndarray
    days: list[str]

    @property
    def n_days(self) -> int:
        return int(self.day_first.shape[0])


def day_blocks(
    market: Market, equity: np.ndarray, balance: np.ndarray, traded: np.ndarray, capital: float
) -> DayBlocks:
    """Cut a run's per-bar equity and closed balance into session-day blocks of changes."""
    deq = np.diff(equity, prepend=capital)
    dbal = np.diff(balance, prepend=capital)
    day = market.day_id
    first = np.flatnonzero(np.concatenate([[True], day[1:] != day[:-1]]))
    last = np.concatenate([first[1:] - 1, [len(day) - 1]])
    from nq_ray.market.sessions import session_dates

    names = pd.DatetimeIndex(session_dates(market.index[first])).strftime("%Y-%m-%d").tolist()
    return DayBlocks(
        np.ascontiguousarray(deq),
        np.ascontiguousarray(dbal),
        np.ascontiguousarray(traded),
        first.astype(np.int64),
        last.astype(np.int64),
        names,
    )


@dataclass(frozen=True)
class PassProbability:
    """Monte Carlo pass probability: outcome counts, the estimate and its 95% interval."""

    n_sims: int
    seed: int
    horizon_days: int
    passed: int
    failed: int
    in_progress: int
    probability: float
    ci_low: float
    ci_high: float
    median_days_to_pass: float | None
    failed_by: dict[str, int]

    def as_dict(self) -> dict[str, Any]:
        return {
            "n_sims": self.n_sims,
            "seed": self.seed,
            "horizon_days": self.horizon_days,
            "passed": self.passed,
            "failed": self.failed,
            "in_progress": self.in_progress,
            "probability": round(self.probability, 4),
            "ci95": [round(self.ci_low, 4), round(self.ci_high, 4)],
            "median_days_to_pass": self.median_days_to_pass,
            "failed_by": self.failed_by,
            "method": "bootstrap of whole session days (intraday paths kept), rules re-walked per path",
        }


def pass_probability(
    blocks: DayBlocks,
    pack: RulePack,
    *,
    n_sims: int = 1000,
    seed: int = 0,
    horizon_days: int | None = None,
    start_balance_usd: float | None = None,
) -> PassProbability:
    """Resample ``blocks``' session days ``n_sims`` times (seeded) and walk the pack over each path."""
    if not 1 <= n_sims <= MAX_SIMS:
        raise InvalidArgumentError(f"n_sims must be in 1..{MAX_SIMS}, got {n_sims}", n_sims=n_sims)
    if blocks.n_days == 0:
        raise InvalidArgumentError("no session day to resample")
    horizon = int(horizon_days or blocks.n_days)
    if horizon < 1:
        raise InvalidArgumentError(f"horizon_days must be ≥ 1, got {horizon_days}")
    rng = np.random.default_rng(seed)
    orders = rng.integers(0, blocks.n_days, size=(n_sims, horizon), dtype=np.int64)
    out = walk_days(
        blocks.deq,
        blocks.dbal,
        blocks.traded,
        blocks.day_first,
        blocks.day_last,
        orders,
        rules_vector(pack, start_balance_usd),
    )
    outcome = out[:, 0].astype(np.int64)
    passed = int((outcome == OUT_PASSED).sum())
    failed = int((outcome == OUT_FAILED).sum())
    lo, hi = wilson_interval(passed, n_sims)
    names = {0: _rule_name(pack, "max_loss"), 1: _rule_name(pack, "daily_loss")}
    fail_rules = out[outcome == OUT_FAILED, 2].astype(np.int64)
    days = out[outcome == OUT_PASSED, 1]
    return PassProbability(
        n_sims=n_sims,
        seed=seed,
        horizon_days=horizon,
        passed=passed,
        failed=failed,
        in_progress=n_sims - passed - failed,
        probability=passed / n_sims,
        ci_low=lo,
        ci_high=hi,
        median_days_to_pass=float(np.median(days)) if days.size else None,
        failed_by={names[int(k)]: int((fail_rules == k).sum()) for k in np.unique(fail_rules)},
    )


def _rule_name(pack: RulePack, kind: str) -> str:
    r = pack.rule(kind)
    return r.name if r is not None else kind


@dataclass(frozen=True)
class ChallengeResult:
    """A challenge run: the historical run under the pack, and (for a strategy) the pass probability."""

    run: PackRun
    probability: PassProbability | None
    source: str = ""
    interval: str = ""

    def summary(self) -> dict[str, Any]:
        out = self.run.summary()
        out["source"] = self.source
        out["interval"] = self.interval
        idx = self.run.report.equity.index
        out["first_bar_time"] = idx[0].isoformat() if len(idx) else None
        out["last_bar_time"] = idx[-1].isoformat() if len(idx) else None
        out["pass_probability"] = self.probability.as_dict() if self.probability else None
        return out


def event_only_blocks(
    market: Market, signals: Signals, config: BacktestConfig, pack: RulePack, calendar: Any | None = None
) -> DayBlocks:
    """The day blocks of a run with the pack's event-time rules only (no stop or fail applied)."""
    cfg = pack_config(pack, config)
    masks = event_masks(market, pack, calendar)
    equity, _, trades, _ = run_signals(market, signals, cfg, no_entry=masks.no_entry, flatten=masks.flatten)
    n = len(market.index)
    balance = closed_balance(trades, n, cfg.initial_capital)
    return day_blocks(market, equity, balance, fill_bars(trades, n), cfg.initial_capital)


def run_challenge(
    bars: pd.DataFrame,
    pack: RulePack,
    strategy: str | Strategy | SignalFunction = "sma_cross",
    params: Mapping[str, Any] | None = None,
    config: BacktestConfig | None = None,
    *,
    calendar: Any | None = None,
    n_sims: int = 1000,
    seed: int = 0,
    source: str = "",
    interval: str = "",
) -> ChallengeResult:
    """The challenge for a strategy: the run under ``pack`` and its Monte Carlo pass probability
    (``n_sims`` = 0: none)."""
    config = pack_config(pack, config)
    strat = get_strategy(strategy)
    full = strat.resolve_params(params)
    market = prepare_market(bars, config, strat.warmup(full))
    signals = strat.signals(market.data, full)
    run = run_signals_under_pack(
        market, signals, config, pack, name=strat.name, params=full, calendar=calendar
    )
    prob = None
    if n_sims:
        blocks = event_only_blocks(market, signals, config, pack, calendar)
        prob = pass_probability(blocks, pack, n_sims=n_sims, seed=seed)
    return ChallengeResult(run=run, probability=prob, source=source, interval=interval)


def _money(v: float | None) -> str:
    return "—" if v is None else f"${v:,.2f}"


def format_challenge(summary: Mapping[str, Any], max_days: int = 60) -> str:
    """A challenge summary (``ChallengeResult.summary()`` or the agent's) as a readable report."""
    s = summary
    lines = [
        f"challenge {s['pack']} ({s['firm']} {s['program']}) — {s['strategy']} "
        f"{json.dumps(s.get('params') or {}, sort_keys=True)}",
        f"data: {s.get('source', '')} {s.get('interval', '')} {s.get('first_bar_time')} → "
        f"{s.get('last_bar_time')}; {s['session_days']} session days, {s['trading_days']} traded; "
        f"{s['n_trades']} trades at {s['contracts']} contract(s); {s['blocked_entries']} entries blocked",
    ]
    if s["outcome"] == "passed" and s.get("passed"):
        p = s["passed"]
        lines.append(
            f"RESULT: PASSED on session day {p['session_day']} (judged at {p['at']}); "
            f"balance {_money(p['balance_usd'])}"
        )
    elif s["outcome"] == "failed" and s.get("failed"):
        f = s["failed"]
        lines.append(
            f"RESULT: FAILED — rule {f['rule']} at {f['at']} (bar {f['bar_time']}, session day "
            f"{f['session_day']}): balance {_money(f['balance_usd'])}, equity {_money(f['equity_usd'])}; "
            f"{f['message']}"
        )
    else:
        lines.append(
            f"RESULT: IN PROGRESS at the end of the data — balance {_money(s['balance_usd'])} "
            f"(start {_money(s['start_balance_usd'])})"
        )
    for e in s.get("stopped_days", []):
        lines.append(
            f"  stopped for the day {e['session_day']} at {e['at']} by {e['rule']}: "
            f"equity {_money(e['equity_usd'])}"
        )
    lines.append("rules at the end:")
    for r in s["rules"]:
        lines.append(f"  [{r['state']:>8}] {r['rule']} ({r['consequence']}): {r['message']}")
    lines.append("daily P&L vs the rules (room = distance left at the day's worst mark; ≤ 0 = hit):")
    lines.append(
        f"  {'day':<10} {'pnl':>11} {'end balance':>13} {'low equity':>13} {'daily-loss room':>15} "
        f"{'max-loss floor':>14} {'room':>11}  flags"
    )
    for d in s["daily"][:max_days]:
        flags = ",".join(k for k in ("traded", "stopped", "failed") if d.get(k))
        lines.append(
            f"  {d['session_day']:<10} {d['pnl_usd']:>11,.2f} {d['end_balance_usd']:>13,.2f} "
            f"{d['low_equity_usd']:>13,.2f} "
            f"{_num(d.get('daily_loss_room_usd')):>15} {_num(d.get('max_loss_floor_usd')):>14} "
            f"{_num(d.get('max_loss_room_usd')):>11}  {flags}"
        )
    if len(s["daily"]) > max_days:
        lines.append(f"  … {len(s['daily']) - max_days} more days")
    pp = s.get("pass_probability")
    if pp:
        lo, hi = pp["ci95"]
        lines.append(
            f"pass probability: {100 * pp['probability']:.1f}% (95% CI {100 * lo:.1f}–{100 * hi:.1f}%) over "
            f"{pp['n_sims']} resampled {pp['horizon_days']}-day paths (seed {pp['seed']}): "
            f"{pp['passed']} passed, {pp['failed']} failed {pp['failed_by']}, "
            f"{pp['in_progress']} in progress; "
            f"median days to pass {pp['median_days_to_pass']}"
        )
    return "\n".join(lines)


def _num(v: float | None) -> str:
    return "—" if v is None else f"{v:,.2f}"
