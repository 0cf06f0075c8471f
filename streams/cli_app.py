"""`streams tables` and `streams agents`: what the app declares, and (where the
log is at hand) how much each table's changelog holds."""

from __future__ import annotations

import click

from runtime.shared_log import log_directory
from runtime.transport import Transport
from streams.cli_common import Context, common_options, with_transport


@click.command()
@common_options
@click.pass_obj
def tables(ctx: Context) -> None:
    """The app's tables, their changelog topics and how many records those hold."""
    app = ctx.app
    rows = sorted(app.tables.items())
    sizes: dict[str, int] = {}

    async def run(transport: Transport) -> None:
        for _, table in rows:
            info = await transport.topic(table.changelog.name)
            if info is None:
                continue
            total = 0
            for tp in table.changelog.tps()[: info.partitions]:
                start, end = await transport.offsets(tp)
                total += end - start
            sizes[table.name] = total

    directory = log_directory(ctx.broker_url(), ctx.log_dir())
    if directory is None or directory.is_dir():  # never creates a data directory
        try:
            with_transport(ctx, run, read_only=True)
        except click.ClickException as exc:  # the app's declarations are still worth a list
            click.echo(f"changelog sizes unknown: {exc.format_message()}", err=True)
    for name, table in rows:
        kind = "windowed " + repr(table.windowed.window) if table.windowed else "table"
        size = f"\tchangelog_records={sizes[name]}" if name in sizes else ""
        click.echo(
            f"{name}\t{kind}\tchangelog={table.changelog.name}{size}"
            + (f"\t{table.help}" if table.help else "")
        )


@click.command()
@common_options
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
