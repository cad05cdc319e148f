"""The cache in front of remote market data: one interface, in-process (``MemoryCache``) or Redis.

Both hold bytes under string keys with an optional TTL, and bar frames serialised losslessly (Parquet
via pyarrow keeps float64 columns, the tz-aware index and its name). ``RedisCache`` prefixes every key
with its namespace, so ``clear()`` removes only its own keys; a Redis that is down raises
``ProviderUnavailableError``. ``make_cache(settings.cache)`` picks the implementation from the URL and
returns one shared instance per (URL, namespace), so repeated ``load_bars`` calls share the cache.

``MemoryCache`` and the bar-cache port ``load_bars`` takes (``BarCache``) live below the store, in
``nq_ray.data.cache``, and are re-exported here. Importing this module installs ``bars_cache`` as
``load_bars``'s default cache; composition roots also pass it explicitly (``load_bars(..., cache=)``).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol, runtime_checkable

import pandas as pd
import redis

from nq_ray.config import CacheSettings, redact_url
from nq_ray.data.cache import (
    BarCache,
    MemoryCache,
    bars_key,
    check_ttl,
    frame_from_bytes,
    frame_to_bytes,
    set_default_cache,
    shared_memory_cache,
)
from nq_ray.errors import InvalidArgumentError, ProviderUnavailableError

__all__ = [
    "Cache",
    "MemoryCache",
    "RedisCache",
    "bars_cache",
    "bars_key",
    "frame_from_bytes",
    "frame_to_bytes",
    "make_cache",
]

log = logging.getLogger(__name__)


@runtime_checkable
class Cache(BarCache, Protocol):
    """What nq-ray uses of a cache (``load_bars`` needs only the ``BarCache`` part); both
    implementations follow it."""

    def get(self, key: str) -> bytes | None: ...
    def set(self, key: str, value: bytes, ttl_s: float | None = None) -> None: ...
    def delete(self, key: str) -> bool: ...
    def clear(self) -> int: ...
    def ping(self) -> bool: ...


class RedisCache:
    """Redis-backed cache: keys ``<namespace>:<key>``, TTL via ``SET ... PX`` (millisecond precision).

    Every operation on an unreachable Redis raises ``ProviderUnavailableError`` naming the URL and what
    to do; nothing is swallowed.
    """

    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379/0",
        namespace: str = "nq",
        *,
        timeout_s: float = 2.0,
        client: redis.Redis | None = None,
    ) -> None:
        """``client`` overrides the one built from ``url``; it must not use ``decode_responses``."""
        if not namespace:
            raise InvalidArgumentError("namespace must not be empty")
        self.url = url
        self.namespace = namespace
        self._client = client or redis.Redis.from_url(
            url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s, health_check_interval=30
        )

    def _k(self, key: str) -> str:
        return f"{self.namespace}:{key}"

    @contextmanager
    def _errors(self, op: str) -> Iterator[None]:
        try:
            yield
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as exc:
            raise ProviderUnavailableError(
                f"Redis cache at {redact_url(self.url)} is unreachable ({op}: {redact_url(str(exc))}); "
                "start Redis (e.g. `bash shared/services.sh redis`) or unset NQ_CACHE__URL to use the "
                "in-process cache",
                url=redact_url(self.url),
                operation=op,
            ) from exc

    def get(self, key: str) -> bytes | None:
        with self._errors("get"):
            value = self._client.get(self._k(key))
        if value is None:
            return None
        return value if isinstance(value, bytes) else str(value).encode()  # a client given decode_responses

    def set(self, key: str, value: bytes, ttl_s: float | None = None) -> None:
        check_ttl(ttl_s)
        px = None if ttl_s is None else max(1, round(ttl_s * 1000))
        with self._errors("set"):
            self._client.set(self._k(key), bytes(value), px=px)

    def get_frame(self, key: str) -> pd.DataFrame | None:
        data = self.get(key)
        return None if data is None else frame_from_bytes(data)

    def set_frame(self, key: str, frame: pd.DataFrame, ttl_s: float | None = None) -> None:
        self.set(key, frame_to_bytes(frame), ttl_s)

    def delete(self, key: str) -> bool:
        with self._errors("delete"):
            return bool(self._client.delete(self._k(key)))

    def clear(self) -> int:
        """Delete every key of this namespace (SCAN + DEL in batches); other namespaces are untouched."""
        pattern = _glob_escape(self.namespace) + ":*"
        removed = 0
        with self._errors("clear"):
            batch: list[bytes] = []
            for k in self._client.scan_iter(match=pattern, count=500):
                batch.append(k)
                if len(batch) >= 500:
                    removed += int(self._client.delete(*batch))
                    batch.clear()
            if batch:
                removed += int(self._client.delete(*batch))
        return removed

    def ping(self) -> bool:
        """True when Redis answers; ``ProviderUnavailableError`` when it does not."""
        with self._errors("ping"):
            return bool(self._client.ping())

    def close(self) -> None:
        self._client.close()


def _glob_escape(text: str) -> str:
    return "".join("\\" + ch if ch in "*?[]\\" else ch for ch in text)


_SHARED: dict[tuple[str, str, int], RedisCache] = {}
_SHARED_LOCK = threading.Lock()


def make_cache(
    settings: CacheSettings | None = None,
    *,
    fallback_to_memory: bool = False,
    shared: bool = True,
) -> MemoryCache | RedisCache:
    """The cache the settings ask for: ``MemoryCache`` without ``url``, ``RedisCache`` with one.

    ``fallback_to_memory=True`` pings Redis first and, when it is down, logs a warning and returns the
    in-process cache instead of raising. ``shared=True`` returns one instance per (url, namespace,
    max_items) for the whole process, so callers that build a cache per request still share it.
    """
    settings = settings or CacheSettings()
    if settings.url is None:
        if shared:  # the same instance load_bars uses by default (nq_ray.data.cache)
            return shared_memory_cache(settings.namespace, settings.max_items)
        return MemoryCache(settings.max_items)
    key = (settings.url, settings.namespace, settings.max_items)
    if shared:
        with _SHARED_LOCK:
            hit = _SHARED.get(key)
        if hit is not None:
            return hit
    cache = RedisCache(settings.url, settings.namespace)
    if fallback_to_memory:
        try:
            cache.ping()
        except ProviderUnavailableError as exc:
            log.warning("%s; falling back to the in-process cache", exc.message)
            # the Redis instance is not remembered, so a later call tries Redis again
            memory = CacheSettings(namespace=settings.namespace, max_items=settings.max_items)
            return make_cache(memory, shared=shared)
    if shared:
        with _SHARED_LOCK:
            cache = _SHARED.setdefault(key, cache)
    return cache


def bars_cache(settings: CacheSettings | None = None) -> MemoryCache | RedisCache:
    """The cache ``load_bars`` should use for these settings: the shared Redis cache when ``url`` is set
    and Redis answers, the shared in-process cache otherwise. Pass it as ``load_bars(..., cache=)``."""
    return make_cache(settings, fallback_to_memory=True)


# Importing the store's cache makes it load_bars's default (nq_ray.data never imports the store).
set_default_cache(bars_cache)
