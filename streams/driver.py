"""A deterministic test driver for a whole app, like Kafka Streams' TopologyTestDriver.

    async with TestDriver(app, start_time=1_700_000_000) as driver:
        await driver.send(rides, Ride(zone="a", rider="r1"), key="a", timestamp=10.0)
        assert driver.read(prices) == [OutputRecord("a", {...}, 10.0, 0, 0)]
        assert demand[("a", 0.0)] == 1                 # tables read directly
        await driver.advance_time(60)                  # fires timers and crontabs
        await driver.advance_stream_time(by=30)        # closes windows, emits finals
        await driver.crash()                           # lose what was not committed,
                                                       # recover from the changelogs

Every agent of the app runs, as in a worker, on `memory://` with memory stores:
sinks, `group_by`, joins and windowed tables behave as in production. `send`
returns once the record and everything it caused downstream (sinks, repartition
topics, other agents) has been processed, so an assertion right after it holds;
nothing sleeps for real time.

Time is the driver's: records take `driver.now` unless given a timestamp, and
`@app.timer` / `@app.crontab` functions run only from `advance_time`, in order of
their due times. Stream time (what closes windows and sessions) moves with the
records' timestamps, per partition, or by hand with `advance_stream_time`.
Offsets are committed only by `commit()` (and when the driver closes), so what
`crash()` loses is what the test says. Under `processing_guarantee="exactly_once"`
the worker commits transactions: what agents send is seen by other agents and by
`read()` once `commit()` commits it.
"""

from __future__ import annotations

import asyncio
import heapq
import inspect
import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from croniter import croniter

from runtime.embedded_txn import read_committed
from runtime.log.records import Header, decode_batch_rows, encode_batch, iter_batches
from runtime.transport import EmbeddedTransport
from runtime.types import TopicPartition
from streams.testing import _quiet

if TYPE_CHECKING:
    from streams.app import App
    from streams.topic import RecordMetadata, Topic
    from streams.worker import Worker

__all__ = ["DriverError", "OutputRecord", "TestDriver"]

SETTLE_TIMEOUT_S = 10.0
# Commits happen when the test asks; this keeps the worker's own loop out of the way.
NEVER_S = 10.0 * 365 * 86400


class DriverError(RuntimeError):
    """The app under test failed (an agent, a timer) or never settled."""


@dataclass(frozen=True, slots=True)
class OutputRecord:
    key: Any
    value: Any
    timestamp: float
    partition: int
    offset: int
    headers: tuple[Header, ...] = ()


class _KeepOpen:
    """The memory transport, outliving the workers that use it: a crash loses a
    worker's state, not the log."""

    def __init__(self, transport: EmbeddedTransport) -> None:
        self._transport = transport

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)

    async def start(self) -> None:
        await self._transport.start()

    async def stop(self) -> None:
        pass


class _Schedule:
    """Timers and crontabs on the driver's clock: (due, order, kind, fn)."""

    def __init__(self, app: App, now: float) -> None:
        self._heap: list[tuple[float, int, Callable[[float], float], Callable[..., Any]]] = []
        self._order = itertools.count()
        for interval_s, fn in app.timers:
            self._push(now + interval_s, lambda due, i=interval_s: due + i, fn)
        for expr, fn in app.crontabs:
            cron = croniter(expr, now)
            self._push(cron.get_next(float), lambda _due, c=cron: c.get_next(float), fn)

    def _push(self, due: float, after: Callable[[float], float], fn: Callable[..., Any]) -> None:
        heapq.heappush(self._heap, (due, next(self._order), after, fn))

    def pop_due(self, until: float) -> tuple[float, Callable[..., Any]] | None:
        if not self._heap or self._heap[0][0] > until:
            return None
        due, _, after, fn = heapq.heappop(self._heap)
        self._push(after(due), after, fn)
        return due, fn


