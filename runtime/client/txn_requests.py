"""The requests a transactional producer makes of its coordinators, retried as
Kafka's clients retry them, with each broker error turned into the exception
the producer acts on.

    init_producer_id    InitProducerId at the transaction coordinator (FindCoordinator
                        key type 1): the id and a new epoch, fencing older instances;
                        given the current id and epoch (KIP-360, v3+) an epoch bump
                        that fails if another instance has taken over meanwhile
    add_partitions      AddPartitionsToTxn, before a partition's first batch
    add_offsets         AddOffsetsToTxn, before a group's first TxnOffsetCommit
    txn_offset_commit   TxnOffsetCommit at the group's coordinator; v3 names the
                        member and its generation, so a fenced member's commit fails
    end_txn             EndTxn: commit or abort

Errors, for every request (`produce_error` maps a Produce answer the same way):
    retried with backoff for up to max_block_s, then KafkaTimeoutError (the last
    error its cause): broken connections, timeouts, CONCURRENT_TRANSACTIONS,
    COORDINATOR_LOAD_IN_PROGRESS, REQUEST_TIMED_OUT, and COORDINATOR_NOT_AVAILABLE /
    NOT_COORDINATOR (after forgetting the coordinator), plus what a request lists
    ProducerFencedError        PRODUCER_FENCED, INVALID_PRODUCER_EPOCH,
                               TRANSACTION_COORDINATOR_FENCED
    TransactionStateError      INVALID_TXN_STATE
    TransactionAbortableError  what a request lists as abortable (the group's
                               ILLEGAL_GENERATION, UNKNOWN_MEMBER_ID, ...; authorization)
    TransactionFatalError      any other code: nothing this producer does mends it
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import TypeVar

from runtime.client.cluster import GROUP, TRANSACTION, Cluster, backoff_s
from runtime.client.errors import (
    COORDINATOR_CODES,
    KafkaConnectionError,
    KafkaError,
    KafkaTimeoutError,
    ProducerFencedError,
    TransactionAbortableError,
    TransactionError,
    TransactionFatalError,
    TransactionStateError,
)
from runtime.client.group import ConsumerGroupMetadata
from runtime.protocol.codes import ApiKey, ErrorCode
from runtime.protocol.frames import SUPPORTED
from runtime.types import TopicPartition

T = TypeVar("T")
Producer = tuple[int, int]  # (producer id, epoch)

TXN_LANE = "txn"  # coordinator requests never wait behind a consumer's or a group's
_BUMP_VERSION_MIN = 3  # InitProducerId with the current producer id and epoch
_BUMP_VERSION_MAX = 4  # the first to answer PRODUCER_FENCED rather than INVALID_PRODUCER_EPOCH
_GENERATION_VERSION_MIN = 3  # TxnOffsetCommit with generation and member id

_RETRY = frozenset(
    {
        ErrorCode.CONCURRENT_TRANSACTIONS,
        ErrorCode.COORDINATOR_LOAD_IN_PROGRESS,
        ErrorCode.REQUEST_TIMED_OUT,
        *COORDINATOR_CODES,
    }
)
FENCED_CODES = frozenset(
    {
        ErrorCode.PRODUCER_FENCED,
        ErrorCode.INVALID_PRODUCER_EPOCH,
        ErrorCode.TRANSACTION_COORDINATOR_FENCED,
    }
)
_GROUP_FENCED = frozenset(
    {
        ErrorCode.ILLEGAL_GENERATION,
        ErrorCode.UNKNOWN_MEMBER_ID,
        ErrorCode.FENCED_INSTANCE_ID,
        ErrorCode.REBALANCE_IN_PROGRESS,
    }
)
_AUTHORIZATION = frozenset(
    {ErrorCode.TOPIC_AUTHORIZATION_FAILED, ErrorCode.GROUP_AUTHORIZATION_FAILED}
)
_PRODUCE_ABORTABLE = frozenset(
    {ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER, ErrorCode.UNKNOWN_PRODUCER_ID}
)
_PRODUCE_FATAL = frozenset(
    {ErrorCode.INVALID_PRODUCER_ID_MAPPING, ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED}
)


def classify(
    what: str,
    code: int,
    transactional_id: str,
    abortable: frozenset[int] = frozenset(),
    **where: object,
) -> TransactionError:
    """The exception for a broker's answer `code` to `what` (not a retried code)."""
    if code in FENCED_CODES:
        return ProducerFencedError(
            f"{what}: producer of transactional id {transactional_id!r} is fenced: a newer "
            "instance took the id, or its transaction ran past transaction_timeout_ms and "
            "the coordinator aborted it",
            code=code,
            **where,  # type: ignore[arg-type]
        )
    if code == ErrorCode.INVALID_TXN_STATE:
        return TransactionStateError(
            f"{what}: the coordinator's state of transactional id {transactional_id!r} "
            "is not the one this producer expects; the producer is unusable",
            code=code,
            **where,  # type: ignore[arg-type]
        )
    if code in abortable:
        return TransactionAbortableError(
            f"{what} failed: abort the transaction",
            code=code,
            **where,  # type: ignore[arg-type]
        )
    return TransactionFatalError(f"{what} failed", code=code, **where)  # type: ignore[arg-type]


