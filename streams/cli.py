"""The `streams` command: a thin layer over App, Worker and the transports."""

from __future__ import annotations

import asyncio
import importlib
import logging
import signal
import sys
import time
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from runtime.errors import StreamsRuntimeError
from runtime.log.records import decode_batches
from runtime.log.records import encode_batch as _encode_batch
from runtime.partitioner import partition_for_key
from runtime.transport import Transport, open_transport
from runtime.types import TopicPartition
from streams.cli_broker import broker
from streams.cli_users import users

logger = logging.getLogger("streams")

LOG_FORMAT = "[%(asctime)s] %(levelname)s %(name)s: %(message)s"


def load_app(spec: str) -> Any:
    """`package.module:attr` or `package.module` (its `app`)."""
    from streams.app import App

    module_name, _, attr = spec.partition(":")
    sys.path.insert(0, str(Path.cwd()))
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise click.BadParameter(f"cannot import {module_name!r}: {exc}", param_hint="-A") from exc
    app = getattr(module, attr or "app", None)
    if not isinstance(app, App):
        raise click.BadParameter(
            f"{spec!r} is not a streams.App (set -A module:attribute)", param_hint="-A"
        )
    return app


def setup_logging(level: str) -> None:
    logging.basicConfig(level=level.upper(), format=LOG_FORMAT, stream=sys.stderr)


def run_worker(app: Any, *, stop: asyncio.Event | None = None) -> int:
    """Run a worker until SIGINT/SIGTERM; returns the exit status."""
    from streams.worker import Worker

    async def main() -> int:
        stop_event = stop or asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop_event.set)
        try:
            async with Worker(app) as worker:
                await worker.run_until(stop_event)
        except StreamsRuntimeError as exc:
            logger.error("%s", exc)
            return 1
        except Exception as exc:
            logger.error("worker stopped by an error: %s", exc)
            return 1
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)
        return 0

    return asyncio.run(main())


class Context:
    def __init__(self, app_spec: str | None, app: Any = None) -> None:
        self._app_spec = app_spec
        self._app = app

    @property
    def app(self) -> Any:
        if self._app is None:
            if not self._app_spec:
                raise click.UsageError("this command needs an app: streams -A module:app ...")
            self._app = load_app(self._app_spec)
        return self._app

    def has_app(self) -> bool:
        return self._app is not None or bool(self._app_spec)

    def transport(self, broker: str | None, data: str | None) -> Transport:
        app = self.app if self.has_app() else None
        broker = broker or (app.broker if app else "log://")
        data_dir = data or (app.data_dir if app else "./streams-data")
        return open_transport(broker, data_dir=Path(data_dir) / "log")


