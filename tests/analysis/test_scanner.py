"""The scanner's core: the grid checked at the door, the ranking rules, and the Ray fan-out (progress per
finished cell, cancellation that leaves no task running). Rankings are checked against single-cell
analyses computed directly with ``analyze`` and the rules analyst (``assess``), outside the scanner."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd
import pytest

from nq_ray.analysis import analyze
from nq_ray.analysis.scanner import (
    MAX_CELLS,
    Cell,
    analysis_score,
    backtest_score,
    plan_cells,
    rank,
    run_cells,
)
from nq_ray.config import Settings
from nq_ray.data import load_bars
from nq_ray.errors import InvalidArgumentError, UnknownSymbolError
from nq_ray.llm.rules import assess
from nq_ray.testing.wait import wait_until
from nq_ray.tools.scanning import analysis_cell, scan


# ---------------------------------------------------------------------------- the grid, at the door
def test_cells_are_symbols_times_timeframes_with_aliases_resolved() -> None:
    cells = plan_cells(["NQ=F", "es", "NQ"], ["5m", "60m", "1h"])

    assert cells == [Cell("NQ", "5m"), Cell("NQ", "1h"), Cell("ES", "5m"), Cell("ES", "1h")]


@pytest.mark.parametrize(
    ("symbols", "timeframes", "error", "match"),
    [
        ([], ["5m"], InvalidArgumentError, "at least one symbol"),
        (["NQ"], [], InvalidArgumentError, "at least one timeframe"),
        (["NQ", "ZZTOP"], ["5m"], UnknownSymbolError, "unknown symbol 'ZZTOP'"),
        (["NQ"], ["7m"], InvalidArgumentError, "unknown interval '7m'"),
        (["NQ"] * 17, ["5m"], InvalidArgumentError, "at most 16 symbols"),
    ],
)
def test_hostile_grids_are_refused_before_any_work(
    symbols: list[str], timeframes: list[str], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        plan_cells(symbols, timeframes)


def test_too_many_cells_are_refused_with_the_count() -> None:
    symbols = ["NQ", "MNQ", "ES", "MES", "YM", "MYM", "RTY", "M2K"]

    assert len(plan_cells(symbols, ["1m", "5m", "1h", "1d"])) == MAX_CELLS == 32
    with pytest.raises(InvalidArgumentError, match=r"8 symbols × 6 timeframes = 48 cells; at most 32"):
        plan_cells(symbols, ["1m", "5m", "15m", "30m", "1h", "1d"])


# ---------------------------------------------------------------------------- the ranking rules
def test_analysis_score_is_confidence_times_the_share_of_agreeing_timeframes() -> None:
    tfs = {"5m": "up", "1h": "neutral", "1d": "up"}

    assert analysis_score("bullish", 0.7, tfs) == pytest.approx(0.7 * 2 / 3)
    assert analysis_score("bearish", 0.7, tfs) == 0.0
    assert analysis_score("bearish", 0.6, {"5m": "down", "1h": "down"}) == pytest.approx(0.6)
    assert analysis_score("neutral", 0.9, tfs) == 0.0


def test_backtest_score_needs_the_minimum_trades() -> None:
    assert backtest_score(1.4, 12, 10) == 1.4
    assert backtest_score(3.0, 2, 10) is None
    assert backtest_score(float("nan"), 50, 10) is None


@dataclass
class Row:
    name: str
    score: float | None
    error: dict[str, Any] | None = None


def test_rank_puts_higher_scores_first_then_unscored_then_errors_ties_stable() -> None:
    rows = [Row("err", None, {"code": "x"}), Row("a", 0.2), Row("none", None), Row("b", 0.5), Row("c", 0.2)]

    assert [r.name for r in rank(rows)] == ["b", "a", "c", "none", "err"]


# ---------------------------------------------------------------------------- against direct analyses
def _direct_scores() -> dict[tuple[str, str], float]:
    """Each cell scored outside the scanner: ``analyze`` + ``assess`` on bars loaded here, and the rule
    written out (confidence × share of trend timeframes agreeing with the bias)."""
    out = {}
    for sym in ("NQ", "ES"):
        for iv in ("5m", "1h"):
            bars = load_bars(sym, iv, source="sample")
            view, a = assess(bars, sym), analyze(bars, sym)
            want = {"bullish": "up", "bearish": "down"}.get(view.bias)
            agree = [d == want for d in a.trend.timeframes.values()]
            out[(sym, iv)] = view.confidence * sum(agree) / len(agree) if want else 0.0
    return out


@pytest.fixture(scope="module")
def direct() -> dict[tuple[str, str], float]:
    return _direct_scores()


def _check_ranking(result: Any, direct: dict[tuple[str, str], float]) -> None:
    got = [(r.symbol, r.interval) for r in result.rows]
    expected = sorted(direct, key=lambda k: -direct[k])
    assert got == expected
    for r in result.rows:
        assert r.score == pytest.approx(direct[(r.symbol, r.interval)], abs=1e-6)
    assert [r.rank for r in result.rows] == [1, 2, 3, 4]


def test_ranking_in_process_matches_direct_analyses(direct: dict[tuple[str, str], float]) -> None:
    result = scan("analysis", Settings(), ["NQ", "ES"], ["5m", "1h"], source="sample", parallel=False)

    assert not result.parallel and result.finished == 4
    _check_ranking(result, direct)


def test_ranking_on_ray_matches_direct_analyses(
    ray_session: Any, direct: dict[tuple[str, str], float]
) -> None:
    result = scan("analysis", Settings(), ["NQ", "ES"], ["5m", "1h"], source="sample")

    assert result.parallel and result.finished == 4 and not result.cancelled
    _check_ranking(result, direct)


def test_point_in_time_cells_see_only_bars_closed_by_as_of(nq_5m: pd.DataFrame) -> None:
    as_of = pd.Timestamp("2026-03-20T11:05", tz="America/New_York")

    result = scan("analysis", Settings(), ["NQ"], ["5m"], source="sample", as_of=as_of, parallel=False)

    row = result.rows[0]
    assert pd.Timestamp(row.as_of) == pd.Timestamp("2026-03-20T11:00", tz="America/New_York")
    expected = assess(nq_5m.loc[: pd.Timestamp("2026-03-20T11:00", tz="America/New_York")], "NQ")
    assert (row.bias, row.confidence) == (expected.bias, expected.confidence)


# ---------------------------------------------------------------------------- progress and cancel
def _payload() -> dict[str, Any]:
    return {"settings": Settings(), "source": "sample", "period": None, "as_of": None, "bars": None}


def test_progress_reports_every_finished_cell_once(ray_session: Any) -> None:
    cells = plan_cells(["NQ", "ES"], ["5m", "1h", "1d"])
    events: list[tuple[int, int, Any]] = []

    run = run_cells(analysis_cell, cells, _payload(), progress=lambda d, t, r: events.append((d, t, r)))

    finished = [(d, t, r) for d, t, r in events if r is not None]
    assert [d for d, _, _ in finished] == [1, 2, 3, 4, 5, 6]
    assert all(t == 6 for _, t, _ in events)
    assert {(r.symbol, r.interval) for _, _, r in finished} == {(c.symbol, c.interval) for c in cells}
    assert len(run.results) == 6 and run.unfinished == []


def _free_cpus(ray: Any) -> float:
    return float(ray.available_resources().get("CPU", 0.0))


def test_cancelling_mid_scan_cancels_the_outstanding_tasks(ray_session: Any, nq_5m: pd.DataFrame) -> None:
    # Arrange: 16 cells over given bars, two in flight at a time; stop once the first cell is in
    cpus = float(ray_session.cluster_resources()["CPU"])
    symbols = ["NQ", "MNQ", "ES", "MES", "YM", "MYM", "RTY", "M2K"]
    payload = _payload() | {"bars": dict.fromkeys(symbols, nq_5m), "base_interval": "5m"}
    cells = plan_cells(symbols, ["5m", "15m"])
    seen: list[Any] = []

    # Act
    run = run_cells(
        analysis_cell, cells, payload, progress=lambda d, t, r: seen.append(r), stop=lambda: any(seen)
    )

    # Assert: stopped early, what finished is reported, and no task of the scan holds a CPU any more
    assert run.cancelled
    assert 1 <= len(run.results) < len(cells)
    assert len(run.results) + len(run.unfinished) == len(cells)
    assert {(r.symbol, r.interval) for r in run.results}.isdisjoint(
        {(c.symbol, c.interval) for c in run.unfinished}
    )
    wait_until(lambda: _free_cpus(ray_session) == cpus, timeout_s=15, message="every CPU is free again")


def test_an_exception_from_progress_cancels_and_propagates(ray_session: Any) -> None:
    class Stop(Exception):
        pass

    def progress(done: int, total: int, row: Any) -> None:
        raise Stop

    cpus = float(ray_session.cluster_resources()["CPU"])
    with pytest.raises(Stop):
        run_cells(analysis_cell, plan_cells(["NQ", "ES"], ["5m", "1h", "1d"]), _payload(), progress=progress)
    wait_until(lambda: _free_cpus(ray_session) == cpus, timeout_s=15, message="every CPU is free again")


def test_an_unknown_symbol_in_given_bars_is_an_error_row_not_a_failed_scan(nq_5m: pd.DataFrame) -> None:
    result = scan("analysis", Settings(), ["NQ", "ES"], ["5m"], bars={"NQ": nq_5m}, parallel=False)

    assert [r.symbol for r in result.rows] == ["NQ", "ES"]
    assert result.rows[1].error is not None and result.rows[1].error["code"] == "data_unavailable"
    assert result.rows[1].rank is None and result.rows[0].rank == 1
