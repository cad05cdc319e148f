"""The cache: the same behaviour tests run against MemoryCache and a real Redis at 127.0.0.1:6379."""

from __future__ import annotations

import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from nq_ray.config import CacheSettings, Settings
from nq_ray.data import load_bars
from nq_ray.data.sources import yahoo
from nq_ray.domain.bars import EXCHANGE_TZ
from nq_ray.errors import InvalidArgumentError, ProviderUnavailableError
from nq_ray.store.cache import MemoryCache, RedisCache, bars_key, make_cache
from tests.data.yahoo_bars import CountingDownloader

REDIS_URL = "redis://127.0.0.1:6379/0"
SERVICES = Path(__file__).resolve().parents[2] / ".." / "shared" / "services.sh"


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture(scope="session")
def redis_server() -> str:
    """A real Redis on 127.0.0.1:6379, started by shared/services.sh when it is down."""
    if not _port_open(6379):
        if not SERVICES.is_file():
            pytest.fail(
                f"Redis is not running on 127.0.0.1:6379 and {SERVICES} is missing; start Redis "
                "(redis-server --port 6379) before running tests/store"
            )
        done = subprocess.run(["bash", str(SERVICES), "redis"], capture_output=True, text=True, timeout=180)
        if done.returncode != 0 or not _port_open(6379):
            pytest.fail(f"could not start Redis with {SERVICES}: {done.stdout}{done.stderr}")
    return REDIS_URL


@pytest.fixture(params=["memory", "redis"])
def cache(request: pytest.FixtureRequest) -> Iterator[MemoryCache | RedisCache]:
    """Each implementation in turn; Redis gets a unique namespace and is emptied afterwards."""
    if request.param == "memory":
        yield MemoryCache(max_items=64)
        return
    url = request.getfixturevalue("redis_server")
    redis_cache = RedisCache(url, namespace=f"test-{uuid.uuid4().hex}")
    yield redis_cache
    redis_cache.clear()
    redis_cache.close()


def bars(n: int = 50) -> pd.DataFrame:
    idx = pd.date_range("2026-03-02 09:30", periods=n, freq="1min", tz=EXCHANGE_TZ, name="time").as_unit("ns")
    idx = pd.DatetimeIndex(idx, freq=None)  # bar frames carry no freq (normalize_bars builds them so)
    close = 21_000 + np.arange(n) * 0.25
    return pd.DataFrame(
        {
            "open": close - 0.25,
            "high": close + 0.5,
            "low": close - 0.5,
            "close": close,
            "volume": np.full(n, 10.0),
        },
        index=idx,
    )


def test_get_returns_what_set_stored(cache: MemoryCache | RedisCache) -> None:
    cache.set("k", b"\x00value\xff")

    assert cache.get("k") == b"\x00value\xff"


def test_missing_key_is_none(cache: MemoryCache | RedisCache) -> None:
    assert cache.get("absent") is None
    assert cache.get_frame("absent") is None


def test_frame_round_trip_is_lossless(cache: MemoryCache | RedisCache) -> None:
    frame = bars()

    cache.set_frame("f", frame)

    out = cache.get_frame("f")
    pd.testing.assert_frame_equal(out, frame)
    assert str(out.index.tz) == EXCHANGE_TZ


def test_cached_frame_cannot_be_mutated_through_the_returned_copy(cache: MemoryCache | RedisCache) -> None:
    cache.set_frame("f", bars())

    handed_out = cache.get_frame("f")
    handed_out.loc[handed_out.index[0], "open"] = -1.0

    assert cache.get_frame("f").iloc[0, 0] != -1.0


def test_entry_expires_after_its_ttl(cache: MemoryCache | RedisCache) -> None:
    cache.set("short", b"x", ttl_s=0.15)
    cache.set("long", b"y", ttl_s=30)

    time.sleep(0.3)

    assert cache.get("short") is None
    assert cache.get("long") == b"y"


def test_non_positive_ttl_is_refused(cache: MemoryCache | RedisCache) -> None:
    with pytest.raises(InvalidArgumentError, match="ttl_s"):
        cache.set("k", b"x", ttl_s=0)


def test_delete_removes_one_key(cache: MemoryCache | RedisCache) -> None:
    cache.set("a", b"1")
    cache.set("b", b"2")

    removed = cache.delete("a")

    assert removed is True
    assert cache.get("a") is None
    assert cache.get("b") == b"2"


def test_clear_empties_the_cache(cache: MemoryCache | RedisCache) -> None:
    for i in range(5):
        cache.set(f"k{i}", b"x")

    removed = cache.clear()

    assert removed == 5
    assert all(cache.get(f"k{i}") is None for i in range(5))


