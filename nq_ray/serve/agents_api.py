"""Routes for the agents API (filled in by the agents work)."""

from __future__ import annotations

from fastapi import APIRouter

from nq_ray.serve.deps import AppDeps


def agents_router(deps: AppDeps) -> APIRouter:
    return APIRouter()
