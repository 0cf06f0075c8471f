"""The transaction coordinator (KIP-98, KIP-447): one per broker, for every transactional id.

State machine per transactional id (Kafka's):

    Empty/Complete* --AddPartitions/AddOffsets--> Ongoing --EndTxn--> Prepare{Commit,Abort}
    Prepare* --markers written to every partition--> Complete{Commit,Abort}
    Ongoing --InitProducerId of a new instance, or timeout--> (epoch bumped) abort

Invariants:
- every transition is persisted in __transaction_state (TransactionStore) before
  the coordinator acts on it, so a crash at any moment ends, after the restart,
  with the transaction wholly committed or wholly aborted: a Prepare* state
  found on start is completed (markers again, offsets again: both idempotent);
- one transition at a time (`_lock`), so markers of one transaction are never
  interleaved with a state change of the same id;
- a producer epoch older than the id's is fenced (PRODUCER_FENCED); the abort
  of a fenced or timed-out transaction writes its markers with the bumped
  epoch, so the partitions fence the old producer's late batches too;
- transactional batches are accepted only for partitions of the producer's
  Ongoing transaction (check_produce), so no marker is ever missing.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from runtime.errors import StreamsRuntimeError, UnknownTopicError
from runtime.log.manager import Log
from runtime.log.offsets import OffsetStore
from runtime.log.txn_store import GroupOffsets, TransactionStore, TxnMetadata, TxnState
from runtime.protocol.codes import ErrorCode
from runtime.types import TopicPartition

logger = logging.getLogger(__name__)

TRANSACTION_MAX_TIMEOUT_MS = 900_000  # Kafka's transaction.max.timeout.ms
ABORT_CHECK_INTERVAL_MS = 1_000  # transaction.abort.timed.out.transaction.cleanup.interval.ms
_EPOCH_MAX = 32_767 - 1  # an epoch bump past this takes a new producer id

_PREPARED = (TxnState.PREPARE_COMMIT, TxnState.PREPARE_ABORT)
_OPEN_TO_NEW = (TxnState.EMPTY, TxnState.COMPLETE_COMMIT, TxnState.COMPLETE_ABORT)


@dataclass(frozen=True, slots=True)
class TransactionSettings:
    max_timeout_ms: int = TRANSACTION_MAX_TIMEOUT_MS
    abort_check_interval_ms: int = ABORT_CHECK_INTERVAL_MS


class TransactionCoordinator:
    """Transactional ids of one broker: their producers, open transactions and markers."""

    def __init__(
        self,
        log: Log,
        offsets: OffsetStore,
        next_producer_id: Callable[[], int],
        *,
        notify_append: Callable[[TopicPartition], None] = lambda tp: None,
        settings: TransactionSettings = TransactionSettings(),
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._log = log
        self._offsets = offsets
        self._next_producer_id = next_producer_id
        self._notify_append = notify_append
        self.settings = settings
        self._clock = clock
        self._store = TransactionStore(log)
        self._txns: dict[str, TxnMetadata] = {}
        self._by_producer: dict[int, TxnMetadata] = {}
        self._lock = asyncio.Lock()
        self._expiry_task: asyncio.Task[None] | None = None

    # --- lifecycle -------------------------------------------------------------

    async def start(self) -> None:
        """Load the persisted state and finish what a crash left half-done."""
        self._txns = await asyncio.to_thread(self._store.load)
        self._by_producer = {m.producer_id: m for m in self._txns.values()}
        unfinished = [m for m in self._txns.values() if m.state in _PREPARED]
        async with self._lock:
            for metadata in unfinished:
                logger.warning(
                    "completing a transaction a restart interrupted transactional_id=%s "
                    "state=%s partitions=%d",
                    metadata.transactional_id,
                    metadata.state.value,
                    len(metadata.partitions),
                )
                await self._complete(metadata)
        self._expiry_task = asyncio.create_task(self._abort_timed_out_forever(), name="txn-expiry")
        logger.info("transaction coordinator started transactional_ids=%d", len(self._txns))

    async def stop(self) -> None:
        task, self._expiry_task = self._expiry_task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _abort_timed_out_forever(self) -> None:
        while True:
            await asyncio.sleep(self.settings.abort_check_interval_ms / 1000)
            try:
                await self.abort_timed_out()
            except (OSError, StreamsRuntimeError) as exc:
                logger.warning("aborting timed-out transactions failed error=%r", exc)

    async def abort_timed_out(self) -> int:
        """Abort (with the epoch bumped: the producer is fenced) every transaction open
        longer than its timeout; returns how many."""
        now_ms = self._now_ms()
        overdue = [
            m
            for m in self._txns.values()
            if m.state is TxnState.ONGOING and now_ms - m.start_ms > m.timeout_ms
        ]
        async with self._lock:
            for metadata in overdue:
                if metadata.state is TxnState.ONGOING:
                    logger.info(
                        "aborting a transaction past its timeout transactional_id=%s timeout_ms=%d",
                        metadata.transactional_id,
                        metadata.timeout_ms,
                    )
                    await self._fence_and_abort(metadata)
        return len(overdue)

    # --- the APIs ----------------------------------------------------------------

    async def init_producer_id(
        self, transactional_id: str, timeout_ms: int, producer_id: int = -1, epoch: int = -1
    ) -> tuple[int, int, int]:
        """InitProducerId for a transactional id: (error code, producer id, epoch)."""
        if not transactional_id:
            return ErrorCode.INVALID_REQUEST, -1, -1
        if not 0 < timeout_ms <= self.settings.max_timeout_ms:
            return ErrorCode.INVALID_TRANSACTION_TIMEOUT, -1, -1
        async with self._lock:
            metadata = self._txns.get(transactional_id)
            if metadata is None:
                metadata = TxnMetadata(transactional_id, self._next_producer_id(), -1, timeout_ms)
            elif producer_id >= 0 and (producer_id, epoch) != (
                metadata.producer_id,
                metadata.producer_epoch,
            ):
                return ErrorCode.PRODUCER_FENCED, -1, -1  # KIP-360: not the current producer
            elif metadata.state in _PREPARED:
                await self._complete(metadata)
            elif metadata.state is TxnState.ONGOING:
                await self._fence_and_abort(metadata)
            metadata = self._txns.get(transactional_id, metadata)
            if metadata.state in _PREPARED or metadata.state is TxnState.ONGOING:
                return ErrorCode.CONCURRENT_TRANSACTIONS, -1, -1  # its markers failed: retry
            bumped = self._bumped(metadata, timeout_ms)
            code = await self._persist(bumped)
            if code != ErrorCode.NONE:
                return code, -1, -1
            return ErrorCode.NONE, bumped.producer_id, bumped.producer_epoch

    def _bumped(self, metadata: TxnMetadata, timeout_ms: int) -> TxnMetadata:
        producer_id, epoch = metadata.producer_id, metadata.producer_epoch + 1
        if epoch > _EPOCH_MAX:
            producer_id, epoch = self._next_producer_id(), 0
        return TxnMetadata(
            metadata.transactional_id,
            producer_id,
            epoch,
            timeout_ms,
            TxnState.EMPTY,
            update_ms=self._now_ms(),
        )

    async def add_partitions(
        self, transactional_id: str, producer_id: int, epoch: int, tps: Iterable[TopicPartition]
    ) -> dict[TopicPartition, int]:
        tps = list(tps)
        async with self._lock:
            metadata, error = self._checked(transactional_id, producer_id, epoch)
            if metadata is None:
                return dict.fromkeys(tps, error)
            unknown = [tp for tp in tps if not self._partition_exists(tp)]
            if unknown:
                results = dict.fromkeys(tps, ErrorCode.OPERATION_NOT_ATTEMPTED)
                results.update(dict.fromkeys(unknown, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION))
                return results
            if metadata.state is TxnState.ONGOING and metadata.partitions.issuperset(tps):
                return dict.fromkeys(tps, ErrorCode.NONE)
            code = await self._persist(self._ongoing(metadata, partitions=tps))
            return dict.fromkeys(tps, code)

    async def add_offsets(
        self, transactional_id: str, producer_id: int, epoch: int, group_id: str
    ) -> int:
        async with self._lock:
            metadata, error = self._checked(transactional_id, producer_id, epoch)
            if metadata is None:
                return error
            if metadata.state is TxnState.ONGOING and group_id in metadata.groups:
                return ErrorCode.NONE
            return await self._persist(self._ongoing(metadata, groups=[group_id]))

    async def txn_offset_commit(
        self,
        transactional_id: str,
        group_id: str,
        producer_id: int,
        epoch: int,
        offsets: GroupOffsets,
    ) -> int:
        """Offsets committed with the transaction (the group membership is the
        group coordinator's to check, before this)."""
        async with self._lock:
            metadata, error = self._checked(transactional_id, producer_id, epoch)
            if metadata is None:
                return error
            if metadata.state is not TxnState.ONGOING or group_id not in metadata.groups:
                return ErrorCode.INVALID_TXN_STATE
            updated = self._copy(metadata)
            updated.offsets[group_id] = {**metadata.offsets.get(group_id, {}), **offsets}
            return await self._persist(updated)

    async def end_txn(
        self, transactional_id: str, producer_id: int, epoch: int, commit: bool
    ) -> int:
        async with self._lock:
            metadata, error = self._checked(transactional_id, producer_id, epoch)
            if metadata is None:
                return error
            done = TxnState.COMPLETE_COMMIT if commit else TxnState.COMPLETE_ABORT
            if metadata.state is done:
                return ErrorCode.NONE  # a retry of an EndTxn that went through
            if metadata.state is not TxnState.ONGOING:
                logger.info(
                    "EndTxn in a state that cannot end transactional_id=%s state=%s commit=%s",
                    transactional_id,
                    metadata.state.value,
                    commit,
                )
                return ErrorCode.INVALID_TXN_STATE
            prepared = self._copy(metadata)
            prepared.state = TxnState.PREPARE_COMMIT if commit else TxnState.PREPARE_ABORT
            code = await self._persist(prepared)
            if code != ErrorCode.NONE:
                return code
            return await self._complete(prepared)

    def check_produce(self, producer_id: int, epoch: int, tp: TopicPartition) -> int:
        """May this transactional batch be appended to tp? (ErrorCode.NONE if so)."""
        metadata = self._by_producer.get(producer_id)
        if metadata is None:
            return ErrorCode.INVALID_PRODUCER_ID_MAPPING
        if epoch < metadata.producer_epoch:
            return ErrorCode.INVALID_PRODUCER_EPOCH
        if metadata.state is not TxnState.ONGOING or tp not in metadata.partitions:
            return ErrorCode.INVALID_TXN_STATE
        return ErrorCode.NONE

    def pending_offsets(self, group_id: str) -> set[TopicPartition]:
        """Partitions of `group_id` whose offsets an undecided transaction holds
        (a reader that requires stable offsets waits for it: KIP-447)."""
        pending: set[TopicPartition] = set()
        for metadata in self._txns.values():
            if metadata.state in (TxnState.ONGOING, TxnState.PREPARE_COMMIT):
                pending.update(metadata.offsets.get(group_id, ()))
        return pending

    def describe(self, transactional_id: str) -> TxnMetadata | None:
        return self._txns.get(transactional_id)

    def transactions(self) -> list[TxnMetadata]:
        return sorted(self._txns.values(), key=lambda m: m.transactional_id)

    # --- transitions ---------------------------------------------------------------

    def _checked(
        self, transactional_id: str, producer_id: int, epoch: int
    ) -> tuple[TxnMetadata | None, int]:
        metadata = self._txns.get(transactional_id)
        if not transactional_id:
            return None, ErrorCode.INVALID_REQUEST
        if metadata is None or metadata.producer_id != producer_id:
            return None, ErrorCode.INVALID_PRODUCER_ID_MAPPING
        if epoch != metadata.producer_epoch:
            return None, ErrorCode.PRODUCER_FENCED
        if metadata.state in _PREPARED:
            return None, ErrorCode.CONCURRENT_TRANSACTIONS
        return metadata, ErrorCode.NONE

    def _ongoing(
        self,
        metadata: TxnMetadata,
        partitions: Iterable[TopicPartition] = (),
        groups: Iterable[str] = (),
    ) -> TxnMetadata:
        updated = self._copy(metadata)
        if metadata.state in _OPEN_TO_NEW:  # a new transaction starts
            updated.partitions, updated.groups, updated.offsets = set(), set(), {}
            updated.start_ms = self._now_ms()
        updated.state = TxnState.ONGOING
        updated.partitions.update(partitions)
        updated.groups.update(groups)
        return updated

    def _copy(self, metadata: TxnMetadata) -> TxnMetadata:
        return TxnMetadata(
            metadata.transactional_id,
            metadata.producer_id,
            metadata.producer_epoch,
            metadata.timeout_ms,
            metadata.state,
            set(metadata.partitions),
            set(metadata.groups),
            {g: dict(o) for g, o in metadata.offsets.items()},
            metadata.start_ms,
            self._now_ms(),
        )

    async def _persist(self, metadata: TxnMetadata) -> int:
        """Store the new state, then make it the current one (not if storing failed)."""
        try:
            await asyncio.to_thread(self._store.write, metadata)
        except (OSError, StreamsRuntimeError) as exc:
            logger.warning(
                "could not persist transaction state transactional_id=%s error=%r",
                metadata.transactional_id,
                exc,
            )
            return ErrorCode.COORDINATOR_NOT_AVAILABLE
        old = self._txns.get(metadata.transactional_id)
        if old is not None and old.producer_id != metadata.producer_id:
            self._by_producer.pop(old.producer_id, None)
        self._txns[metadata.transactional_id] = metadata
        self._by_producer[metadata.producer_id] = metadata
        return ErrorCode.NONE

    async def _fence_and_abort(self, metadata: TxnMetadata) -> None:
        """Abort an Ongoing transaction with the epoch bumped (fencing its producer)."""
        fenced = self._copy(metadata)
        fenced.producer_epoch += 1
        fenced.state = TxnState.PREPARE_ABORT
        if await self._persist(fenced) == ErrorCode.NONE:
            await self._complete(fenced)

    async def _complete(self, prepared: TxnMetadata) -> int:
        """Write the markers of a Prepare* transaction, apply its offsets on commit,
        and record it Complete*. Idempotent: a restart may do it twice."""
        commit = prepared.state is TxnState.PREPARE_COMMIT
        try:
            await asyncio.to_thread(self._write_markers, prepared, commit)
        except (OSError, StreamsRuntimeError) as exc:
            logger.warning(
                "could not write transaction markers transactional_id=%s error=%r",
                prepared.transactional_id,
                exc,
            )
            return ErrorCode.COORDINATOR_NOT_AVAILABLE  # stays Prepare*: retried on restart
        for tp in prepared.partitions:
            self._notify_append(tp)
        done = self._copy(prepared)
        done.state = TxnState.COMPLETE_COMMIT if commit else TxnState.COMPLETE_ABORT
        done.partitions, done.groups, done.offsets = set(), set(), {}
        return await self._persist(done)

    def _write_markers(self, prepared: TxnMetadata, commit: bool) -> None:
        pid, epoch = prepared.producer_id, prepared.producer_epoch
        for tp in sorted(prepared.partitions):
            try:
                self._log.append_marker(tp, pid, epoch, commit=commit)
            except UnknownTopicError:
                logger.info("no marker for a deleted partition topic=%s partition=%d", *tp)
        if commit:
            for group, offsets in prepared.offsets.items():
                self._offsets.commit(group, offsets)

    def _partition_exists(self, tp: TopicPartition) -> bool:
        info = self._log.topics().get(tp.topic)
        return info is not None and 0 <= tp.partition < info.partitions

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)
