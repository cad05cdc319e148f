"""wait_until / await_until: return the first truthy value, fail by the deadline with a message that says
what was awaited and what was last seen."""

from __future__ import annotations

import asyncio
import itertools
import time

import pytest

from nq_ray.testing.wait import WaitTimeout, await_until, wait_until

pytestmark = pytest.mark.timeout(30)


def test_returns_the_first_truthy_value_without_waiting_out_the_deadline() -> None:
    counter = itertools.count()
    start = time.monotonic()

    got = wait_until(lambda: next(counter) >= 3 and "ready", timeout_s=10, message="ready", interval_s=0.01)

    assert got == "ready" and time.monotonic() - start < 5


def test_a_condition_that_never_holds_fails_naming_it_and_the_last_value() -> None:
    state = {"status": "running"}

    with pytest.raises(AssertionError, match=r"after 0.1 s \(\d+ polls\) waiting until the job finished"):
        wait_until(lambda: state["status"] == "done", timeout_s=0.1, message="the job finished")
    with pytest.raises(WaitTimeout, match=r"waiting until the job finished; last value 'running'"):
        wait_until(lambda: _Pending(state["status"]), timeout_s=0.1, message="the job finished")


class _Pending(str):
    """A status string that is falsy: the predicate's value is reported, not just ``False``."""

    def __bool__(self) -> bool:
        return False


def test_exceptions_listed_in_retry_on_count_as_not_yet_and_others_propagate() -> None:
    calls = itertools.count()

    def flaky() -> int:
        n = next(calls)
        if n < 2:
            raise ConnectionError("not up yet")
        return n

    assert wait_until(flaky, timeout_s=5, message="up", interval_s=0.01, retry_on=(ConnectionError,)) == 2
    with pytest.raises(ValueError):
        wait_until(lambda: int("x"), timeout_s=5, message="never", retry_on=(ConnectionError,))
    with pytest.raises(WaitTimeout, match="last error ConnectionError: down"):
        wait_until(_raise_down, timeout_s=0.05, message="up", interval_s=0.01, retry_on=(ConnectionError,))


def _raise_down() -> None:
    raise ConnectionError("down")


async def test_await_until_awaits_a_coroutine_predicate_and_yields_to_the_loop() -> None:
    flag = {"set": False}

    async def setter() -> None:
        await asyncio.sleep(0.05)
        flag["set"] = True

    async def is_set() -> bool:
        return flag["set"]

    task = asyncio.create_task(setter())
    got = await await_until(is_set, timeout_s=5, message="the flag is set", interval_s=0.01)
    await task

    assert got is True
    with pytest.raises(WaitTimeout, match="waiting until never; last value False"):
        await await_until(lambda: False, timeout_s=0.05, message="never", interval_s=0.01)