class TestDriver:
    __test__ = False  # not a pytest test class

    def __init__(self, app: App, *, start_time: float = 0.0) -> None:
        self.app = app
        self.now = float(start_time)
        # Under exactly_once, the app reads (and the driver reads back) only
        # committed transactions, as a read_committed consumer would.
        self._exactly_once = app.processing_guarantee == "exactly_once"
        isolation = "read_committed" if self._exactly_once else "read_uncommitted"
        self._transport = _KeepOpen(EmbeddedTransport("memory://", None, isolation_level=isolation))
        self._skips: dict[TopicPartition, tuple[int, int]] = {}
        self._worker: Worker | None = None
        self._read_positions: dict[TopicPartition, int] = {}
        self._saved: tuple[Any, ...] = ()
        self._schedule: _Schedule | None = None

    # --- lifecycle -------------------------------------------------------------

    async def __aenter__(self) -> TestDriver:
        app = self.app
        self._saved = (app.timers, app.crontabs, app.commit_interval_s, app.worker_name)
        self._schedule = _Schedule(app, self.now)
        app.timers, app.crontabs, app.commit_interval_s = [], [], NEVER_S
        # One transactional id across crashes: the worker after a crash fences the
        # one before and aborts what it left open, as on a data directory.
        app.worker_name = app.worker_name or "test-driver"
        try:
            await self._start_worker()
        except BaseException:
            self._restore()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        try:
            if self._worker is not None:
                await self._worker.stop()
        finally:
            self._worker = None
            self._restore()
            await self._transport._transport.stop()

    def _restore(self) -> None:
        if self._saved:
            app = self.app
            app.timers, app.crontabs, app.commit_interval_s, app.worker_name = self._saved
            self._saved = ()

    async def _start_worker(self) -> None:
        from streams.worker import Worker

        worker = Worker(self.app, transport=self._transport)  # type: ignore[arg-type]
        await worker.start()
        self._worker = worker
        await self.settle()  # startup tasks, and events replayed after a crash

    @property
    def worker(self) -> Worker:
        if self._worker is None:
            raise DriverError("the driver is not running: use `async with TestDriver(app)`")
        return self._worker

    # --- input ---------------------------------------------------------------------

    async def send(
        self,
        topic: Topic | str,
        value: Any = None,
        *,
        key: Any = None,
        timestamp: float | None = None,
        partition: int | None = None,
        headers: Sequence[Header] | Mapping[str, bytes] | None = None,
    ) -> RecordMetadata:
        """Append a record (timestamp: the driver's clock unless given) and process it
        and everything it leads to."""
        target = self._topic(topic)
        ts = self.now if timestamp is None else timestamp
        if self._exactly_once:  # from outside the app, not in the worker's transaction
            metadata = await self._append(target, key, value, partition, ts, headers)
        else:
            metadata = await target.send_and_wait(
                key, value, partition=partition, timestamp=ts, headers=headers
            )
        await self.settle()
        return metadata

    async def _append(
        self,
        topic: Topic,
        key: Any,
        value: Any,
        partition: int | None,
        timestamp: float,
        headers: Sequence[Header] | Mapping[str, bytes] | None,
    ) -> RecordMetadata:
        from streams.topic import RecordMetadata

        key_bytes, value_bytes = topic.encode_key(key), topic.encode_value(value)
        if partition is None:
            partition = topic.partition_for(key_bytes)
        elif not 0 <= partition < topic.partitions:
            raise ValueError(f"topic {topic.name!r} has no partition {partition}")
        hdrs = tuple(headers.items()) if isinstance(headers, Mapping) else tuple(headers or ())
        ts_ms = int(timestamp * 1000)
        tp = TopicPartition(topic.name, partition)
        record = (key_bytes, value_bytes, ts_ms, hdrs)
        offset = await self._transport.append(tp, encode_batch([record]))
        return RecordMetadata(topic.name, partition, offset, ts_ms)

    async def advance_time(self, seconds: float) -> None:
        """Move the clock on, running each timer and crontab due meanwhile, in order."""
        if not seconds >= 0:
            raise ValueError(f"advance_time: seconds must be >= 0, got {seconds!r}")
        assert self._schedule is not None
        until = self.now + seconds
        while (due := self._schedule.pop_due(until)) is not None:
            self.now, fn = due
            result = fn(self.app) if _takes_argument(fn) else fn()
            if inspect.isawaitable(result):
                await result
            await self.settle()
        self.now = until

    async def advance_stream_time(
        self, *, to: float | None = None, by: float | None = None, partition: int | None = None
    ) -> None:
        """Move the stream time of the windowed tables on, as a record with a later
        timestamp would but without one: windows and sessions it closes emit their
        final results (and the app processes them) before this returns.

        `to` is a stream time, `by` seconds past the partition's present stream
        time; `partition` is one partition of the tables (default: every one held).
        Stream time never goes back: a `to` behind it changes nothing."""
        if (to is None) == (by is None):
            raise ValueError("advance_stream_time: pass exactly one of to= or by=")
        if by is not None and not by >= 0:
            raise ValueError(f"advance_stream_time: by must be >= 0, got {by!r}")
        windowed = [t.windowed for t in self.app.tables.values() if t.windowed is not None]
        if not windowed:
            raise DriverError("advance_stream_time: the app has no windowed table")
        for table in windowed:
            held = sorted(table.table.partitions)
            if partition is not None and partition not in range(table.table.partition_count):
                raise ValueError(
                    f"advance_stream_time: table {table.name!r} has no partition {partition}"
                )
            for p in held if partition is None else [p for p in held if p == partition]:
                if to is not None:
                    table.advance_stream_time(p, to)
                    continue
                present = table.partition_stream_time(p)
                if present is not None:  # no event yet: nothing to measure `by` from
                    table.advance_stream_time(p, present + float(by))  # type: ignore[arg-type]
        await self.settle()

    async def commit(self) -> None:
        """Flush the changelogs and sinks and commit what was processed (under
        exactly_once, what the transaction sent then reaches the agents reading it,
        processed before this returns)."""
        await self.worker.commit()
        await self.settle()

    async def crash(self) -> None:
        """Stop the worker as a crash would (no flush of table writes, no commit), then
        start a new one: tables recover from their changelogs, agents resume from
        the committed offsets and process again what came after."""
        worker = self.worker
        for table in self.app.tables.values():
            if table.windowed is not None:  # what windows know lives in memory: lost too
                for p in list(table.partitions):
                    table.windowed.on_released(p)
        worker._commit_error = _Crashed("the test driver simulated a crash")
        await worker.stop()
        self._worker = None
        await self._start_worker()

    # --- output -----------------------------------------------------------------------

    def read(self, topic: Topic | str) -> list[OutputRecord]:
        """The records appended to `topic` since the last read, partition by partition
        (under exactly_once, those of committed transactions)."""
        target = self._topic(topic)
        log = self._transport._transport.log
        out: list[OutputRecord] = []
        for p in range(target.partitions):
            tp = TopicPartition(target.name, p)
            position = self._read_positions.get(tp, 0)
            while True:
                if self._exactly_once:
                    data = read_committed(log, tp, position, 1 << 20, self._skips)
                else:
                    data = log.read(tp, position, 1 << 20)
                rows = [
                    row
                    for pos, header in iter_batches(data)
                    for row in decode_batch_rows(data, pos, header)
                    if row[0] >= position
                ]
                if not rows:
                    break
                for event in target.decode(rows, p):
                    msg = event.message
                    out.append(
                        OutputRecord(
                            event.key, event.value, msg.timestamp, p, msg.offset, msg.headers
                        )
                    )
                position = rows[-1][0] + 1
            self._read_positions[tp] = position
        return out

    def read_values(self, topic: Topic | str) -> list[Any]:
        return [record.value for record in self.read(topic)]

    # --- settling ------------------------------------------------------------------------

    async def settle(self) -> None:
        """Wait until every record appended so far has been processed; raise what the
        app raised."""
        worker = self.worker
        failure = worker._failure
        try:
            async with asyncio.timeout(SETTLE_TIMEOUT_S):
                while True:
                    if failure is not None and failure.done():
                        raise DriverError(f"the app failed: {failure.result()!r}") from (
                            failure.result()
                        )
                    producer = worker.producer
                    assert producer is not None
                    await producer.flush()
                    quiet = _quiet_committed if self._exactly_once else _quiet
                    if await quiet(worker):
                        # Agents run while a flush waits, and may have buffered
                        # more: settled once a flush after the quiet appends nothing.
                        appended = sum(producer.records_out.values())
                        await producer.flush()
                        if sum(producer.records_out.values()) == appended:
                            return
                    await asyncio.sleep(0)
        except TimeoutError:
            raise DriverError(
                f"the app did not settle within {SETTLE_TIMEOUT_S}s (an agent waiting on "
                "real time, such as take(within=)?)"
            ) from None

    def _topic(self, topic: Topic | str) -> Topic:
        if isinstance(topic, str):
            found = self.app.topics.get(topic)
            if found is None:
                raise KeyError(f"no topic {topic!r} in app {self.app.id!r}: pass the Topic")
            return found
        return topic


async def _quiet_committed(worker: Worker) -> bool:
    """_quiet for a read_committed reader: a transaction's marker (and what an
    aborted one wrote) sits below the end offset, but a fetch there returns nothing."""
    conductor = worker.conductor
    assert conductor is not None
    for tp, position in conductor.positions.items():
        _, end = await worker.transport.offsets(tp)
        if position < end and await worker.transport.fetch(tp, position, max_wait_s=0):
            return False
    return all(channel.drained.is_set() for channel in conductor.channels())


class _Crashed(RuntimeError):
    pass


def _takes_argument(fn: Callable[..., Any]) -> bool:
    try:
        return len(inspect.signature(fn).parameters) > 0
    except (TypeError, ValueError):
        return False
