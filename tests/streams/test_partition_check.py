"""Partition counts of topics that exist: a declared count must match, an
internal topic must have the app's count, co-partitioned sources the same as
each other; every mismatch in one error, before the worker creates anything,
and in `streams topics create --dry-run`."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from click.testing import CliRunner

import streams
from runtime.log import Log
from runtime.log.config import TopicConfig, TopicInfo
from runtime.transport import EmbeddedTransport
from streams.cli import cli
from streams.conductor import declare_topic
from streams.partition_check import PartitionMismatchError, Why, check_partitions
from streams.topic import Topic
from streams.worker import Worker

APPS = Path(__file__).parent / "apps"


def _app(url: str, tmp_path: Path) -> streams.App:
    app = streams.App("pc", broker=url, data_dir=str(tmp_path / "data"))
    orders = app.topic("pc-orders", key_type=str, value_type=int, partitions=4)
    clicks = app.topic("pc-clicks", key_type=str, value_type=int)  # adopts what exists
    app.topic("pc-out", value_type=int, partitions=6)
    counts = app.Table("counts", default=int)
    app.Table("totals", default=int, partitions=4)

    @app.agent(orders)
    async def count(stream):
        async for event in stream.events():
            counts[event.key] += 1

    @app.agent(clicks)
    async def click(stream):
        async for event in stream.events():
            counts[event.key] += 1

    return app


def _exists(**counts: int) -> dict[str, TopicInfo]:
    return {
        name.replace("_", "-"): TopicInfo(name.replace("_", "-"), n, TopicConfig())
        for name, n in counts.items()
    }


def test_every_mismatch_is_found_and_what_is_not_declared_adopts(tmp_path):
    app = _app("memory://", tmp_path)
    existing = _exists(
        pc_orders=4, pc_clicks=2, pc_out=2, pc_counts_changelog=8, pc_totals_changelog=4
    )
    found = {m.topic: m for m in check_partitions(app, existing, copartitioned=True)}
    assert {(m.topic, m.expected, m.actual, m.why) for m in found.values()} == {
        ("pc-out", 6, 2, Why.DECLARED),
        ("pc-clicks", 4, 2, Why.COPARTITIONED),
        ("pc-counts-changelog", 4, 8, Why.INTERNAL),
    }
    assert "alter pc-out --partitions 6" in found["pc-out"].remedy("kafka://k:9092")
    assert "delete pc-counts-changelog" in found["pc-counts-changelog"].remedy(None)
    # one worker on log:// reads each source on its own: only tables and declarations count
    alone = check_partitions(app, existing, copartitioned=False)
    assert {m.topic for m in alone} == {"pc-out", "pc-counts-changelog"}
    # sources that agree, and topics not there yet: nothing to say
    assert check_partitions(app, _exists(pc_orders=4, pc_clicks=4), copartitioned=True) == []
    assert check_partitions(app, {}, copartitioned=True) == []


def test_a_worker_on_a_cluster_stops_listing_every_mismatch(mock_cluster, tmp_path):
    for name, partitions in (("pc-orders", 4), ("pc-clicks", 2), ("pc-counts-changelog", 3)):
        mock_cluster.create_topic(name, partitions)
    app = _app(mock_cluster.url, tmp_path)

    async def main() -> PartitionMismatchError:
        with pytest.raises(PartitionMismatchError) as caught:
            async with Worker(app):
                pass
        return caught.value

    error = asyncio.run(main())
    assert {(m.topic, m.expected, m.actual) for m in error.mismatches} == {
        ("pc-clicks", 4, 2),
        ("pc-counts-changelog", 4, 3),
    }
    text = str(error)
    assert text.startswith(f"2 topic(s) on {mock_cluster.url} have partition counts")
    assert f"streams topics --broker {mock_cluster.url} alter pc-clicks --partitions 4" in text
    assert "kafka-topics --alter --topic pc-clicks --partitions 4" in text


def test_a_worker_on_a_log_catalog_stops_before_creating_anything(tmp_path):
    path = tmp_path / "log"
    with Log.open(path) as log:
        log.create_topic("pc-totals-changelog", 2, {"cleanup.policy": "compact"})
    app = _app(f"log://{path}", tmp_path)

    async def main() -> PartitionMismatchError:
        with pytest.raises(PartitionMismatchError) as caught:
            async with Worker(app):
                pass
        return caught.value

    error = asyncio.run(main())
    [mismatch] = error.mismatches
    assert (mismatch.topic, mismatch.expected, mismatch.actual) == ("pc-totals-changelog", 4, 2)
    assert "declared with partitions=4" in str(error)
    with Log.open(path) as log:
        assert not any(name.startswith("pc-") for name in log.topics() if "totals" not in name)


def test_a_repartition_topic_with_another_count_is_refused(tmp_path):
    async def main() -> None:
        async with EmbeddedTransport("memory://", None) as transport:
            await transport.create_topic("pc-count-zone-repartition", 2)
            app = streams.App("pc", broker="memory://")
            topic = Topic(app.wiring, "pc-count-zone-repartition", partitions=4, internal=True)
            with pytest.raises(PartitionMismatchError, match="has 2 partitions, needs 4"):
                await declare_topic(transport, topic)
            fine = Topic(app.wiring, "pc-other-repartition", partitions=4, internal=True)
            await declare_topic(transport, fine)  # created with its count

    asyncio.run(main())


def test_the_dry_run_shows_the_mismatch_and_fails(monkeypatch, tmp_path):
    monkeypatch.syspath_prepend(str(APPS))
    data = str(tmp_path)
    runner = CliRunner()
    made = runner.invoke(
        cli, ["topics", "--data", data, "create", "counter-counts-changelog", "--partitions", "3"]
    )
    assert made.exit_code == 0, made.output
    args = ["-A", "count_app", "topics", "--data", data, "create", "--dry-run"]
    plan = runner.invoke(cli, args)
    assert plan.exit_code == 1, plan.output
    assert (
        "wrong   counter-counts-changelog: has 3 partitions, needs 8 (the changelog of "
        "table counts, declared with partitions=8)"
    ) in plan.output
    assert "        fix: declare it with partitions=3, or add partitions: " in plan.output
    assert "create  streams topics --broker log://" in plan.output  # the rest of the plan
    created = runner.invoke(cli, args[:-1])
    assert created.exit_code == 1  # creates nothing either
    assert "counter-dead-letters" not in runner.invoke(cli, ["topics", "--data", data]).output