def test_ping_is_true_when_up(cache: MemoryCache | RedisCache) -> None:
    assert cache.ping() is True


def test_redis_clear_leaves_other_namespaces_alone(redis_server: str) -> None:
    mine, theirs = (RedisCache(redis_server, namespace=f"test-{uuid.uuid4().hex}") for _ in range(2))
    mine.set("k", b"mine")
    theirs.set("k", b"theirs")

    mine.clear()

    assert theirs.get("k") == b"theirs"
    theirs.clear()


def test_redis_keys_carry_the_namespace_prefix(redis_server: str) -> None:
    import redis

    ns = f"test-{uuid.uuid4().hex}"
    cache = RedisCache(redis_server, namespace=ns)
    cache.set("bars:x", b"1", ttl_s=10)

    raw = redis.Redis.from_url(redis_server)
    ttl_ms = raw.pttl(f"{ns}:bars:x")

    assert 0 < ttl_ms <= 10_000
    cache.clear()
    raw.close()


def test_memory_cache_evicts_the_least_recently_used() -> None:
    cache = MemoryCache(max_items=2)
    cache.set("a", b"1")
    cache.set("b", b"2")
    cache.get("a")  # a is now more recent than b

    cache.set("c", b"3")

    assert cache.get("b") is None
    assert cache.get("a") == b"1"
    assert cache.get("c") == b"3"


def test_memory_cache_ttl_follows_its_clock() -> None:
    now = [100.0]
    cache = MemoryCache(clock=lambda: now[0])
    cache.set("k", b"x", ttl_s=5)

    now[0] = 105.0

    assert cache.get("k") is None


def test_memory_cache_is_thread_safe_under_concurrent_writers() -> None:
    cache = MemoryCache(max_items=100)

    def work(t: int) -> None:
        for i in range(2_000):
            cache.set(f"{t}-{i % 150}", b"x")
            cache.get(f"{(t + 1) % 8}-{i % 150}")

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()

    assert len(cache) == 100


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_redis_down_raises_provider_unavailable_naming_the_url() -> None:
    url = f"redis://127.0.0.1:{_closed_port()}/0"
    cache = RedisCache(url, namespace="nq-test", timeout_s=0.5)

    with pytest.raises(ProviderUnavailableError, match=f"127.0.0.1:{url.split(':')[2].split('/')[0]}"):
        cache.get("k")


def test_make_cache_without_url_is_memory() -> None:
    assert isinstance(make_cache(CacheSettings(), shared=False), MemoryCache)


def test_make_cache_with_url_is_redis(redis_server: str) -> None:
    cache = make_cache(CacheSettings(url=redis_server, namespace=f"test-{uuid.uuid4().hex}"), shared=False)

    assert isinstance(cache, RedisCache)
    assert cache.ping()


def test_make_cache_falls_back_to_memory_when_redis_is_down() -> None:
    down = CacheSettings(url=f"redis://127.0.0.1:{_closed_port()}/0", namespace=f"t-{uuid.uuid4().hex}")

    cache = make_cache(down, fallback_to_memory=True)

    assert isinstance(cache, MemoryCache)


def test_make_cache_shares_one_instance_per_settings() -> None:
    cfg = CacheSettings(namespace=f"t-{uuid.uuid4().hex}")

    assert make_cache(cfg) is make_cache(cfg)


def test_bars_key_is_the_same_for_the_same_instant_in_any_zone() -> None:
    ny = pd.Timestamp("2026-03-02 09:30", tz=EXCHANGE_TZ)

    assert bars_key("yahoo", "NQ", "1d", ny, None) == bars_key(
        "yahoo", "NQ", "1d", ny.tz_convert("UTC"), None
    )


def test_load_bars_serves_the_second_yahoo_call_from_the_cache(cache: MemoryCache | RedisCache) -> None:
    downloader = CountingDownloader()
    settings = Settings.model_validate({"data": {"yahoo": {"max_retries": 0}}})
    start, end = "2026-03-02", "2026-03-27"

    with yahoo.use_downloader(downloader):
        first = load_bars("NQ", "1d", start, end, source="yahoo", settings=settings, cache=cache)
        second = load_bars("NQ", "1d", start, end, source="yahoo", settings=settings, cache=cache)

    assert downloader.calls == 1
    pd.testing.assert_frame_equal(first, second)


def test_redis_down_names_the_url_without_its_password() -> None:
    url = f"redis://:s3cret@127.0.0.1:{_closed_port()}/0"
    cache = RedisCache(url, namespace="nq-test", timeout_s=0.5)

    with pytest.raises(ProviderUnavailableError) as info:
        cache.get("k")

    assert "s3cret" not in str(info.value) and "s3cret" not in str(info.value.details)
    assert "redis://:***@127.0.0.1:" in info.value.message
