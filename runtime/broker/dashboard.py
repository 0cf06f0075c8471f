"""The broker's live dashboard at `/` of its HTTP port, beside the REST proxy.

    GET /                  the page (static/broker.html), polling the JSON below
    GET /static/{name}     its script, and the chart and stylesheet shared with the
                           worker's dashboard (runtime/web_assets)
    GET /api/dashboard     topics and partitions (end offsets, bytes), groups
                           (state, members, committed lag), records and bytes in
                           and out per second and their last minutes, requests
                           per API with their p99, connections

The counters are sampled once a second (a few additions); the rest is read
from the log when the page asks, at most once per STATE_MAX_AGE_S. Behind the
REST proxy's authentication when it has one.
"""

from __future__ import annotations

import itertools
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web

from runtime.broker.coordinator import GroupCoordinator
from runtime.broker.metrics import BrokerMetrics, api_name
from runtime.errors import LogClosedError, UnknownTopicError
from runtime.transport import EmbeddedTransport
from runtime.types import TopicPartition
from runtime.web_assets.dashboard_base import DashboardBase

STATIC = Path(__file__).parent / "static"
HISTORY_S = 300
RATE_WINDOW_S = 5.0
STATE_MAX_AGE_S = 1.0

Sample = tuple[float, int, int, int, int]  # time, records in, records out, bytes in, bytes out


class BrokerDashboard(DashboardBase):
    def __init__(
        self,
        transport: EmbeddedTransport,
        metrics: BrokerMetrics,
        coordinator: Callable[[], GroupCoordinator | None],
        connections: Callable[[], int],
    ) -> None:
        super().__init__(STATIC / "broker.html", STATIC / "broker.js")
        self._transport = transport
        self._metrics = metrics
        self._coordinator = coordinator
        self._connections = connections
        self.started_at = time.time()
        self.samples: deque[Sample] = deque(maxlen=HISTORY_S + 1)
        self._state: dict[str, Any] = {}
        self._state_at = 0.0

    async def api(self, request: web.Request) -> web.Response:
        if time.monotonic() - self._state_at >= STATE_MAX_AGE_S:
            self._state = await self.gather()
            self._state_at = time.monotonic()
        return web.Response(body=orjson.dumps(self._state), content_type="application/json")

    def take_sample(self) -> None:
        m = self._metrics
        self.samples.append(
            (
                time.time(),
                sum(m.records_in.values()),
                sum(m.records_out.values()),
                sum(m.bytes_in.values()),
                sum(m.bytes_out.values()),
            )
        )

    async def gather(self) -> dict[str, Any]:
        if not self.samples:
            self.take_sample()
        topics = self._topics()
        return {
            "uptime_s": time.time() - self.started_at,
            "connections": self._connections(),
            "throughput": self._throughput(),
            "topics": topics,
            "groups": await self._groups(),
            "requests": [
                {
                    "api": api_name(key),
                    "count": stats.count,
                    "p99_ms": stats.quantile(0.99) * 1000,
                }
                for key, stats in sorted(self._metrics.requests.items())
            ],
        }

    def _throughput(self) -> dict[str, Any]:
        samples = list(self.samples)
        last = samples[-1]
        first = next((s for s in samples if last[0] - s[0] <= RATE_WINDOW_S), last)
        return {
            "records_in_per_s": _rate(first, last, 1),
            "records_out_per_s": _rate(first, last, 2),
            "bytes_in_per_s": _rate(first, last, 3),
            "bytes_out_per_s": _rate(first, last, 4),
            "history": [
                [round(b[0], 3), _rate(a, b, 1), _rate(a, b, 2)]
                for a, b in itertools.pairwise(samples)
            ],
        }

    def _topics(self) -> list[dict[str, Any]]:
        log = self._transport.log
        out = []
        for name, info in sorted(log.topics().items()):
            partitions = []
            for p in range(info.partitions):
                tp = TopicPartition(name, p)
                try:
                    start, end = log.offsets(tp)
                    size = log.size_bytes(tp)
                except (UnknownTopicError, LogClosedError):
                    continue  # deleted meanwhile
                partitions.append({"partition": p, "start": start, "end": end, "bytes": size})
            out.append(
                {
                    "name": name,
                    "internal": name.startswith("__"),
                    "partitions": partitions,
                    "records": sum(p["end"] - p["start"] for p in partitions),
                    "bytes": sum(p["bytes"] for p in partitions),
                }
            )
        return out

    async def _groups(self) -> list[dict[str, Any]]:
        coordinator = self._coordinator()
        if coordinator is None:
            return []
        log = self._transport.log
        out = []
        for listing in coordinator.list_groups():
            members = len(coordinator.describe_group(listing.group_id).members)
            lag = 0
            for tp, offset in (await self._transport.committed(listing.group_id)).items():
                try:
                    lag += max(0, log.offsets(tp)[1] - offset)
                except (UnknownTopicError, LogClosedError):
                    continue
            out.append(
                {"group": listing.group_id, "state": listing.state, "members": members, "lag": lag}
            )
        return out


def _rate(a: Sample, b: Sample, i: int) -> float:
    seconds = b[0] - a[0]
    return round((b[i] - a[i]) / seconds, 2) if seconds > 0 else 0.0
