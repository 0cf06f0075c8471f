"""A worker's metrics in Prometheus' terms, read from its plain counters at scrape time.

The hot path only counts in ints and LatencyStats (runtime/stats.py); this
module turns them into metric families when asked, in a registry of the
worker's own (never prometheus_client's global one: several workers in one
process each have theirs). What needs I/O (end offsets for the lag, table
sizes) is gathered by `refresh()` before a scrape, at most every
`refresh_interval_s`, so a dashboard polling every second costs one round
of ListOffsets a second at most.

    streams_events_in_total{topic,partition}       events delivered to agents
    streams_events_out_total{topic,partition}      records the worker produced
    streams_bytes_out_total{topic,partition}       their batch bytes
    streams_processing_seconds{agent}              time per event (histogram)
    streams_consumer_lag{topic,partition}          end offset - processed offset
    streams_table_keys{table,partition}            keys in the store
    streams_table_bytes{table,partition}           bytes of keys and values (estimated
                                                   past EXACT_SIZE_KEYS_MAX keys)
    streams_recovery_records_done / _total{table,partition}  recovery under way
    streams_recovered_partitions{table}            partitions recovered so far
    streams_window_late_dropped_total{table}       late events windowed tables dropped
    streams_window_finals_emitted_total{table}     final window results emitted
    streams_join_late_dropped_total{join}          late events stream-stream joins dropped
    streams_commit_seconds                          commit latency (histogram)
    streams_commits_total, streams_rebalances_total, streams_revocations_total
    streams_assigned_partitions, streams_agent_state{agent,state}
    streams_worker_info{app,broker}                 1
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from runtime.errors import StreamsRuntimeError
from runtime.stats import LatencyStats
from runtime.types import TopicPartition
from stores.errors import StoreError
from streams.stream_joins import JoinWindows

if TYPE_CHECKING:
    from streams.worker import Worker

# Table sizes: a partition of up to this many keys is counted exactly (a scan of
# a few ms); a larger one by its store's estimate (RocksDB's, at no cost).
EXACT_SIZE_KEYS_MAX = 10_000
TABLE_SIZES_INTERVAL_S = 5.0
REFRESH_TIMEOUT_S = 5.0  # a broker that does not answer: the last figures stay
AGENT_STATES = ("running", "idle", "stopped", "failed")


@dataclass
class Snapshot:
    """What refresh() gathered: lag and table sizes, as of `at` (monotonic)."""

    at: float = 0.0
    lag: dict[TopicPartition, int] = field(default_factory=dict)
    ends: dict[TopicPartition, int] = field(default_factory=dict)
    table_sizes: dict[tuple[str, int], tuple[int, int]] = field(default_factory=dict)
    sized_at: float = float("-inf")  # when table_sizes were taken


class WorkerMetrics:
    def __init__(self, worker: Worker, *, refresh_interval_s: float = 1.0) -> None:
        self.worker = worker
        self.refresh_interval_s = refresh_interval_s
        self.snapshot = Snapshot()
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(_WorkerCollector(self))

    async def refresh(self, *, force: bool = False) -> Snapshot:
        """Gather the lag and table sizes (unless done within the interval)."""
        now = time.monotonic()
        if not force and now - self.snapshot.at < self.refresh_interval_s:
            return self.snapshot
        snapshot = Snapshot(at=now)
        worker = self.worker
        conductor = worker.conductor
        if conductor is not None:
            processed = conductor.commit_offsets()
            try:
                async with asyncio.timeout(REFRESH_TIMEOUT_S):
                    for tp, offset in processed.items():
                        try:
                            _, end = await worker.transport.offsets(tp)
                        except (StreamsRuntimeError, OSError):
                            continue  # deleted meanwhile, or the broker is away: no figure
                        snapshot.ends[tp] = end
                        snapshot.lag[tp] = max(0, end - offset)
            except TimeoutError:
                for tp in processed.keys() - snapshot.lag.keys():  # the last known, if any
                    if tp in self.snapshot.lag:
                        snapshot.lag[tp] = self.snapshot.lag[tp]
        snapshot.table_sizes, snapshot.sized_at = self.snapshot.table_sizes, self.snapshot.sized_at
        if force or now - snapshot.sized_at >= TABLE_SIZES_INTERVAL_S:
            snapshot.sized_at = now
            snapshot.table_sizes = {
                (table.name, p): store_size(part.store)
                for table in worker.app.tables.values()
                for p, part in list(table.partitions.items())
            }
        self.snapshot = snapshot
        return snapshot

    def render(self) -> bytes:
        """The Prometheus text exposition of the last refresh and the counters now."""
        return generate_latest(self.registry)

    def totals(self) -> dict[str, Any]:
        """Sums for a dashboard or the metrics topic: events in/out, lag, p99."""
        worker = self.worker
        events_in = sum(worker.conductor.events_in.values()) if worker.conductor else 0
        events_out = sum(worker.producer.records_out.values()) if worker.producer else 0
        return {
            "events_in": events_in,
            "events_out": events_out,
            "lag": sum(self.snapshot.lag.values()),
            "agents": {
                name: {
                    "events": stats.count,
                    "p99_s": stats.quantile(0.99),
                    "mean_s": stats.sum_s / stats.count if stats.count else 0.0,
                }
                for name, stats in worker.agent_stats.items()
            },
        }


def store_size(store: Any) -> tuple[int, int]:
    """(keys, bytes of keys and values) of a store: exact up to EXACT_SIZE_KEYS_MAX
    keys; past that the store's estimate (RocksDB's: bytes of its files and
    memtables) or, for a store without one, its length and the bytes of the
    keys scanned, extrapolated."""
    try:
        estimate = getattr(store, "size_estimate", None)
        if estimate is not None:
            keys, size = estimate()
            if keys > EXACT_SIZE_KEYS_MAX:
                return keys, size
        scanned = size = 0
        for key, value in store.items():
            scanned += 1
            size += len(key) + len(value)
            if scanned >= EXACT_SIZE_KEYS_MAX:
                break
        keys = scanned if scanned < EXACT_SIZE_KEYS_MAX else len(store)
    except StoreError:  # closed meanwhile (a rebalance): no figure this time
        return 0, 0
    return keys, size * keys // scanned if scanned else 0  # past the scan: extrapolated


def agent_states(worker: Worker) -> dict[str, str]:
    """Per agent: running, idle (waiting for events), stopped or failed; an
    agent with several instances shows the most telling of theirs."""
    rank = {state: i for i, state in enumerate(("stopped", "idle", "running", "failed"))}
    states: dict[str, str] = {name: "stopped" for name in worker.app.agents}
    for task, (agent, channel) in worker.agent_tasks.items():
        if not task.done():
            state = "idle" if channel.drained.is_set() else "running"
        elif not task.cancelled() and task.exception() is not None:
            state = "failed"
        else:
            state = "stopped"
        if rank[state] > rank[states.get(agent.name, "stopped")]:
            states[agent.name] = state
    return states


class _WorkerCollector(Collector):
    def __init__(self, metrics: WorkerMetrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterator[Metric]:
        worker = self._metrics.worker
        snapshot = self._metrics.snapshot
        conductor, producer = worker.conductor, worker.producer
        yield _by_tp(
            CounterMetricFamily,
            "streams_events_in",
            "Events delivered to agents",
            conductor.events_in if conductor else {},
        )
        yield _by_tp(
            CounterMetricFamily,
            "streams_events_out",
            "Records produced by the worker",
            producer.records_out if producer else {},
        )
        yield _by_tp(
            CounterMetricFamily,
            "streams_bytes_out",
            "Record batch bytes produced by the worker",
            producer.bytes_out if producer else {},
        )
        yield _by_tp(
            GaugeMetricFamily,
            "streams_consumer_lag",
            "Events not processed yet: end offset - processed offset",
            snapshot.lag,
        )
        processing = HistogramMetricFamily(
            "streams_processing_seconds", "Agent time per event", labels=["agent"]
        )
        for name, stats in sorted(worker.agent_stats.items()):
            processing.add_metric([name], _buckets(stats), stats.sum_s)
        yield processing
        yield from _table_metrics(worker, snapshot)
        yield from _window_metrics(worker)
        yield from _group_metrics(worker)


def _by_tp(kind: type, name: str, doc: str, values: dict[TopicPartition, int]) -> Metric:
    family = kind(name, doc, labels=["topic", "partition"])
    for tp, value in sorted(values.items()):
        family.add_metric([tp.topic, str(tp.partition)], value)
    return family


def _buckets(stats: LatencyStats) -> list[tuple[str, float]]:
    return [("+Inf" if b == float("inf") else repr(b), n) for b, n in stats.cumulative()]


def _window_metrics(worker: Worker) -> Iterator[Metric]:
    joins = CounterMetricFamily(
        "streams_join_late_dropped",
        "Late events a stream-stream join dropped (more than grace behind its side)",
        labels=["join"],
    )
    late = CounterMetricFamily(
        "streams_window_late_dropped",
        "Late events a windowed table dropped (its window closed by stream time)",
        labels=["table"],
    )
    finals = CounterMetricFamily(
        "streams_window_finals_emitted",
        'Final window results emitted (emit="final")',
        labels=["table"],
    )
    for table in sorted(worker.app.tables.values(), key=lambda t: t.name):
        if isinstance(table, JoinWindows):
            joins.add_metric([table.name], table.late_dropped)
        windowed = table.windowed
        if windowed is None:
            continue
        closer = getattr(windowed, "closer", None)  # tumbling and hopping windows keep it there
        emitted = getattr(closer or windowed, "emitted", 0)
        late.add_metric([table.name], windowed.late_dropped)
        finals.add_metric([table.name], emitted)
    yield late
    yield finals
    yield joins


def _table_metrics(worker: Worker, snapshot: Snapshot) -> Iterator[Metric]:
    keys = GaugeMetricFamily(
        "streams_table_keys", "Keys in the store", labels=["table", "partition"]
    )
    size = GaugeMetricFamily(
        "streams_table_bytes",
        "Bytes of keys and values in the store",
        labels=["table", "partition"],
    )
    for (table, p), (n, b) in sorted(snapshot.table_sizes.items()):
        keys.add_metric([table, str(p)], n)
        size.add_metric([table, str(p)], b)
    yield keys
    yield size
    done = GaugeMetricFamily(
        "streams_recovery_records_done",
        "Changelog records replayed by a recovery under way",
        labels=["table", "partition"],
    )
    total = GaugeMetricFamily(
        "streams_recovery_records_total",
        "Changelog records a recovery under way has to replay",
        labels=["table", "partition"],
    )
    changelogs = {t.changelog.name: t.name for t in worker.app.tables.values()}
    for tp, (n, of) in sorted(worker.placement.recovering.items()):
        table = changelogs.get(tp.topic, tp.topic)
        done.add_metric([table, str(tp.partition)], n)
        total.add_metric([table, str(tp.partition)], of)
    yield done
    yield total
    recovered = GaugeMetricFamily(
        "streams_recovered_partitions",
        "Table partitions recovered and served here",
        labels=["table"],
    )
    recovering = {tp.topic for tp in worker.placement.recovering}
    for table in sorted(worker.app.tables.values(), key=lambda t: t.name):
        served = len(table.partitions)
        if table.changelog.name in recovering:
            served -= sum(
                1 for tp in worker.placement.recovering if tp.topic == table.changelog.name
            )
        recovered.add_metric([table.name], served)
    yield recovered


def _group_metrics(worker: Worker) -> Iterator[Metric]:
    commits = HistogramMetricFamily("streams_commit_seconds", "Time to flush and commit")
    commits.add_metric([], _buckets(worker.commit_latency), worker.commit_latency.sum_s)
    yield commits
    yield CounterMetricFamily(
        "streams_commits", "Commits (flush, then commit offsets)", value=worker.commit_latency.count
    )
    yield CounterMetricFamily(
        "streams_rebalances", "Assignments received from the group", value=worker.assignments
    )
    yield CounterMetricFamily(
        "streams_revocations", "Assignments revoked by the group", value=worker.revocations
    )
    info = GaugeMetricFamily(
        "streams_worker_info", "The worker's app and broker", labels=["app", "broker"]
    )
    info.add_metric([worker.app.id, worker.transport.url], 1)
    yield info
    conductor = worker.conductor
    yield GaugeMetricFamily(
        "streams_assigned_partitions",
        "Topic partitions this worker processes",
        value=len(conductor.positions) if conductor else 0,
    )
    state = GaugeMetricFamily(
        "streams_agent_state", "1 for the state each agent is in", labels=["agent", "state"]
    )
    for name, current in sorted(agent_states(worker).items()):
        for s in AGENT_STATES:
            state.add_metric([name, s], 1 if s == current else 0)
    yield state
