"""`kafka://[USER@]HOST:PORT[,HOST:PORT][?OPTIONS]`: the Transport interface over our client.

OPTIONS configure TLS and SASL (runtime/client/security.py), e.g.
`?security_protocol=SASL_SSL&sasl_mechanism=SCRAM-SHA-256&ssl_cafile=ca.pem`,
with the password from STREAMS_KAFKA_PASSWORD, never from the URL.

The same calls the embedded transport answers from the log in this process
go to a Kafka-protocol broker (`streams broker`, Kafka, Redpanda): topics
through Admin, appends as Produce requests of the framework's already
encoded batches (acks=all, made idempotent and retried through moving leaders
and broken connections for up to `append_timeout_s`: runtime.kafka_appender),
fetches as long-poll Fetch requests, offsets through the group coordinator.

Fetches that wait go out as one Fetch per broker for every partition it leads
(runtime.kafka_fetcher); reads that must not wait (max_wait_s=0, as a table's
recovery does) as a Fetch of their own. A fetch that fails in a way that passes
(a moved leader, a broker down, a dropped connection) backs off, refreshes the
topic's leaders and returns nothing, for the caller to ask again.

For exactly-once processing: `KafkaTransport(url, isolation_level="read_committed")`
fetches only what committed transactions (and plain producers) wrote, with
offsets() ending at the last stable offset; `transactional_producer(id)` makes
a TransactionalProducer on this transport's cluster. read_uncommitted is the
default, and fetches then return the stored bytes as they are.

A read_committed fetch returns whole committed batches, never a marker or an
aborted batch, so its bytes may end before the offsets it read past. An answer
of nothing but markers and aborted batches is read past at once (a broker may
answer one batch per partition: librdkafka's mock cluster does), so an empty
fetch means nothing is there to read yet, as for read_uncommitted. Callers
compute their next position from the batches they get; so that they never
read the same skipped batches again, the transport remembers per partition
where such a skipped run ended and starts the next fetch of its first offset
there (everything in it is decided and invisible to read_committed readers,
so skipping it is always right).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable, Mapping
from typing import Any

from runtime.client import Admin, Cluster
from runtime.client.cluster import backoff_s
from runtime.client.errors import (
    KafkaConnectionError,
    KafkaError,
    KafkaTimeoutError,
    NoCompatibleVersionError,
)
from runtime.client.isolation import (
    READ_COMMITTED,
    IsolationLevel,
    committed_batches,
    isolation_code,
)
from runtime.client.offsets import EARLIEST, LATEST, commit_offsets, fetch_committed, list_offsets
from runtime.client.security import parse_kafka_url
from runtime.client.transactions import TransactionalProducer
from runtime.compression import CompressionChoice
from runtime.errors import (
    CorruptRecordError,
    InvalidTopicError,
    OffsetOutOfRangeError,
    RecordTooLargeError,
    TopicCreationRefusedError,
    TopicExistsError,
    UnknownTopicError,
)
from runtime.kafka_appender import APPEND_TIMEOUT_S, Appender
from runtime.kafka_fetcher import Fetcher
from runtime.log.config import TopicConfig, TopicInfo
from runtime.log.records import iter_batches
from runtime.protocol.codes import ApiKey, ErrorCode
from runtime.txn_writer import KafkaTxnWriter
from runtime.types import TopicPartition

logger = logging.getLogger(__name__)

FETCH_BACKOFF_S = 0.05  # doubling with jitter while a partition's fetches fail
FETCH_BACKOFF_MAX_S = 1.0

_TOPIC_CONFIG_NAMES = frozenset(TopicConfig().to_configs())
_REFUSED_CODES = frozenset(
    {
        ErrorCode.TOPIC_AUTHORIZATION_FAILED,
        ErrorCode.CLUSTER_AUTHORIZATION_FAILED,
        ErrorCode.POLICY_VIOLATION,
    }
)
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


class KafkaTransport:
    def __init__(
        self,
        url: str,
        *,
        client_id: str = "streams",
        isolation_level: IsolationLevel = "read_uncommitted",
        append_timeout_s: float = APPEND_TIMEOUT_S,
        connect_timeout_s: float = 10.0,
    ) -> None:
        self.url = url
        self._isolation = isolation_code(isolation_level)
        bootstrap, security = parse_kafka_url(url)
        self._cluster = Cluster(
            bootstrap, client_id=client_id, security=security, connect_timeout_s=connect_timeout_s
        )
        self._admin = Admin(self._cluster)
        self._skips: dict[TopicPartition, tuple[int, int]] = {}  # tp -> (from, to): see above
        self._fetcher = Fetcher(self._cluster, self._isolation)
        self._appender = Appender(self._cluster, timeout_s=append_timeout_s)
        self._fetch_failures: dict[TopicPartition, int] = {}  # tp -> failed fetches in a row
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
            await self._fetcher.close()
            await self._cluster.close()

    def transactional_producer(self, transactional_id: str, **kwargs: Any) -> TransactionalProducer:
        """A transactional producer on this transport's cluster (kwargs: those of
        TransactionalProducer); call its init_transactions() before use."""
        producer = TransactionalProducer(self._cluster, transactional_id, **kwargs)
        producer.set_compression(
            self._chosen_codec
        )  # asked per batch: set_compression may come later
        return producer

    def _chosen_codec(self, topic: str) -> int:
        choose = self._appender.compression
        return 0 if choose is None else choose(topic)

    def set_compression(self, choose: CompressionChoice | None) -> None:
        """Compress the framework's batches, per topic as `choose` says (appends and
        transactional producers)."""
        self._appender.compression = choose

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
        await self._create_or_refuse({name: (partitions, dict(configs or {}))})
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
        await self._create_or_refuse(
            {name: (partitions, dict(configs or {}))}, ignore_existing=True
        )
        info = await self.topic(name)
        if info is None:
            raise UnknownTopicError(f"topic {name!r} was created but is not visible", topic=name)
        return info

    async def _create_or_refuse(
        self, topics: Mapping[str, tuple[int, dict[str, str]]], *, ignore_existing: bool = False
    ) -> None:
        """Create topics; TopicCreationRefusedError where the cluster lets us create
        none (operations create topics there), the runtime's error for others."""
        names = ", ".join(topics)
        try:
            await self._create_topics(topics, ignore_existing=ignore_existing)
        except NoCompatibleVersionError as exc:
            raise TopicCreationRefusedError(
                f"the cluster serves no CreateTopics: cannot create {names}", topic=names
            ) from exc
        except KafkaError as exc:
            if exc.code in _REFUSED_CODES:
                raise TopicCreationRefusedError(
                    f"the cluster refuses topic creation ({exc.name}): cannot create {names}",
                    topic=names,
                ) from exc
            raise _translate(exc) from exc

    async def _create_topics(
        self, topics: Mapping[str, tuple[int, dict[str, str]]], *, ignore_existing: bool = False
    ) -> None:
        await self._admin.create_topics(topics, ignore_existing=ignore_existing)

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
        except (KafkaError, NoCompatibleVersionError):  # a cluster without DescribeConfigs
            raw = {}
        known = {k: v for k, v in raw.items() if k in _TOPIC_CONFIG_NAMES and v is not None}
        try:
            config = TopicConfig.from_configs(known)
        except ValueError:  # a value outside what our log accepts: keep the defaults
            config = TopicConfig()
        return TopicInfo(name, partitions, config)

    # --- records -------------------------------------------------------------------

    async def append(self, tp: TopicPartition, batch: bytes | bytearray) -> int:
        try:
            return await self._appender.append(tp, batch)
        except KafkaError as exc:
            raise _translate(exc) from exc

    async def fetch(
        self, tp: TopicPartition, offset: int, *, max_bytes: int = 1 << 20, max_wait_s: float = 0.5
    ) -> bytes:
        asked = offset
        skip = self._skips.pop(tp, None)
        if skip is not None and skip[0] == offset:
            offset = skip[1]
        while True:
            part = await self._fetch_part(tp, offset, max_bytes, max_wait_s)
            if part is None:  # failed in a way that passes: the caller asks again
                self._remember_skip(tp, asked, offset)
                return b""
            records = part["records"] or b""
            if self._isolation != READ_COMMITTED:
                return bytes(records)
            aborted = [
                (a["producer_id"], a["first_offset"]) for a in part["aborted_transactions"] or ()
            ]
            kept, read_to = committed_batches(records, aborted, offset)
            if kept or read_to <= offset:
                break
            # Only markers and aborted batches: read on past them at once, as a
            # consumer does, so an empty answer means nothing to read there yet
            # (a broker that answers one batch per partition, as librdkafka's
            # mock does, else ends every read at a marker).
            offset, max_wait_s = read_to, 0
        kept_to = max([asked, *(h.next_offset for _, h in iter_batches(kept))])
        self._remember_skip(tp, kept_to, read_to)
        return kept

    def _remember_skip(self, tp: TopicPartition, kept_to: int, read_to: int) -> None:
        if read_to > kept_to:
            self._skips[tp] = (kept_to, read_to)

    async def _fetch_part(
        self, tp: TopicPartition, offset: int, max_bytes: int, max_wait_s: float
    ) -> dict | None:
        """The Fetch answer's part for `tp`; None after a failure that passes
        (backed off and the leaders refreshed)."""
        try:
            if max_wait_s > 0:
                part = await self._fetcher.fetch(tp, offset, max_bytes, max_wait_s)
            else:
                part = await self._fetcher.fetch_now(tp, offset, max_bytes, 0)
        except (KafkaConnectionError, KafkaTimeoutError, KafkaError) as exc:
            if isinstance(exc, KafkaError) and not exc.retriable:
                raise _translate(exc) from exc
            await self._retry_later(tp, exc)
            return None
        code = part["error_code"]
        if code != ErrorCode.NONE:
            error = KafkaError(code, topic=tp.topic, partition=tp.partition, offset=offset)
            if not error.retriable:
                raise _translate(error)
            await self._retry_later(tp, error)
            return None
        self._fetch_failures.pop(tp, None)
        return part

    async def _retry_later(self, tp: TopicPartition, error: Exception) -> None:
        """A fetch failed in a way that passes (a leader moved, a broker is down):
        back off, refresh the topic's leaders, and let the caller ask again."""
        attempt = self._fetch_failures.get(tp, 0)
        self._fetch_failures[tp] = attempt + 1
        logger.debug("fetch retry tp=%s attempt=%d error=%s", tp, attempt + 1, error)
        await asyncio.sleep(backoff_s(attempt, FETCH_BACKOFF_S, FETCH_BACKOFF_MAX_S))
        with contextlib.suppress(KafkaConnectionError, KafkaTimeoutError, KafkaError):
            await self._cluster.refresh([tp.topic])

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
