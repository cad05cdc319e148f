"""The scanner benchmark runs end to end at its quick size, on the derived 8-symbol bars."""

from __future__ import annotations

from typing import Any

from benchmarks import bench_scanner
from nq_ray.domain.contracts import get_contract


def test_derived_bars_are_on_each_contracts_tick_grid() -> None:
    bars = bench_scanner.symbol_bars(quick=True)

    assert sorted(bars) == sorted(bench_scanner.SYMBOLS)
    for sym, frame in bars.items():
        contract = get_contract(sym)
        assert len(frame) == 3000
        assert all(contract.is_on_tick(float(p)) for p in frame["close"].iloc[-50:])


def test_quick_benchmark_reports_both_modes_with_a_ratio(ray_session: Any) -> None:
    rows = bench_scanner.main(quick=True)

    assert [r["benchmark"].split(",")[0] for r in rows] == ["scanner (analysis)", "scanner (backtest)"]
    assert all(r["nq_ray_s"] > 0 and r["reference_s"] > 0 and r["ratio"] > 0 for r in rows)
    assert all(len(r["top"]) == 3 for r in rows)
