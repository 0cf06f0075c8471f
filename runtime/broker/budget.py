"""The broker's budget of request bytes in memory (Kafka's queued.max.request.bytes).

A connection reserves a request's size as soon as the size has arrived, before
reading the body, and gives it back once the response is written. While the
budget is spent the connection does not read on: its bytes wait in the kernel
and TCP slows the client down, so memory holds at most the budget's worth of
requests however many clients send at once.

Invariants:
- 0 <= in_use <= capacity; peak_in_use is the most in_use has ever been.
- Grants are first come, first served: a reservation waits while an earlier one
  waits, even if it would fit, so a large request is never starved by a stream
  of small ones. Every reservation fits the capacity alone, so the first in line
  is granted once enough is released.
- A reservation cancelled while waiting takes nothing; one cancelled after it
  was granted gives its bytes back.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


class ByteBudget:
    """`capacity` bytes, reserved first come, first served."""

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        self.capacity = capacity
        self.in_use = 0
        self.peak_in_use = 0
        self._waiters: deque[tuple[int, asyncio.Future[None]]] = deque()

    @property
    def waiting(self) -> int:
        """Reservations waiting for bytes."""
        return len(self._waiters)

    @asynccontextmanager
    async def reserve(self, n: int) -> AsyncIterator[None]:
        """Hold n bytes of the budget for the body of the `async with`."""
        await self.acquire(n)
        try:
            yield
        finally:
            self.release(n)

    def try_acquire(self, n: int) -> bool:
        """Take n bytes if that needs no wait; False (nothing taken) otherwise."""
        if not 0 <= n <= self.capacity:
            raise ValueError(f"cannot reserve {n} bytes of a budget of {self.capacity}")
        if not self._waiters and self.in_use + n <= self.capacity:
            self._take(n)
            return True
        return False

    async def acquire(self, n: int) -> None:
        if self.try_acquire(n):
            return
        waiter = asyncio.get_running_loop().create_future()
        entry = (n, waiter)
        self._waiters.append(entry)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.release(n)  # granted just as we were cancelled
            else:
                if entry in self._waiters:
                    self._waiters.remove(entry)
                self._grant()  # we may have been the one holding the line
            raise

    def release(self, n: int) -> None:
        if not 0 <= n <= self.in_use:
            raise ValueError(f"releasing {n} bytes, only {self.in_use} reserved")
        self.in_use -= n
        self._grant()

    def _take(self, n: int) -> None:
        self.in_use += n
        self.peak_in_use = max(self.peak_in_use, self.in_use)

    def _grant(self) -> None:
        while self._waiters:
            n, waiter = self._waiters[0]
            if waiter.done():  # cancelled, not yet resumed to take itself out
                self._waiters.popleft()
                continue
            if self.in_use + n > self.capacity:
                return
            self._waiters.popleft()
            self._take(n)
            waiter.set_result(None)