def produce_error(transactional_id: str, exc: KafkaError) -> TransactionError | None:
    """What a transactional batch refused with `exc` raises; None: handle as usual."""
    if exc.code in FENCED_CODES | _PRODUCE_FATAL or exc.code == ErrorCode.INVALID_TXN_STATE:
        abortable: frozenset[int] = frozenset()
    elif exc.code in _PRODUCE_ABORTABLE:
        abortable = _PRODUCE_ABORTABLE
    else:
        return None
    where = {"topic": exc.topic, "partition": exc.partition}
    return classify("Produce", exc.code, transactional_id, abortable, **where)


def _first_error(codes: Iterable[int], retry: frozenset[int]) -> int:
    """The code to act on among per-partition codes: one not retried first."""
    failed = [c for c in codes if c != ErrorCode.NONE]
    return next((c for c in failed if c not in retry), failed[0] if failed else ErrorCode.NONE)


class TxnRequests:
    """The coordinator requests of one transactional id."""

    def __init__(
        self,
        cluster: Cluster,
        transactional_id: str,
        *,
        transaction_timeout_ms: int,
        max_block_s: float,
        backoff_s: float,
        backoff_max_s: float,
    ) -> None:
        self._cluster = cluster
        self.transactional_id = transactional_id
        self._timeout_ms = transaction_timeout_ms
        self._max_block_s = max_block_s
        self._backoff_s = backoff_s
        self._backoff_max_s = backoff_max_s

    async def init_producer_id(self, current: Producer | None = None) -> Producer:
        """A new epoch for the transactional id; with `current`, its bump."""
        body = {
            "transactional_id": self.transactional_id,
            "transaction_timeout_ms": self._timeout_ms,
            "producer_id": -1 if current is None else current[0],
            "producer_epoch": -1 if current is None else current[1],
        }

        async def once() -> Producer:
            node = await self._cluster.coordinator(self.transactional_id, key_type=TRANSACTION)
            conn = await self._cluster.connection(node, TXN_LANE)
            version = None  # the negotiated one: a first InitProducerId needs no bump
            if current is not None:
                theirs = conn.broker_versions.get(ApiKey.INIT_PRODUCER_ID, (0, 0))[1]
                version = min(_BUMP_VERSION_MAX, SUPPORTED[ApiKey.INIT_PRODUCER_ID][1], theirs)
                if version < _BUMP_VERSION_MIN:
                    raise TransactionFatalError(
                        f"the broker serves InitProducerId up to v{version}: bumping the "
                        "epoch after a failed send needs v3 (KIP-360, Kafka 2.5+)"
                    )
            answer = await conn.request(ApiKey.INIT_PRODUCER_ID, body, version=version)
            _check(answer["error_code"])
            return answer["producer_id"], answer["producer_epoch"]

        return await self._call("InitProducerId", once, self.transactional_id, TRANSACTION)

    async def add_partitions(self, producer: Producer, tps: Iterable[TopicPartition]) -> None:
        by_topic: dict[str, list[int]] = {}
        for tp in sorted(set(tps)):
            by_topic.setdefault(tp.topic, []).append(tp.partition)
        body = {
            **self._producer_fields(producer),
            "topics": [{"name": t, "partitions": p} for t, p in by_topic.items()],
        }
        retry = frozenset({ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, ErrorCode.OPERATION_NOT_ATTEMPTED})

        async def once() -> None:
            answer = await self._at_txn_coordinator(ApiKey.ADD_PARTITIONS_TO_TXN, body)
            codes = [p["partition_error_code"] for t in answer["results"] for p in t["results"]]
            _check(_first_error(codes, _RETRY | retry))

        await self._call(
            "AddPartitionsToTxn",
            once,
            self.transactional_id,
            TRANSACTION,
            retry=retry,
            abortable=_AUTHORIZATION,
        )

    async def add_offsets(self, producer: Producer, group_id: str) -> None:
        body = {**self._producer_fields(producer), "group_id": group_id}

        async def once() -> None:
            answer = await self._at_txn_coordinator(ApiKey.ADD_OFFSETS_TO_TXN, body)
            _check(answer["error_code"])

        await self._call(
            "AddOffsetsToTxn", once, self.transactional_id, TRANSACTION, abortable=_AUTHORIZATION
        )

    async def txn_offset_commit(
        self,
        producer: Producer,
        offsets: Mapping[TopicPartition, int],
        group: ConsumerGroupMetadata,
    ) -> None:
        """Commit `offsets` (the next offset to read, per partition) with the transaction."""
        by_topic: dict[str, list[dict]] = {}
        for tp, offset in sorted(offsets.items()):
            by_topic.setdefault(tp.topic, []).append(
                {
                    "partition_index": tp.partition,
                    "committed_offset": offset,
                    "committed_leader_epoch": -1,
                    "committed_metadata": "",
                }
            )
        body = {
            "transactional_id": self.transactional_id,
            "group_id": group.group_id,
            "producer_id": producer[0],
            "producer_epoch": producer[1],
            "generation_id": group.generation_id,
            "member_id": group.member_id,
            "group_instance_id": group.group_instance_id,
            "topics": [{"name": t, "partitions": p} for t, p in by_topic.items()],
        }
        retry = frozenset({ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, ErrorCode.UNSTABLE_OFFSET_COMMIT})

        async def once() -> None:
            node = await self._cluster.coordinator(group.group_id, key_type=GROUP)
            conn = await self._cluster.connection(node, TXN_LANE)
            checked = group.generation_id >= 0 or group.member_id
            if checked and conn.version(ApiKey.TXN_OFFSET_COMMIT) < _GENERATION_VERSION_MIN:
                raise TransactionAbortableError(
                    "the group coordinator serves TxnOffsetCommit below v3, which cannot "
                    "name the member's generation (KIP-447, Kafka 2.5+): commit with "
                    f"ConsumerGroupMetadata({group.group_id!r}) instead",
                    code=ErrorCode.UNSUPPORTED_VERSION,
                )
            answer = await conn.request(ApiKey.TXN_OFFSET_COMMIT, body)
            codes = [p["error_code"] for t in answer["topics"] for p in t["partitions"]]
            _check(_first_error(codes, _RETRY | retry))

        await self._call(
            f"TxnOffsetCommit of group {group.group_id!r}",
            once,
            group.group_id,
            GROUP,
            retry=retry,
            abortable=_GROUP_FENCED | _AUTHORIZATION,
        )

    async def end_txn(self, producer: Producer, *, commit: bool) -> None:
        body = {**self._producer_fields(producer), "committed": commit}

        async def once() -> None:
            answer = await self._at_txn_coordinator(ApiKey.END_TXN, body)
            _check(answer["error_code"])

        what = "EndTxn(commit)" if commit else "EndTxn(abort)"
        await self._call(what, once, self.transactional_id, TRANSACTION)

    # --- helpers -------------------------------------------------------------------

    def _producer_fields(self, producer: Producer) -> dict:
        return {
            "transactional_id": self.transactional_id,
            "producer_id": producer[0],
            "producer_epoch": producer[1],
        }

    async def _at_txn_coordinator(self, api_key: int, body: dict) -> dict:
        node = await self._cluster.coordinator(self.transactional_id, key_type=TRANSACTION)
        return await self._cluster.request(node, api_key, body, lane=TXN_LANE)

    async def _call(
        self,
        what: str,
        once: Callable[[], Awaitable[T]],
        key: str,
        key_type: int,
        *,
        retry: frozenset[int] = frozenset(),
        abortable: frozenset[int] = frozenset(),
    ) -> T:
        """Run `once` until it succeeds, retrying what may pass for up to max_block_s."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._max_block_s
        for attempt in itertools.count():
            try:
                return await once()
            except KafkaError as exc:
                if exc.code not in _RETRY | retry:
                    raise classify(what, exc.code, self.transactional_id, abortable) from exc
                if exc.code in COORDINATOR_CODES:
                    self._cluster.forget_coordinator(key, key_type=key_type)
                error: Exception = exc
            except (KafkaConnectionError, KafkaTimeoutError) as exc:
                self._cluster.forget_coordinator(key, key_type=key_type)
                error = exc
            pause = backoff_s(attempt, self._backoff_s, self._backoff_max_s)
            if loop.time() + pause > deadline:
                raise KafkaTimeoutError(
                    f"{what} of transactional id {self.transactional_id!r} did not succeed "
                    f"in {self._max_block_s}s: {error}"
                ) from error
            await asyncio.sleep(pause)
        raise AssertionError("unreachable")


def _check(code: int) -> None:
    if code != ErrorCode.NONE:
        raise KafkaError(code)
