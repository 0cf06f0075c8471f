"""What a crashed broker's log holds, read back two ways: by a real consumer
from offset 0 (with CRC checks on), and raw, batch by batch, over the wire
(every batch's length, magic and CRC-32C checked, offsets contiguous)."""

from __future__ import annotations

import time

from confluent_kafka import Consumer, TopicPartition
from kafka_wire import WireClient, fetch_body

from runtime.log.records import iter_batches, validate_batch
from runtime.protocol.codes import ApiKey

READ_TIMEOUT_S = 30.0
QUIET = {"log.connection.close": False, "log_level": 3}


def read_back(bootstrap: str, topic: str, partitions: int) -> dict[int, list[tuple[int, bytes]]]:
    """partition -> [(offset, value)] of every record, read by a fresh consumer."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"{topic}-reader",
            "enable.auto.commit": False,
            "check.crcs": True,
            **QUIET,
        }
    )
    out: dict[int, list[tuple[int, bytes]]] = {p: [] for p in range(partitions)}
    try:
        ends = {
            p: consumer.get_watermark_offsets(TopicPartition(topic, p), READ_TIMEOUT_S)[1]
            for p in range(partitions)
        }
        consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
        deadline = time.monotonic() + READ_TIMEOUT_S
        while any(len(out[p]) < ends[p] for p in range(partitions)):
            assert time.monotonic() < deadline, ({p: len(v) for p, v in out.items()}, ends)
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            assert msg.error() is None, msg.error()
            out[msg.partition()].append((msg.offset(), msg.value()))
    finally:
        consumer.close()
    return out


def assert_whole_batches(bootstrap: str, topic: str, partitions: int) -> int:
    """Every stored batch, fetched raw, passes the length, magic and CRC checks,
    and each starts where the one before ended. Returns how many there are."""
    count = 0
    with WireClient(bootstrap) as wire:
        for p in range(partitions):
            offset, end = 0, None
            while end is None or offset < end:
                body = wire.request(ApiKey.FETCH, 11, fetch_body(topic, p, offset))
                (part,) = body["responses"][0]["partitions"]
                assert part["error_code"] == 0
                end = part["high_watermark"]
                if end == 0:
                    break
                data = bytes(part["records"])
                batches = list(iter_batches(data))
                assert batches, (p, offset, end)
                for i, (pos, header) in enumerate(batches):
                    validate_batch(data, pos)
                    last = header.base_offset + header.last_offset_delta
                    # the first batch contains the fetch offset; the next ones follow it
                    assert header.base_offset <= offset <= last
                    assert i == 0 or header.base_offset == offset
                    offset = last + 1
                    count += 1
    return count
