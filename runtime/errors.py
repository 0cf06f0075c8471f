"""Errors raised by the runtime.

    LocatedError                   carries topic, partition, offset
    └── StreamsRuntimeError
        ├── InvalidTopicError          a topic name breaks Kafka's rule
        ├── UnknownTopicError          the topic does not exist
        ├── TopicExistsError           create of a topic that already exists
        ├── RecordTooLargeError        a batch larger than the topic's max.message.bytes
        ├── CorruptRecordError         a batch with a wrong length, magic or CRC
        ├── OffsetOutOfRangeError      a read below the log start or above the end
        ├── OutOfOrderSequenceError    an idempotent batch skips or repeats sequences
        ├── ProducerFencedError        an idempotent batch of an older producer epoch
        ├── DataDirLockedError         another process holds the data directory
        └── LogClosedError             use of a log after close()

Each carries the coordinates it knows (`topic`, `partition`, `offset`).
"""

from __future__ import annotations


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


class RecordTooLargeError(StreamsRuntimeError, ValueError):
    pass


class CorruptRecordError(StreamsRuntimeError, ValueError):
    pass


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
