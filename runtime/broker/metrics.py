"""The broker's metrics, and `/metrics`, `/health`, `/ready` beside the REST proxy.

Requests are counted as they are answered (serving.py calls `observe` once
per request, with plain ints and a LatencyStats per API); the log's offsets
and sizes, the connections and the groups' states are read at scrape time.
Each Broker has a registry of its own, never prometheus_client's global one.

    streams_broker_requests_total{api}             requests answered
    streams_broker_request_seconds{api}            time to answer (histogram;
                                                   a fetch's includes its long poll)
    streams_broker_bytes_in_total{topic}           produced batch bytes appended
    streams_broker_records_in_total{topic}         records in them
    streams_broker_bytes_out_total{topic}          fetched batch bytes sent
    streams_broker_records_out_total{topic}        records in them (past the first
                                                   64 KiB of a file region: by size)
    streams_broker_connections                     open client connections
    streams_broker_groups{state}                   consumer groups by state
    streams_broker_log_end_offset{topic,partition} the high watermark
    streams_broker_log_bytes{topic,partition}      bytes of its segments
"""

from __future__ import annotations

import os
import struct
import time
from collections.abc import Callable, Iterator
from typing import Any

import orjson
from aiohttp import web
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from runtime.errors import LogClosedError, UnknownTopicError
from runtime.log.records import HEADER_SIZE
from runtime.log.storage import FileRegion
from runtime.protocol.codes import ApiKey, ErrorCode
from runtime.protocol.frames import RequestHeader
from runtime.stats import LatencyStats
from runtime.transport import EmbeddedTransport
from runtime.types import TopicPartition

PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8"
GROUP_STATES = ("Empty", "PreparingRebalance", "CompletingRebalance", "Stable", "Dead")
_LENGTH_AT, _COUNT_AT = 8, 57  # a batch header's batchLength and recordsCount
HEADERS_READ_BYTES = 64 * 1024
_U32 = struct.Struct(">I")


class BrokerMetrics:
    def __init__(self) -> None:
        self.requests: dict[int, LatencyStats] = {}
        self.bytes_in: dict[str, int] = {}
        self.records_in: dict[str, int] = {}
        self.bytes_out: dict[str, int] = {}
        self.records_out: dict[str, int] = {}

    def observe(
        self, header: RequestHeader, body: dict, response: dict | None, seconds: float
    ) -> None:
        stats = self.requests.get(header.api_key)
        if stats is None:
            stats = self.requests[header.api_key] = LatencyStats()
        stats.observe(seconds)
        if header.api_key == ApiKey.PRODUCE:
            self._produced(body, response)
        elif header.api_key == ApiKey.FETCH and response is not None:
            self._fetched(response)

    def _produced(self, body: dict, response: dict | None) -> None:
        refused = set()
        if response is not None:
            refused = {
                (topic["name"], part["partition_index"])
                for topic in response["responses"]
                for part in topic["partitions"]
                if part["error_code"] != ErrorCode.NONE
            }
        for topic in body["topics"]:
            name = topic["name"]
            for part in topic["partitions"]:
                records = part["records"]
                if (name, part["partition_index"]) in refused or len(records or b"") < HEADER_SIZE:
                    continue  # refused, or too short for a batch (acks=0 is not answered)
                self.bytes_in[name] = self.bytes_in.get(name, 0) + len(records)
                # appended, so one whole batch (data_api.py): its header's count
                count = _U32.unpack_from(records, _COUNT_AT)[0]
                self.records_in[name] = self.records_in.get(name, 0) + count

    def _fetched(self, response: dict) -> None:
        for topic in response["responses"]:
            name = topic["topic"]
            for part in topic["partitions"]:
                chunks = part["records"]
                if not chunks:
                    continue
                size = sum(len(c) for c in chunks)
                count = sum(_records_in(c) for c in chunks)
                self.bytes_out[name] = self.bytes_out.get(name, 0) + size
                self.records_out[name] = self.records_out.get(name, 0) + count


def _records_in(chunk: Any) -> int:
    """Records in whole stored batches, by their headers' counts. Of a file region
    only the first HEADERS_READ_BYTES are read (one pread; the rest goes out with
    sendfile untouched) and the count is extrapolated over the rest by size."""
    if not isinstance(chunk, FileRegion):
        return _count_records(memoryview(chunk))[0]
    head = os.pread(chunk.fileno(), min(chunk.size, HEADERS_READ_BYTES), chunk.position)
    count, walked = _count_records(memoryview(head))
    if walked >= chunk.size or walked == 0:
        return count
    return round(count * chunk.size / walked)


