"""Produce, Fetch and ListOffsets: the broker's data path.

Record batches are never decoded here: Produce validates a batch and hands its
bytes to the log, which stamps offsets; Fetch serves stored bytes (as chunks
and file regions the server sends with sendfile).

A batch the disk refuses (StorageError: full, failing) is answered with
KAFKA_STORAGE_ERROR for its partition, which clients retry; the log is as it
was, so a retry stores the batch once. Such errors are logged once per
topic and interval with a count, not per request.

Authorization (authorize.py): Produce needs WRITE on the topic
(TOPIC_AUTHORIZATION_FAILED), and with a transactional id WRITE on it
(TRANSACTIONAL_ID_AUTHORIZATION_FAILED for every partition); Fetch needs
READ, ListOffsets DESCRIBE on the topic.
"""

from __future__ import annotations

import asyncio
import logging
import struct
from collections.abc import Callable
from typing import Any

from runtime.broker.authorize import Access, Operation
from runtime.broker.settings import INTERNAL_TOPICS, Handler, Peer
from runtime.errors import (
    CorruptRecordError,
    InvalidRecordError,
    LogClosedError,
    OffsetOutOfRangeError,
    OutOfOrderSequenceError,
    ProducerFencedError,
    RecordTooLargeError,
    StorageError,
    UnknownTopicError,
)
from runtime.log.batch_header import CONTROL, LOG_OVERHEAD, TRANSACTIONAL
from runtime.log.config import TopicConfig
from runtime.log.records import HEADER_SIZE, decode_batch, parse_header
from runtime.logs import RateLimitedLog
from runtime.protocol.codes import ApiKey, ErrorCode
from runtime.protocol.frames import RequestHeader
from runtime.transport import EmbeddedTransport
from runtime.types import TopicPartition

logger = logging.getLogger(__name__)

FETCH_WAIT_MAX_MS = 30_000
READ_COMMITTED = 1
MAX_TIMESTAMP = -3  # ListOffsets v7+ (KIP-734): the record with the newest timestamp
STORAGE_ERROR_LOG_INTERVAL_S = 10.0
_LENGTH_AT, _ATTRIBUTES_AT = 8, 21  # a batch header's batchLength and attributes
_LENGTH = struct.Struct(">i")
_ATTRIBUTES = struct.Struct(">h")


