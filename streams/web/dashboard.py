"""The live dashboard at `/`: one HTML page and its script, shipped in the package,
polling `/api/dashboard` every second (no CDN: nothing is fetched from elsewhere).

A sampler task takes the event counters once a second (a few additions), so
throughput is known for the last `HISTORY_S` seconds whether or not anyone
looks. The rest (topics and their offsets, groups and their lag, agents,
tables, recovery) costs requests to the log: it is gathered only when the page
asks, at most once per `STATE_MAX_AGE_S` however many browsers poll.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import web

from runtime.errors import StreamsRuntimeError
from runtime.types import TopicPartition
from runtime.web_assets.dashboard_base import DashboardBase
from streams.web.metrics import WorkerMetrics, agent_states
from streams.web.responses import error_response, json_response

if TYPE_CHECKING:
    from streams.worker import Worker

STATIC = Path(__file__).parent / "static"
HISTORY_S = 300
RATE_WINDOW_S = 5.0  # events/s shown now: over the last few seconds, not one jittery tick
STATE_MAX_AGE_S = 1.0
GATHER_TIMEOUT_S = 10.0


class Dashboard(DashboardBase):
    def __init__(self, worker: Worker, metrics: WorkerMetrics) -> None:
        super().__init__(STATIC / "dashboard.html", STATIC / "dashboard.js")
        self.worker = worker
        self.metrics = metrics
        self.started_at = time.time()
        # (unix time, events in so far, events out so far), one a second
        self.samples: deque[tuple[float, int, int]] = deque(maxlen=HISTORY_S + 1)
        self.state: dict[str, Any] = {}
        self._state_at = 0.0  # monotonic time of `state`
        self._state_lock = asyncio.Lock()
        self._ends: dict[str, int] = {}  # per topic, the sum of its end offsets...
        self._ends_at = 0.0  # ...when last gathered (monotonic)

    # --- handlers --------------------------------------------------------------------

    def not_found(self, message: str) -> web.StreamResponse:
        return error_response(404, "not_found", message)

    async def api(self, request: web.Request) -> web.Response:
        async with self._state_lock:  # browsers polling at once share one gathering
            if time.monotonic() - self._state_at >= STATE_MAX_AGE_S:
                try:
                    async with asyncio.timeout(GATHER_TIMEOUT_S):
                        await self.gather()
                except (StreamsRuntimeError, OSError, TimeoutError) as exc:  # broker away
                    return error_response(503, "unavailable", f"cannot read the log: {exc!r}")
        return json_response(self.state)

    # --- sampling --------------------------------------------------------------------

    def take_sample(self) -> None:
        worker = self.worker
        events_in = sum(worker.conductor.events_in.values()) if worker.conductor else 0
        events_out = sum(worker.producer.records_out.values()) if worker.producer else 0
        self.samples.append((time.time(), events_in, events_out))

    async def gather(self) -> None:
        await self.metrics.refresh()
        totals = self.metrics.totals()
        if not self.samples:
            self.take_sample()
        now = time.time()
        self._state_at = time.monotonic()
        self.state = {
            "app": self.worker.app.id,
            "broker": self.worker.transport.url,
            "uptime_s": now - self.started_at,
            "throughput": self._throughput(),
            "lag": totals["lag"],  # events fetched or due, not processed yet
            "topics": await self._topics(),
            "groups": await self._groups(),
            "agents": self._agents(totals),
            "tables": self._tables(),
            "recovery": self._recovery(),
        }

    def _throughput(self) -> dict[str, Any]:
        samples = list(self.samples)
        history = [
            [round(b[0], 3), _rate(a, b, 1), _rate(a, b, 2)] for a, b in itertools.pairwise(samples)
        ]
        last = samples[-1]
        first = next((s for s in samples if last[0] - s[0] <= RATE_WINDOW_S), last)
        return {
            "events_in_per_s": _rate(first, last, 1),
            "events_out_per_s": _rate(first, last, 2),
            "events_in_total": last[1],
            "events_out_total": last[2],
            "history": history,
        }

    async def _topics(self) -> list[dict[str, Any]]:
        transport = self.worker.transport
        log = getattr(transport, "log", None)  # the embedded log knows partition sizes
        out = []
        now = time.monotonic()
        seconds = now - self._ends_at
        ends: dict[str, int] = {}
        for name, info in sorted((await transport.topics()).items()):
            if name.startswith("__"):
                continue  # the broker's own (offsets, transactions)
            partitions = []
            for p in range(info.partitions):
                tp = TopicPartition(name, p)
                start, end = await transport.offsets(tp)
                size = log.size_bytes(tp) if log is not None else None
                partitions.append({"partition": p, "start": start, "end": end, "bytes": size})
            ends[name] = sum(p["end"] for p in partitions)
            before = self._ends.get(name)
            out.append(
                {
                    "name": name,
                    "partitions": partitions,
                    "records": sum(p["end"] - p["start"] for p in partitions),
                    "bytes": None if log is None else sum(p["bytes"] for p in partitions),
                    # appended per second since the page last asked (None: first look)
                    "records_per_s": None
                    if before is None or seconds <= 0
                    else round(max(0, ends[name] - before) / seconds, 2),
                }
            )
        self._ends, self._ends_at = ends, now
        return out

    async def _groups(self) -> list[dict[str, Any]]:
        transport = self.worker.transport
        out = []
        for group in sorted(await transport.groups()):
            committed = await transport.committed(group)
            rows = []
            for tp, offset in sorted(committed.items()):
                try:
                    _, end = await transport.offsets(tp)
                except StreamsRuntimeError:
                    continue  # the topic was deleted
                rows.append(
                    {
                        "topic": tp.topic,
                        "partition": tp.partition,
                        "committed": offset,
                        "end": end,
                        "lag": max(0, end - offset),
                    }
                )
            out.append({"group": group, "lag": sum(r["lag"] for r in rows), "partitions": rows})
        return out

    def _agents(self, totals: dict[str, Any]) -> list[dict[str, Any]]:
        states = agent_states(self.worker)
        out = []
        for name, agent in sorted(self.worker.app.agents.items()):
            stats = totals["agents"].get(name, {})
            out.append(
                {
                    "name": name,
                    "topic": agent.source.name,
                    "concurrency": agent.concurrency,
                    "state": states.get(name, "stopped"),
                    "events": stats.get("events", 0),
                    "p99_ms": stats.get("p99_s", 0.0) * 1000,
                }
            )
        return out

    def _tables(self) -> list[dict[str, Any]]:
        sizes = self.metrics.snapshot.table_sizes
        out = []
        for name, table in sorted(self.worker.app.tables.items()):
            mine = [v for (t, _), v in sizes.items() if t == name]
            out.append(
                {
                    "name": name,
                    "windowed": table.windowed is not None,
                    "partitions": table.partition_count,
                    "partitions_here": len(table.partitions),
                    "keys": sum(k for k, _ in mine),
                    "bytes": sum(b for _, b in mine),
                }
            )
        return out

    def _recovery(self) -> dict[str, Any]:
        placement = self.worker.placement
        return {
            "recovered": [
                {
                    "topic": r.tp.topic,
                    "partition": r.tp.partition,
                    "records": r.records,
                    "seconds": r.seconds,
                }
                for r in placement.recoveries[-50:]
            ],
            "in_progress": [
                {"topic": tp.topic, "partition": tp.partition, "done": done, "total": total}
                for tp, (done, total) in sorted(placement.recovering.items())
            ],
        }


def _rate(a: tuple[float, int, int], b: tuple[float, int, int], i: int) -> float:
    seconds = b[0] - a[0]
    return round((b[i] - a[i]) / seconds, 2) if seconds > 0 else 0.0
