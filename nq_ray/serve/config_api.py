"""Routes for the config API (filled in by the config work)."""

from __future__ import annotations

from fastapi import APIRouter

from nq_ray.serve.deps import AppDeps


def config_router(deps: AppDeps) -> APIRouter:
    return APIRouter()
