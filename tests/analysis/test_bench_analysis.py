"""The analysis benchmark runs end to end (quick sizes) and its references agree with the kernels."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import talib

from benchmarks import bench_analysis
from nq_ray.analysis import indicators, kernels
from tests.analysis.synthetic import random_walk


def test_pandas_vwap_reference_equals_the_kernel() -> None:
    bars = random_walk(3000, seed=5)
    group, active = indicators.anchor_groups(bars.index, "session")
    typical = (bars["high"] + bars["low"] + bars["close"]) / 3.0
    vw, sd = bench_analysis.pandas_vwap(typical, bars["volume"], group)
    k_vw, k_sd = kernels.anchored_vwap(typical.to_numpy(), bars["volume"].to_numpy(), group, active)
    np.testing.assert_allclose(k_vw, vw.to_numpy(), rtol=1e-12, equal_nan=True)
    # the pandas σ uses E[p²] − E[p]², which loses ~1e-4 to cancellation at 20,000 (√(4e8 · 1e-16))
    np.testing.assert_allclose(k_sd, sd.to_numpy(), rtol=1e-6, atol=1e-3, equal_nan=True)


def test_pandas_supertrend_reference_equals_the_kernel() -> None:
    bars = random_walk(3000, seed=6)
    h, lo, c = (bars[k].to_numpy() for k in ("high", "low", "close"))
    a = talib.ATR(h, lo, c, timeperiod=10)
    ref = bench_analysis.pandas_supertrend(
        bars.high, bars.low, bars.close, pd.Series(a, index=bars.index), 3.0
    )
    np.testing.assert_allclose(kernels.supertrend(h, lo, c, a, 3.0)[0], ref["supertrend"], equal_nan=True)


@pytest.mark.slow
def test_quick_benchmark_runs_and_reports_every_row(ray_session) -> None:  # type: ignore[no-untyped-def]
    rows = bench_analysis.main(quick=True)
    assert len(rows) == 5
    assert all(r["nq_ray_s"] > 0 for r in rows)
    assert all(r["ratio"] is None or r["ratio"] > 0 for r in rows)
