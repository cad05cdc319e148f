"""``nq_ray.data.cache``: the bar-cache port of ``load_bars``, its in-process default, and the factory the
store installs (the data package itself never imports the store)."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator

import pandas as pd
import pytest

from nq_ray.config import CacheSettings, Settings
from nq_ray.data import cache as data_cache
from nq_ray.data import load_bars
from nq_ray.data.cache import BarCache, MemoryCache, bars_key, set_default_cache, shared_memory_cache
from nq_ray.data.sources import yahoo
from nq_ray.domain.bars import EXCHANGE_TZ
from tests.data.yahoo_bars import CountingDownloader

START, END = "2026-03-02", "2026-03-27"


def settings(**cache: object) -> Settings:
    """Settings with their own cache namespace, so no other test's cached bars answer."""
    section = {"namespace": f"test-{uuid.uuid4().hex}", **cache}
    return Settings.model_validate({"data": {"yahoo": {"max_retries": 0}}, "cache": section})


@pytest.fixture
def no_factory() -> Iterator[None]:
    """No default factory installed (as in a process that never imported the store), restored after."""
    previous = set_default_cache(None)
    yield
    set_default_cache(previous)


def load_twice(cfg: Settings, cache: BarCache | None = None) -> tuple[int, pd.DataFrame, pd.DataFrame]:
    downloader = CountingDownloader()
    with yahoo.use_downloader(downloader):
        first = load_bars("NQ", "1d", START, END, source="yahoo", settings=cfg, cache=cache)
        second = load_bars("NQ", "1d", START, END, source="yahoo", settings=cfg, cache=cache)
    return downloader.calls, first, second


def test_without_cache_or_factory_the_shared_in_process_cache_answers_the_repeat(no_factory: None) -> None:
    cfg = settings()
    calls, first, second = load_twice(cfg)
    assert calls == 1
    pd.testing.assert_frame_equal(first, second)
    shared = shared_memory_cache(cfg.cache.namespace, cfg.cache.max_items)
    assert shared is shared_memory_cache(cfg.cache.namespace, cfg.cache.max_items)
    assert len(shared) == 1


def test_the_installed_factory_makes_the_default_cache(no_factory: None) -> None:
    made: list[CacheSettings] = []
    mine = MemoryCache(8)

    def factory(section: CacheSettings) -> BarCache:
        made.append(section)
        return mine

    set_default_cache(factory)
    cfg = settings()
    calls, _, _ = load_twice(cfg)
    assert calls == 1
    assert made == [cfg.cache, cfg.cache]
    assert len(mine) == 1


def test_a_cache_passed_in_wins_over_the_default(no_factory: None) -> None:
    set_default_cache(lambda section: pytest.fail("the default cache was made although one was passed"))
    mine = MemoryCache(8)
    calls, _, _ = load_twice(settings(), cache=mine)
    assert calls == 1
    start, end = pd.Timestamp(START, tz=EXCHANGE_TZ), pd.Timestamp(END, tz=EXCHANGE_TZ)
    key = bars_key("yahoo", "NQ", "1d", start, end)
    assert mine.get_frame(key) is not None


def test_a_redis_url_without_the_store_installed_warns_once_and_stays_in_process(
    no_factory: None, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(data_cache, "_warned", False)
    cfg = settings(url="redis://127.0.0.1:1/0")
    with caplog.at_level(logging.WARNING, logger="nq_ray.data.cache"):
        calls, _, _ = load_twice(cfg)
    assert calls == 1
    warnings = [r for r in caplog.records if "no cache factory is installed" in r.getMessage()]
    assert len(warnings) == 1


def test_importing_the_store_cache_installs_it_as_the_default() -> None:
    from nq_ray.store.cache import bars_cache, make_cache

    installed = set_default_cache(None)
    set_default_cache(installed)
    assert installed is bars_cache
    # without a URL the store's shared cache is the very instance load_bars defaults to
    section = CacheSettings(namespace=f"test-{uuid.uuid4().hex}")
    assert make_cache(section) is shared_memory_cache(section.namespace, section.max_items)
