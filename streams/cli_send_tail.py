"""`streams send` and `streams tail`: write records into a topic, follow one.

Keys and values are encoded and shown as cli_formats.py says: with `-A`, in
the app's codecs for the topics it declares; else as --key-format and
--value-format say (str by default).
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
import orjson

from runtime.log.records import Header, decode_batches, encode_batch
from runtime.partitioner import partition_for_key
from runtime.transport import Transport
from runtime.types import TopicPartition
from streams.cli_common import Context, common_options, parse_pairs, with_transport
from streams.cli_formats import (
    FORMATS,
    Decode,
    Encode,
    FormatError,
    app_encoder,
    as_json,
    as_text,
    text_encoder,
)

SEND_BATCH_RECORDS = 500  # records per append when sending lines
FOLLOW_WAIT_S = 0.5  # a fetch's long poll while following


def _app_topic(ctx: Context, name: str) -> Any:
    return ctx.app.topics.get(name) if ctx.has_app() else None


def _encoders(
    ctx: Context, topic: str, key_format: str | None, value_format: str | None
) -> tuple[Encode, Encode]:
    declared = _app_topic(ctx, topic)
    if declared is not None:
        key = app_encoder(declared.key_type, declared.key_codec)
        value = app_encoder(declared.value_type, declared.value_codec)
    else:
        key = value = text_encoder("str")
    if key_format is not None:
        key = text_encoder(key_format)
    if value_format is not None:
        value = text_encoder(value_format)
    return key, value


def _lines(value: str | None, file: str | None) -> tuple[Iterable[str], int | None]:
    """The values to send, and how many there are (None: unknown, for stdin)."""
    if file is not None:
        text = Path(file).read_text(encoding="utf-8", errors="surrogateescape")
        lines = text.splitlines()
        return lines, len(lines)
    if value == "-":
        return (line.rstrip("\r\n") for line in sys.stdin), None
    assert value is not None
    return [value], 1


@click.command()
@click.argument("topic")
@click.argument("value", required=False)
@click.option("-k", "--key", default=None, help="the key of every record sent")
@click.option(
    "--key-separator",
    default=None,
    help="each line is KEY<SEP>VALUE (like kcat -K); without it --key keys every line",
)
@click.option(
    "-p",
    "--partition",
    type=click.IntRange(min=0),
    default=None,
    help="the partition (default: the key's, else 0)",
)
@click.option("-H", "--header", "headers", multiple=True, help="KEY=VALUE header (repeatable)")
@click.option(
    "--key-format",
    type=click.Choice(FORMATS),
    default=None,
    help="str: UTF-8 text; raw: the bytes as given; json: a JSON value (`r2` is stored "
    'as "r2"). Default: the app\'s key codec with -A, else str',
)
@click.option("--value-format", type=click.Choice(FORMATS), default=None, help="as --key-format")
@click.option(
    "--file",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="send each line of FILE as a value (progress shown)",
)
@click.option(
    "--partitions",
    type=click.IntRange(min=1),
    default=8,
    show_default=True,
    help="partitions if the topic is created",
)
@common_options
@click.pass_obj
def send(
    ctx: Context,
    topic: str,
    value: str | None,
    key: str | None,
    key_separator: str | None,
    partition: int | None,
    headers: tuple[str, ...],
    key_format: str | None,
    value_format: str | None,
    file: str | None,
    partitions: int,
) -> None:
    """Send VALUE to TOPIC; VALUE `-` sends each line of standard input."""
    if (value is None) == (file is None):
        raise click.UsageError("give VALUE (or - for standard input) or --file, not both")
    encode_key, encode_value = _encoders(ctx, topic, key_format, value_format)
    header_list: tuple[Header, ...] = tuple(
        (k, v.encode()) for k, v in parse_pairs(headers, "-H").items()
    )
    lines, count = _lines(value, file)

    def record(line: str) -> tuple[bytes | None, bytes]:
        key_text = key
        if key_separator is not None:
            key_text, sep, line = line.partition(key_separator)
            if not sep:
                raise FormatError(f"line {line!r} has no key separator {key_separator!r}")
        try:
            key_bytes = encode_key(key_text) if key_text is not None else None
        except FormatError as exc:
            raise FormatError(f"key: {exc}") from exc
        try:
            return key_bytes, encode_value(line)
        except FormatError as exc:
            raise FormatError(f"value: {exc}") from exc

    async def run(transport: Transport) -> None:
        info = await transport.ensure_topic(topic, partitions)
        if partition is not None and partition >= info.partitions:
            raise click.ClickException(f"topic {topic!r} has no partition {partition}")
        show = count is not None and count > 1
        with _progress(count if show else None, f"sending to {topic}") as advance:
            for chunk in _chunks(lines, SEND_BATCH_RECORDS):
                by_partition: dict[int, list] = {}
                for line in chunk:
                    k, v = record(line)
                    p = partition
                    if p is None:
                        p = partition_for_key(k, info.partitions) if k else 0
                    ts = int(time.time() * 1000)
                    by_partition.setdefault(p, []).append((k, v, ts, header_list))
                for p, records in sorted(by_partition.items()):
                    offset = await transport.append(TopicPartition(topic, p), encode_batch(records))
                    if not show:
                        for i in range(len(records)):
                            click.echo(f"{topic}[{p}]@{offset + i}")
                advance(len(chunk))

    try:
        with_transport(ctx, run)
    except FormatError as exc:
        raise click.ClickException(str(exc)) from exc


def _chunks(lines: Iterable[str], size: int) -> Iterator[list[str]]:
    chunk: list[str] = []
    for line in lines:
        chunk.append(line)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


class _progress:
    """click's progress bar on stderr for `count` items; nothing for None."""

    def __init__(self, count: int | None, label: str) -> None:
        self._bar = click.progressbar(length=count, label=label, file=sys.stderr) if count else None

    def __enter__(self) -> Any:
        if self._bar is None:
            return lambda n: None
        bar = self._bar.__enter__()
        return bar.update

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.__exit__(*exc)