def _with_transport(
    ctx: Context,
    broker: str | None,
    data: str | None,
    fn: Callable[[Transport], Coroutine[Any, Any, None]],
) -> None:
    async def run() -> None:
        transport = ctx.transport(broker, data)
        await transport.start()
        try:
            await fn(transport)
        finally:
            await transport.stop()

    try:
        asyncio.run(run())
    except (StreamsRuntimeError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc


broker_option = click.option("--broker", default=None, help="memory://, log://PATH or kafka://")
data_option = click.option("--data", default=None, help="data directory (default ./streams-data)")


@click.group()
@click.option("-A", "--app", "app_spec", default=None, help="the app: module or module:attr")
@click.pass_context
def cli(click_ctx: click.Context, app_spec: str | None) -> None:
    """streams: stream processing with a built-in, Kafka-compatible log."""
    if click_ctx.obj is None or not isinstance(click_ctx.obj, Context):
        click_ctx.obj = Context(app_spec, click_ctx.obj)


@cli.command()
@click.option("-l", "--loglevel", default="info", help="debug, info, warning, error")
@broker_option
@data_option
@click.option(
    "--processing-guarantee",
    type=click.Choice(["at_least_once", "exactly_once"]),
    default=None,
    envvar="STREAMS_PROCESSING_GUARANTEE",
    help="override the app's processing_guarantee",
)
@click.option(
    "--worker-name",
    default=None,
    envvar="STREAMS_WORKER_NAME",
    help="exactly_once: this worker's part of its transactional id (default: kept in --data)",
)
@click.pass_obj
def worker(
    ctx: Context,
    loglevel: str,
    broker: str | None,
    data: str | None,
    processing_guarantee: str | None,
    worker_name: str | None,
) -> None:
    """Run the app's agents, tables and timers until SIGINT/SIGTERM."""
    setup_logging(loglevel)
    app = ctx.app
    if broker:
        app.broker = broker
    if data:
        app.data_dir = data
    if processing_guarantee:
        app.set_processing_guarantee(processing_guarantee)
    if worker_name:
        app.worker_name = worker_name
    sys.exit(run_worker(app))


@cli.command()
@click.argument("topic")
@click.argument("value")
@click.option("-k", "--key", default=None)
@click.option("-p", "--partition", type=int, default=None)
@click.option("--partitions", type=int, default=8, help="partitions if the topic is created")
@broker_option
@data_option
@click.pass_obj
def send(
    ctx: Context,
    topic: str,
    value: str,
    key: str | None,
    partition: int | None,
    partitions: int,
    broker: str | None,
    data: str | None,
) -> None:
    """Send VALUE (as UTF-8 bytes) to TOPIC."""

    async def run(transport: Transport) -> None:
        info = await transport.ensure_topic(topic, partitions)
        key_bytes = key.encode() if key is not None else None
        if partition is None:
            p = partition_for_key(key_bytes, info.partitions) if key_bytes else 0
        else:
            p = partition
        if not 0 <= p < info.partitions:
            raise click.ClickException(f"topic {topic!r} has no partition {p}")
        batch = _encode_batch([(key_bytes, value.encode(), int(time.time() * 1000), ())])
        offset = await transport.append(TopicPartition(topic, p), batch)
        click.echo(f"{topic}[{p}]@{offset}")

    _with_transport(ctx, broker, data, run)


@cli.command()
@click.argument("topic")
@click.option("--from-beginning", is_flag=True, help="start at the earliest offset")
@click.option("-n", "--max-messages", type=int, default=None, help="stop after N records")
@click.option("--no-follow", is_flag=True, help="stop at the end instead of waiting")
@broker_option
@data_option
@click.pass_obj
def tail(
    ctx: Context,
    topic: str,
    from_beginning: bool,
    max_messages: int | None,
    no_follow: bool,
    broker: str | None,
    data: str | None,
) -> None:
    """Print TOPIC's records as they arrive (like tail -f)."""

    async def run(transport: Transport) -> None:
        info = await transport.topic(topic)
        if info is None:
            raise click.ClickException(f"unknown topic {topic!r}")
        positions: dict[TopicPartition, int] = {}
        for p in range(info.partitions):
            tp = TopicPartition(topic, p)
            start, end = await transport.offsets(tp)
            positions[tp] = start if from_beginning else end
        printed = 0
        while True:
            got = False
            for tp, position in positions.items():
                data_ = await transport.fetch(tp, position, max_wait_s=0)
                for r in decode_batches(data_):
                    if r.offset < position:
                        continue
                    ts = datetime.fromtimestamp(r.timestamp_ms / 1000, UTC).isoformat()
                    key = r.key.decode(errors="replace") if r.key is not None else ""
                    value = r.value.decode(errors="replace") if r.value is not None else "null"
                    click.echo(f"{tp.partition}\t{r.offset}\t{ts}\t{key}\t{value}")
                    positions[tp] = r.offset + 1
                    printed += 1
                    got = True
                    if max_messages is not None and printed >= max_messages:
                        return
            if not got:
                if no_follow:
                    return
                await asyncio.sleep(0.2)

    _with_transport(ctx, broker, data, run)


@cli.group(invoke_without_command=True)
@broker_option
@data_option
@click.pass_context
def topics(click_ctx: click.Context, broker: str | None, data: str | None) -> None:
    """List topics (or create/describe one)."""
    click_ctx.meta["broker"], click_ctx.meta["data"] = broker, data
    if click_ctx.invoked_subcommand is not None:
        return

    async def run(transport: Transport) -> None:
        for name, info in sorted((await transport.topics()).items()):
            policy = info.config.cleanup_policy
            click.echo(f"{name}\tpartitions={info.partitions}\tcleanup.policy={policy}")

    _with_transport(click_ctx.obj, broker, data, run)


@topics.command("create")
@click.argument("name")
@click.option("--partitions", type=int, default=8)
@click.option("--config", "configs", multiple=True, help="KEY=VALUE, e.g. cleanup.policy=compact")
@click.pass_context
def topics_create(
    click_ctx: click.Context, name: str, partitions: int, configs: tuple[str, ...]
) -> None:
    """Create topic NAME."""
    pairs = {}
    for item in configs:
        k, sep, v = item.partition("=")
        if not sep:
            raise click.BadParameter(f"{item!r} is not KEY=VALUE", param_hint="--config")
        pairs[k] = v

    async def run(transport: Transport) -> None:
        info = await transport.create_topic(name, partitions, pairs)
        click.echo(f"created {info.name} partitions={info.partitions}")

    meta = click_ctx.meta
    _with_transport(click_ctx.obj, meta.get("broker"), meta.get("data"), run)


@topics.command("describe")
@click.argument("name")
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

    meta = click_ctx.meta
    _with_transport(click_ctx.obj, meta.get("broker"), meta.get("data"), run)


@cli.command()
@click.pass_obj
def tables(ctx: Context) -> None:
    """The app's tables and their changelog topics."""
    for name, table in sorted(ctx.app.tables.items()):
        kind = "windowed " + repr(table.windowed.window) if table.windowed else "table"
        click.echo(
            f"{name}\t{kind}\tchangelog={table.changelog.name}"
            + (f"\t{table.help}" if table.help else "")
        )


@cli.command()
@click.pass_obj
def agents(ctx: Context) -> None:
    """The app's agents, their source topics and concurrency."""
    for name, agent in sorted(ctx.app.agents.items()):
        sinks = ",".join(getattr(s, "name", repr(s)) for s in agent.sinks)
        doc = (agent.__doc__ or "").strip().splitlines()
        click.echo(
            f"{name}\ttopic={agent.source.name}\tconcurrency={agent.concurrency}"
            + (f"\tsinks={sinks}" if sinks else "")
            + (f"\t{doc[0]}" if doc else "")
        )


cli.add_command(broker)
cli.add_command(users)


def main(obj: Any = None) -> None:
    cli(obj=obj)


@cli.command()
@click.argument("group", required=False)
@broker_option
@data_option
@click.pass_obj
def groups(ctx: Context, group: str | None, broker: str | None, data: str | None) -> None:
    """Consumer groups: members, their assignment, and lag per partition."""
    from runtime.client.consumer_protocol import decode_assignment

    async def run(transport: Transport) -> None:
        names = [group] if group else await transport.groups()
        if not names:
            click.echo("no groups")
        for name in names:
            describe = getattr(transport, "describe_group", None)
            info = await describe(name) if describe is not None else None
            state = info["group_state"] if info else "Empty"
            members = info["members"] if info else []
            click.echo(f"{name}\tstate={state}\tmembers={len(members)}")
            for m in members:
                assigned = ""
                if info and info["protocol_type"] == "consumer" and m["member_assignment"]:
                    tps = decode_assignment(bytes(m["member_assignment"])).partitions
                    assigned = " ".join(str(tp) for tp in sorted(tps))
                click.echo(
                    f"  member {m['member_id']} client={m['client_id']} "
                    f"host={m['client_host']} partitions: {assigned or '-'}"
                )
            committed = await transport.committed(name)
            if committed:
                click.echo("  topic\tpartition\tcommitted\tend\tlag")
            for tp, offset in sorted(committed.items()):
                try:
                    _, end = await transport.offsets(tp)
                except StreamsRuntimeError:
                    continue
                click.echo(f"  {tp.topic}\t{tp.partition}\t{offset}\t{end}\t{max(0, end - offset)}")

    _with_transport(ctx, broker, data, run)
