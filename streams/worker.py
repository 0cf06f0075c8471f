"""The worker: runs an app's agents, tables, timers and tasks over a transport.

Lifecycle (`async with Worker(app) as worker: await worker.run_until(stop)`):

1. lock the directories of the tables' stores (one worker each: a second one
   fails here with DataDirLockedError); start the transport and the producer;
   declare topics;
2. recover every table partition from its changelog (progress is logged);
3. subscribe the agents, start fetching, start timers, crontabs and tasks;
4. every `commit_interval_s`: snapshot processed offsets, flush table
   changelogs and the producer, then commit the snapshot (at least once; under
   exactly_once one transaction per commit, see streams/exactly_once.py);
5. on stop: stop fetching, let agents finish the event in hand, cancel timers,
   flush and commit once more, close stores and the transport, release the locks.

An agent, timer or task that raises stops the worker with that error (logged
with the event's coordinates); nothing after the failed event is committed.

A write the log or a store refuses (StorageError naming the topic and
partition, StoreWriteError naming the table and partition: a full disk) stops
the worker too, at once. Once a commit has failed, or an append of the
producer, the worker never commits again: the records that were lost are
those of events after the last commit, which a restart processes again (at
least once).
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runtime.assignor import StreamsAssignor, decode_hosts, decode_numbers
from runtime.client.consumer_protocol import Assignment
from runtime.client.errors import (
    KafkaError,
    TransactionAbortableError,
    TransactionAbortedError,
)
from runtime.client.group import ConsumerGroupMetadata
from runtime.errors import StorageError
from runtime.log.config import FlushPolicy
from runtime.log.lock import DataDirLock, lock_directories
from runtime.producer import Producer
from runtime.recovery import RecoveryResult
from runtime.stats import LatencyStats
from runtime.transport import Transport, open_transport
from runtime.txn_writer import TRANSACTION_TIMEOUT_MS, TransactionalWriter
from runtime.types import TopicPartition
from stores import store_directory
from streams.agent import Agent, AgentError
from streams.channel import Channel
from streams.compression import compression_choice
from streams.conductor import Conductor, declare_topic
from streams.exactly_once import TransactionalCommits, worker_directory, worker_name
from streams.partitioning import common_partitions, copartition_tables, warn_partition_mismatch
from streams.placement import TablePlacement
from streams.scheduling import call, every, on_schedule
from streams.table import Table
from streams.topic_plan import declare_app_topics

if TYPE_CHECKING:
    from streams.app import App
    from streams.web.address import WebAddress
    from streams.web.server import WebServer

logger = logging.getLogger(__name__)

SHUTDOWN_AGENTS_S = 10.0


class Worker:
    def __init__(
        self,
        app: App,
        *,
        transport: Transport | None = None,
        run_agents: bool = True,
        web: WebAddress | None = None,
    ) -> None:
        self.app = app
        self.web_address = web  # None: no web server
        self.web: WebServer | None = None
        self.exactly_once = app.processing_guarantee == "exactly_once"
        self.transport = transport or open_transport(
            app.broker,
            data_dir=Path(app.data_dir) / "log",
            flush=FlushPolicy(app.log_flush, app.log_flush_interval_ms),
            isolation_level="read_committed" if self.exactly_once else "read_uncommitted",
        )
        self.transactions: TransactionalCommits | None = None
        self.run_agents = run_agents
        self.store_url = app.store or (
            "memory://" if self.transport.url.startswith("memory:") else "rocksdb://"
        )
        self.producer: Producer | None = None
        self.conductor: Conductor | None = None
        self.placement = TablePlacement(
            self.transport, self.store_url, Path(app.data_dir), fail=self._fail
        )
        self._tasks: list[asyncio.Task[Any]] = []
        self._agent_tasks: dict[asyncio.Task[None], tuple[Agent, Channel]] = {}
        self._failure: asyncio.Future[BaseException] | None = None
        self._failure_raised = False  # by run_until: stop() does not raise it again
        self._started = False
        self.running = False  # every part started, not stopping yet
        # Group mode (kafka://): partitions come from the group's assignor.
        self.group_mode = run_agents and bool(app.agents) and hasattr(self.transport, "cluster")
        self.member: Any = None
        self.assignor: StreamsAssignor | None = None
        self.assignments = 0
        self._commit_lock = asyncio.Lock()
        self._dir_locks: list[DataDirLock] = []
        self._commit_error: BaseException | None = None  # commits are refused after one
        # What the web server and the metrics topic read (streams/web/).
        self.agent_stats: dict[str, LatencyStats] = {}
        self.commit_latency = LatencyStats()
        self.revocations = 0
        self.partition_hosts: dict[int, str] = {}  # group mode: partition -> owner's web URL

    @property
    def recoveries(self) -> list[RecoveryResult]:
        """What each table partition's recovery replayed, in order (tests, benchmarks)."""
        return self.placement.recoveries

    # --- lifecycle -------------------------------------------------------------

    async def __aenter__(self) -> Worker:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self) -> None:
        app, wiring = self.app, self.app.wiring
        if wiring.transport is not None:
            raise RuntimeError(f"app {app.id!r} is already running")
        self._failure = asyncio.get_running_loop().create_future()
        # Before anything connects: a second worker on these stores stops here,
        # not after it joined the group and replayed changelogs into them.
        self._dir_locks = lock_directories(self._store_directories())
        try:
            await self.transport.start()
            writer = await self._start_writer()
        except BaseException:
            self._release_dir_locks()
            await self.transport.stop()
            raise
        self.producer = Producer(
            self.transport,
            on_error=self._append_failed,
            append=None if writer is None else writer.append,
        )
        self.conductor = Conductor(
            self.transport, app.id, numbers=set() if self.group_mode else None
        )
        if writer is not None:
            self.transactions = TransactionalCommits(
                writer,
                self.transport,
                self.conductor,
                self.producer,
                self.app.tables.values,
                self._group_metadata,
            )
        wiring.transport, wiring.producer, wiring.conductor = (
            self.transport,
            self.producer,
            self.conductor,
        )
        self._started = True
        try:
            await self._start_web()
            await self._start_parts()
        except BaseException:
            await self.stop()
            raise
        self.running = True
        logger.info(
            "worker started app=%s broker=%s agents=%d tables=%d",
            app.id,
            self.transport.url,
            len(app.agents),
            len(app.tables),
        )

    async def _start_writer(self) -> TransactionalWriter | None:
        """Under exactly_once: the worker's transactional writer, started before
        anything is read, so that what a crashed instance left open is aborted."""
        if not self.exactly_once or not self.run_agents:
            return None
        app = self.app
        name = worker_name(None if self._in_memory else app.data_dir, app.worker_name)
        writer = self.transport.transactional_writer(
            f"{app.id}-{name}", transaction_timeout_ms=TRANSACTION_TIMEOUT_MS
        )
        await writer.start()
        logger.info("exactly once app=%s transactional_id=%s", app.id, writer.transactional_id)
        return writer

    def _group_metadata(self) -> ConsumerGroupMetadata:
        """Who commits: the member as of its generation. A member the group has
        dropped (its partitions are lost, maybe to another worker) must not
        commit: the coordinator would take a generation -1 commit unchecked."""
        if self.member is None:
            return ConsumerGroupMetadata(self.app.id)
        metadata = self.member.group_metadata()
        if metadata.generation_id < 0:
            raise TransactionAbortableError(
                f"group {self.app.id}: this worker is no longer a member (its partitions "
                "may belong to another): its transaction is aborted"
            )
        return metadata

    async def _start_parts(self) -> None:
        app = self.app
        assert self.conductor is not None and self.producer is not None
        loop = asyncio.get_running_loop()
        infos = await declare_app_topics(app, self.transport, copartitioned=self.group_mode)
        compression = compression_choice(app.wiring.compression, app.topics)
        if compression is not None:
            self.transport.set_compression(compression)
        for name, info in infos.items():
            self.producer.set_max_message_bytes(name, info.config.max_message_bytes)
        copartition_tables(app)
        for table in app.tables.values():
            if not self.group_mode or table.route_by_key:  # a GlobalTable: every partition
                await self._recover(table)
        if self.group_mode:
            self.assignor = StreamsAssignor(common_partitions(app), app.num_standby_replicas)
            self.assignor.web_url = self.web.url if self.web is not None else None
        else:
            warn_partition_mismatch(app)
        if self.run_agents:
            for agent in app.agents.values():
                for index in range(agent.concurrency):
                    channel = await self.conductor.subscribe(
                        agent.source, index, agent.concurrency, owner=f"agent:{agent.name}"
                    )
                    channel.stats = self.agent_stats.setdefault(agent.name, LatencyStats())
                    task = loop.create_task(agent.run(channel, index), name=f"agent {agent.name}")
                    self._agent_tasks[task] = (agent, channel)
                    task.add_done_callback(self._agent_done)
        await self.conductor.start()
        self._watch(self.conductor.failure)
        if self.group_mode:
            await self._join_group()
        self._tasks.append(loop.create_task(self._commit_loop(), name="commit"))
        if self.run_agents:
            for fn in app.startup_tasks:
                self._spawn(call(fn, app), f"task {fn.__name__}")
            for interval_s, fn in app.timers:
                self._spawn(every(interval_s, fn, app), f"timer {fn.__name__}")
            for expr, fn in app.crontabs:
                self._spawn(on_schedule(expr, fn, app), f"crontab {fn.__name__}")
            if app.metrics_topic is not None:
                from streams.metrics_topic import MetricsReporter

                reporter = MetricsReporter(self, self.web.metrics if self.web else None)
                self._spawn(reporter.run(), "metrics")

    async def run_until(self, stop: asyncio.Event | None = None) -> None:
        """Run until `stop` is set; raise the first failure of an agent/timer/task."""
        assert self._failure is not None
        waiters: list[asyncio.Future[Any]] = [self._failure]
        stop_task = None
        if stop is not None:
            stop_task = asyncio.ensure_future(stop.wait())
            waiters.append(stop_task)
        try:
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if stop_task is not None:
                stop_task.cancel()
        if self._failure.done():
            self._failure_raised = True
            raise self._failure.result()

    async def stop(self) -> None:
        if not self._started:
            return
        self._started = self.running = False
        try:
            if self.web is not None:  # no lookup of a store being closed
                await self.web.stop()
                self.web = None
            for task in self._tasks:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            if self.member is not None:
                await self.member.close()  # revokes: finish, flush, commit, leave
            await self.placement.stop_following()
            if self.conductor is not None:
                await self.conductor.stop_fetching()
            await self._wait_agents()
            if self._commit_error is None:
                await self.commit()
            else:
                logger.warning(
                    "stopping without a final commit app=%s: a write failed (%s); "
                    "a restart resumes from the last commit",
                    self.app.id,
                    self._commit_error,
                )
        finally:
            await self._release()

    async def _release(self) -> None:
        """Close the producer, tables, stores and transport, each whatever the others
        did; the producer's error is raised last, unless run_until raised one."""
        wiring = self.app.wiring
        error: BaseException | None = None
        if self.producer is not None:
            try:
                await self.producer.close()
            except Exception as exc:  # e.g. a full disk: the records are replayed
                error = exc
        if self.transactions is not None:
            try:
                await self.transactions.writer.close()  # aborts what is still open
            except Exception as exc:
                logger.warning("closing the transactional writer failed: %s", exc)
        if wiring.replies is not None:
            await wiring.replies.close()
            wiring.replies = None
        for table in self.app.tables.values():
            table.close()
        self.placement.close()
        try:
            await self.transport.stop()
        finally:
            wiring.transport = wiring.producer = wiring.conductor = None
            self._release_dir_locks()  # the stores are closed: the next owner may come
        logger.info("worker stopped app=%s", self.app.id)
        if error is not None and not self._failure_raised:
            raise error

    async def _start_web(self) -> None:
        if self.web_address is None:
            return
        from streams.web import WebServer

        self.web = WebServer(self, self.web_address)
        await self.web.start()  # before joining: the group learns where it serves

    @property
    def failure(self) -> BaseException | None:
        """What stopped the worker (an agent's, a timer's or a commit's error), if anything."""
        failure = self._failure
        return failure.result() if failure is not None and failure.done() else None

    @property
    def agent_tasks(self) -> dict[asyncio.Task[None], tuple[Agent, Channel]]:
        """Each agent instance's task and channel (read by streams/web/)."""
        return self._agent_tasks

    def _store_directories(self) -> list[Path]:
        urls = {table.store_url or self.store_url for table in self.app.tables.values()}
        found = {store_directory(url, data_dir=self.app.data_dir) for url in urls}
        if self.exactly_once and self.run_agents and not self._in_memory:
            found.add(worker_directory(self.app.data_dir))  # one worker per identity
        return sorted(d for d in found if d is not None)

    @property
    def _in_memory(self) -> bool:
        """memory://: nothing outlives the process, not even the worker's name."""
        return self.transport.url.startswith("memory:")

    def _release_dir_locks(self) -> None:
        for lock in self._dir_locks:
            lock.release()
        self._dir_locks = []

    # --- recovery ----------------------------------------------------------------

    async def _recover(self, table: Table) -> None:
        await declare_topic(self.transport, table.changelog)
        await self.placement.recover_all(table)

    # --- group mode: partitions from the group's assignor ------------------------

    async def _join_group(self) -> None:
        from runtime.client.group import GroupMember

        app = self.app
        session_ms = int(app.session_timeout_s * 1000)
        self.member = GroupMember(
            self.transport.cluster,  # type: ignore[attr-defined]
            app.id,
            sorted({a.source.name for a in app.agents.values()}),
            self.assignor,
            session_timeout_ms=session_ms,
            rebalance_timeout_ms=max(session_ms, 30_000),
            heartbeat_interval_ms=max(100, session_ms // 5),
            on_assign=self._on_assign,
            on_revoke=self._on_revoke,
        )
        await self.member.start()

    async def _on_assign(self, assignment: Assignment) -> None:
        assert self.conductor is not None and self.assignor is not None
        numbers = decode_numbers(assignment.user_data)
        self.assignor.state = numbers
        self.partition_hosts = decode_hosts(assignment.user_data)
        for table in self.app.tables.values():
            await self.placement.place(table, numbers)
        await self.conductor.assign(numbers.active)
        self.assignments += 1
        logger.info(
            "assigned app=%s active=%s standby=%s",
            self.app.id,
            sorted(numbers.active),
            sorted(numbers.standby),
        )

    async def _on_revoke(self, assignment: Assignment) -> None:
        assert self.conductor is not None
        numbers = decode_numbers(assignment.user_data)
        await self.conductor.revoke(numbers.active)
        if self._commit_error is None:  # else: given up uncommitted, the next owner replays
            await self.commit()
        self.conductor.forget(numbers.active)
        self.revocations += 1
        logger.info("revoked app=%s active=%s", self.app.id, sorted(numbers.active))

    # --- commits -----------------------------------------------------------------

    async def commit(self) -> dict[TopicPartition, int]:
        """Flush changelogs and sinks, then commit what was processed before.

        Commits run one at a time, in the order they were asked for (the
        periodic one and a revoke's never interleave, so offsets never go
        back), and a cancelled caller first lets the commit in hand finish: a
        table flush cut between taking its dirty entries and appending them to
        the changelog would lose those writes."""
        commit = asyncio.ensure_future(self._commit_in_turn())
        try:
            return await asyncio.shield(commit)
        except asyncio.CancelledError:
            await asyncio.wait([commit])
            if not commit.cancelled():
                commit.exception()  # the caller is cancelled: its error goes with it
            raise

    async def _commit_in_turn(self) -> dict[TopicPartition, int]:
        async with self._commit_lock:
            started = time.perf_counter()
            offsets = await self._commit()
            self.commit_latency.observe(time.perf_counter() - started)
            return offsets

    async def _commit(self) -> dict[TopicPartition, int]:
        if self._commit_error is not None:
            raise self._commit_error  # what was lost since the last commit must be replayed
        try:
            return await self._flush_and_commit()
        except Exception as exc:
            self._commit_error = exc
            raise

    async def _flush_and_commit(self) -> dict[TopicPartition, int]:
        assert self.conductor is not None and self.producer is not None
        if self.transactions is not None:
            return await self.transactions.commit()
        offsets = self.conductor.changed_offsets()
        # Sinks first: a table's changelog records which final window results were
        # emitted (its stream time), so they must be out before it says so.
        await self.producer.flush()
        for table in self.app.tables.values():
            if table.windowed is not None:
                table.windowed.expire()
            await table.flush(self.transport)
        if offsets:
            if self.member is not None:
                try:
                    await self.member.commit(offsets)
                except KafkaError as exc:  # a rebalance: the next owner replays
                    logger.info("commit refused during a rebalance: %s", exc)
                    return {}
            else:
                await self.transport.commit(self.app.id, offsets)
            self.conductor.mark_committed(offsets)
        return offsets

    async def _commit_loop(self) -> None:
        interval = self.app.commit_interval_s
        while True:
            await asyncio.sleep(interval)
            try:
                await self.commit()
            except Exception as exc:
                self._fail(exc)
                return

    # --- agents, timers, tasks ---------------------------------------------------

    def _agent_done(self, task: asyncio.Task[None]) -> None:
        agent, channel = self._agent_tasks[task]
        if task.cancelled():
            return
        exc = task.exception()
        if exc is None:
            return
        where: tuple[str | None, int | None, int | None] = (None, None, None)
        if channel.position < len(channel.batch):
            msg = channel.batch[channel.position].message
            where = (msg.topic, msg.partition, msg.offset)
        channel.close()  # nothing waits on a reader that is gone
        error = AgentError(agent.name, *where)
        logger.error("%s: %r", error, exc, exc_info=exc)
        error.__cause__ = exc
        self._fail(error)

    async def _wait_agents(self) -> None:
        tasks = list(self._agent_tasks)
        if not tasks:
            return
        _, pending = await asyncio.wait(tasks, timeout=SHUTDOWN_AGENTS_S)
        for task in pending:
            logger.warning(
                "agent %s did not finish within %.0fs: cancelling",
                self._agent_tasks[task][0].name,
                SHUTDOWN_AGENTS_S,
            )
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)

    def _spawn(self, coro: Any, name: str) -> None:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.append(task)

        def done(t: asyncio.Task[Any]) -> None:
            if not t.cancelled() and t.exception() is not None:
                exc = t.exception()
                # a write the log refused (a full disk) names its topic: no traceback
                trace = None if isinstance(exc, StorageError) else exc
                logger.error("%s failed: %r", name, exc, exc_info=trace)
                self._fail(t.exception())  # type: ignore[arg-type]

        task.add_done_callback(done)

    def _watch(self, future: asyncio.Future[BaseException]) -> None:
        future.add_done_callback(lambda f: self._fail(f.result()) if not f.cancelled() else None)

    def _append_failed(self, exc: BaseException) -> None:
        """A producer batch was refused: its records are gone, so commit no more
        (under exactly_once an abortable one only dooms the open transaction)."""
        abortable = isinstance(exc, TransactionAbortableError | TransactionAbortedError)
        if self.transactions is not None and abortable:
            return  # the next commit aborts
        if self._commit_error is None:
            self._commit_error = exc
        self._fail(exc)

    def _fail(self, exc: BaseException) -> None:
        if self._failure is not None and not self._failure.done():
            self._failure.set_result(exc)
