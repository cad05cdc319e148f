"""The bar cache port of ``load_bars`` and its in-process implementation.

``load_bars`` caches what it fetches from remote sources (Yahoo, Tradovate) in a ``BarCache``: the one its
caller passes, else the process default. The default is made by the factory installed with
``set_default_cache``; until one is installed it is the in-process ``MemoryCache`` shared per
(namespace, capacity). ``nq_ray.store.cache`` installs its factory (Redis when ``cache.url`` is set, the
in-process cache otherwise or when Redis is down) when it is imported, and the composition roots pass
the store's cache explicitly, so this package never imports the store.

``MemoryCache`` holds bytes under string keys with an optional TTL, and bar frames as copies; frames are
turned into bytes losslessly (Parquet via pyarrow keeps float64 columns, the tz-aware index and its name).
"""

from __future__ import annotations

import io
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

import pandas as pd

from nq_ray.config import CacheSettings
from nq_ray.errors import InvalidArgumentError

log = logging.getLogger(__name__)


@runtime_checkable
class BarCache(Protocol):
    """What ``load_bars`` needs of a cache: bar frames by key, with an optional TTL."""

    def get_frame(self, key: str) -> pd.DataFrame | None: ...
    def set_frame(self, key: str, frame: pd.DataFrame, ttl_s: float | None = None) -> None: ...


CacheFactory = Callable[[CacheSettings], BarCache]


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


def check_ttl(ttl_s: float | None) -> None:
    """``InvalidArgumentError`` unless ``ttl_s`` is positive or ``None`` (no expiry)."""
    if ttl_s is not None and not ttl_s > 0:
        raise InvalidArgumentError(f"ttl_s must be positive or None (no expiry), got {ttl_s}", ttl_s=ttl_s)


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
        check_ttl(ttl_s)
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


_MEMORY: dict[tuple[str, int], MemoryCache] = {}
_LOCK = threading.Lock()
_factory: CacheFactory | None = None
_warned = False


def shared_memory_cache(namespace: str = "nq", max_items: int = 512) -> MemoryCache:
    """The process's one ``MemoryCache`` for (``namespace``, ``max_items``)."""
    with _LOCK:
        cache = _MEMORY.get((namespace, max_items))
        if cache is None:
            cache = _MEMORY[(namespace, max_items)] = MemoryCache(max_items)
        return cache


def set_default_cache(factory: CacheFactory | None) -> CacheFactory | None:
    """Install how ``load_bars`` makes its cache when the caller passes none (``None``: the in-process
    default again); returns the factory it replaces."""
    global _factory
    with _LOCK:
        previous, _factory = _factory, factory
    return previous


def default_cache(settings: CacheSettings) -> BarCache:
    """The cache ``load_bars`` uses when its caller passes none: the installed factory's, else the shared
    in-process cache (with a warning, once, when ``cache.url`` asks for a cache that is not installed)."""
    global _warned
    factory = _factory
    if factory is not None:
        return factory(settings)
    if settings.url is not None and not _warned:
        _warned = True
        log.warning(
            "cache.url is set but no cache factory is installed (importing nq_ray.store.cache installs "
            "the Redis one); load_bars uses the in-process cache"
        )
    return shared_memory_cache(settings.namespace, settings.max_items)
