"""The result of `Topic.send_soon()`: a future of RecordMetadata made on demand.

Agents call `send_soon()` per record and almost never look at its result, so
a record costs no future and no settling of its own: the producer keeps one
BatchOutcome per buffered batch (its base offset, or its error), and a
PendingSend is that outcome and the record's index in the batch. It builds an
asyncio future only when someone awaits it or asks to be called back. It
follows the asyncio future protocol (`asyncio.isfuture()` is true), so it can
be awaited, gathered, waited for, and passed to `asyncio.wait` or `wait_for`.

A failed batch still fails the worker's next flush whether or not anyone looks
here: this only spares the per-record future and callback.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Generator
from contextvars import Context
from typing import TYPE_CHECKING, Any

from runtime.producer import BatchOutcome

if TYPE_CHECKING:
    from streams.topic import RecordMetadata

__all__ = ["PendingSend"]


class PendingSend:
    """A record buffered by `send_soon()`; awaits to its RecordMetadata."""

    __slots__ = ("_callbacks", "_future", "_index", "_outcome", "_timestamp_ms")

    # asyncio's marker of a future-like object (checked by asyncio.isfuture).
    _asyncio_future_blocking = False

    def __init__(self, outcome: BatchOutcome, index: int, timestamp_ms: int) -> None:
        self._outcome = outcome
        self._index = index
        self._timestamp_ms = timestamp_ms
        self._future: asyncio.Future[RecordMetadata] | None = None
        # made with the first callback: most records never get one
        self._callbacks: list[tuple[Callable[[Any], object], Callable[[Any], object]]] | None = None

    def __repr__(self) -> str:
        outcome = self._outcome
        state = "pending" if not outcome.done else ("failed" if outcome.error else "stored")
        return f"<PendingSend {outcome.tp.topic}[{outcome.tp.partition}] {state}>"

    # --- the future protocol --------------------------------------------------

    def done(self) -> bool:
        return self._outcome.done

    def cancelled(self) -> bool:
        return isinstance(self._outcome.error, asyncio.CancelledError)

    def result(self) -> RecordMetadata:
        outcome = self._outcome
        if outcome.error is not None:
            raise outcome.error
        if outcome.base is None:
            raise asyncio.InvalidStateError("the record is not stored yet")
        return self._metadata()

    def exception(self) -> BaseException | None:
        outcome = self._outcome
        if not outcome.done:
            raise asyncio.InvalidStateError("the record is not stored yet")
        if isinstance(outcome.error, asyncio.CancelledError):
            raise outcome.error
        return outcome.error

    def get_loop(self) -> asyncio.AbstractEventLoop:
        return self._as_future().get_loop()

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
            self._callbacks.remove(pair)  # type: ignore[union-attr]
            removed += self._as_future().remove_done_callback(pair[1])
        return removed

    def __await__(self) -> Generator[Any, None, RecordMetadata]:
        return self._as_future().__await__()

    __iter__ = __await__

    # --- internals ----------------------------------------------------------

    def _metadata(self) -> RecordMetadata:
        from streams.topic import RecordMetadata

        outcome = self._outcome
        tp = outcome.tp
        return RecordMetadata(
            tp.topic,
            tp.partition,
            outcome.base + self._index,  # type: ignore[operator]
            self._timestamp_ms,
        )

    def _as_future(self) -> asyncio.Future[RecordMetadata]:
        future = self._future
        if future is None:
            future = self._future = asyncio.get_running_loop().create_future()
            self._outcome.watch(self._settled)
        return future

    def _settled(self, outcome: BatchOutcome) -> None:
        future = self._future
        if future is None or future.done():
            return
        error = outcome.error
        if error is None:
            future.set_result(self._metadata())
        elif isinstance(error, asyncio.CancelledError):
            future.cancel()
        else:
            future.set_exception(error)
            future.exception()  # retrieved: the caller may never look