# --- tail --------------------------------------------------------------------------


def _either(first: Decode | None, second: Decode) -> Decode:
    if first is None:
        return second

    def load(data: bytes) -> Any:
        try:
            return first(data)
        except Exception:
            return second(data)

    return load


def parse_offset(text: str) -> str | int:
    """`beginning`, `end`, N (an offset) or -N (N before the end)."""
    lowered = text.strip().lower()
    if lowered in ("beginning", "end"):
        return lowered
    try:
        return int(lowered)
    except ValueError:
        raise click.BadParameter(
            f"{text!r}: expected beginning, end, N or -N", param_hint="--offset"
        ) from None


@click.command()
@click.argument("topic")
@click.option("--from-beginning", is_flag=True, help="the same as --offset beginning")
@click.option(
    "-o", "--offset", default=None, help="where to start: beginning, end (default), N, or -N"
)
@click.option(
    "-p", "--partition", "partitions", type=click.IntRange(min=0), multiple=True,
    help="only this partition (repeatable; default all)",
)  # fmt: skip
@click.option("-k", "--key", default=None, help="only records with this key")
@click.option(
    "-f",
    "--format",
    "fmt",
    type=click.Choice(["text", "json", "raw"]),
    default="text",
    show_default=True,
    help="text: partition, offset, time, key, value; json: one object per line; raw: values",
)
@click.option("-g", "--group", default=None, help="consume as GROUP: start at, commit its offsets")
@click.option("-n", "--max-messages", type=click.IntRange(min=1), default=None, help="stop after N")
@click.option("--no-follow", is_flag=True, help="stop at the end instead of waiting")
@click.option(
    "--registry",
    envvar="STREAMS_SCHEMA_REGISTRY",
    default=None,
    help="schema registry URL: records in its wire format (Avro, JSON Schema, Protobuf) "
    "are shown decoded (or $STREAMS_SCHEMA_REGISTRY)",
)
@common_options
@click.pass_obj
def tail(
    ctx: Context,
    topic: str,
    from_beginning: bool,
    offset: str | None,
    partitions: tuple[int, ...],
    key: str | None,
    fmt: str,
    group: str | None,
    max_messages: int | None,
    no_follow: bool,
    registry: str | None,
) -> None:
    """Print TOPIC's records as they arrive (like tail -f)."""
    start = parse_offset(offset) if offset is not None else None
    if from_beginning:
        if start not in (None, "beginning"):
            raise click.UsageError("--from-beginning and --offset disagree")
        start = "beginning"
    declared = _app_topic(ctx, topic)
    loads = (declared._load_key, declared._load_value) if declared is not None else (None, None)
    if registry is not None:  # what the app's types do not decode, the registry may
        from streams.schema_codecs import RegistryClient
        from streams.schema_reading import registry_loader

        by_registry = registry_loader(RegistryClient(registry))
        loads = (_either(loads[0], by_registry), _either(loads[1], by_registry))
    wanted_key = _encoders(ctx, topic, None, None)[0](key) if key is not None else None

    async def run(transport: Transport) -> None:
        info = await transport.topic(topic)
        if info is None:
            raise click.ClickException(f"unknown topic {topic!r}")
        missing = [p for p in partitions if p >= info.partitions]
        if missing:
            raise click.ClickException(f"topic {topic!r} has no partition {missing[0]}")
        tps = [TopicPartition(topic, p) for p in (partitions or range(info.partitions))]
        positions, ends = await _start_positions(transport, tps, start or "end", group)
        where = start or ("committed" if group else "end")
        click.echo(
            f"# {topic} partitions={','.join(str(tp.partition) for tp in tps)} from={where}"
            + (f" group={group}" if group else "")
            + ("" if no_follow else " (Ctrl-C to stop)"),
            err=True,
        )
        printer = _Printer(fmt, topic, *loads)
        printed = 0
        while True:
            if no_follow and all(positions[tp] >= ends[tp] for tp in tps):
                return
            wait_s = 0 if no_follow else FOLLOW_WAIT_S
            fetched = await asyncio.gather(
                *(transport.fetch(tp, positions[tp], max_wait_s=wait_s) for tp in tps)
            )
            for tp, data in zip(tps, fetched, strict=True):
                for r in decode_batches(data):
                    if r.offset < positions[tp]:
                        continue
                    positions[tp] = r.offset + 1
                    if wanted_key is not None and r.key != wanted_key:
                        continue
                    printer.print(tp.partition, r)
                    printed += 1
                    if max_messages is not None and printed >= max_messages:
                        await _commit(transport, group, positions)
                        return
            await _commit(transport, group, positions)
            if no_follow and not any(fetched):
                return

    with_transport(ctx, run, read_only=True)


