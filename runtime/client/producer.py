"""A batching, idempotent producer over the Kafka protocol.

`await producer.send(topic, value, key=...)` picks a partition (the record's, the
key's murmur2 like Kafka's default partitioner, else round robin), buffers the
record in that partition's open batch and returns a future of its offset.
A batch is sent when it reaches `batch_bytes_max`, `linger_ms` after its first
record, or on flush().

Invariants:
- per partition, batches are sent one at a time in the order they were filled,
  so records land in send order;
- with `idempotent` (the default) the producer first gets a producer id from
  InitProducerId; each partition numbers its records from 0 (base_sequence),
  a batch's sequence is fixed when it is first sent, and every retry resends
  the very same bytes, so a broker that already appended it answers with the
  original offset instead of storing it twice;
- a partition's sequence advances only when a batch is acknowledged; a batch
  that fails for good after being sent (its fate unknown) makes the producer
  take a new producer id, so later batches never reuse its sequence numbers;
- buffered bytes are bounded by `buffer_bytes_max`: send() waits for room.

`compression` ("gzip", "snappy", "lz4", "zstd"; None: none) compresses each
batch's records as it is encoded (runtime.compression); set_compression()
chooses the codec per topic instead.

Retriable errors and broken connections are retried with exponential backoff
(refreshing metadata first when leadership may have moved) for up to `retries`
attempts and `delivery_timeout_ms`.

Transactions (runtime.client.transactions.TransactionalProducer) build on this
class through the hooks in "for subclasses" below; by default they do nothing.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from runtime.client.cluster import Cluster, backoff_s
from runtime.client.errors import (
    METADATA_CODES,
    ClientClosedError,
    KafkaConnectionError,
    KafkaError,
    KafkaTimeoutError,
    is_retriable,
)
from runtime.compression import CompressionChoice, codec_id, compress_batch
from runtime.log.records import HEADER_SIZE, Header, OutRecord, encode_batch
from runtime.partitioner import partition_for_key
from runtime.protocol.codes import ApiKey, ErrorCode
from runtime.types import TopicPartition

logger = logging.getLogger(__name__)

PRODUCE_LANE = "produce"
_RECORD_OVERHEAD_MAX = 32  # varints and attributes of one record in a batch
_SEQUENCE_MOD = 1 << 31
_PRODUCER_ID_CODES = frozenset(
    {
        ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER,
        ErrorCode.UNKNOWN_PRODUCER_ID,
        ErrorCode.INVALID_PRODUCER_EPOCH,
        ErrorCode.INVALID_PRODUCER_ID_MAPPING,
    }
)


@dataclass(slots=True)
class _Batch:
    tp: TopicPartition
    created_s: float
    records: list[OutRecord] = field(default_factory=list)
    futures: list[asyncio.Future[int]] = field(default_factory=list)
    size: int = HEADER_SIZE
    encoded: bytes | None = None
    producer: tuple[int, int] | None = None  # (id, epoch) it was encoded with
    base_sequence: int = -1
    sent: bool = False
    done: asyncio.Future[None] | None = None


@dataclass(slots=True)
class _Partition:
    open: _Batch | None = None
    sealed: deque[_Batch] = field(default_factory=deque)
    in_flight: _Batch | None = None
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None
    sequence: int = 0
    sequence_producer: tuple[int, int] | None = None


class Producer:
    """Sends records in per-partition batches; an async context manager."""

    _transactional_id: str | None = None
    _batch_attributes = 0  # of idempotent batches; the transactional bit for a subclass

    def __init__(
        self,
        cluster: Cluster,
        *,
        linger_ms: float = 5,
        batch_bytes_max: int = 1 << 20,
        buffer_bytes_max: int = 32 << 20,
        acks: int = -1,
        idempotent: bool = True,
        retries: int = 1_000_000,
        retry_backoff_ms: float = 100,
        retry_backoff_max_ms: float = 1000,
        request_timeout_ms: int = 30_000,
        delivery_timeout_ms: int = 120_000,
        compression: str | None = None,
    ) -> None:
        if acks not in (0, 1, -1):
            raise ValueError(f"acks must be 0, 1 or -1 (all), got {acks}")
        if idempotent and acks != -1:
            raise ValueError("an idempotent producer needs acks=-1 (all)")
        if batch_bytes_max <= HEADER_SIZE or buffer_bytes_max < batch_bytes_max:
            raise ValueError("need HEADER_SIZE < batch_bytes_max <= buffer_bytes_max")
        self._cluster = cluster
        self._linger_s = linger_ms / 1000
        self._batch_bytes_max = batch_bytes_max
        self._buffer_bytes_max = buffer_bytes_max
        self._acks = acks
        self._idempotent = idempotent
        self._retries = retries
        self._backoff_s = retry_backoff_ms / 1000
        self._backoff_max_s = retry_backoff_max_ms / 1000
        self._request_timeout_ms = request_timeout_ms
        self._delivery_timeout_s = delivery_timeout_ms / 1000
        self._partitions: dict[TopicPartition, _Partition] = {}
        self._round_robin: dict[str, itertools.count[int]] = {}
        self._buffered = 0
        self._room = asyncio.Event()
        self._producer: tuple[int, int] | None = None
        self._producer_lock = asyncio.Lock()
        self._closed = False
        codec = codec_id(compression)  # a bad name fails here, not at the first send
        self._compression: CompressionChoice | None = (lambda _: codec) if codec else None

    def set_compression(self, choose: CompressionChoice | None) -> None:
        """Choose the codec per topic (None: uncompressed), for batches encoded from now."""
        self._compression = choose

    async def __aenter__(self) -> Producer:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def producer_id(self) -> int:
        return self._producer[0] if self._producer is not None else -1

    @property
    def producer_epoch(self) -> int:
        return self._producer[1] if self._producer is not None else -1

    # --- send --------------------------------------------------------------------

    async def send(
        self,
        topic: str | TopicPartition,
        value: bytes | None,
        *,
        key: bytes | None = None,
        partition: int | None = None,
        headers: Sequence[Header] = (),
        timestamp_ms: int | None = None,
    ) -> asyncio.Future[int]:
        """Buffer one record; the future resolves to its offset (-1 with acks=0)
        or fails with the error that stopped its batch."""
        if self._closed:
            raise ClientClosedError("the producer is closed")
        self._check_send()
        tp = await self._partition_of(topic, key, partition)
        size = (
            _RECORD_OVERHEAD_MAX
            + len(key or b"")
            + len(value or b"")
            + sum(len(k) + len(v or b"") + 10 for k, v in headers)
        )
        while self._buffered > 0 and self._buffered + size > self._buffer_bytes_max:
            self._room.clear()
            await self._room.wait()
        if self._closed:
            raise ClientClosedError("the producer is closed")
        self._check_send()  # again: the state may have changed while we waited
        ts = timestamp_ms if timestamp_ms is not None else int(time.time() * 1000)
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._append(tp, (key, value, ts, tuple(headers)), size, future)
        return future

    async def send_and_wait(
        self, topic: str | TopicPartition, value: bytes | None, **kwargs: object
    ) -> int:
        """send() and await the record's offset."""
        return await (await self.send(topic, value, **kwargs))  # type: ignore[arg-type]

    async def _partition_of(
        self, topic: str | TopicPartition, key: bytes | None, partition: int | None
    ) -> TopicPartition:
        if isinstance(topic, TopicPartition):
            return topic
        if partition is not None:
            return TopicPartition(topic, partition)
        partitions = await self._topic_partitions(topic)
        if key is not None:
            return TopicPartition(topic, partitions[partition_for_key(key, len(partitions))])
        counter = self._round_robin.setdefault(topic, itertools.count())
        return TopicPartition(topic, partitions[next(counter) % len(partitions)])

    async def _topic_partitions(self, topic: str) -> list[int]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._delivery_timeout_s
        for attempt in itertools.count():
            try:
                return await self._cluster.partitions_for(topic)
            except (KafkaError, KafkaConnectionError, KafkaTimeoutError) as exc:
                pause = backoff_s(attempt, self._backoff_s, self._backoff_max_s)
                if not is_retriable(exc) or loop.time() + pause > deadline:
                    raise
                await asyncio.sleep(pause)
                if isinstance(exc, KafkaError):
                    await self._try_refresh(topic)
        raise AssertionError("unreachable")

    def _append(
        self, tp: TopicPartition, record: OutRecord, size: int, future: asyncio.Future[int]
    ) -> None:
        part = self._partitions.get(tp)
        if part is None:
            part = self._partitions[tp] = _Partition()
            part.task = asyncio.create_task(self._drain(tp, part), name=f"produce-{tp}")
        batch = part.open
        if batch is not None and batch.records and batch.size + size > self._batch_bytes_max:
            self._seal(part)
            batch = None
        if batch is None:
            loop = asyncio.get_running_loop()
            batch = part.open = _Batch(tp, loop.time(), done=loop.create_future())
        batch.records.append(record)
        batch.futures.append(future)
        batch.size += size
        self._buffered += size
        if batch.size >= self._batch_bytes_max:
            self._seal(part)
        part.wake.set()

    def _seal(self, part: _Partition) -> None:
        if part.open is not None:
            part.sealed.append(part.open)
            part.open = None
            part.wake.set()

    # --- flush and close ---------------------------------------------------------

    async def flush(self) -> None:
        """Send every buffered record now and wait until each batch is done
        (acknowledged or failed: failures are on the records' futures)."""
        waits = []
        for part in self._partitions.values():
            self._seal(part)
            waits += [b.done for b in (part.in_flight, *part.sealed) if b is not None and b.done]
        if waits:
            await asyncio.wait(waits)

    async def close(self) -> None:
        """Flush, then stop the senders (idempotent)."""
        if self._closed:
            return
        try:
            await self.flush()
        finally:
            self._closed = True
            self._room.set()
            tasks = [p.task for p in self._partitions.values() if p.task is not None]
            for task in tasks:
                task.cancel()
            if tasks:
                await asyncio.wait(tasks)

    # --- the sender of one partition ---------------------------------------------

    async def _drain(self, tp: TopicPartition, part: _Partition) -> None:
        try:
            while True:
                batch = await self._next_batch(part)
                part.in_flight = batch
                try:
                    base_offset = await self._deliver(part, batch)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    self._batch_failed(exc)
                    self._finish(part, batch, exc)
                else:
                    self._finish(part, batch, base_offset)
        except asyncio.CancelledError:
            error = ClientClosedError(f"the producer closed before {tp} was sent")
            for batch in (part.in_flight, *part.sealed, part.open):
                if batch is not None:
                    self._finish(part, batch, error)
            raise

    async def _next_batch(self, part: _Partition) -> _Batch:
        loop = asyncio.get_running_loop()
        while True:
            part.wake.clear()
            if part.sealed:
                return part.sealed.popleft()
            timeout = None
            if part.open is not None:
                timeout = part.open.created_s + self._linger_s - loop.time()
                if timeout <= 0:
                    self._seal(part)
                    continue
            try:
                async with asyncio.timeout(timeout):
                    await part.wake.wait()
            except TimeoutError:
                pass

    def _finish(self, part: _Partition, batch: _Batch, outcome: int | BaseException) -> None:
        if part.in_flight is batch:
            part.in_flight = None
        for i, future in enumerate(batch.futures):
            if future.done():
                continue
            if isinstance(outcome, BaseException):
                future.set_exception(outcome)
            else:
                future.set_result(outcome + i if outcome >= 0 else -1)
        if batch.done is not None and not batch.done.done():
            batch.done.set_result(None)
        self._buffered -= batch.size
        batch.size = 0
        self._room.set()

    async def _deliver(self, part: _Partition, batch: _Batch) -> int:
        """Send a batch until acknowledged; its base offset."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._delivery_timeout_s
        tp = batch.tp
        await self._before_first_send(tp)
        for attempt in itertools.count():
            refresh = False
            try:
                await self._encode(part, batch)
                return await self._send_once(batch)
            except KafkaError as exc:
                self._check_refusal(batch, exc)
                if self._idempotent and exc.code in _PRODUCER_ID_CODES:
                    logger.warning("producer id rejected error=%s tp=%s: taking a new one", exc, tp)
                    self._reset_producer(batch.producer)
                elif not exc.retriable:
                    self._after_failure(batch)
                    raise
                refresh = exc.code in METADATA_CODES
                error: Exception = exc
            except (KafkaConnectionError, KafkaTimeoutError) as exc:
                refresh, error = True, exc
            pause = backoff_s(attempt, self._backoff_s, self._backoff_max_s)
            if attempt >= self._retries or loop.time() + pause > deadline:
                self._after_failure(batch)
                raise error
            logger.debug("produce retry tp=%s attempt=%d error=%s", tp, attempt + 1, error)
            await asyncio.sleep(pause)
            if refresh:
                await self._try_refresh(tp.topic)
        raise AssertionError("unreachable")

    async def _encode(self, part: _Partition, batch: _Batch) -> None:
        if not self._idempotent:
            if batch.encoded is None:
                batch.encoded = self._compressed(batch.tp, encode_batch(batch.records))
            return
        producer = await self._producer_id()
        if batch.encoded is not None and batch.producer == producer:
            return  # a retry: the very same bytes
        if part.sequence_producer != producer:
            part.sequence_producer, part.sequence = producer, 0
        batch.producer, batch.base_sequence = producer, part.sequence
        batch.encoded = self._compressed(
            batch.tp,
            encode_batch(
                batch.records,
                producer_id=producer[0],
                producer_epoch=producer[1],
                base_sequence=part.sequence,
                attributes=self._batch_attributes,
            ),
        )
        part.sequence = (part.sequence + len(batch.records)) % _SEQUENCE_MOD

    def _compressed(self, tp: TopicPartition, encoded: bytearray) -> bytes:
        if self._compression is not None:
            return bytes(compress_batch(encoded, self._compression(tp.topic)))
        return bytes(encoded)

    async def _send_once(self, batch: _Batch) -> int:
        tp = batch.tp
        leader = await self._cluster.leader_for(tp)
        conn = await self._cluster.connection(leader, PRODUCE_LANE)
        body = {
            "transactional_id": self._transactional_id,
            "acks": self._acks,
            "timeout_ms": self._request_timeout_ms,
            "topics": [
                {
                    "name": tp.topic,
                    "partitions": [{"partition_index": tp.partition, "records": batch.encoded}],
                }
            ],
        }
        batch.sent = True
        response = await conn.request(
            ApiKey.PRODUCE, body, timeout_s=self._request_timeout_ms / 1000 + 5
        )
        if self._acks == 0:
            return -1
        answer = response["responses"][0]["partitions"][0]
        code = answer["error_code"]
        if code == ErrorCode.DUPLICATE_SEQUENCE_NUMBER:
            return -1  # already stored; the broker no longer knows where
        if code != ErrorCode.NONE:
            raise KafkaError(
                code, answer.get("error_message"), topic=tp.topic, partition=tp.partition
            )
        return answer["base_offset"]

    def _after_failure(self, batch: _Batch) -> None:
        """A batch failed for good: if it may have been stored, its sequence numbers
        are spoken for, so later batches start afresh under a new producer id."""
        if self._idempotent and batch.sent:
            self._abandon_producer(batch.producer)
        elif batch.producer is not None:
            part = self._partitions[batch.tp]
            if part.sequence_producer == batch.producer:
                part.sequence = batch.base_sequence  # never sent: reuse its numbers

    # --- for subclasses: hooks a transactional producer fills in -------------------

    def _check_send(self) -> None:
        """Raise if a record may not be sent now."""

    async def _before_first_send(self, tp: TopicPartition) -> None:
        """Called once per batch before it is first sent; raising fails the batch."""

    def _check_refusal(self, batch: _Batch, exc: KafkaError) -> None:
        """The broker refused a batch with `exc`: raise to fail it for good (after
        _after_failure) instead of _deliver's own retries and producer id reset."""

    def _batch_failed(self, exc: Exception) -> None:
        """A batch failed for good with `exc` (its records' futures are told next)."""

    def _abandon_producer(self, producer: tuple[int, int] | None) -> None:
        """A batch of `producer` failed after it was sent, so its sequence numbers
        may be spoken for: later batches start afresh with a new producer id."""
        self._reset_producer(producer)

    def _fail_unsent(self, error: Exception) -> None:
        """Fail every buffered batch not yet sent with `error` (in-flight ones go on)."""
        for part in self._partitions.values():
            unsent = [*part.sealed, *([part.open] if part.open is not None else [])]
            part.sealed.clear()
            part.open = None
            for batch in unsent:
                self._finish(part, batch, error)
                for future in batch.futures:
                    if not future.cancelled():
                        future.exception()  # the caller dropped them: no warning for each

    def _reset_producer(self, producer: tuple[int, int] | None) -> None:
        if producer is not None and self._producer == producer:
            self._producer = None

    async def _producer_id(self) -> tuple[int, int]:
        if self._producer is not None:
            return self._producer
        async with self._producer_lock:
            if self._producer is None:
                self._producer = await self._init_producer_id()
                logger.info("producer id=%d epoch=%d", self._producer[0], self._producer[1])
            return self._producer

    async def _init_producer_id(self) -> tuple[int, int]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._delivery_timeout_s
        body = {"transactional_id": None, "transaction_timeout_ms": 60_000}
        for attempt in itertools.count():
            try:
                response = await self._cluster.request_any(ApiKey.INIT_PRODUCER_ID, body)
                code = response["error_code"]
                if code == ErrorCode.NONE:
                    return response["producer_id"], response["producer_epoch"]
                error: Exception = KafkaError(code, "InitProducerId")
            except (KafkaConnectionError, KafkaTimeoutError) as exc:
                error = exc
            pause = backoff_s(attempt, self._backoff_s, self._backoff_max_s)
            if not is_retriable(error) or loop.time() + pause > deadline:
                raise error
            await asyncio.sleep(pause)
        raise AssertionError("unreachable")

    async def _try_refresh(self, topic: str) -> None:
        try:
            await self._cluster.refresh([topic])
        except (KafkaConnectionError, KafkaTimeoutError) as exc:
            logger.debug("metadata refresh failed topic=%s error=%s", topic, exc)
