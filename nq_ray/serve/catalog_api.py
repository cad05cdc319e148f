"""``GET /api/catalog``: the names the tools and agents accept, read from the core where they are defined.

Clients (the web UI first) fill their pick lists from here instead of keeping copies that drift: the
contract roots (``nq_ray.domain.contracts``), bar intervals (``nq_ray.data.intervals``), data sources
(``nq_ray.data.loader``), every registered strategy with its default parameters
(``nq_ray.backtest.list_strategies``, so ``ema_cross`` is 12/26 here because it is 12/26 there),
performance metrics (``nq_ray.backtest.stats``), indicators (``nq_ray.analysis.indicators``), analysis
depths and agent types (``nq_ray.agents``), prop-firm rule packs (``nq_ray.settings.propfirm``: the
bundled ones and the user's ``propfirm.packs_dir``). Defaults of tool arguments are in each tool's input
schema (``GET /api/tools``) and are not repeated here.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any, get_args

from fastapi import APIRouter
from pydantic import BaseModel, Field


class Catalog(BaseModel):
    """The accepted names, each list in the core's own order."""

    symbols: list[str] = Field(description="contract roots (Yahoo aliases and contract codes also work)")
    intervals: list[str] = Field(description="bar intervals")
    sources: list[str] = Field(description="data sources; csv:<path> and parquet:<path> take a file")
    strategies: dict[str, dict[str, Any]] = Field(description="registered strategy → default parameters")
    metrics: list[str] = Field(description="backtest metrics (rank_by, sweep and walk-forward metric)")
    indicators: dict[str, dict[str, Any]] = Field(description="indicator → default parameters")
    analysis_depths: list[str] = Field(description="analysis_depth of a market_analysis task")
    default_analysis_depth: str
    agent_types: list[str]
    packs: list[str] = Field(
        default_factory=list, description="prop-firm rule packs (run_challenge's pack, propfirm.pack)"
    )


def catalog(packs_dir: Path | None = None) -> Catalog:
    """The catalogue as the core defines it right now (strategies registered at run time included;
    the packs bundled and in ``packs_dir``)."""
    from nq_ray.agents.agents import DEPTH_BARS, AnalysisAgent
    from nq_ray.agents.models import AgentType
    from nq_ray.analysis.indicators import INDICATORS
    from nq_ray.backtest import list_strategies
    from nq_ray.backtest.stats import METRIC_NAMES
    from nq_ray.data.intervals import INTERVALS
    from nq_ray.data.loader import SOURCES
    from nq_ray.domain.contracts import CONTRACTS
    from nq_ray.settings.propfirm import pack_names

    depth = inspect.signature(AnalysisAgent.analyze_market).parameters["analysis_depth"].default
    return Catalog(
        symbols=list(CONTRACTS),
        intervals=list(INTERVALS),
        sources=list(SOURCES),
        strategies=list_strategies(),
        metrics=list(METRIC_NAMES),
        indicators={name: _plain(kind.defaults) for name, kind in INDICATORS.items()},
        analysis_depths=list(DEPTH_BARS),
        default_analysis_depth=str(depth),
        agent_types=list(get_args(AgentType)),
        packs=pack_names(packs_dir),
    )


def _plain(params: dict[str, Any]) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in params.items()}


def catalog_router(packs_dir: Callable[[], Path | None] = lambda: None) -> APIRouter:
    """``packs_dir``: where the user's packs are now (the live settings' ``propfirm.packs_dir``)."""
    router = APIRouter(prefix="/api/catalog", tags=["catalog"])

    @router.get(
        "",
        response_model=Catalog,
        summary="Symbols, intervals, sources, strategies with their defaults, metrics, indicators",
    )
    async def get_catalog() -> Catalog:
        return catalog(packs_dir())

    return router