async def _start_positions(
    transport: Transport, tps: list[TopicPartition], start: str | int, group: str | None
) -> tuple[dict[TopicPartition, int], dict[TopicPartition, int]]:
    committed = await transport.committed(group, tps) if group else {}
    positions, ends = {}, {}
    for tp in tps:
        low, high = await transport.offsets(tp)
        ends[tp] = high
        if tp in committed:
            positions[tp] = committed[tp]
        elif start == "beginning":
            positions[tp] = low
        elif start == "end":
            positions[tp] = high
        else:
            assert isinstance(start, int)
            wanted = high + start if start < 0 else start
            positions[tp] = min(max(low, wanted), high)
    return positions, ends


async def _commit(transport: Transport, group: str | None, positions: dict) -> None:
    if group is not None:
        await transport.commit(group, positions)


class _Printer:
    def __init__(self, fmt: str, topic: str, load_key: Decode | None, load_value: Decode | None):
        self._fmt, self._topic = fmt, topic
        self._load_key, self._load_value = load_key, load_value

    def print(self, partition: int, r: Any) -> None:
        if self._fmt == "raw":
            out = sys.stdout.buffer
            out.write((r.value or b"") + b"\n")
            out.flush()
            return
        if self._fmt == "json":
            row = {
                "topic": self._topic,
                "partition": partition,
                "offset": r.offset,
                "timestamp": r.timestamp_ms,
                "key": as_json(r.key, self._load_key),
                "value": as_json(r.value, self._load_value),
                "headers": {k: as_json(v, None) for k, v in r.headers},
            }
            click.echo(orjson.dumps(row).decode())
            return
        ts = datetime.fromtimestamp(r.timestamp_ms / 1000, UTC).isoformat()
        key = "" if r.key is None else as_text(r.key, self._load_key)
        value = as_text(r.value, self._load_value)
        click.echo(f"{partition}\t{r.offset}\t{ts}\t{key}\t{value}")
