"""A worker's own metrics, written into a topic of the log like any other stream.

Every `App(metrics_interval_s=...)` seconds a worker sends one record to
`App(metrics_topic=...)` (default "streams-metrics"; None turns it off),
keyed by the worker's id, its value JSON:

    {"app": "surge", "worker": "host:pid", "web": "http://..." | null,
     "at": 1767225600.0, "interval_s": 5.0,
     "events_in": 5474, "events_out": 5810,            totals since start
     "events_in_per_s": 104.6, "events_out_per_s": 112.9,   over the interval
     "lag": 3,                                          events not processed yet
     "agents": {"count_demand": {"events": 1283, "events_per_s": 25.1,
                                 "lag": 1, "p99_s": 0.0005, "mean_s": 0.0001}}}

so that an agent, kcat or the REST proxy can aggregate workers' health (see
examples/worker_metrics.py). The topic is created at the first write, with one
partition unless the app declares it. A write the log refuses stops the worker
like any other (a full disk); a broker that is away only delays the next one.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from typing import TYPE_CHECKING, Any

from runtime.errors import StreamsRuntimeError
from runtime.types import TopicPartition
from streams.conductor import declare_topic
from streams.topic import Topic
from streams.web.metrics import WorkerMetrics

if TYPE_CHECKING:
    from streams.worker import Worker

logger = logging.getLogger(__name__)


class MetricsReporter:
    def __init__(self, worker: Worker, metrics: WorkerMetrics | None = None) -> None:
        app = worker.app
        if app.metrics_topic is None:
            raise ValueError("the app has no metrics topic")
        self.worker = worker
        self.metrics = metrics or WorkerMetrics(worker)
        self.interval_s = app.metrics_interval_s
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}"
        self.topic = app.topics.get(app.metrics_topic) or Topic(
            app.wiring, app.metrics_topic, key_type=str, partitions=1
        )
        self._declared = False
        self._last: tuple[float, int, int, dict[str, int]] | None = None

    async def run(self) -> None:
        """Report every interval until cancelled."""
        self._last = self._counts(time.monotonic())
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                await self.report()
            except (StreamsRuntimeError, OSError) as exc:
                if getattr(exc, "errno", None) is not None:
                    raise  # the log refused a write: like every other write, it stops us
                logger.warning("metrics not written this time: %s", exc)

    async def report(self) -> dict[str, Any]:
        if not self._declared:
            await declare_topic(self.worker.transport, self.topic)
            self._declared = True
        record = await self.record()
        self.topic.send_soon(key=self.worker_id, value=record)
        return record

    async def record(self) -> dict[str, Any]:
        """The metrics record for the interval since the last one."""
        worker = self.worker
        snapshot = await self.metrics.refresh(force=True)
        now = time.monotonic()
        counts = self._counts(now)
        last = self._last or counts
        self._last = counts
        seconds = max(now - last[0], 1e-9)
        totals = self.metrics.totals()
        agents = {}
        for name, stats in totals["agents"].items():
            done = counts[3].get(name, 0) - last[3].get(name, 0)
            agents[name] = {
                "events": stats["events"],
                "events_per_s": round(done / seconds, 3),
                "lag": _agent_lag(worker, name, snapshot.lag),
                "p99_s": stats["p99_s"],
                "mean_s": stats["mean_s"],
            }
        return {
            "app": worker.app.id,
            "worker": self.worker_id,
            "web": worker.web.url if worker.web is not None else None,
            "at": time.time(),
            "interval_s": round(seconds, 3),
            "events_in": counts[1],
            "events_out": counts[2],
            "events_in_per_s": round((counts[1] - last[1]) / seconds, 3),
            "events_out_per_s": round((counts[2] - last[2]) / seconds, 3),
            "lag": totals["lag"],
            "agents": agents,
        }

    def _counts(self, now: float) -> tuple[float, int, int, dict[str, int]]:
        worker = self.worker
        events_in = sum(worker.conductor.events_in.values()) if worker.conductor else 0
        events_out = sum(worker.producer.records_out.values()) if worker.producer else 0
        per_agent = {name: stats.count for name, stats in worker.agent_stats.items()}
        return (now, events_in, events_out, per_agent)


def _agent_lag(worker: Worker, name: str, lag: dict[TopicPartition, int]) -> int:
    """The lag of the agent's source topic and of its own repartition topics."""
    agent = worker.app.agents.get(name)
    if agent is None:
        return 0
    own = f"{worker.app.id}-{name}-"
    return sum(
        n for tp, n in lag.items() if tp.topic == agent.source.name or tp.topic.startswith(own)
    )
