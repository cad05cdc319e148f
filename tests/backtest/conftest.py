"""Fixtures for the backtest tests."""

from __future__ import annotations

import pandas as pd
import pytest


@pytest.fixture(scope="session")
def nq_bars(nq_5m: pd.DataFrame) -> pd.DataFrame:
    """The bundled real NQ 5-minute bars (the shared ``nq_5m`` fixture)."""
    return nq_5m
