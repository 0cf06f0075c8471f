"""Waiting on a condition in tests: poll it until it holds or a timeout fails the test.

`wait_until` (threads, processes) and `wait_until_async` (inside an event loop)
return the condition's first truthy result; on timeout they raise
AssertionError saying what was awaited. `what` may be a callable, evaluated
only on timeout, to report the state the test got stuck in. Importable from
every test directory (`pythonpath` in pyproject.toml: tests/support, not
tests itself, whose directories would shadow the packages `streams` and `stores`).
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")

Description = str | Callable[[], str]


def wait_until(
    condition: Callable[[], T],
    *,
    timeout_s: float,
    what: Description,
    interval_s: float = 0.05,
) -> T:
    """Call `condition` every `interval_s` until truthy; fail after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(_timed_out(timeout_s, what))
        time.sleep(interval_s)


async def wait_until_async(
    condition: Callable[[], T | Awaitable[T]],
    *,
    timeout_s: float,
    what: Description,
    interval_s: float = 0.01,
) -> T:
    """Like wait_until, without blocking the loop. `condition` may return an
    awaitable; one that hangs is cut off by the same timeout."""
    try:
        async with asyncio.timeout(timeout_s) as scope:
            while True:
                result = condition()
                if inspect.isawaitable(result):
                    result = await result
                if result:
                    return result  # type: ignore[return-value]
                await asyncio.sleep(interval_s)
    except TimeoutError:
        if not scope.expired():
            raise  # the condition's own timeout, not ours
        raise AssertionError(_timed_out(timeout_s, what)) from None


def _timed_out(timeout_s: float, what: Description) -> str:
    description = what() if callable(what) else what
    return f"timed out after {timeout_s}s waiting for {description}"
