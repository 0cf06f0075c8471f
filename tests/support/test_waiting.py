"""The shared waits: they return what the condition gave, and fail in time, saying why."""

from __future__ import annotations

import asyncio
import itertools
import time

import pytest
from waiting import wait_until, wait_until_async


def test_wait_until_returns_the_first_truthy_result():
    calls = itertools.count()
    assert wait_until(lambda: next(calls) >= 3 and "done", timeout_s=5, what="x", interval_s=0) == (
        "done"
    )


def test_wait_until_fails_after_the_timeout_with_the_state_it_got_stuck_in():
    started = time.monotonic()
    with pytest.raises(AssertionError, match=r"timed out after 0.2s waiting for n=7"):
        wait_until(lambda: False, timeout_s=0.2, what=lambda: "n=7")
    assert 0.2 <= time.monotonic() - started < 2


def test_wait_until_async_awaits_coroutine_conditions():
    calls = itertools.count()

    async def ready() -> int:
        return next(calls) >= 2 and 42

    assert asyncio.run(wait_until_async(ready, timeout_s=5, what="ready")) == 42


def test_wait_until_async_cuts_off_a_condition_that_hangs():
    async def hangs() -> bool:
        await asyncio.Event().wait()
        return True

    started = time.monotonic()
    with pytest.raises(AssertionError, match="waiting for an answer"):
        asyncio.run(wait_until_async(hangs, timeout_s=0.2, what="an answer"))
    assert time.monotonic() - started < 2


def test_wait_until_async_lets_the_conditions_own_timeout_through():
    async def times_out() -> bool:
        raise TimeoutError("the condition's")

    with pytest.raises(TimeoutError, match="the condition's"):
        asyncio.run(wait_until_async(times_out, timeout_s=5, what="x"))
