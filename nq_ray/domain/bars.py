"""The bar frame schema shared by every layer.

A bar frame is a pandas DataFrame indexed by a tz-aware ``DatetimeIndex`` in America/New_York, each
row labelled at the bar's start, sorted and unique, with float64 columns ``open, high, low, close,
volume``. ``Bar`` is the same row as a typed model for the API and MCP.
"""

from __future__ import annotations

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

BAR_COLUMNS: tuple[str, ...] = ("open", "high", "low", "close", "volume")
PRICE_COLUMNS: tuple[str, ...] = ("open", "high", "low", "close")
EXCHANGE_TZ = "America/New_York"


class Bar(BaseModel):
    """One OHLCV bar, labelled at its start."""

    model_config = ConfigDict(frozen=True)

    time: AwareDatetime
    open: float
    high: float
    low: float
    close: float
    volume: float = Field(ge=0)