class DataApi:
    def __init__(
        self,
        transport: EmbeddedTransport,
        check_transactional: Callable[[int, int, TopicPartition], int],
        access: Access,
    ) -> None:
        self._transport = transport
        self._access = access
        self._check_transactional = check_transactional  # the transaction coordinator's
        self._storage_errors = RateLimitedLog(logger, interval_s=STORAGE_ERROR_LOG_INTERVAL_S)
        self.by_key: dict[int, Handler] = {
            ApiKey.PRODUCE: self.produce,
            ApiKey.FETCH: self.fetch,
            ApiKey.LIST_OFFSETS: self.list_offsets,
        }

    @property
    def _log(self) -> Any:
        return self._transport.log

    async def produce(self, header: RequestHeader, body: dict, peer: Peer) -> dict | None:
        acks = body["acks"]
        txn_id = body.get("transactional_id")
        txn_denied = txn_id is not None and not self._access.transactional_id(
            peer, Operation.WRITE, txn_id
        )
        responses = []
        for topic in body["topics"]:
            denied = None
            if txn_denied:
                denied = ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED
            elif not self._access.topic(peer, Operation.WRITE, topic["name"]):
                denied = ErrorCode.TOPIC_AUTHORIZATION_FAILED
            name = topic["name"]
            config = self._config(name)  # once per topic, not per partition
            parts = [
                self._produce_one(
                    TopicPartition(name, part["partition_index"]),
                    part["records"],
                    acks,
                    config,
                    denied,
                )
                for part in topic["partitions"]
            ]
            responses.append({"name": name, "partitions": parts})
        if acks == 0:
            return None
        return {"responses": responses}

    def _produce_one(
        self,
        tp: TopicPartition,
        records: Any,
        acks: int,
        config: TopicConfig | None,
        denied: int | None,
    ) -> dict[str, Any]:
        """A partition's produce answer: the batch appended, or why not."""
        refusal = _produce_refusal(acks, config, denied)
        if refusal is not None:
            code, base, refused = refusal, -1, []
        else:
            code, base, refused = self._append(tp, records)
        start = append_time = -1
        if code == ErrorCode.NONE:
            log = self._transport.log
            start = log.offsets(tp)[0]
            if config is not None and config.log_append_time:
                append_time = parse_header(log.read(tp, base, 1)).max_timestamp
        return {
            "partition_index": tp.partition,
            "error_code": code,
            "base_offset": base,
            "log_append_time_ms": append_time,
            "log_start_offset": start,
            "record_errors": refused,
            "error_message": _RECORD_ERROR if refused else None,
        }

    def _config(self, topic: str) -> TopicConfig | None:
        try:
            return self._log.topic(topic).config
        except (UnknownTopicError, LogClosedError):
            return None

    def _append(self, tp: TopicPartition, records: Any) -> tuple[int, int, list[dict]]:
        """(error code, base offset, the records refused: KIP-467's record_errors)."""
        if records is None or len(records) < HEADER_SIZE:
            return ErrorCode.CORRUPT_MESSAGE, -1, []
        if tp.topic in INTERNAL_TOPICS:  # the coordinators' state: written by them only
            return ErrorCode.INVALID_TOPIC_EXCEPTION, -1, []
        # exactly one whole batch: its length field covers the rest (the log
        # parses and checks the header itself; only a transaction's is read here)
        (length,) = _LENGTH.unpack_from(records, _LENGTH_AT)
        if length < HEADER_SIZE - LOG_OVERHEAD or length + LOG_OVERHEAD != len(records):
            return ErrorCode.INVALID_RECORD, -1, []
        (attributes,) = _ATTRIBUTES.unpack_from(records, _ATTRIBUTES_AT)
        if attributes & TRANSACTIONAL and not attributes & CONTROL:
            header = parse_header(records)
            code = self._check_transactional(header.producer_id, header.producer_epoch, tp)
            if code != ErrorCode.NONE:
                return code, -1, []
        try:
            base = self._log.append(tp, records)  # also the idempotent producers' check
        except (UnknownTopicError, LogClosedError):  # LogClosedError: deleted meanwhile
            return ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, -1, []
        except RecordTooLargeError:
            return ErrorCode.MESSAGE_TOO_LARGE, -1, []
        except CorruptRecordError:
            return ErrorCode.CORRUPT_MESSAGE, -1, []
        except InvalidRecordError as exc:  # keyless records on a compacted topic
            return ErrorCode.INVALID_RECORD, -1, _record_errors(exc)
        except OutOfOrderSequenceError:
            return ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER, -1, []
        except ProducerFencedError:
            return ErrorCode.INVALID_PRODUCER_EPOCH, -1, []
        except StorageError as exc:
            self._storage_errors.warning(
                ("produce", tp.topic, exc.errno),
                "produce refused: KAFKA_STORAGE_ERROR topic=%s partition=%d error=%s",
                tp.topic,
                tp.partition,
                exc,
            )
            return ErrorCode.KAFKA_STORAGE_ERROR, -1, []
        self._transport.notify_append(tp)
        return ErrorCode.NONE, base, []

    # --- fetch and offsets ---------------------------------------------------------------------

    async def fetch(self, header: RequestHeader, body: dict, peer: Peer) -> dict:
        max_wait_s = min(max(body["max_wait_ms"], 0), FETCH_WAIT_MAX_MS) / 1000
        deadline = asyncio.get_running_loop().time() + max_wait_s
        denied = {
            t["topic"]
            for t in body["topics"]
            if not self._access.topic(peer, Operation.READ, t["topic"])
        }
        while True:
            responses, total, errors = self._read_all(body, denied)
            remaining = deadline - asyncio.get_running_loop().time()
            if errors or total >= body["min_bytes"] or remaining <= 0:
                break
            if not await self._transport.wait_for_append(remaining, _fetched_tps(body)):
                responses, _, _ = self._read_all(body, denied)
                break
        return {"error_code": ErrorCode.NONE, "session_id": 0, "responses": responses}

    def _read_all(self, body: dict, denied: set[str]) -> tuple[list[dict], int, bool]:
        budget = body.get("max_bytes", 0x7FFFFFFF)
        committed = body.get("isolation_level", 0) == READ_COMMITTED
        total = 0
        errors = False
        responses = []
        for topic in body["topics"]:
            parts = []
            for part in topic["partitions"]:
                tp = TopicPartition(topic["topic"], part["partition"])
                if tp.topic in denied:
                    parts.append(_fetch_error(tp, ErrorCode.TOPIC_AUTHORIZATION_FAILED))
                    errors = True
                    continue
                entry, size = self._read_one(
                    tp,
                    part["fetch_offset"],
                    min(part["partition_max_bytes"], budget - total),
                    first=total == 0,
                    committed=committed,
                )
                errors |= entry["error_code"] != ErrorCode.NONE
                total += size
                parts.append(entry)
            responses.append({"topic": topic["topic"], "partitions": parts})
        return responses, total, errors

    def _read_one(
        self, tp: TopicPartition, offset: int, max_bytes: int, first: bool, committed: bool
    ) -> tuple[dict, int]:
        """A partition's fetch answer and the size of its records. The records are
        a list of chunks (stored bytes, or file regions the server sends with
        sendfile): they are never copied here. A read_committed fetch stops at the
        last stable offset and lists the aborted transactions it may meet."""
        entry = _fetch_error(tp, ErrorCode.NONE)
        try:
            start, end = self._log.offsets(tp)
            stable = self._log.last_stable_offset(tp)
            entry.update(high_watermark=end, last_stable_offset=stable, log_start_offset=start)
            if not start <= offset <= end:
                entry["error_code"] = ErrorCode.OFFSET_OUT_OF_RANGE
                return entry, 0
            if offset == end or (max_bytes <= 0 and not first):
                return entry, 0
            chunks = self._log.read_chunks(
                tp, offset, max(max_bytes, 1), end_offset=stable if committed else None
            )
        except (UnknownTopicError, LogClosedError):  # LogClosedError: deleted meanwhile
            entry["error_code"] = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
            return entry, 0
        except OffsetOutOfRangeError:
            entry["error_code"] = ErrorCode.OFFSET_OUT_OF_RANGE
            return entry, 0
        size = sum(len(chunk) for chunk in chunks)
        if not first and size > max_bytes:
            return entry, 0  # only the first partition may exceed the limits
        entry["records"] = chunks
        if committed and size:
            entry["aborted_transactions"] = [
                {"producer_id": pid, "first_offset": first_offset}
                for pid, first_offset in self._log.aborted_transactions(tp, offset, stable)
            ]
        return entry, size

    async def list_offsets(self, header: RequestHeader, body: dict, peer: Peer) -> dict:
        committed = body.get("isolation_level", 0) == READ_COMMITTED
        topics = []
        for topic in body["topics"]:
            parts = []
            allowed = self._access.topic(peer, Operation.DESCRIBE, topic["name"])
            for part in topic["partitions"]:
                tp = TopicPartition(topic["name"], part["partition_index"])
                ts = part["timestamp"]
                entry = {
                    "partition_index": tp.partition,
                    "error_code": ErrorCode.NONE,
                    "timestamp": -1,
                    "offset": -1,
                    "leader_epoch": 0,
                }
                if not allowed:
                    entry["error_code"] = ErrorCode.TOPIC_AUTHORIZATION_FAILED
                    parts.append(entry)
                    continue
                try:
                    start, end = self._log.offsets(tp)
                    if ts == -1 and committed:
                        entry["offset"] = self._log.last_stable_offset(tp)
                    elif ts == -1:
                        entry["offset"] = end
                    elif ts == -2:
                        entry["offset"] = start
                    elif ts == MAX_TIMESTAMP:
                        found_max = self._log.max_timestamp_offset(tp)
                        if found_max is not None:
                            entry.update(offset=found_max[0], timestamp=found_max[1])
                    elif ts >= 0:
                        found = self._log.offset_for_timestamp(tp, ts)
                        if found is not None:
                            entry.update(offset=found, timestamp=self._timestamp_at(tp, found))
                    else:
                        entry["error_code"] = ErrorCode.INVALID_REQUEST
                except (UnknownTopicError, LogClosedError):  # LogClosedError: deleted meanwhile
                    entry["error_code"] = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
                parts.append(entry)
            topics.append({"name": topic["name"], "partitions": parts})
        return {"topics": topics}

    def _timestamp_at(self, tp: TopicPartition, offset: int) -> int:
        """The timestamp of the record at `offset` (ListOffsets answers with it)."""
        for record in decode_batch(self._log.read(tp, offset, 1)):
            if record.offset >= offset:
                return record.timestamp_ms
        return -1


