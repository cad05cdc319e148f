"""Run synchronous core work without blocking the caller's event loop: as a Ray task when Ray is up in
this process (Serve replicas, the registry actor), on a worker thread otherwise (stdio, unit tests)."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

TASK_NUM_CPUS = 0.25
_remotes: dict[Callable[..., Any], Any] = {}


def _ray() -> Any:
    ray = sys.modules.get("ray")
    return ray if ray is not None and ray.is_initialized() else None


async def offload(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``fn(*args, **kwargs)`` as a Ray task (``fn`` must be a module-level function) or on a thread."""
    ray = _ray()
    if ray is None:
        return await asyncio.to_thread(fn, *args, **kwargs)
    remote = _remotes.get(fn)
    if remote is None:
        remote = ray.remote(num_cpus=TASK_NUM_CPUS, max_retries=1)(fn)
        _remotes[fn] = remote
    ref = remote.remote(*args, **kwargs)
    try:
        return await ref
    except asyncio.CancelledError:
        ray.cancel(ref, force=True)  # numba code never sees a soft interrupt: free the CPU now
        raise


async def in_thread(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``fn`` on a worker thread (for work that reports progress or fans out to Ray tasks itself)."""
    return await asyncio.to_thread(fn, *args, **kwargs)
