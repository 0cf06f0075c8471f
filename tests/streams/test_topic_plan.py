"""Topics that operations created: a worker on a cluster that lets it create no
topics (librdkafka's mock cluster has no CreateTopics) checks the topics it needs
and stops with one error listing those missing with the commands that create
them; `streams topics create --dry-run` prints that plan beforehand."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from click.testing import CliRunner

import streams
from streams.cli import cli
from streams.topic_plan import MissingTopicsError
from streams.worker import Worker

APPS = Path(__file__).parent / "apps"


def _app(url: str, tmp_path: Path) -> streams.App:
    app = streams.App("ops", broker=url, data_dir=str(tmp_path / "data"))
    source = app.topic("ops-events", key_type=str, value_type=int, partitions=4)
    counts = app.Table("counts", default=int)

    @app.agent(source)
    async def count(stream):
        async for event in stream.events():
            counts[event.key] += 1

    return app


def test_a_worker_that_may_create_no_topics_lists_every_missing_one(mock_cluster, tmp_path):
    mock_cluster.create_topic("ops-events", 4)  # created by operations; the changelog is not
    app = _app(mock_cluster.url, tmp_path)

    async def main():
        with pytest.raises(MissingTopicsError) as caught:
            async with Worker(app):
                pass
        return caught.value

    error = asyncio.run(main())
    # the changelog, and the dead-letter topic of the default on_decode_error
    assert sorted(s.name for s in error.missing) == ["ops-counts-changelog", "ops-dead-letters"]
    text = str(error)
    assert "the cluster serves no CreateTopics" in text
    assert (
        f"streams topics --broker {mock_cluster.url} create ops-counts-changelog "
        "--partitions 4 --config cleanup.policy=compact"
    ) in text
    assert "ops-events" not in text


def test_the_dry_run_prints_the_plan_and_creates_nothing(monkeypatch, tmp_path):
    monkeypatch.syspath_prepend(str(APPS))
    data = str(tmp_path)
    runner = CliRunner()
    created = runner.invoke(
        cli, ["topics", "--data", data, "create", "events", "--partitions", "8"]
    )
    assert created.exit_code == 0, created.output
    args = ["-A", "count_app", "topics", "--data", data, "create", "--dry-run"]
    plan = runner.invoke(cli, args, catch_exceptions=False)
    assert plan.exit_code == 0, plan.output
    lines = plan.output.strip().splitlines()
    assert "exists  events partitions=8" in lines
    creates = [line for line in lines if line.startswith("create  streams topics --broker log://")]
    # the changelog, the default on_decode_error's dead letters, agent.ask()'s replies
    assert len(creates) == 3
    assert any(
        line.endswith(
            "create counter-counts-changelog --partitions 8 --config cleanup.policy=compact"
        )
        for line in creates
    )
    assert any(line.endswith("create counter-dead-letters --partitions 1") for line in creates)
    assert any(
        line.endswith("create counter-replies --partitions 1 --config retention.ms=3600000")
        for line in creates
    )
    listing = runner.invoke(cli, ["topics", "--data", data])
    assert "counter-counts-changelog" not in listing.output  # nothing was created
    done = runner.invoke(cli, args[:-1], catch_exceptions=False)
    assert done.exit_code == 0, done.output
    assert "exists events partitions=8" in done.output
    assert "created counter-counts-changelog partitions=8" in done.output
