"""App(compression=) and app.topic(compression=): the framework's batches
(sink records, table changelogs) are stored compressed in each topic's codec,
on every transport and under both guarantees, and read back as they were."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest
from waiting import wait_until_async

import streams
from runtime.compression import codec_id
from runtime.log.records import decode_batches, iter_batches
from runtime.types import TopicPartition
from streams.errors import ConfigurationError
from streams.worker import Worker

KEYS = [f"k{i % 13}" for i in range(300)]


async def _codecs(worker: Worker, tps: list[TopicPartition]) -> tuple[set[int], list[bytes]]:
    codecs: set[int] = set()
    values: list[bytes] = []
    for tp in tps:
        position, end = await worker.transport.offsets(tp)
        while position < end:  # a fetch may stop short of the end (the mock cluster's does)
            data = await worker.transport.fetch(tp, position, max_bytes=1 << 22, max_wait_s=0)
            batches = [(p, h) for p, h in iter_batches(data) if h.next_offset > position]
            codecs |= {h.compression for _, h in batches if not h.is_control}
            values += [
                r.value
                for r in decode_batches(data)
                if r.offset >= position and r.value is not None
            ]
            position = batches[-1][1].next_offset if batches else position + 1
    return codecs, values


@pytest.mark.parametrize("guarantee", ["at_least_once", "exactly_once"])
def test_sinks_and_changelogs_are_stored_in_their_topics_codecs(make_app, guarantee):
    app = make_app(compression="zstd", processing_guarantee=guarantee)
    words = app.topic("words", key_type=str, value_type=str, partitions=2, compression="none")
    out = app.topic("echo", key_type=str, value_type=str, partitions=1, compression="lz4")
    counts = app.Table("counts", default=int)

    @app.agent(words)
    async def count(stream):
        async for event in stream.events():
            counts[event.key] += 1
            out.send_soon(event.key, event.value)

    async def main() -> None:
        async with Worker(app) as worker:
            for k in KEYS:
                await words.send(key=k, value=f"{k}-value")
            await wait_until_async(
                lambda: sum(n for _, n in counts.items()) == len(KEYS),
                timeout_s=30.0,
                what="every word counted",
            )
            await worker.commit()
            changelog, _ = await _codecs(worker, counts.changelog.tps())
            sink, echoed = await _codecs(worker, out.tps())
            source, _ = await _codecs(worker, words.tps())
            assert changelog == {codec_id("zstd")}
            assert sink == {codec_id("lz4")}
            assert source == {codec_id(None)}
            assert Counter(echoed) == Counter(f"{k}-value".encode() for k in KEYS)
            assert dict(counts.items()) == dict(Counter(KEYS))

    asyncio.run(main())


def test_a_bad_codec_name_is_refused_where_it_is_given():
    with pytest.raises(ConfigurationError, match="unknown compression 'lz5'"):
        streams.App("bad", broker="memory://", compression="lz5")
    app = streams.App("ok", broker="memory://")
    with pytest.raises(ValueError, match="unknown compression 'zip'"):
        app.topic("t", compression="zip")
