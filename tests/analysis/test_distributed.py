"""``analyze_many``: Ray fan-out over shared data, and the same results in-process without Ray."""

from __future__ import annotations

import pandas as pd
import pytest

from nq_ray.analysis import analyze
from nq_ray.analysis.distributed import analyze_many, iter_analyze_many
from nq_ray.errors import InvalidArgumentError


def test_local_backend_runs_without_ray(nq_5m: pd.DataFrame, es_5m: pd.DataFrame) -> None:
    out = analyze_many(["NQ", "ES"], "5m", data={"NQ": nq_5m, "ES": es_5m}, backend="local")
    assert [(r.symbol, r.interval) for r in out] == [("NQ", "5m"), ("ES", "5m")]
    assert out[0].analysis == analyze(nq_5m, "NQ")


def test_ray_backend_gives_the_same_analyses(ray_session, nq_5m: pd.DataFrame, es_5m: pd.DataFrame) -> None:  # type: ignore[no-untyped-def]
    # Arrange
    data = {"NQ": nq_5m, "ES": es_5m}
    # Act
    out = analyze_many(["NQ", "ES"], ["5m", "1h"], data=data, backend="ray")
    # Assert: one task per symbol × interval, same numbers as in-process
    got = {(r.symbol, r.interval): r for r in out}
    assert set(got) == {("NQ", "5m"), ("NQ", "1h"), ("ES", "5m"), ("ES", "1h")}
    assert all(r.error is None for r in out)
    assert got[("ES", "5m")].analysis == analyze(es_5m, "ES")


def test_results_stream_as_tasks_finish(ray_session, nq_5m: pd.DataFrame) -> None:  # type: ignore[no-untyped-def]
    it = iter_analyze_many(["NQ"], ["5m", "1h", "1d"], data={"NQ": nq_5m}, backend="ray", parallelism=1)
    first = next(it)
    rest = list(it)
    assert first.analysis is not None and len(rest) == 2


def test_loads_sample_data_by_symbol(ray_session) -> None:  # type: ignore[no-untyped-def]
    out = analyze_many(["NQ"], "1h", source="sample")
    assert out[0].error is None and out[0].analysis is not None and out[0].interval == "1h"


def test_a_failing_symbol_is_an_error_result_not_an_exception() -> None:
    out = analyze_many(["NQ", "ZZ"], "5m", source="sample", backend="local")
    bad = next(r for r in out if r.symbol == "ZZ")
    assert bad.analysis is None and bad.error is not None and bad.error["code"] == "unknown_symbol"


def test_too_short_frame_reports_invalid_argument(nq_5m: pd.DataFrame) -> None:
    out = analyze_many(["NQ"], "5m", data={"NQ": nq_5m.iloc[:10]}, backend="local")
    assert out[0].error is not None and out[0].error["code"] == "invalid_argument"


def test_no_symbols_raises() -> None:
    with pytest.raises(InvalidArgumentError, match="at least one symbol"):
        analyze_many([], "5m")
