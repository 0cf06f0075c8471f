"""`streams groups`: consumer groups, their members and lag; resetting and
deleting their committed offsets (as kafka-consumer-groups.sh does).

Offsets of a group are reset or deleted only while it has no members: a
member would overwrite them at its next commit. A log:// worker commits for
its app without joining through the broker; its shared log's address file
names that group, which is then refused as well while the worker runs.
"""

from __future__ import annotations

from typing import Any

import click

from runtime.shared_log import SharedAddress, live_address, log_directory
from runtime.transport import EmbeddedTransport, Transport
from runtime.types import TopicPartition
from streams.cli_common import Context, common_options, context_of, with_transport

INACTIVE_STATES = ("Empty", "Dead")


class _GroupsCommand(click.Group):
    """`streams groups NAME` is `streams groups describe NAME`."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        index = _first_positional(args)
        if index is not None and args[index] not in self.commands:
            args = [*args[:index], "describe", *args[index:]]
        return super().parse_args(ctx, args)


_VALUED = ("-A", "--app", "--broker", "--data")


def _first_positional(args: list[str]) -> int | None:
    skip = False
    for i, arg in enumerate(args):
        if skip:
            skip = False
        elif arg in _VALUED:
            skip = True
        elif arg == "--":
            return i + 1 if i + 1 < len(args) else None
        elif not arg.startswith("-"):
            return i
    return None


@click.group(cls=_GroupsCommand, invoke_without_command=True)
@common_options
@click.pass_context
def groups(click_ctx: click.Context) -> None:
    """Consumer groups: members, their assignment, and lag per partition."""
    if click_ctx.invoked_subcommand is None:
        _describe(context_of(click_ctx), None)


@groups.command("describe")
@click.argument("group")
@common_options
@click.pass_context
def groups_describe(click_ctx: click.Context, group: str) -> None:
    """GROUP's state, members and lag (`streams groups GROUP` for short)."""
    _describe(context_of(click_ctx), group)


def _describe(ctx: Context, group: str | None) -> None:
    async def run(transport: Transport) -> None:
        names = [group] if group else await transport.groups()
        if not names:
            click.echo("no groups")
        owner = _owner(ctx)
        for name in names:
            await _print_group(transport, name)
            if owner is not None and name in owner.groups:
                click.echo(f"  committed by the worker running on this log (pid {owner.pid})")

    with_transport(ctx, run, read_only=True)


async def _print_group(transport: Transport, name: str) -> None:
    from runtime.client.consumer_protocol import decode_assignment

    info = await _describe_group(transport, name)
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
        except Exception:  # a topic deleted since: its offsets stay until the group goes
            continue
        click.echo(f"  {tp.topic}\t{tp.partition}\t{offset}\t{end}\t{max(0, end - offset)}")


async def _describe_group(transport: Transport, name: str) -> dict[str, Any] | None:
    describe = getattr(transport, "describe_group", None)
    return await describe(name) if describe is not None else None


def _owner(ctx: Context) -> SharedAddress | None:
    """The worker serving the log:// directory the options name, if one runs."""
    directory = log_directory(ctx.broker_url(), ctx.log_dir())
    return live_address(directory) if directory is not None else None


async def _refuse_if_active(ctx: Context, transport: Transport, group: str) -> None:
    directory = log_directory(ctx.broker_url(), ctx.log_dir())
    owner = _owner(ctx)
    if owner is not None and group in owner.groups:
        raise click.ClickException(
            f"group {group!r} is the group of the worker running on {directory} "
            f"(pid {owner.pid}): stop it first"
        )
    info = await _describe_group(transport, group)
    if info is not None and info["group_state"] not in INACTIVE_STATES:
        raise click.ClickException(
            f"group {group!r} is {info['group_state']} with {len(info['members'])} member(s): "
            "offsets can be changed only while it has none"
        )


@groups.command("reset-offsets")
@click.argument("group")
@click.option("--to-earliest", "to", flag_value="earliest", help="each partition's log start")
@click.option("--to-latest", "to", flag_value="latest", help="each partition's end")
@click.option("--to-offset", type=click.IntRange(min=0), default=None, help="offset N")
@click.option("--shift-by", type=int, default=None, help="N forward (or -N back) from committed")
@click.option("-t", "--topic", "topic_names", multiple=True, help="only TOPIC (repeatable)")
@click.option("--dry-run", is_flag=True, help="show the new offsets, change nothing")
@common_options
@click.pass_context
def groups_reset_offsets(
    click_ctx: click.Context,
    group: str,
    to: str | None,
    to_offset: int | None,
    shift_by: int | None,
    topic_names: tuple[str, ...],
    dry_run: bool,
) -> None:
    """Move GROUP's committed offsets (of TOPIC, or of every topic it has some for)."""
    chosen = [x for x in (to, to_offset, shift_by) if x is not None]
    if len(chosen) != 1:
        raise click.UsageError(
            "give exactly one of --to-earliest, --to-latest, --to-offset N, --shift-by N"
        )
    ctx = context_of(click_ctx)

    async def run(transport: Transport) -> None:
        await _refuse_if_active(ctx, transport, group)
        committed = await transport.committed(group)
        tps = await _partitions(transport, topic_names, committed)
        if not tps:
            raise click.ClickException(f"group {group!r} has no offsets: name a --topic")
        new: dict[TopicPartition, int] = {}
        click.echo("topic\tpartition\tcurrent\tnew")
        for tp in tps:
            low, high = await transport.offsets(tp)
            current = committed.get(tp)
            if to == "earliest":
                target = low
            elif to == "latest":
                target = high
            elif to_offset is not None:
                target = to_offset
            else:
                assert shift_by is not None
                target = (low if current is None else current) + shift_by
            new[tp] = min(max(low, target), high)
            shown = "-" if current is None else str(current)
            click.echo(f"{tp.topic}\t{tp.partition}\t{shown}\t{new[tp]}")
        if dry_run:
            click.echo("dry run: nothing changed", err=True)
            return
        await transport.commit(group, new)

    with_transport(ctx, run, read_only=True)


async def _partitions(
    transport: Transport, topic_names: tuple[str, ...], committed: dict[TopicPartition, int]
) -> list[TopicPartition]:
    if not topic_names:
        return sorted(committed)
    tps = []
    for name in topic_names:
        info = await transport.topic(name)
        if info is None:
            raise click.ClickException(f"unknown topic {name!r}")
        tps.extend(TopicPartition(name, p) for p in range(info.partitions))
    return tps


@groups.command("delete")
@click.argument("names", nargs=-1, required=True)
@common_options
@click.pass_context
def groups_delete(click_ctx: click.Context, names: tuple[str, ...]) -> None:
    """Delete the groups NAMES (their committed offsets); only groups with no members."""
    ctx = context_of(click_ctx)

    async def run(transport: Transport) -> None:
        known = set(await transport.groups())
        for name in names:
            if name not in known:
                raise click.ClickException(f"unknown group {name!r}")
            await _refuse_if_active(ctx, transport, name)
        for name in names:
            if isinstance(transport, EmbeddedTransport):
                transport.offset_store.delete_group(name)
            else:
                from runtime.client.admin_changes import delete_groups

                await delete_groups(transport.cluster, [name])  # type: ignore[attr-defined]
            click.echo(f"deleted group {name}")

    with_transport(ctx, run, read_only=True)
