"""Bars shared by the benchmarks: the seeded synthetic NQ 1-minute generator (real Globex clock)."""

from __future__ import annotations

import pandas as pd

from nq_ray.data.sources.synthetic import generate_bars


def synthetic_minutes(n: int, seed: int = 7) -> pd.DataFrame:
    """``n`` seeded synthetic NQ 1-minute bars (the same bars for the same ``n`` and ``seed``)."""
    return generate_bars("NQ", "1m", n_bars=n, seed=seed)
