"""Response cache keyed by (provider, model, parameters, messages hash), for reproducible replays.

``ResponseCache`` is the seam (a store-backed cache is a later issue); ``MemoryResponseCache`` is an LRU.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from nq_ray.llm.protocol import ChatResponse


def messages_hash(messages: Sequence[Mapping[str, Any]]) -> str:
    blob = json.dumps([dict(m) for m in messages], sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def cache_key(
    provider: str, model: str, params: Mapping[str, Any], messages: Sequence[Mapping[str, Any]]
) -> str:
    p = json.dumps(dict(params), sort_keys=True, separators=(",", ":"), default=str)
    return f"{provider}|{model}|{hashlib.sha256(p.encode()).hexdigest()[:16]}|{messages_hash(messages)}"


class ResponseCache(Protocol):
    def get(self, key: str) -> ChatResponse | None: ...

    def put(self, key: str, value: ChatResponse) -> None: ...


class MemoryResponseCache:
    """A thread-safe LRU of ``ChatResponse``s."""

    def __init__(self, max_items: int = 512) -> None:
        self._max = max_items
        self._data: OrderedDict[str, ChatResponse] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: str) -> ChatResponse | None:
        with self._lock:
            v = self._data.get(key)
            if v is None:
                self.misses += 1
                return None
            self._data.move_to_end(key)
            self.hits += 1
            return v

    def put(self, key: str, value: ChatResponse) -> None:
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self._max:
                self._data.popitem(last=False)

    def __len__(self) -> int:
        return len(self._data)
