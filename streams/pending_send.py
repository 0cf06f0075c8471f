"""The result of `Topic.send_soon()`: a future of RecordMetadata made on demand.

Agents call `send_soon()` per record and almost never look at its result, so
the record's producer slot holds a PendingSend, which the producer settles with
the record's offset (or its batch's error) and which builds an asyncio future
only when someone awaits it or asks to be called back. It follows the asyncio
future protocol (`asyncio.isfuture()` is true), so it can be awaited, gathered,
waited for, and passed to `asyncio.wait` or `wait_for`.

A failed batch still fails the worker's next flush whether or not anyone looks
here: this only spares the per-record future and callback.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Generator
from contextvars import Context
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from streams.topic import RecordMetadata

__all__ = ["PendingSend"]

_UNSET = object()


class PendingSend:
    """A record buffered by `send_soon()`; awaits to its RecordMetadata."""

    __slots__ = (
        "_callbacks",
        "_error",
        "_future",
        "_loop",
        "_offset",
        "_partition",
        "_timestamp_ms",
        "_topic",
    )

    # asyncio's marker of a future-like object (checked by asyncio.isfuture).
    _asyncio_future_blocking = False

    def __init__(
        self, loop: asyncio.AbstractEventLoop, topic: str, partition: int, timestamp_ms: int
    ) -> None:
        self._loop = loop
        self._topic = topic
        self._partition = partition
        self._timestamp_ms = timestamp_ms
        self._offset: Any = _UNSET
        self._error: BaseException | None = None
        self._future: asyncio.Future[RecordMetadata] | None = None
        # made with the first callback: most records never get one
        self._callbacks: list[tuple[Callable[[Any], object], Callable[[Any], object]]] | None = None

    def __repr__(self) -> str:
        state = "pending" if not self.done() else ("failed" if self._error else "stored")
        return f"<PendingSend {self._topic}[{self._partition}] {state}>"

    # --- what the producer calls ----------------------------------------------

    def set_result(self, offset: int) -> None:
        self._offset = offset
        if self._future is not None and not self._future.done():
            self._future.set_result(self._metadata())

    def set_exception(self, error: BaseException) -> None:
        self._error = error
        future = self._future
        if future is not None and not future.done():
            if isinstance(error, asyncio.CancelledError):
                future.cancel()
            else:
                future.set_exception(error)
                future.exception()  # retrieved: the caller may never look

    # --- the future protocol --------------------------------------------------

    def done(self) -> bool:
        return self._error is not None or self._offset is not _UNSET

    def cancelled(self) -> bool:
        return isinstance(self._error, asyncio.CancelledError)

    def result(self) -> RecordMetadata:
        if self._error is not None:
            raise self._error
        if self._offset is _UNSET:
            raise asyncio.InvalidStateError("the record is not stored yet")
        return self._metadata()

    def exception(self) -> BaseException | None:
        if self._error is None and self._offset is _UNSET:
            raise asyncio.InvalidStateError("the record is not stored yet")
        if isinstance(self._error, asyncio.CancelledError):
            raise self._error
        return self._error

    def get_loop(self) -> asyncio.AbstractEventLoop:
        return self._loop

    def cancel(self, msg: Any = None) -> bool:
        # The record is in the producer's buffer already: it cannot be taken back.
        return False

    def add_done_callback(
        self, fn: Callable[[Any], object], *, context: Context | None = None
    ) -> None:
        def called_with_self(_: object) -> None:
            fn(self)

        if self._callbacks is None:
            self._callbacks = []
        self._callbacks.append((fn, called_with_self))
        self._as_future().add_done_callback(called_with_self, context=context)

    def remove_done_callback(self, fn: Callable[[Any], object]) -> int:
        removed = 0
        for pair in [pair for pair in self._callbacks or () if pair[0] == fn]:
            self._callbacks.remove(pair)
            removed += self._as_future().remove_done_callback(pair[1])
        return removed

    def __await__(self) -> Generator[Any, None, RecordMetadata]:
        return self._as_future().__await__()

    __iter__ = __await__

    # --- internals ----------------------------------------------------------

    def _metadata(self) -> RecordMetadata:
        from streams.topic import RecordMetadata

        return RecordMetadata(self._topic, self._partition, self._offset, self._timestamp_ms)

    def _as_future(self) -> asyncio.Future[RecordMetadata]:
        future = self._future
        if future is None:
            future = self._future = self._loop.create_future()
            if self._error is not None:
                self.set_exception(self._error)
            elif self._offset is not _UNSET:
                future.set_result(self._metadata())
        return future
