"""Appends of the framework's record batches to partition leaders, for kafka://.

The framework hands the transport whole encoded batches (its producer's, a
table's changelog flush). On a cluster an append meets moving leaders, brokers
that go down and come back, timeouts and dropped connections; each is retried,
with backoff and a metadata refresh, until `timeout_s`. A retry after a timeout
or a dropped connection may repeat a batch the broker stored, so batches are
made idempotent first: stamped with this transport's producer id and epoch
(InitProducerId) and a per-partition sequence number, and the CRC recomputed.
A broker that already stored the batch answers with its offset instead of
storing it twice. Appends of several partitions that start together go to
their leader in one Produce request (runtime/produce_batcher.py); each still
retries alone.

Invariants:
- per partition, one append is under way at a time (sequence order is append
  order) and a partition's sequence advances only when its batch is acknowledged;
- a retry sends the very same bytes;
- a batch that fails for good after it was sent (its fate unknown) retires the
  producer id, so later batches never reuse its sequence numbers;
- a batch that already carries a producer id (a transactional one) or holds
  more than one batch is sent as it is; so is every batch when the cluster
  does not serve InitProducerId.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import struct

from runtime.client.cluster import Cluster, backoff_s
from runtime.client.errors import (
    METADATA_CODES,
    KafkaConnectionError,
    KafkaError,
    KafkaTimeoutError,
    NoCompatibleVersionError,
)
from runtime.client.offsets import LATEST, list_offsets
from runtime.compression import CompressionChoice, compress_batch
from runtime.log.records import CRC_START, crc32c, iter_batches
from runtime.produce_batcher import ProduceBatcher
from runtime.protocol.codes import ApiKey, ErrorCode
from runtime.types import TopicPartition

logger = logging.getLogger(__name__)

APPEND_LANE = "produce"
APPEND_TIMEOUT_S = 60.0  # like a producer's delivery timeout: then the worker fails
APPEND_BACKOFF_S = 0.1  # doubling with jitter
APPEND_BACKOFF_MAX_S = 1.6
_SEQUENCE_MOD = 1 << 31
_PRODUCER = struct.Struct(">qhi")  # producer id, epoch, base sequence at byte 43
_PRODUCER_AT = 43
_LAST_DELTA_AT = 23
_PRODUCER_ID_CODES = frozenset(
    {
        ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER,
        ErrorCode.UNKNOWN_PRODUCER_ID,
        ErrorCode.INVALID_PRODUCER_EPOCH,
        ErrorCode.INVALID_PRODUCER_ID_MAPPING,
    }
)


def stamp(batch: bytes | bytearray, producer: tuple[int, int], sequence: int) -> bytes:
    """`batch` with producer id, epoch and base sequence set, and its CRC anew."""
    out = bytearray(batch)
    _PRODUCER.pack_into(out, _PRODUCER_AT, producer[0], producer[1], sequence)
    struct.pack_into(">I", out, 17, crc32c(memoryview(out)[CRC_START:]))
    return bytes(out)


def _stampable(batch: bytes | bytearray) -> int | None:
    """The record count of a single batch without a producer id, else None."""
    batches = list(iter_batches(batch))
    if len(batches) != 1 or batches[0][1].size != len(batch):
        return None
    (producer_id,) = struct.unpack_from(">q", batch, _PRODUCER_AT)
    if producer_id != -1:
        return None
    (last_delta,) = struct.unpack_from(">i", batch, _LAST_DELTA_AT)
    return last_delta + 1


class Appender:
    """Idempotent, retried appends to partition leaders; see the module docstring."""

    def __init__(self, cluster: Cluster, *, timeout_s: float = APPEND_TIMEOUT_S) -> None:
        self._cluster = cluster
        self._timeout_s = timeout_s
        self._producer: tuple[int, int] | None = None
        self._idempotent = True
        self._producer_lock = asyncio.Lock()
        self._sequences: dict[TopicPartition, tuple[tuple[int, int], int]] = {}
        self._locks: dict[TopicPartition, asyncio.Lock] = {}
        self.compression: CompressionChoice | None = None
        # The partitions a producer drains together share one Produce per leader.
        self._batcher = ProduceBatcher(cluster, lane=APPEND_LANE)

    async def append(self, tp: TopicPartition, batch: bytes | bytearray) -> int:
        """The base offset the leader stored `batch` at; KafkaError if refused for
        good, the last error once `timeout_s` passed."""
        lock = self._locks.setdefault(tp, asyncio.Lock())
        async with lock:
            if self.compression is not None:  # before stamping: a retry sends the same bytes
                batch = compress_batch(batch, self.compression(tp.topic))
            return await self._append(tp, batch)

    async def _append(self, tp: TopicPartition, batch: bytes | bytearray) -> int:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._timeout_s
        count = _stampable(batch)
        stamped: tuple[tuple[int, int], bytes] | None = None
        sent = False
        attempt = 0
        while True:
            refresh = True
            try:
                data: bytes | bytearray = batch
                if count is not None and await self._producer_id() is not None:
                    producer = self._producer
                    assert producer is not None
                    if stamped is None or stamped[0] != producer:
                        sequence = self._sequence(tp, producer)
                        stamped = (producer, stamp(batch, producer, sequence))
                    data = stamped[1]
                sent = True
                code, base = await self._send(tp, data)
                if code in (ErrorCode.NONE, ErrorCode.DUPLICATE_SEQUENCE_NUMBER):
                    if stamped is not None and count is not None:
                        self._advance(tp, stamped[0], count)
                    if base < 0:  # stored before; this broker no longer says where
                        end = (await list_offsets(self._cluster, [tp], LATEST))[tp]
                        base = end - (count or 1)
                    return base
                error = KafkaError(code, topic=tp.topic, partition=tp.partition)
                if code in _PRODUCER_ID_CODES and stamped is not None:
                    logger.warning("producer id refused tp=%s error=%s: a new one", tp, error)
                    self._retire(stamped[0])
                elif not error.retriable:
                    raise error
                refresh = code in METADATA_CODES
            except KafkaError as exc:
                if not exc.retriable:
                    raise
                error = exc
            except (KafkaConnectionError, KafkaTimeoutError) as exc:
                error = exc  # type: ignore[assignment]
            pause = backoff_s(attempt, APPEND_BACKOFF_S, APPEND_BACKOFF_MAX_S)
            if loop.time() + pause > deadline:
                if sent and stamped is not None:
                    self._retire(stamped[0])  # its fate is unknown: never reuse its numbers
                raise error
            logger.debug("append retry tp=%s attempt=%d error=%s", tp, attempt + 1, error)
            await asyncio.sleep(pause)
            attempt += 1
            if refresh:
                with contextlib.suppress(KafkaConnectionError, KafkaTimeoutError, KafkaError):
                    await self._cluster.refresh([tp.topic])

    async def _send(self, tp: TopicPartition, data: bytes | bytearray) -> tuple[int, int]:
        node = await self._cluster.leader_for(tp)
        return await self._batcher.send(node, tp, data)

    # --- producer id and sequences ---------------------------------------------------

    def _sequence(self, tp: TopicPartition, producer: tuple[int, int]) -> int:
        owner, sequence = self._sequences.get(tp, (producer, 0))
        return sequence if owner == producer else 0

    def _advance(self, tp: TopicPartition, producer: tuple[int, int], count: int) -> None:
        sequence = self._sequence(tp, producer)
        self._sequences[tp] = (producer, (sequence + count) % _SEQUENCE_MOD)

    def _retire(self, producer: tuple[int, int]) -> None:
        if self._producer == producer:
            self._producer = None

    async def _producer_id(self) -> tuple[int, int] | None:
        if self._producer is not None or not self._idempotent:
            return self._producer
        async with self._producer_lock:
            if self._producer is None and self._idempotent:
                self._producer = await self._init_producer_id()
        return self._producer

    async def _init_producer_id(self) -> tuple[int, int] | None:
        body = {"transactional_id": None, "transaction_timeout_ms": 60_000}
        try:
            response = await self._cluster.request_any(ApiKey.INIT_PRODUCER_ID, body)
        except NoCompatibleVersionError:
            response = {"error_code": ErrorCode.UNSUPPORTED_VERSION}
        code = response["error_code"]
        if code == ErrorCode.NONE:
            logger.info("appends idempotent producer_id=%d", response["producer_id"])
            return response["producer_id"], response["producer_epoch"]
        error = KafkaError(code, "InitProducerId")
        if error.retriable:
            raise error
        logger.warning("the cluster gives no producer id (%s): appends are not idempotent", error)
        self._idempotent = False
        return None
