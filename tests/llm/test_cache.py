"""Response cache: the key covers provider, model, params and messages; LRU eviction."""

from __future__ import annotations

from nq_ray.llm.cache import MemoryResponseCache, cache_key
from nq_ray.llm.protocol import ChatResponse

MSGS = [{"role": "user", "content": "hi"}]


def test_key_changes_with_each_part() -> None:
    base = cache_key("p", "m", {"temperature": 0}, MSGS)

    variants = [
        cache_key("q", "m", {"temperature": 0}, MSGS),
        cache_key("p", "n", {"temperature": 0}, MSGS),
        cache_key("p", "m", {"temperature": 1}, MSGS),
        cache_key("p", "m", {"temperature": 0}, [{"role": "user", "content": "hello"}]),
    ]

    assert base == cache_key("p", "m", {"temperature": 0}, [dict(MSGS[0])])
    assert len({base, *variants}) == 5


def test_lru_evicts_the_least_recently_used() -> None:
    cache = MemoryResponseCache(max_items=2)
    r = ChatResponse(text="x", model="m")
    cache.put("a", r)
    cache.put("b", r)
    cache.get("a")
    cache.put("c", r)

    assert cache.get("b") is None and cache.get("a") is r and len(cache) == 2
