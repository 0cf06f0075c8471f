"""The registry's records in a topic of any transport (the embedded log, a broker).

One partition, compacted, so the topic holds the last record of every key:
replaying it in order rebuilds the registry's state whatever was compacted.
"""

from __future__ import annotations

import time

from runtime.log.records import decode_batches, encode_batch
from runtime.schemas.registry import TOPIC
from runtime.transport import Transport
from runtime.types import TopicPartition

READ_BYTES = 1 << 20


class TopicRegistryLog:
    def __init__(self, transport: Transport, topic: str = TOPIC) -> None:
        self._transport = transport
        self._tp = TopicPartition(topic, 0)

    async def append(self, key: bytes, value: bytes | None) -> None:
        await self._transport.ensure_topic(self._tp.topic, 1, {"cleanup.policy": "compact"})
        await self._transport.append(self._tp, encode_batch([(key, value, _now_ms(), ())]))

    async def replay(self) -> list[tuple[bytes, bytes | None]]:
        if await self._transport.topic(self._tp.topic) is None:
            return []
        position, end = await self._transport.offsets(self._tp)
        out: list[tuple[bytes, bytes | None]] = []
        while position < end:
            data = await self._transport.fetch(self._tp, position, max_bytes=READ_BYTES)
            records = [r for r in decode_batches(data) if r.offset >= position]
            if not records:
                break
            out += [(r.key, r.value) for r in records if r.key is not None]
            position = records[-1].offset + 1
        return out


def _now_ms() -> int:
    return int(time.time() * 1000)
