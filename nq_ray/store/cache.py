"""The cache in front of remote market data: one interface, in-process (``MemoryCache``) or Redis.

Both hold bytes under string keys with an optional TTL, and bar frames serialised losslessly (Parquet
via pyarrow keeps float64 columns, the tz-aware index and its name). ``RedisCache`` prefixes every key
with its namespace, so ``clear()`` removes only its own keys; a Redis that is down raises
``ProviderUnavailableError``. ``make_cache(settings.cache)`` picks the implementation from the URL and
returns one shared instance per (URL, namespace), so repeated ``load_bars`` calls share the cache.
"""

from __future__ import annotations

import io
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Protocol, runtime_checkable

import pandas as pd
import redis

from nq_ray.config import CacheSettings
from nq_ray.errors import InvalidArgumentError, ProviderUnavailableError

log = logging.getLogger(__name__)


def frame_to_bytes(frame: pd.DataFrame) -> bytes:
    """A DataFrame as Parquet bytes (lossless for bar frames: dtypes, tz-aware index and its name)."""
    buf = io.BytesIO()
    frame.to_parquet(buf, engine="pyarrow", index=True)
    return buf.getvalue()


def frame_from_bytes(data: bytes) -> pd.DataFrame:
    """The inverse of ``frame_to_bytes``."""
    return pd.read_parquet(io.BytesIO(data), engine="pyarrow")


def bars_key(source: str, root: str, interval: str, start: Any, end: Any) -> str:
    """Cache key of a bar request; bounds are written in UTC so equal instants give equal keys."""

    def iso(ts: Any) -> str:
        if ts is None:
            return "-"
        t = pd.Timestamp(ts)
        return (t.tz_convert("UTC") if t.tzinfo else t).isoformat()

    return f"bars:{source}:{root}:{interval}:{iso(start)}:{iso(end)}"


def _check_ttl(ttl_s: float | None) -> None:
    if ttl_s is not None and not ttl_s > 0:
        raise InvalidArgumentError(f"ttl_s must be positive or None (no expiry), got {ttl_s}", ttl_s=ttl_s)


@runtime_checkable
class Cache(Protocol):
    """What ``load_bars`` and the rest of nq-ray use; both implementations follow it."""

    def get(self, key: str) -> bytes | None: ...
    def set(self, key: str, value: bytes, ttl_s: float | None = None) -> None: ...
    def get_frame(self, key: str) -> pd.DataFrame | None: ...
    def set_frame(self, key: str, frame: pd.DataFrame, ttl_s: float | None = None) -> None: ...
    def delete(self, key: str) -> bool: ...
    def clear(self) -> int: ...
    def ping(self) -> bool: ...


class MemoryCache:
    """In-process LRU cache of at most ``max_items`` entries, each with its own TTL; thread-safe.

    Frames are stored as copies and handed out as copies, so callers cannot mutate a cached frame.
    ``clock`` (monotonic seconds) is injectable for tests.
    """

    def __init__(self, max_items: int = 512, *, clock: Callable[[], float] = time.monotonic) -> None:
        if max_items <= 0:
            raise InvalidArgumentError(f"max_items must be positive, got {max_items}", max_items=max_items)
        self.max_items = max_items
        self._clock = clock
        self._items: OrderedDict[str, tuple[float | None, bytes | pd.DataFrame]] = OrderedDict()
        self._lock = threading.Lock()

    def _get(self, key: str) -> bytes | pd.DataFrame | None:
        with self._lock:
            entry = self._items.get(key)
            if entry is None:
                return None
            expires, value = entry
            if expires is not None and self._clock() >= expires:
                del self._items[key]
                return None
            self._items.move_to_end(key)
            return value

    def _set(self, key: str, value: bytes | pd.DataFrame, ttl_s: float | None) -> None:
        _check_ttl(ttl_s)
        expires = None if ttl_s is None else self._clock() + ttl_s
        with self._lock:
            self._items[key] = (expires, value)
            self._items.move_to_end(key)
            while len(self._items) > self.max_items:
                self._items.popitem(last=False)

    def get(self, key: str) -> bytes | None:
        value = self._get(key)
        return frame_to_bytes(value) if isinstance(value, pd.DataFrame) else value

    def set(self, key: str, value: bytes, ttl_s: float | None = None) -> None:
        self._set(key, bytes(value), ttl_s)

    def get_frame(self, key: str) -> pd.DataFrame | None:
        value = self._get(key)
        if value is None:
            return None
        return value.copy() if isinstance(value, pd.DataFrame) else frame_from_bytes(value)

    def set_frame(self, key: str, frame: pd.DataFrame, ttl_s: float | None = None) -> None:
        self._set(key, frame.copy(), ttl_s)

    def delete(self, key: str) -> bool:
        with self._lock:
            return self._items.pop(key, None) is not None

    def clear(self) -> int:
        with self._lock:
            n = len(self._items)
            self._items.clear()
            return n

    def ping(self) -> bool:
        return True

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)


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
                f"Redis cache at {self.url} is unreachable ({op}: {exc}); start Redis "
                "(e.g. `bash shared/services.sh redis`) or unset NQ_CACHE__URL to use the in-process cache",
                url=self.url,
                operation=op,
            ) from exc

    def get(self, key: str) -> bytes | None:
        with self._errors("get"):
            value = self._client.get(self._k(key))
        if value is None:
            return None
        return value if isinstance(value, bytes) else str(value).encode()  # a client given decode_responses

    def set(self, key: str, value: bytes, ttl_s: float | None = None) -> None:
        _check_ttl(ttl_s)
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


_SHARED: dict[tuple[str | None, str, int], MemoryCache | RedisCache] = {}
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
    key = (settings.url, settings.namespace, settings.max_items)
    if shared:
        with _SHARED_LOCK:
            hit = _SHARED.get(key)
        if hit is not None:
            return hit
    cache: MemoryCache | RedisCache
    if settings.url is None:
        cache = MemoryCache(settings.max_items)
    else:
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
