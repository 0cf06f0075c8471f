"""Which table partitions a worker holds, and in what role.

On `log://` and `memory://` a worker holds every partition of every table
(`recover_all`). In group mode the assignment says: active partitions are
recovered from their changelogs and attached to their tables before the agents
see their events; standby partitions keep a warm store that follows the
changelog; every other partition's store is closed.

Invariants:
- a (table, partition) has at most one open store and at most one follower;
- an active partition is never followed; a store is attached to its table only
  while its partition is active;
- a store error in a follower stops the worker (`fail`): retrying a broken
  local disk would not help.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path

from runtime.assignor import WorkerState
from runtime.recovery import (
    SETTLE_MAX_S,
    Progress,
    RecoveryResult,
    log_progress,
    recover_store,
)
from runtime.transport import Transport
from runtime.types import TopicPartition
from stores import Store, StoreError, open_store
from streams.table import Table

logger = logging.getLogger(__name__)

FOLLOW_RETRY_S = 1.0


class TablePlacement:
    def __init__(
        self,
        transport: Transport,
        store_url: str,
        data_dir: Path,
        fail: Callable[[BaseException], None],
    ) -> None:
        self._transport = transport
        self._store_url = store_url
        self._data_dir = data_dir
        self._fail = fail
        self.recoveries: list[RecoveryResult] = []
        self.progress: Progress = log_progress  # how a long recovery reports (a bar on a tty)
        # Changelog partitions being recovered now: (records done, records total).
        self.recovering: dict[TopicPartition, tuple[int, int]] = {}
        self._stores: dict[tuple[str, int], Store] = {}
        self._followers: dict[tuple[str, int], asyncio.Task[None]] = {}

    def _progress(self, tp: TopicPartition, done: int, total: int, rate: float) -> None:
        self.recovering[tp] = (done, total)  # for the web server and /ready
        self.progress(tp, done, total, rate)

    async def recover_all(self, table: Table) -> None:
        """Hold every partition of `table` (one worker for the whole app, or a
        GlobalTable: then each partition is followed too, whoever writes it)."""
        results = []
        for p in range(table.changelog.partitions):
            results.append(await self._recover(table, p, self._store(table, p)))
        log_recovered(table.name, results)
        if table.route_by_key:
            self._follow_global(table)

    def _follow_global(self, table: Table) -> None:
        from streams.global_table import GlobalPartition, follow

        loop = asyncio.get_running_loop()
        for p, part in table.partitions.items():
            if isinstance(part, GlobalPartition) and (table.name, p) not in self._followers:
                self._followers[(table.name, p)] = loop.create_task(
                    follow(self._transport, part, self._fail), name=f"global {table.name}[{p}]"
                )

    async def place(self, table: Table, numbers: WorkerState) -> None:
        """Open, recover, follow or close this table's partitions to match."""
        if table.route_by_key:
            return  # a GlobalTable's partitions are all held, whatever the assignment
        wanted = numbers.active | numbers.standby
        for p in [p for (name, p) in list(self._stores) if name == table.name]:
            if p not in wanted:
                await self._stop_following(table, p)
                _detach(table, p)
                self._stores.pop((table.name, p)).close()
        for p in sorted(numbers.standby):
            _detach(table, p)
            store = self._store(table, p)
            if (table.name, p) not in self._followers:
                self._followers[(table.name, p)] = asyncio.get_running_loop().create_task(
                    self._follow(table, p, store), name=f"standby {table.name}[{p}]"
                )
        results = []
        for p in sorted(numbers.active):
            await self._stop_following(table, p)
            if p in table.partitions:
                await self._catch_up(table, p)
                continue
            results.append(await self._recover(table, p, self._store(table, p)))
        if results:
            log_recovered(table.name, results)

    async def stop_following(self) -> None:
        for task in self._followers.values():
            task.cancel()
        await asyncio.gather(*self._followers.values(), return_exceptions=True)
        self._followers.clear()

    def close(self) -> None:
        for store in self._stores.values():
            store.close()
        self._stores.clear()

    def _store(self, table: Table, p: int) -> Store:
        store = self._stores.get((table.name, p))
        if store is None:
            store = self._stores[(table.name, p)] = open_store(
                table.store_url or self._store_url,
                name=table.changelog.name.removesuffix("-changelog"),
                partition=p,
                data_dir=self._data_dir,
            )
        return store

    async def _stop_following(self, table: Table, p: int) -> None:
        task = self._followers.pop((table.name, p), None)
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _follow(self, table: Table, p: int, store: Store) -> None:
        """A standby: keep the store caught up with the changelog partition."""
        tp = TopicPartition(table.changelog.name, p)
        while True:
            try:
                await recover_store(self._transport, store, tp, progress=_no_progress)
                _, end = await self._transport.offsets(tp)
                await self._transport.fetch(tp, end, max_wait_s=1.0)  # park until more
            except asyncio.CancelledError:
                raise
            except StoreError as exc:  # the local disk: retrying will not help
                self._fail(exc)
                return
            except Exception as exc:
                logger.warning("standby %s fell behind: %s; retrying", tp, exc)
                await asyncio.sleep(FOLLOW_RETRY_S)

    async def _catch_up(self, table: Table, p: int) -> None:
        """A partition this worker kept across a rebalance: usually nobody wrote
        its changelog meanwhile, but a worker the group had dropped for a while
        (paused past its session timeout) got it back from another owner. Then
        the store replays what that one wrote, the cache, stale, goes, and what the
        table keeps in memory (windows, sessions, join buffers) is rebuilt."""
        part = table.partitions[p]
        result = await recover_store(
            self._transport, part.store, part.changelog, settle_s=SETTLE_MAX_S
        )
        if result.records:
            part.cache.clear()
            (table.windowed or table).on_recovered(p)  # windows and join buffers too
            logger.warning(
                "table=%s partition=%d was written by another worker meanwhile: "
                "%d changelog records replayed",
                table.name,
                p,
                result.records,
            )

    async def _recover(self, table: Table, p: int, store: Store) -> RecoveryResult:
        table.attach(p, store)
        tp = TopicPartition(table.changelog.name, p)
        self.recovering[tp] = (0, 0)
        try:
            result = await recover_store(
                self._transport, store, tp, progress=self._progress, settle_s=SETTLE_MAX_S
            )
        finally:
            self.recovering.pop(tp, None)
        self.recoveries.append(result)
        table.recovered_records += result.records
        (table.windowed or table).on_recovered(p)
        logger.debug(
            "recovered table=%s partition=%d records=%d from=%d to=%d seconds=%.3f",
            table.name,
            p,
            result.records,
            result.start_offset,
            result.end_offset,
            result.seconds,
        )
        return result


def log_recovered(table: str, results: list[RecoveryResult]) -> None:
    """One line per table and recovery round, on every transport: the partitions
    recovered together, and each one's replay as partition:records:from-to."""
    detail = ",".join(
        f"{r.tp.partition}:{r.records}:{r.start_offset}-{r.end_offset}" for r in results
    )
    logger.info(
        "recovered table=%s partitions=%d records=%d seconds=%.3f detail=%s",
        table,
        len(results),
        sum(r.records for r in results),
        sum(r.seconds for r in results),
        detail or "-",
    )


def _detach(table: Table, p: int) -> None:
    if table.detach(p) is not None and table.windowed is not None:
        table.windowed.on_released(p)


def _no_progress(tp: TopicPartition, done: int, total: int, rate: float) -> None:
    pass
