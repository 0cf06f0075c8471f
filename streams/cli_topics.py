"""`streams topics`: list, create, describe, delete and alter topics.

On log:// (and a worker's shared log, reached over kafka://) and on any
Kafka-protocol broker alike; alter is done on the Log in this process, and
over kafka:// with CreatePartitions and IncrementalAlterConfigs, which a
broker may refuse (the error names the API).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import click

from runtime.transport import EmbeddedTransport, Transport
from runtime.types import TopicPartition
from streams.cli_common import common_options, context_of, parse_pairs, with_transport
from streams.partition_check import PartitionMismatch, PartitionMismatchError, check_partitions
from streams.topic_plan import app_topics, plan_lines, spec

if TYPE_CHECKING:
    from runtime.log.config import TopicInfo
    from streams.app import App


@click.group(invoke_without_command=True)
@common_options
@click.pass_context
def topics(click_ctx: click.Context) -> None:
    """List topics (or create, describe, alter, delete one)."""
    if click_ctx.invoked_subcommand is not None:
        return

    async def run(transport: Transport) -> None:
        found = await transport.topics()
        if not found:
            click.echo("no topics", err=True)
        for name, info in sorted(found.items()):
            policy = info.config.cleanup_policy
            click.echo(f"{name}\tpartitions={info.partitions}\tcleanup.policy={policy}")

    with_transport(context_of(click_ctx), run, read_only=True)


@topics.command("create")
@click.argument("name", required=False)
@click.option("--partitions", type=click.IntRange(min=1), default=8, show_default=True)
@click.option("--config", "configs", multiple=True, help="KEY=VALUE, e.g. cleanup.policy=compact")
@click.option("--dry-run", is_flag=True, help="print the plan, create nothing")
@common_options
@click.pass_context
def topics_create(
    click_ctx: click.Context,
    name: str | None,
    partitions: int,
    configs: tuple[str, ...],
    dry_run: bool,
) -> None:
    """Create topic NAME; without NAME, every topic the app (-A) needs."""
    pairs = parse_pairs(configs, "--config")
    ctx = context_of(click_ctx)

    async def run(transport: Transport) -> None:
        existing = await transport.topics()
        specs = [spec(name, partitions, pairs)] if name else app_topics(ctx.app, existing)
        wrong = [] if name else app_mismatches(ctx.app, existing, transport)
        if dry_run:
            for line in plan_lines(specs, existing, ctx.broker_url(), wrong):
                click.echo(line)
        if wrong:
            raise click.ClickException(str(PartitionMismatchError(wrong, ctx.broker_url())))
        if dry_run:
            return
        for s in specs:
            if not name and (info := await transport.topic(s.name)) is not None:
                click.echo(f"exists {info.name} partitions={info.partitions}")
                continue
            info = await transport.create_topic(s.name, s.partitions, dict(s.configs))
            click.echo(f"created {info.name} partitions={info.partitions}")

    with_transport(ctx, run, read_only=dry_run)


@topics.command("describe")
@click.argument("name")
@common_options
@click.pass_context
def topics_describe(click_ctx: click.Context, name: str) -> None:
    """Configs and per-partition offsets of topic NAME."""

    async def run(transport: Transport) -> None:
        info = await transport.topic(name)
        if info is None:
            raise click.ClickException(f"unknown topic {name!r}")
        click.echo(f"{info.name}\tpartitions={info.partitions}")
        for k, v in sorted(info.config.to_configs().items()):
            click.echo(f"  {k}={v}")
        click.echo("  partition\tlog_start\thigh_watermark")
        for p in range(info.partitions):
            start, end = await transport.offsets(TopicPartition(name, p))
            click.echo(f"  {p}\t{start}\t{end}")

    with_transport(context_of(click_ctx), run, read_only=True)


@topics.command("delete")
@click.argument("names", nargs=-1, required=True)
@common_options
@click.pass_context
def topics_delete(click_ctx: click.Context, names: tuple[str, ...]) -> None:
    """Delete the topics NAMES and their records."""

    async def run(transport: Transport) -> None:
        for name in names:
            if name.startswith("__"):
                raise click.ClickException(f"{name!r} is the log's own topic: not deleted")
            if await transport.topic(name) is None:
                raise click.ClickException(f"unknown topic {name!r}")
        for name in names:
            await transport.delete_topic(name)
            click.echo(f"deleted {name}")

    with_transport(context_of(click_ctx), run, read_only=True)


@topics.command("alter")
@click.argument("name")
@click.option("--partitions", type=click.IntRange(min=1), default=None, help="new count (only up)")
@click.option("--config", "configs", multiple=True, help="KEY=VALUE to set (repeatable)")
@common_options
@click.pass_context
def topics_alter(
    click_ctx: click.Context, name: str, partitions: int | None, configs: tuple[str, ...]
) -> None:
    """Add partitions to topic NAME or set its configs."""
    pairs = parse_pairs(configs, "--config")
    if partitions is None and not pairs:
        raise click.UsageError("nothing to alter: give --partitions N or --config KEY=VALUE")

    async def run(transport: Transport) -> None:
        info = await transport.topic(name)
        if info is None:
            raise click.ClickException(f"unknown topic {name!r}")
        if partitions is not None and partitions < info.partitions:
            raise click.ClickException(
                f"topic {name!r} has {info.partitions} partitions: they can be added, "
                "not removed (the keys of every partition would move)"
            )
        await alter_topic(transport, name, partitions, pairs)
        after = await transport.topic(name)
        assert after is not None
        changed = " ".join(f"{k}={v}" for k, v in sorted(pairs.items()))
        click.echo(f"altered {name} partitions={after.partitions} {changed}".rstrip())

    with_transport(context_of(click_ctx), run, read_only=True)


async def alter_topic(
    transport: Transport, name: str, partitions: int | None, configs: dict[str, str]
) -> None:
    if isinstance(transport, EmbeddedTransport):
        transport.log.alter_topic(name, partitions=partitions, configs=configs)
        return
    from runtime.client.admin_changes import alter_topic_configs, create_partitions

    cluster = transport.cluster  # type: ignore[attr-defined]
    if configs:
        await alter_topic_configs(cluster, name, configs)
    info = await transport.topic(name)
    if partitions is not None and info is not None and partitions > info.partitions:
        await create_partitions(cluster, name, partitions)


def app_mismatches(
    app: App, existing: Mapping[str, TopicInfo], transport: Transport
) -> list[PartitionMismatch]:
    """The partition counts the app cannot run on; its sources must match each
    other where several workers share them (a kafka:// cluster)."""
    copartitioned = hasattr(transport, "cluster") and bool(app.agents)
    return check_partitions(app, existing, copartitioned=copartitioned)
