"""Commits under `processing_guarantee="exactly_once"` (EOS v2, as Kafka Streams').

One transactional writer per worker, its id `<app id>-<worker name>`: the name
is the worker's own (`App(worker_name=)`, `--worker-name`), else one drawn once
and kept in `<data_dir>/worker/id`, so a worker restarted on its data directory
takes the same transactional id, fences the instance it replaces and aborts what
that one left open at once (not when its transaction times out).

Each commit is one transaction: the agents are paused between events; the
table changelogs and the records the producer buffered (sinks, repartition
topics, sends) are written through the transaction, then the consumed offsets,
with the group member's generation, and the commit. Only then do the stores
take the table writes (with their changelog offsets), so a store never holds a
write of a transaction that may still abort.

- TransactionAbortableError (a send refused, or the offsets of a member a
  rebalance replaced): abort, drop what the producer buffered and what the
  tables hold unflushed or pending, rewind the fetchers to the last committed
  offsets; the events are processed again, into the next transaction.
- ProducerFencedError (a newer worker with this transactional id, or a
  transaction open past TRANSACTION_TIMEOUT_MS, as when an agent spends that
  long on one event: the commit waits for it): the error stops the worker,
  which commits nothing more (see Worker._commit).

Between two commits, records the producer appends land in the open
transaction; a read_committed reader sees them when it commits.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path

from runtime.client.errors import (
    ProducerFencedError,
    TransactionAbortableError,
    TransactionAbortedError,
)
from runtime.client.group import ConsumerGroupMetadata
from runtime.producer import Producer
from runtime.transport import Transport
from runtime.txn_writer import TransactionalWriter
from runtime.types import TopicPartition
from streams.channel import Channel
from streams.conductor import Conductor
from streams.table import Table

logger = logging.getLogger(__name__)

GUARANTEES = ("at_least_once", "exactly_once")
COMMIT_INTERVAL_S = {"at_least_once": 1.0, "exactly_once": 0.1}  # Kafka Streams' defaults
IDLE_WARNING_S = 10.0
FLUSH_BYTES_MAX = 1 << 20


def worker_directory(data_dir: str | Path) -> Path:
    """Where a worker keeps its identity (locked while it runs)."""
    return Path(data_dir) / "worker"


def worker_name(data_dir: str | Path | None, name: str | None = None) -> str:
    """`name`, else the name kept in the data directory (drawn on first use;
    without a data directory, drawn for this process only)."""
    if name:
        return name
    if data_dir is None:
        return uuid.uuid4().hex[:12]
    path = worker_directory(data_dir) / "id"
    try:
        kept = path.read_text().strip()
    except FileNotFoundError:
        kept = ""
    if kept:
        return kept
    kept = uuid.uuid4().hex[:12]
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name("id.tmp")
    temporary.write_text(kept + "\n")
    temporary.replace(path)
    return kept


class TransactionalCommits:
    """The commits of one worker under exactly_once (see the module docstring)."""

    def __init__(
        self,
        writer: TransactionalWriter,
        transport: Transport,
        conductor: Conductor,
        producer: Producer,
        tables: Callable[[], Iterable[Table]],
        group: Callable[[], ConsumerGroupMetadata],
    ) -> None:
        self.writer = writer
        self._transport = transport
        self._conductor = conductor
        self._producer = producer
        self._tables = tables
        self._group = group
        self.aborts = 0

    async def commit(self) -> dict[TopicPartition, int]:
        channels: list[Channel] = []
        try:
            # A channel subscribed while we wait (a derived stream starting) is
            # paused too before the cut.
            while len(channels) < len(self._conductor.channels()):
                new = [c for c in self._conductor.channels() if c not in channels]
                for channel in new:
                    channel.pause()
                channels += new
                await _wait_idle(channels)
            offsets = self._conductor.changed_offsets()
            try:
                await self._write(offsets)
            except TransactionAbortableError as exc:
                logger.warning(
                    "transaction aborted transactional_id=%s error=%s: processing again "
                    "from the last commit",
                    self.writer.transactional_id,
                    exc,
                )
                await self.abort()
                return {}
            except ProducerFencedError as exc:
                logger.error(
                    "fenced transactional_id=%s: a newer worker took this transactional id, "
                    "or a transaction outlived its timeout (an agent stuck on one event?); "
                    "stopping without committing (%s)",
                    self.writer.transactional_id,
                    exc,
                )
                raise
            for table in self._tables():
                table.apply_pending()
            self._conductor.mark_committed(offsets)
            return offsets
        finally:
            for channel in channels:
                channel.resume()

    async def _write(self, offsets: dict[TopicPartition, int]) -> None:
        # First: a member the group dropped aborts at once (no offsets: nothing
        # was processed, and there is no member before the first assignment).
        group = self._group() if offsets else None
        append, flushes = self.writer.append, []
        for table in self._tables():
            if table.windowed is not None:
                table.windowed.expire()
            for part in table.partitions.values():
                flushes.append(part.flush(self._transport, FLUSH_BYTES_MAX, append))
        # All partitions at once: the commit pauses processing, and each append
        # waits for its acknowledgement.
        await asyncio.gather(*flushes, self._producer.flush())
        await self.writer.commit(offsets, group)

    async def abort(self) -> None:
        """Abort the open transaction and go back to the last commit (the
        channels are paused and idle)."""
        self.aborts += 1
        await self._producer.abandon(TransactionAbortedError("the transaction was aborted"))
        await self.writer.abort()
        for table in self._tables():
            table.discard_uncommitted()
        await self._conductor.rewind()


async def _wait_idle(channels: list[Channel]) -> None:
    """Until every reader is between events: an event half processed would
    leave half its writes in this transaction and its offset out of it."""
    busy = [asyncio.ensure_future(c.wait_idle()) for c in channels if c.in_hand]
    if not busy:
        return
    try:
        _, pending = await asyncio.wait(busy, timeout=IDLE_WARNING_S)
        if pending:
            logger.warning(
                "a commit waits for %d agent(s) to finish the event in hand (over %.0fs)",
                len(pending),
                IDLE_WARNING_S,
            )
            await asyncio.wait(pending)
    finally:
        for waiter in busy:
            waiter.cancel()
