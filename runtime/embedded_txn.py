"""Transactions on the embedded log (`log://`, `memory://`), without a network hop.

The embedded transport owns one TransactionCoordinator, the broker's, over its
Log and OffsetStore: the same states, persisted in `__transaction_state` of the
embedded log, the same markers, and offsets that reach the OffsetStore only
when the transaction commits. `EmbeddedTxnWriter` is a worker's transactional
producer on it: its batches carry the transactional attribute, its producer id
and epoch and per-partition sequence numbers, as a Kafka client's would, so the
log's producer state, last stable offset and aborted-transaction index work
exactly as behind the broker.

`read_committed` is the embedded fetch of a read_committed reader: it stops at
the last stable offset and drops aborted batches and markers (the same filter
our Kafka client applies to a broker's answer).

Invariants:
- a batch is appended only for a partition the coordinator has put in the
  producer's Ongoing transaction (`check_produce`), so none is left without a
  marker;
- sequence numbers start at 0 for each new epoch, and go on across the
  transactions of one epoch.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Mapping, Sequence

from runtime.broker.transactions import TransactionCoordinator
from runtime.client.errors import (
    ProducerFencedError,
    TransactionAbortableError,
    TransactionFatalError,
)
from runtime.client.group import ConsumerGroupMetadata
from runtime.client.isolation import committed_batches
from runtime.client.txn_requests import FENCED_CODES
from runtime.log.manager import Log
from runtime.log.offsets import Commit
from runtime.log.records import TRANSACTIONAL, OutRecord, encode_batch, iter_batches
from runtime.protocol.codes import ErrorCode
from runtime.txn_writer import EndGate
from runtime.types import TopicPartition

_SEQUENCE_MOD = 1 << 31
_READ_ROUNDS_MAX = 64  # fetches past aborted runs before answering "nothing yet"


def _raise_for(code: int, what: str, transactional_id: str) -> None:
    if code == ErrorCode.NONE:
        return
    message = f"{what} transactional_id={transactional_id}"
    if code in FENCED_CODES:
        raise ProducerFencedError(message, code=code)
    if code in (ErrorCode.COORDINATOR_NOT_AVAILABLE, ErrorCode.CONCURRENT_TRANSACTIONS):
        raise TransactionAbortableError(message, code=code)
    raise TransactionFatalError(message, code=code)


class EmbeddedTxnWriter:
    """A TransactionalWriter (runtime.txn_writer) on the log in this process."""

    def __init__(
        self,
        coordinator: Callable[[], Awaitable[TransactionCoordinator]],
        append: Callable[[TopicPartition, bytes | bytearray], int],
        transactional_id: str,
        *,
        transaction_timeout_ms: int,
    ) -> None:
        if not transactional_id:
            raise ValueError("a transactional writer needs a non-empty transactional_id")
        self._get_coordinator = coordinator
        self._coordinator: TransactionCoordinator | None = None
        self._append = append
        self._transactional_id = transactional_id
        self._timeout_ms = transaction_timeout_ms
        self._producer: tuple[int, int] | None = None
        self._sequences: dict[TopicPartition, int] = {}
        self._partitions: set[TopicPartition] = set()  # of the open transaction
        self._groups: set[str] = set()
        self._open = False
        self._gate = EndGate()
        self._lock = asyncio.Lock()  # coordinator calls one at a time

    @property
    def transactional_id(self) -> str:
        return self._transactional_id

    async def start(self) -> None:
        self._coordinator = await self._get_coordinator()
        code, pid, epoch = await self._coordinator.init_producer_id(
            self._transactional_id, self._timeout_ms
        )
        _raise_for(code, "InitProducerId", self._transactional_id)
        self._producer = (pid, epoch)
        self._sequences.clear()

    def _current(self) -> tuple[int, int]:
        if self._producer is None:
            raise TransactionFatalError(f"{self._transactional_id}: start() was not called")
        return self._producer

    @property
    def _txns(self) -> TransactionCoordinator:
        assert self._coordinator is not None, "start() sets the coordinator"
        return self._coordinator

    async def append(self, tp: TopicPartition, records: Sequence[OutRecord]) -> int:
        await self._gate.enter()
        try:
            pid, epoch = self._current()
            if tp not in self._partitions:
                async with self._lock:
                    codes = await self._txns.add_partitions(
                        self._transactional_id, pid, epoch, [tp]
                    )
                _raise_for(codes[tp], f"AddPartitionsToTxn {tp}", self._transactional_id)
                self._partitions.add(tp)
                self._open = True
            _raise_for(
                self._txns.check_produce(pid, epoch, tp),
                f"append to {tp}",
                self._transactional_id,
            )
            sequence = self._sequences.get(tp, 0)
            batch = encode_batch(
                records,
                producer_id=pid,
                producer_epoch=epoch,
                base_sequence=sequence,
                attributes=TRANSACTIONAL,
            )
            base = self._append(tp, batch)
            self._sequences[tp] = (sequence + len(records)) % _SEQUENCE_MOD
            return base
        finally:
            self._gate.leave()

    async def commit(
        self, offsets: Mapping[TopicPartition, int], group: ConsumerGroupMetadata | None
    ) -> None:
        await self._gate.close()
        try:
            pid, epoch = self._current()
            async with self._lock:
                if offsets:
                    if group is None:
                        raise ValueError("offsets are committed for a group: give its metadata")
                    await self._send_offsets(pid, epoch, offsets, group.group_id)
                if self._open:
                    code = await self._txns.end_txn(self._transactional_id, pid, epoch, commit=True)
                    _raise_for(code, "EndTxn(commit)", self._transactional_id)
            self._ended()
        finally:
            self._gate.reopen()

    async def _send_offsets(
        self, pid: int, epoch: int, offsets: Mapping[TopicPartition, int], group_id: str
    ) -> None:
        coordinator, txn_id = self._txns, self._transactional_id
        if group_id not in self._groups:
            code = await coordinator.add_offsets(txn_id, pid, epoch, group_id)
            _raise_for(code, "AddOffsetsToTxn", txn_id)
            self._groups.add(group_id)
            self._open = True
        commits = {tp: Commit(offset, "") for tp, offset in offsets.items()}
        code = await coordinator.txn_offset_commit(txn_id, group_id, pid, epoch, commits)
        _raise_for(code, "TxnOffsetCommit", txn_id)

    async def abort(self) -> None:
        await self._gate.close()
        try:
            if self._open:
                pid, epoch = self._current()
                async with self._lock:
                    code = await self._txns.end_txn(
                        self._transactional_id, pid, epoch, commit=False
                    )
                _raise_for(code, "EndTxn(abort)", self._transactional_id)
            self._ended()
        finally:
            self._gate.reopen()

    def _ended(self) -> None:
        self._partitions.clear()
        self._groups.clear()
        self._open = False

    async def close(self) -> None:
        if self._open and self._producer is not None:
            with contextlib.suppress(TransactionFatalError):  # fenced: the newer one aborted it
                await self.abort()
        self._producer = None


def read_committed(
    log: Log,
    tp: TopicPartition,
    offset: int,
    max_bytes: int,
    skips: dict[TopicPartition, tuple[int, int]],
) -> bytes:
    """What a read_committed reader fetching `tp` at `offset` sees now: whole
    committed batches below the last stable offset (b"" if none yet).

    A run of aborted batches and markers with nothing committed after it below
    the LSO leaves nothing to return; `skips[tp]` remembers where it ends so that
    the next fetch at `offset` starts there (the reader's position stays put)."""
    asked = offset
    skip = skips.pop(tp, None)
    if skip is not None and skip[0] == offset:
        offset = skip[1]
    for _ in range(_READ_ROUNDS_MAX):
        stable = log.last_stable_offset(tp)
        if offset >= stable:
            break
        data = log.read(tp, offset, max_bytes, end_offset=stable)
        if not data:
            break
        aborted = log.aborted_transactions(tp, offset, stable)
        kept, read_to = committed_batches(data, aborted, offset)
        if kept:
            kept_to = max(h.next_offset for _, h in iter_batches(kept))
            if read_to > kept_to:
                skips[tp] = (kept_to, read_to)
            return kept
        if read_to <= offset:
            break
        offset = read_to
    if offset > asked:
        skips[tp] = (asked, offset)
    return b""
