"""Errors raised by the runtime.

    LocatedError                   carries topic, partition, offset
    └── StreamsRuntimeError
        ├── InvalidTopicError          a topic name breaks Kafka's rule
        ├── UnknownTopicError          the topic does not exist
        ├── TopicExistsError           create of a topic that already exists
        ├── TopicCreationRefusedError  the cluster lets this client create no topics
                                       (no CreateTopics API, or no permission)
        ├── RecordTooLargeError        a batch larger than the topic's max.message.bytes
        ├── CorruptRecordError         a batch with a wrong length, magic or CRC
        ├── InvalidRecordError         a record the topic's config refuses (no key
        │                              on a compacted topic)
        ├── OffsetOutOfRangeError      a read below the log start or above the end
        ├── OutOfOrderSequenceError    an idempotent batch skips or repeats sequences
        ├── ProducerFencedError        an idempotent batch of an older producer epoch
        ├── DataDirLockedError         another process holds the data directory
        ├── LogClosedError             use of a log after close()
        └── StorageError               a write, fsync or rename of the log failed
                                       (ENOSPC, EIO, ...): nothing was changed

Each carries the coordinates it knows (`topic`, `partition`, `offset`);
StorageError also the `errno` of the OSError it was raised from (its `__cause__`).
"""

from __future__ import annotations

import os
from errno import errorcode


class LocatedError(Exception):
    """An error that knows where in the log it happened (any of the three may be None)."""

    topic: str | None = None
    partition: int | None = None
    offset: int | None = None

    def __init__(
        self,
        message: str,
        *,
        topic: str | None = None,
        partition: int | None = None,
        offset: int | None = None,
    ) -> None:
        super().__init__(message)
        self.topic = topic
        self.partition = partition
        self.offset = offset


class StreamsRuntimeError(LocatedError):
    pass


class InvalidTopicError(StreamsRuntimeError, ValueError):
    pass


class UnknownTopicError(StreamsRuntimeError, KeyError):
    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class TopicExistsError(StreamsRuntimeError):
    pass


class TopicCreationRefusedError(StreamsRuntimeError):
    pass


class RecordTooLargeError(StreamsRuntimeError, ValueError):
    pass


class CorruptRecordError(StreamsRuntimeError, ValueError):
    pass


class InvalidRecordError(StreamsRuntimeError, ValueError):
    """`record_indexes`: the positions, in their batch, of the records refused."""

    record_indexes: tuple[int, ...] = ()


class OffsetOutOfRangeError(StreamsRuntimeError):
    pass


class OutOfOrderSequenceError(StreamsRuntimeError):
    pass


class ProducerFencedError(StreamsRuntimeError):
    pass


class DataDirLockedError(StreamsRuntimeError):
    pass


class LogClosedError(StreamsRuntimeError):
    pass


class StorageError(StreamsRuntimeError):
    """The disk refused a write: the log is as it was before the operation began.

    Retriable: once the cause is gone (space freed), the same call succeeds."""

    errno: int | None = None

    def __init__(
        self,
        message: str,
        *,
        errno: int | None = None,
        topic: str | None = None,
        partition: int | None = None,
        offset: int | None = None,
    ) -> None:
        super().__init__(message, topic=topic, partition=partition, offset=offset)
        self.errno = errno

    @classmethod
    def from_os_error(
        cls,
        what: str,
        exc: OSError,
        *,
        topic: str | None = None,
        partition: int | None = None,
    ) -> StorageError:
        """`what` failed because of `exc`; the message names the place and the errno."""
        where = ""
        if topic is not None:
            where = (
                f"topic {topic!r}"
                if partition is None
                else f"topic {topic!r} partition {partition}"
            )
            where += ": "
        reason = os.strerror(exc.errno) if exc.errno else str(exc)
        code = f" ({errorcode.get(exc.errno, exc.errno)})" if exc.errno else ""
        error = cls(
            f"{where}{what} failed: {reason}{code}",
            errno=exc.errno,
            topic=topic,
            partition=partition,
        )
        error.__cause__ = exc
        return error
