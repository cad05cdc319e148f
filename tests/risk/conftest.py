"""Fixtures for the risk tests: the sample NQ and ES 5-minute bars keyed by root symbol."""

from __future__ import annotations

import pandas as pd
import pytest


@pytest.fixture(scope="session")
def sample_bars(nq_5m: pd.DataFrame, es_5m: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """The bundled NQ and ES 5-minute bars (same clock), keyed by root symbol."""
    return {"NQ": nq_5m, "ES": es_5m}