def _count_records(view: memoryview) -> tuple[int, int]:
    """(records, bytes) of the whole batches at the start of `view`."""
    position = count = 0
    end = len(view)
    while position + HEADER_SIZE <= end:
        (length,) = _U32.unpack_from(view, position + _LENGTH_AT)
        if position + 12 + length > end:
            break  # a batch cut by the read: not counted, the size ratio covers it
        count += _U32.unpack_from(view, position + _COUNT_AT)[0]
        position += 12 + length
    return count, position


class BrokerCollector(Collector):
    def __init__(
        self,
        metrics: BrokerMetrics,
        transport: EmbeddedTransport,
        connections: Callable[[], int],
        group_states: Callable[[], list[str]],
    ) -> None:
        self._metrics = metrics
        self._transport = transport
        self._connections = connections
        self._group_states = group_states

    def collect(self) -> Iterator[Metric]:
        m = self._metrics
        count = CounterMetricFamily("streams_broker_requests", "Requests answered", labels=["api"])
        seconds = HistogramMetricFamily(
            "streams_broker_request_seconds", "Time to answer a request", labels=["api"]
        )
        for key, stats in sorted(m.requests.items()):
            api = api_name(key)
            count.add_metric([api], stats.count)
            buckets = [("+Inf" if b == float("inf") else repr(b), n) for b, n in stats.cumulative()]
            seconds.add_metric([api], buckets, stats.sum_s)
        yield count
        yield seconds
        for name, doc, values in (
            ("streams_broker_bytes_in", "Produced batch bytes appended", m.bytes_in),
            ("streams_broker_records_in", "Produced records appended", m.records_in),
            ("streams_broker_bytes_out", "Fetched batch bytes sent", m.bytes_out),
            ("streams_broker_records_out", "Fetched records sent", m.records_out),
        ):
            family = CounterMetricFamily(name, doc, labels=["topic"])
            for topic, value in sorted(values.items()):
                family.add_metric([topic], value)
            yield family
        yield GaugeMetricFamily(
            "streams_broker_connections", "Open client connections", value=self._connections()
        )
        groups = GaugeMetricFamily("streams_broker_groups", "Groups by state", labels=["state"])
        states = self._group_states()
        for state in GROUP_STATES:
            groups.add_metric([state], sum(1 for s in states if s == state))
        yield groups
        yield from self._log_metrics()

    def _log_metrics(self) -> Iterator[Metric]:
        labels = ["topic", "partition"]
        ends = GaugeMetricFamily("streams_broker_log_end_offset", "High watermark", labels=labels)
        sizes = GaugeMetricFamily("streams_broker_log_bytes", "Bytes of segments", labels=labels)
        try:
            log = self._transport.log
            topics = log.topics()
        except RuntimeError:  # stopping
            topics = {}
        for name, info in sorted(topics.items()):
            for p in range(info.partitions):
                tp = TopicPartition(name, p)
                try:
                    end = log.offsets(tp)[1]
                    size = log.size_bytes(tp)
                except (UnknownTopicError, LogClosedError):
                    continue  # deleted meanwhile
                ends.add_metric([name, str(p)], end)
                sizes.add_metric([name, str(p)], size)
        yield ends
        yield sizes


def api_name(key: int) -> str:
    try:
        return ApiKey(key).name.lower()
    except ValueError:
        return str(key)


class HealthRoutes:
    """/metrics, /health and /ready on the broker's HTTP port."""

    def __init__(self, registry: CollectorRegistry, ready: Callable[[], list[str]]) -> None:
        self._registry = registry
        self._ready = ready
        self._started = time.monotonic()

    def add_to(self, app: web.Application) -> None:
        app.router.add_get("/metrics", self.metrics)
        app.router.add_get("/health", self.health)
        app.router.add_get("/ready", self.ready)

    async def metrics(self, request: web.Request) -> web.Response:
        return web.Response(
            body=generate_latest(self._registry), headers={"Content-Type": PROMETHEUS_TEXT}
        )

    async def health(self, request: web.Request) -> web.Response:
        uptime = round(time.monotonic() - self._started, 3)
        return _json({"status": "ok", "uptime_s": uptime})

    async def ready(self, request: web.Request) -> web.Response:
        waiting = self._ready()
        if waiting:
            return _json({"status": "not ready", "waiting_for": waiting}, status=503)
        return _json({"status": "ready"})


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(status=status, body=orjson.dumps(data), content_type="application/json")
