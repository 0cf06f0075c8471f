"""Reading a whole partition through a Transport, for tests.

A broker may answer a Fetch with fewer batches than would fit (librdkafka's mock
cluster returns one per partition): read from the start to the end offset,
however many fetches that takes."""

from __future__ import annotations

from runtime.log.records import Record, decode_batches, iter_batches
from runtime.transport import Transport
from runtime.types import TopicPartition


async def read_partition(transport: Transport, tp: TopicPartition) -> list[Record]:
    """Every record of `tp` from its start offset to its end, in order."""
    start, end = await transport.offsets(tp)
    position, out = start, []
    while position < end:
        data = await transport.fetch(tp, position, max_wait_s=0)
        out += [r for r in decode_batches(data) if r.offset >= position]
        position = max([position, *(h.next_offset for _, h in iter_batches(data))])
    return out
