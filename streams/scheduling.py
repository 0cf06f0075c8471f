"""What runs besides the agents: startup tasks, timers and crontabs.

Each is a plain coroutine the worker runs as a task; a function that takes an
argument gets the app.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Callable
from typing import Any

from croniter import croniter


async def call(fn: Callable[..., Any], app: Any) -> None:
    """Call `fn` (with the app, if it takes an argument) and await its result."""
    result = fn(app) if _takes_argument(fn) else fn()
    if inspect.isawaitable(result):
        await result


async def every(interval_s: float, fn: Callable[..., Any], app: Any) -> None:
    while True:
        await asyncio.sleep(interval_s)
        await call(fn, app)


async def on_schedule(expr: str, fn: Callable[..., Any], app: Any) -> None:
    """Call `fn` at each time the crontab expression `expr` names."""
    schedule = croniter(expr, time.time())
    while True:
        await asyncio.sleep(max(0.0, schedule.get_next(float) - time.time()))
        await call(fn, app)


def _takes_argument(fn: Callable[..., Any]) -> bool:
    try:
        return len(inspect.signature(fn).parameters) > 0
    except (TypeError, ValueError):
        return False
