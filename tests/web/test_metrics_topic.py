"""Workers write their own metrics into a topic (App(metrics_topic=...)), and the
worker_metrics example aggregates them per worker and agent."""

from __future__ import annotations

import asyncio
import importlib
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest
from waiting import wait_until_async

import streams
from runtime.log.records import decode_batches
from runtime.types import TopicPartition
from streams.worker import Worker

ROOT = str(Path(__file__).resolve().parents[2])
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)  # `examples` is a directory of the repository, not installed

TIMEOUT_S = 20.0


async def metrics_records(worker: Worker, topic: str = "streams-metrics") -> list[dict[str, Any]]:
    if await worker.transport.topic(topic) is None:
        return []
    data = await worker.transport.fetch(TopicPartition(topic, 0), 0, max_wait_s=0)
    return [orjson.loads(r.value) for r in decode_batches(data)]


def test_a_worker_reports_its_metrics_into_the_topic(tmp_path: Path) -> None:
    app = streams.App("reporting", broker="memory://", metrics_interval_s=0.1)
    words = app.topic("words", partitions=2)

    @app.agent(words)
    async def count(stream: streams.Stream) -> None:
        async for _ in stream:
            pass

    async def main() -> None:
        async with Worker(app) as worker:
            for i in range(50):
                await words.send(key=f"k{i}", value=i)

            async def reported() -> dict[str, Any] | None:
                records = await metrics_records(worker)
                done = [r for r in records if r["events_in"] == 50 and r["lag"] == 0]
                return done[-1] if done else None

            record = await wait_until_async(reported, timeout_s=TIMEOUT_S, what="50 reported")
            assert record["app"] == "reporting" and record["web"] is None
            assert record["events_out"] == 50  # the sends, through the worker's producer
            assert record["interval_s"] > 0 and record["events_in_per_s"] >= 0
            figures = record["agents"]["count"]
            assert figures["events"] == 50 and figures["lag"] == 0
            assert 0 < figures["p99_s"] <= 5.0
            info = await worker.transport.topic("streams-metrics")
            assert info is not None and info.partitions == 1

    asyncio.run(main())


def test_no_metrics_topic_no_reporter(tmp_path: Path) -> None:
    app = streams.App("quiet", broker="memory://", metrics_topic=None)

    @app.agent(app.topic("t", partitions=1))
    async def idle(stream: streams.Stream) -> None:
        async for _ in stream:
            pass

    async def main() -> None:
        async with Worker(app) as worker:
            names = [task.get_name() for task in worker._tasks]
            assert "metrics" not in names and "commit" in names

    asyncio.run(main())


def test_the_metrics_interval_must_be_positive() -> None:
    with pytest.raises(streams.ConfigurationError, match="metrics_interval_s"):
        streams.App("bad", metrics_interval_s=0)


def test_the_example_aggregates_per_worker_and_agent(monkeypatch: pytest.MonkeyPatch) -> None:
    example = importlib.import_module("examples.worker_metrics")
    app = example.app
    monkeypatch.setattr(app, "broker", "memory://")
    monkeypatch.setattr(app, "timers", [])
    monkeypatch.setattr(app, "commit_interval_s", 0.05)
    monkeypatch.setattr(app, "metrics_interval_s", 0.1)

    async def main() -> None:
        async with Worker(app):
            # another app's worker, as it would write on a shared broker
            await example.reports.send(
                key="elsewhere:7",
                value={
                    "app": "surge",
                    "worker": "elsewhere:7",
                    "at": 1e10,
                    "agents": {"count_demand": {"events_per_s": 25.5, "lag": 3, "p99_s": 0.002}},
                },
            )

            def seen() -> bool:
                keys = set(example.health.keys())
                own = any(k.startswith("monitor/") and k.endswith("/aggregate") for k in keys)
                return own and "surge/elsewhere:7/count_demand" in keys

            await wait_until_async(seen, timeout_s=TIMEOUT_S, what="both workers aggregated")
            row = example.health["surge/elsewhere:7/count_demand"]
            assert row == {"events_per_s": 25.5, "lag": 3, "p99_ms": 2.0, "at": 1e10}
            lines = example.report_lines(1e10)
            shown = [line for line in lines if "surge/elsewhere:7/count_demand" in line]
            assert len(shown) == 1 and "25.5" in shown[0]

    asyncio.run(main())
