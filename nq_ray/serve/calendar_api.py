"""``GET /api/calendar?start=&end=&kinds=``: the economic calendar (``get_economic_calendar``).

The route calls the tool through the registry, so it is audited like every tool call and its bad input
(end before start, an unknown kind, a range over ``MAX_RANGE_DAYS``, text that is no date) comes back as
the same 422 ``invalid_argument`` problem the tool raises. ``kinds`` is a comma-separated list or the
parameter repeated (``kinds=fomc,cpi`` or ``kinds=fomc&kinds=cpi``).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from nq_ray.serve.deps import AppDeps
from nq_ray.tools.calendar import EconomicCalendarOut


def calendar_router(deps: AppDeps) -> APIRouter:
    router = APIRouter(prefix="/api/calendar", tags=["calendar"])
    registry = deps.registry

    @router.get(
        "",
        response_model=EconomicCalendarOut,
        summary="Scheduled US releases (FOMC, CPI, NFP, ...) in a range (get_economic_calendar)",
    )
    async def get_calendar(
        start: Annotated[str, Query(max_length=40, description="ISO 8601 date or time (naive = New York)")],
        end: Annotated[
            str, Query(max_length=40, description="ISO 8601 date or time, exclusive (a date: the whole day)")
        ],
        kinds: Annotated[
            list[str] | None, Query(max_length=400, description="event kinds, comma-separated or repeated")
        ] = None,
    ) -> dict[str, Any]:
        wanted = [k for raw in kinds for k in raw.split(",") if k.strip()] if kinds else None
        args: dict[str, Any] = {"start": start, "end": end, "kinds": wanted}
        return await registry.call("get_economic_calendar", args, who="http")  # raises only NQRayError

    return router
