"""Test helpers: waiting on conditions, free ports, running coroutines."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

T = TypeVar("T")


async def wait_for(
    condition: Callable[[], Any], timeout_s: float = 10.0, message: str = "condition"
) -> Any:
    """Poll `condition` (sync or async) until truthy; fail after timeout_s."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = condition()
        if isinstance(result, Awaitable):
            result = await result
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {message}")
        await asyncio.sleep(0.01)


def wait_for_sync(
    condition: Callable[[], T], timeout_s: float = 10.0, message: str = "condition"
) -> T:
    deadline = time.monotonic() + timeout_s
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {message}")
        time.sleep(0.02)