def _produce_refusal(acks: int, config: TopicConfig | None, denied: int | None) -> int | None:
    """The error code a produce to a partition is refused with before its batch is
    looked at (authorization, acks), or None."""
    if denied is not None:
        return denied
    if acks not in (0, 1, -1):
        return ErrorCode.INVALID_REQUIRED_ACKS
    if acks == -1 and config is not None and config.min_insync_replicas > 1:
        # one node is one in-sync replica: fewer than the topic asks for
        return ErrorCode.NOT_ENOUGH_REPLICAS
    return None


def _fetch_error(tp: TopicPartition, code: int) -> dict[str, Any]:
    return {
        "partition_index": tp.partition,
        "error_code": code,
        "high_watermark": -1,
        "last_stable_offset": -1,
        "log_start_offset": -1,
        "aborted_transactions": [],
        "preferred_read_replica": -1,
        "records": b"",
    }


_RECORD_ERROR = "this topic is compacted: every record needs a key"


def _record_errors(exc: InvalidRecordError) -> list[dict]:
    """Produce v8+ names the refused records, so that clients fail only those
    (librdkafka fails the others of the batch with _INVALID_DIFFERENT_RECORD)."""
    return [{"batch_index": i, "batch_index_error_message": str(exc)} for i in exc.record_indexes]


def _fetched_tps(body: dict) -> list[TopicPartition]:
    return [
        TopicPartition(topic["topic"], part["partition"])
        for topic in body["topics"]
        for part in topic["partitions"]
    ]
