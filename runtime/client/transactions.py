"""Transactions: a producer whose records, and consumed offsets, commit or abort together.

    producer = TransactionalProducer(cluster, "billing-0", transaction_timeout_ms=60_000)
    await producer.init_transactions()          # fences older instances of "billing-0"
    await producer.begin_transaction()
    await producer.send("out", b"value")
    await producer.send_offsets_to_transaction({tp: next_offset}, member.group_metadata())
    await producer.commit_transaction()         # or abort_transaction()

or `async with producer.transaction(): ...`, which commits, or aborts on an error.

States (a call its state does not allow raises TransactionStateError and changes nothing):

    UNINITIALIZED --init_transactions--> READY --begin_transaction--> IN_TRANSACTION
    IN_TRANSACTION --commit_transaction--> COMMITTING --EndTxn(commit)--> READY
    IN_TRANSACTION, ABORTABLE --abort_transaction--> ABORTING --EndTxn(abort)--> READY
    IN_TRANSACTION, COMMITTING --a send or an offset commit failed--> ABORTABLE
    any --fenced, INVALID_TXN_STATE, an error nothing mends--> FATAL
    any --close--> CLOSED (an open transaction is aborted first)

Invariants:
- a batch is sent only once AddPartitionsToTxn has put its partition in the open
  transaction, only in IN_TRANSACTION or COMMITTING, and carries the transactional
  attribute, the producer id and epoch and its sequence numbers;
- EndTxn(commit) goes out only once every batch of the transaction is
  acknowledged; after any failure the transaction can only be aborted, so it is
  never committed in part;
- abort fails the records not yet sent (TransactionAbortedError) and waits for
  the batches in flight before EndTxn(abort): none lands after the marker, where
  it could join the next transaction;
- a batch that failed after it was sent (its fate unknown), or a coordinator
  request that got no answer, makes abort bump the epoch (InitProducerId with the
  current id and epoch, KIP-360): the next transaction numbers sequences from 0,
  whatever the coordinator holds open is aborted, and a producer fenced meanwhile
  learns it;
- a commit or abort that timed out (KafkaTimeoutError) stays COMMITTING /
  ABORTING, and calling it again retries it: the coordinator answers the repeat
  of an EndTxn it completed with success;
- FATAL is final: every later call raises TransactionFatalError (ProducerFencedError
  once fenced), its cause the error that made it so.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
from collections.abc import AsyncIterator, Mapping
from typing import Any

from runtime.client.cluster import Cluster
from runtime.client.errors import (
    KafkaClientError,
    KafkaError,
    KafkaTimeoutError,
    ProducerFencedError,
    TransactionAbortableError,
    TransactionAbortedError,
    TransactionError,
    TransactionFatalError,
    TransactionStateError,
)
from runtime.client.group import ConsumerGroupMetadata
from runtime.client.producer import Producer, _Batch
from runtime.client.txn_requests import TxnRequests, produce_error
from runtime.log.records import TRANSACTIONAL
from runtime.types import TopicPartition

logger = logging.getLogger(__name__)


class TransactionState(enum.Enum):
    UNINITIALIZED = "uninitialized"
    READY = "ready"
    IN_TRANSACTION = "in transaction"
    COMMITTING = "committing"
    ABORTING = "aborting"
    ABORTABLE = "abortable"
    FATAL = "fatal"
    CLOSED = "closed"


_SENDING = (TransactionState.IN_TRANSACTION, TransactionState.COMMITTING)
_ABORTABLE_FROM = (
    TransactionState.IN_TRANSACTION,
    TransactionState.ABORTABLE,
    TransactionState.ABORTING,
)
_HINTS = {
    TransactionState.UNINITIALIZED: "call init_transactions() first",
    TransactionState.READY: "no transaction is open: call begin_transaction() first",
    TransactionState.IN_TRANSACTION: "a transaction is open: commit or abort it first",
    TransactionState.COMMITTING: "a commit is under way, or timed out: commit again",
    TransactionState.ABORTING: "an abort is under way, or timed out: abort again",
    TransactionState.CLOSED: "the producer is closed",
}


class TransactionalProducer(Producer):
    """An idempotent Producer whose sends belong to transactions; see the module docstring."""

    _batch_attributes = TRANSACTIONAL

    def __init__(
        self,
        cluster: Cluster,
        transactional_id: str,
        *,
        transaction_timeout_ms: int = 60_000,
        max_block_ms: int = 60_000,
        **kwargs: Any,
    ) -> None:
        if not transactional_id:
            raise ValueError("a transactional producer needs a non-empty transactional_id")
        if not kwargs.get("idempotent", True) or kwargs.get("acks", -1) != -1:
            raise ValueError("a transactional producer is idempotent, with acks=-1 (all)")
        if transaction_timeout_ms <= 0 or max_block_ms <= 0:
            raise ValueError("transaction_timeout_ms and max_block_ms must be > 0")
        super().__init__(cluster, **kwargs)
        self._transactional_id = transactional_id
        self._max_block_s = max_block_ms / 1000
        self._requests = TxnRequests(
            cluster,
            transactional_id,
            transaction_timeout_ms=transaction_timeout_ms,
            max_block_s=self._max_block_s,
            backoff_s=self._backoff_s,
            backoff_max_s=self._backoff_max_s,
        )
        self._state = TransactionState.UNINITIALIZED
        self._error: BaseException | None = None  # what made the state ABORTABLE or FATAL
        self._in_txn: set[TopicPartition] = set()  # partitions the coordinator has added
        self._groups: set[str] = set()  # groups whose offsets the coordinator has added
        self._started = False  # the coordinator acknowledged an add: EndTxn is due
        self._bump_epoch = False
        self._adding: dict[TopicPartition, asyncio.Future[None]] = {}
        self._adder: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()  # one of init, send_offsets, commit, abort at a time

    @property
    def transactional_id(self) -> str:
        return self._transactional_id

    @property
    def state(self) -> TransactionState:
        return self._state

    # --- the transaction API ---------------------------------------------------------

    async def init_transactions(self) -> None:
        """Take the transactional id: a new epoch, which fences older instances and
        makes the coordinator finish (abort) what they left open."""
        async with self._lock:
            if self._state in (TransactionState.READY, *_SENDING, *_ABORTABLE_FROM):
                raise TransactionStateError("init_transactions() was called before")
            self._require("init_transactions()", TransactionState.UNINITIALIZED)
            self._producer = await self._fatal_on_error(self._requests.init_producer_id())
            self._state = TransactionState.READY
            logger.info(
                "transactional producer ready transactional_id=%s producer_id=%d epoch=%d",
                self._transactional_id,
                *self._producer,
            )

    async def begin_transaction(self) -> None:
        """Open a transaction (the coordinator hears of it with its first send)."""
        self._require("begin_transaction()", TransactionState.READY)
        self._state = TransactionState.IN_TRANSACTION

    async def send_offsets_to_transaction(
        self,
        offsets: Mapping[TopicPartition, int],
        group: ConsumerGroupMetadata | str,
    ) -> None:
        """Commit consumed `offsets` (the next offset to read, per partition) of a
        consumer group with the transaction. With a member's group_metadata() the
        commit fails (TransactionAbortableError, code ILLEGAL_GENERATION or
        UNKNOWN_MEMBER_ID) once a rebalance has replaced that member."""
        if not isinstance(group, ConsumerGroupMetadata):
            group = ConsumerGroupMetadata(group)
        async with self._lock:
            self._require("send_offsets_to_transaction()", TransactionState.IN_TRANSACTION)
            if not offsets:
                return
            producer = self._current()
            try:
                if group.group_id not in self._groups:
                    await self._requests.add_offsets(producer, group.group_id)
                    self._groups.add(group.group_id)
                    self._started = True
                await self._requests.txn_offset_commit(producer, offsets, group)
            except KafkaTimeoutError as exc:
                self._bump_epoch = True  # whether the coordinator took it is unknown
                error = TransactionAbortableError(f"sending offsets to the transaction: {exc}")
                self._note_failure(error)
                raise error from exc
            except TransactionError as exc:
                self._note_failure(exc)
                raise

    async def commit_transaction(self) -> None:
        """Send every buffered record, then commit. TransactionAbortableError if any
        record of the transaction failed: abort it then. KafkaTimeoutError if the
        coordinator did not answer in max_block_ms: call commit_transaction() again."""
        async with self._lock:
            if self._state is TransactionState.IN_TRANSACTION:
                self._state = TransactionState.COMMITTING
            else:
                self._require("commit_transaction()", TransactionState.COMMITTING)
            await self.flush()  # a retry too: a cancelled commit may have left batches
            self._require("commit_transaction()", TransactionState.COMMITTING)
            if self._started:
                await self._fatal_on_error(self._requests.end_txn(self._current(), commit=True))
            self._end_transaction()

    async def abort_transaction(self) -> None:
        """Drop the records not yet sent, wait for those in flight, then abort.
        KafkaTimeoutError if the coordinator did not answer in max_block_ms: call
        abort_transaction() again."""
        async with self._lock:
            self._require("abort_transaction()", *_ABORTABLE_FROM)
            self._state = TransactionState.ABORTING
            self._fail_unsent(TransactionAbortedError("the transaction was aborted"))
            await self.flush()
            self._require("abort_transaction()", TransactionState.ABORTING)  # fenced meanwhile?
            if self._started:
                await self._fatal_on_error(self._requests.end_txn(self._current(), commit=False))
                self._started = False
            if self._bump_epoch:
                bump = self._requests.init_producer_id(self._current())
                self._producer = await self._fatal_on_error(bump)
                self._bump_epoch = False
                logger.info(
                    "epoch bumped after a failed send transactional_id=%s producer_id=%d epoch=%d",
                    self._transactional_id,
                    *self._producer,
                )
            self._end_transaction()

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[TransactionalProducer]:
        """begin_transaction(); commit when the block ends; abort if it raises, or if
        the commit fails with TransactionAbortableError (which is raised then)."""
        await self.begin_transaction()
        try:
            yield self
        except BaseException:
            if self._state in _ABORTABLE_FROM:
                await self.abort_transaction()
            raise
        try:
            await self.commit_transaction()
        except TransactionAbortableError:
            await self.abort_transaction()
            raise

    async def close(self) -> None:
        """Abort an open transaction (best effort, for up to max_block_ms), then close."""
        if self._state in _ABORTABLE_FROM:
            try:
                async with asyncio.timeout(self._max_block_s):
                    await self.abort_transaction()
            except (KafkaClientError, TimeoutError) as exc:
                logger.warning(
                    "abort at close failed transactional_id=%s error=%s: the coordinator "
                    "aborts the transaction when its timeout passes",
                    self._transactional_id,
                    exc,
                )
        if self._state is not TransactionState.CLOSED:
            self._fail_unsent(TransactionAbortedError("the producer closed"))
        self._state = TransactionState.CLOSED
        try:
            await super().close()
        finally:
            if self._adder is not None:
                self._adder.cancel()
                await asyncio.wait([self._adder])

    # --- state -------------------------------------------------------------------

    def _require(self, what: str, *allowed: TransactionState) -> None:
        if self._state not in allowed:
            raise self._state_error(what) from self._error

    def _state_error(self, what: str) -> TransactionError:
        cause = self._error
        code = getattr(cause, "code", None)
        if self._state is TransactionState.FATAL:
            kind = ProducerFencedError if isinstance(cause, ProducerFencedError) else None
            return (kind or TransactionFatalError)(
                f"{what}: the producer is unusable after: {cause}", code=code
            )
        if self._state is TransactionState.ABORTABLE:
            return TransactionAbortableError(
                f"{what}: the transaction must be aborted after: {cause}", code=code
            )
        return TransactionStateError(f"{what} in state {self._state.value}: {_HINTS[self._state]}")

    def _note_failure(self, exc: BaseException) -> None:
        """A send or coordinator request of the transaction failed with `exc`."""
        if isinstance(exc, TransactionAbortedError) or self._state is TransactionState.FATAL:
            return
        if isinstance(exc, TransactionFatalError | TransactionStateError):
            self._state, self._error = TransactionState.FATAL, exc
            logger.error("transactional_id=%s unusable: %s", self._transactional_id, exc)
        elif self._state in _SENDING:
            self._state, self._error = TransactionState.ABORTABLE, exc
            logger.warning("transactional_id=%s must abort: %s", self._transactional_id, exc)

    async def _fatal_on_error(self, request: Any) -> Any:
        """Await a coordinator request; its fatal errors make the producer FATAL
        (a timeout leaves the state as it is, for the caller to retry)."""
        try:
            return await request
        except (TransactionFatalError, TransactionStateError) as exc:
            self._note_failure(exc)
            raise

    def _current(self) -> tuple[int, int]:
        assert self._producer is not None, "a transaction without init_transactions()"
        return self._producer

    def _end_transaction(self) -> None:
        self._in_txn.clear()
        self._groups.clear()
        self._started = False
        self._error = None
        self._state = TransactionState.READY

    # --- adding partitions: one AddPartitionsToTxn for all that wait -------------

    async def _add_partition(self, tp: TopicPartition) -> None:
        future = self._adding.get(tp)
        if future is None:
            future = self._adding[tp] = asyncio.get_running_loop().create_future()
            if self._adder is None or self._adder.done():
                self._adder = asyncio.create_task(self._add_waiting(), name="txn-add-partitions")
        await asyncio.shield(future)  # other batches wait on the same future

    async def _add_waiting(self) -> None:
        while self._adding:
            adding, self._adding = self._adding, {}
            try:
                await self._requests.add_partitions(self._current(), adding)
            except Exception as exc:
                if isinstance(exc, KafkaTimeoutError):
                    self._bump_epoch = True  # whether the coordinator added them is unknown
                for future in adding.values():
                    future.set_exception(exc)
                    future.exception()  # each waiting batch raises it; none may be left
                continue
            except asyncio.CancelledError:
                for future in adding.values():
                    future.cancel()  # by close(): its waiting batches are cancelled too
                raise
            self._in_txn.update(adding)
            self._started = True
            for future in adding.values():
                future.set_result(None)

    # --- the Producer's hooks ----------------------------------------------------

    def _check_send(self) -> None:
        self._require("send()", TransactionState.IN_TRANSACTION)

    async def _before_first_send(self, tp: TopicPartition) -> None:
        if self._state is TransactionState.ABORTING:
            raise TransactionAbortedError("the transaction was aborted before this batch was sent")
        self._require("sending a batch", *_SENDING)
        if tp not in self._in_txn:
            if self._cluster.partitions(tp.topic) is None:
                # metadata first, as Kafka's send() does: that creates a topic the
                # broker auto-creates, which AddPartitionsToTxn never would
                await self._topic_partitions(tp.topic)
            await self._add_partition(tp)
            self._require("sending a batch", *_SENDING)

    def _check_refusal(self, batch: _Batch, exc: KafkaError) -> None:
        error = produce_error(self._transactional_id, exc)
        if error is not None:
            self._after_failure(batch)
            raise error from exc

    def _batch_failed(self, exc: Exception) -> None:
        self._note_failure(exc)

    def _abandon_producer(self, producer: tuple[int, int] | None) -> None:
        self._bump_epoch = True  # the next transaction's epoch starts sequences afresh

    async def _producer_id(self) -> tuple[int, int]:
        if self._producer is None:
            raise self._state_error("sending")
        return self._producer
