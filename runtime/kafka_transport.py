"""`kafka://HOST:PORT[,HOST:PORT]`: the Transport interface over our Kafka client.

The same calls the embedded transport answers from the log in this process
go to a Kafka-protocol broker (`streams broker`, Kafka, Redpanda): topics
through Admin, appends as Produce requests of the framework's already
encoded batches (acks=all), fetches as long-poll Fetch requests, offsets
through the group coordinator.

Each partition's fetch loop has its own connection lane: a broker serves one
request per connection at a time, so a long poll on one partition must not
hold up another's.

For exactly-once processing: `KafkaTransport(url, isolation_level="read_committed")`
fetches only what committed transactions (and plain producers) wrote, with
offsets() ending at the last stable offset; `transactional_producer(id)` makes
a TransactionalProducer on this transport's cluster. read_uncommitted is the
default, and fetches then return the stored bytes as they are.

A read_committed fetch returns whole committed batches, never a marker or an
aborted batch, so its bytes may end before the offsets it read past (or be
empty though it read some). Callers compute their next position from the
batches they get; so that they never read the same skipped batches again, the
transport remembers per partition where such a skipped run ended and starts
the next fetch of its first offset there (everything in it is decided and
invisible to read_committed readers, so skipping it is always right).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlparse

from runtime.client import Admin, Cluster
from runtime.client.cluster import backoff_s
from runtime.client.errors import KafkaError
from runtime.client.isolation import (
    READ_COMMITTED,
    IsolationLevel,
    committed_batches,
    isolation_code,
)
from runtime.client.offsets import EARLIEST, LATEST, commit_offsets, fetch_committed, list_offsets
from runtime.client.transactions import TransactionalProducer
from runtime.errors import (
    CorruptRecordError,
    InvalidTopicError,
    OffsetOutOfRangeError,
    RecordTooLargeError,
    TopicExistsError,
    UnknownTopicError,
)
from runtime.log.config import TopicConfig, TopicInfo
from runtime.log.records import iter_batches
from runtime.protocol.codes import ApiKey, ErrorCode
from runtime.txn_writer import KafkaTxnWriter
from runtime.types import TopicPartition

logger = logging.getLogger(__name__)

APPEND_ATTEMPTS = 6
APPEND_BACKOFF_S = 0.1  # doubling with jitter: about 3 s in all before giving up
APPEND_BACKOFF_MAX_S = 1.6

_TOPIC_CONFIG_NAMES = frozenset(TopicConfig().to_configs())
_ERRORS = {
    ErrorCode.UNKNOWN_TOPIC_OR_PARTITION: UnknownTopicError,
    ErrorCode.INVALID_TOPIC_EXCEPTION: InvalidTopicError,
    ErrorCode.TOPIC_ALREADY_EXISTS: TopicExistsError,
    ErrorCode.MESSAGE_TOO_LARGE: RecordTooLargeError,
    ErrorCode.CORRUPT_MESSAGE: CorruptRecordError,
    ErrorCode.OFFSET_OUT_OF_RANGE: OffsetOutOfRangeError,
}


def _translate(exc: KafkaError) -> Exception:
    """Our runtime's error for a broker's error code (so callers see one tree)."""
    kind = _ERRORS.get(exc.code)
    if kind is None:
        return exc
    return kind(str(exc), topic=exc.topic, partition=exc.partition, offset=exc.offset)


def bootstrap_of(url: str) -> str:
    parsed = urlparse(url)
    if parsed.scheme != "kafka" or not parsed.netloc:
        raise ValueError(f"broker {url!r}: expected kafka://HOST:PORT[,HOST:PORT]")
    return parsed.netloc


class KafkaTransport:
    def __init__(
        self,
        url: str,
        *,
        client_id: str = "streams",
        isolation_level: IsolationLevel = "read_uncommitted",
    ) -> None:
        self.url = url
        self._isolation = isolation_code(isolation_level)
        self._cluster = Cluster(bootstrap_of(url), client_id=client_id)
        self._admin = Admin(self._cluster)
        self._skips: dict[TopicPartition, tuple[int, int]] = {}  # tp -> (from, to): see above
        self._started = False

    @property
    def cluster(self) -> Cluster:
        return self._cluster

    async def start(self) -> None:
        if not self._started:
            await self._cluster.start()
            self._started = True

    async def stop(self) -> None:
        if self._started:
            self._started = False
            await self._cluster.close()

    def transactional_producer(self, transactional_id: str, **kwargs: Any) -> TransactionalProducer:
        """A transactional producer on this transport's cluster (kwargs: those of
        TransactionalProducer); call its init_transactions() before use."""
        return TransactionalProducer(self._cluster, transactional_id, **kwargs)

    def transactional_writer(
        self, transactional_id: str, *, transaction_timeout_ms: int
    ) -> KafkaTxnWriter:
        """A TransactionalWriter (runtime.txn_writer) for one worker's transactions.
        linger 0: an append's records go out as one batch at once (the framework
        batched them already)."""
        producer = self.transactional_producer(
            transactional_id, transaction_timeout_ms=transaction_timeout_ms, linger_ms=0
        )
        return KafkaTxnWriter(producer)

    async def __aenter__(self) -> KafkaTransport:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # --- topics --------------------------------------------------------------------

    async def create_topic(
        self, name: str, partitions: int, configs: Mapping[str, str] | None = None
    ) -> TopicInfo:
        try:
            await self._admin.create_topics({name: (partitions, dict(configs or {}))})
        except KafkaError as exc:
            raise _translate(exc) from exc
        info = await self.topic(name)
        if info is None:
            raise UnknownTopicError(f"topic {name!r} was created but is not visible", topic=name)
        return info

    async def ensure_topic(
        self, name: str, partitions: int, configs: Mapping[str, str] | None = None
    ) -> TopicInfo:
        info = await self.topic(name)
        if info is not None:
            return info
        try:
            await self._admin.create_topics(
                {name: (partitions, dict(configs or {}))}, ignore_existing=True
            )
        except KafkaError as exc:
            raise _translate(exc) from exc
        info = await self.topic(name)
        if info is None:
            raise UnknownTopicError(f"topic {name!r} was created but is not visible", topic=name)
        return info

    async def delete_topic(self, name: str) -> None:
        try:
            await self._admin.delete_topics([name])
        except KafkaError as exc:
            raise _translate(exc) from exc

    async def topics(self) -> dict[str, TopicInfo]:
        counts = await self._admin.describe_topics()
        return {name: await self._info(name, n) for name, n in counts.items()}

    async def topic(self, name: str) -> TopicInfo | None:
        try:
            counts = await self._admin.describe_topics([name])
        except KafkaError as exc:
            if exc.code == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION:
                return None
            raise _translate(exc) from exc
        return await self._info(name, counts[name])

    async def _info(self, name: str, partitions: int) -> TopicInfo:
        try:
            raw = await self._admin.describe_configs(name)
        except KafkaError:
            raw = {}
        known = {k: v for k, v in raw.items() if k in _TOPIC_CONFIG_NAMES and v is not None}
        try:
            config = TopicConfig.from_configs(known)
        except ValueError:  # a value outside what our log accepts: keep the defaults
            config = TopicConfig()
        return TopicInfo(name, partitions, config)

    # --- records -------------------------------------------------------------------

    async def append(self, tp: TopicPartition, batch: bytes | bytearray) -> int:
        body = {
            "transactional_id": None,
            "acks": -1,
            "timeout_ms": 30_000,
            "topics": [
                {
                    "name": tp.topic,
                    "partitions": [{"partition_index": tp.partition, "records": batch}],
                }
            ],
        }
        for attempt in range(APPEND_ATTEMPTS):
            node = await self._cluster.leader_for(tp)
            response = await self._cluster.request(node, ApiKey.PRODUCE, body, lane="produce")
            part = response["responses"][0]["partitions"][0]
            code = part["error_code"]
            if code == ErrorCode.NONE:
                return part["base_offset"]
            error = KafkaError(code, topic=tp.topic, partition=tp.partition)
            if not error.retriable or attempt == APPEND_ATTEMPTS - 1:
                raise _translate(error)
            # a moving leader or a broker short of disk needs time, not a burst of retries
            await asyncio.sleep(backoff_s(attempt, APPEND_BACKOFF_S, APPEND_BACKOFF_MAX_S))
            await self._cluster.refresh([tp.topic])
        raise AssertionError("unreachable")

    async def fetch(
        self, tp: TopicPartition, offset: int, *, max_bytes: int = 1 << 20, max_wait_s: float = 0.5
    ) -> bytes:
        asked = offset
        skip = self._skips.pop(tp, None)
        if skip is not None and skip[0] == offset:
            offset = skip[1]
        body = {
            "replica_id": -1,
            "max_wait_ms": int(max_wait_s * 1000),
            "min_bytes": 1,
            "max_bytes": max_bytes,
            "isolation_level": self._isolation,
            "session_id": 0,
            "session_epoch": -1,
            "topics": [
                {
                    "topic": tp.topic,
                    "partitions": [
                        {
                            "partition": tp.partition,
                            "fetch_offset": offset,
                            "log_start_offset": -1,
                            "partition_max_bytes": max_bytes,
                        }
                    ],
                }
            ],
            "forgotten_topics_data": [],
            "rack_id": "",
        }
        node = await self._cluster.leader_for(tp)
        response = await self._cluster.request(
            node, ApiKey.FETCH, body, lane=f"fetch {tp}", timeout_s=max_wait_s + 30
        )
        part = response["responses"][0]["partitions"][0]
        code = part["error_code"]
        if code != ErrorCode.NONE:
            error = KafkaError(code, topic=tp.topic, partition=tp.partition, offset=offset)
            if error.retriable:
                await self._cluster.refresh([tp.topic])
                return b""
            raise _translate(error)
        records = part["records"] or b""
        if self._isolation != READ_COMMITTED:
            return bytes(records)
        aborted = [
            (a["producer_id"], a["first_offset"]) for a in part["aborted_transactions"] or ()
        ]
        kept, read_to = committed_batches(records, aborted, offset)
        kept_to = max([asked, *(h.next_offset for _, h in iter_batches(kept))])
        if read_to > kept_to:
            self._skips[tp] = (kept_to, read_to)
        return kept

    async def offsets(self, tp: TopicPartition) -> tuple[int, int]:
        try:
            start = (await list_offsets(self._cluster, [tp], EARLIEST))[tp]
            end = (
                await list_offsets(self._cluster, [tp], LATEST, isolation_level=self._isolation)
            )[tp]
        except KafkaError as exc:
            raise _translate(exc) from exc
        return start, end

    async def high_watermark(self, tp: TopicPartition) -> int:
        """The log's end, whatever the isolation level (offsets() ends at the
        last stable offset under read_committed)."""
        try:
            return (await list_offsets(self._cluster, [tp], LATEST))[tp]
        except KafkaError as exc:
            raise _translate(exc) from exc

    async def offset_for_timestamp(self, tp: TopicPartition, timestamp_ms: int) -> int | None:
        found = (await list_offsets(self._cluster, [tp], timestamp_ms))[tp]
        return None if found < 0 else found

    # --- group offsets ---------------------------------------------------------------

    async def commit(self, group: str, offsets: Mapping[TopicPartition, int]) -> None:
        if offsets:
            await commit_offsets(self._cluster, group, offsets)

    async def committed(
        self, group: str, tps: Iterable[TopicPartition] | None = None
    ) -> dict[TopicPartition, int]:
        # read_committed: wait for offsets a transaction holds (a worker the group
        # dropped may still commit or abort them), as Kafka's consumers do
        found = await fetch_committed(
            self._cluster, group, tps, require_stable=self._isolation == READ_COMMITTED
        )
        return {tp: offset for tp, (offset, _) in found.items()}

    async def describe_group(self, group: str) -> dict:
        """The group's state and members (DescribeGroups at its coordinator)."""
        node = await self._cluster.coordinator(group)
        response = await self._cluster.request(
            node,
            ApiKey.DESCRIBE_GROUPS,
            {"groups": [group], "include_authorized_operations": False},
        )
        return response["groups"][0]

    async def groups(self) -> list[str]:
        """Every broker coordinates some groups: ask each."""
        await self._cluster.refresh()
        names: set[str] = set()
        for node in sorted(self._cluster.brokers):
            response = await self._cluster.request(node, ApiKey.LIST_GROUPS, {})
            names.update(g["group_id"] for g in response["groups"])
        return sorted(names)
