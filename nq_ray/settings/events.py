"""Economic-event settings: which calendars to load and the blackout windows around each kind of event.

Defined here, below ``nq_ray.config`` (which embeds ``EventSettings`` as ``Settings.events``);
``BlackoutRule`` is re-exported by ``nq_ray.market.calendar``, which applies it (docs/calendar.md).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

KIND_PATTERN = r"^[a-z][a-z0-9_]{0,39}$"
"""An event kind: a lower-case slug (``fomc``, ``cpi``, ``nfp``; users may add their own, e.g. ``ecb``)."""
_KIND = re.compile(KIND_PATTERN)

BlackoutAction = Literal["block", "flatten"]


class BlackoutRule(BaseModel):
    """A window around every event of ``kinds``: from ``before_min`` minutes before the event to
    ``after_min`` minutes after it (start inclusive, end exclusive). ``block`` refuses orders that open
    or add risk inside it; ``flatten`` also asks the desk and the backtester to close positions."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kinds: list[str] = Field(min_length=1, description="the event kinds the window applies to")
    before_min: int = Field(ge=0, le=24 * 60, description="minutes before the event the window opens")
    after_min: int = Field(ge=0, le=24 * 60, description="minutes after the event the window closes")
    action: BlackoutAction = Field(default="block", description="block new risk, or flatten too")

    @field_validator("kinds")
    @classmethod
    def _slugs(cls, v: list[str]) -> list[str]:
        bad = [k for k in v if not _KIND.match(k)]
        if bad:
            raise ValueError(f"event kinds must be lower-case slugs like 'fomc' or 'cpi', got {bad}")
        return list(dict.fromkeys(v))

    @model_validator(mode="after")
    def _not_empty(self) -> Self:
        if self.before_min == 0 and self.after_min == 0:
            raise ValueError("a blackout window needs before_min or after_min > 0")
        return self


def default_blackouts() -> list[BlackoutRule]:
    """FOMC statement, CPI and NFP: 5 minutes either side, new risk blocked (docs/calendar.md says why)."""
    return [BlackoutRule(kinds=["fomc", "cpi", "nfp"], before_min=5, after_min=5, action="block")]


class EventSettings(BaseModel):
    """``Settings.events``: the economic calendar and its blackout windows."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    bundled: bool = Field(
        default=True, description="load the bundled US release calendar (FOMC, CPI, NFP, ...) 2024–2027"
    )
    calendar_files: list[Path] = Field(
        default_factory=list,
        description="calendars: CSV (kind,time,title,source) or iCalendar .ics, added to the bundled one",
    )
    ics_kinds: dict[str, str] = Field(
        default_factory=dict,
        description="iCalendar CATEGORIES or SUMMARY text → event kind, e.g. {'Consumer Price Index': cpi}",
    )
    blackouts: list[BlackoutRule] = Field(
        default_factory=default_blackouts,
        description="blackout windows per event kind; default FOMC/CPI/NFP 5 min before to 5 after, block",
    )

    @field_validator("ics_kinds")
    @classmethod
    def _kinds(cls, v: dict[str, str]) -> dict[str, str]:
        bad = {k: kind for k, kind in v.items() if not _KIND.match(kind) or not k.strip()}
        if bad:
            raise ValueError(f"ics_kinds maps text to lower-case kinds like 'cpi'; bad entries: {bad}")
        return v
