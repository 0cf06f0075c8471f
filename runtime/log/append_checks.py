"""What a client's batch must pass before a partition stores it.

In order: at most max.message.bytes; one whole, valid batch (length, magic,
CRC: batch_header.py) and nothing after it; not a control batch (only the
transaction coordinator writes those, through Partition.append_marker); then the
topic config's rules (append_policy.py). Every error names the partition; nothing
here touches the log.
"""

from __future__ import annotations

from runtime.errors import CorruptRecordError, InvalidRecordError, RecordTooLargeError
from runtime.log.append_policy import prepare_batch
from runtime.log.config import TopicConfig
from runtime.log.records import BatchHeader, validate_batch
from runtime.types import TopicPartition


def check_client_batch(
    view: memoryview, tp: TopicPartition, config: TopicConfig, now_ms: int
) -> tuple[memoryview, BatchHeader]:
    """The batch to store for `view` and its header, or the error saying why not."""
    size = view.nbytes
    if size > config.max_message_bytes:
        raise RecordTooLargeError(
            f"batch of {size} bytes for {tp} exceeds max.message.bytes {config.max_message_bytes}",
            **_coords(tp),
        )
    try:
        header = validate_batch(view)
    except CorruptRecordError as exc:
        raise CorruptRecordError(f"{tp}: {exc}", **_coords(tp)) from None
    if header.size != size:
        raise CorruptRecordError(
            f"{tp}: {size - header.size} bytes follow the batch; append takes exactly one batch",
            **_coords(tp),
        )
    if header.is_control:
        raise CorruptRecordError(
            f"{tp}: control batches cannot be appended by clients", **_coords(tp)
        )
    try:
        return prepare_batch(view, header, config, now_ms)
    except InvalidRecordError as exc:
        located = InvalidRecordError(f"{tp}: {exc}", **_coords(tp))
        located.record_indexes = exc.record_indexes
        raise located from None


def _coords(tp: TopicPartition) -> dict[str, object]:
    return {"topic": tp.topic, "partition": tp.partition}
