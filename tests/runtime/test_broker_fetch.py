"""The broker's Fetch answers over a real socket: stored batches sent with
sendfile arrive byte for byte, framed, in request order."""

from __future__ import annotations

import asyncio

import pytest
from log_helpers import make_batch

from runtime.broker.server import Address, Broker
from runtime.log.storage import FileRegion
from runtime.protocol import ApiKey, decode_response, encode_request
from runtime.types import TopicPartition

TP = TopicPartition("f", 0)


def _fetch(correlation_id: int, offset: int, max_bytes: int) -> dict:
    return {
        "max_wait_ms": 0,
        "min_bytes": 1,
        "max_bytes": max_bytes,
        "topics": [
            {
                "topic": TP.topic,
                "partitions": [
                    {"partition": 0, "fetch_offset": offset, "partition_max_bytes": max_bytes}
                ],
            }
        ],
    }


async def _exchange(broker: Broker, version: int, requests: list[tuple[int, int]]) -> list[dict]:
    assert broker.address is not None
    reader, writer = await asyncio.open_connection(broker.address.host, broker.address.port)
    try:
        for i, (offset, max_bytes) in enumerate(requests):  # pipelined
            body = _fetch(i, offset, max_bytes)
            writer.write(encode_request(ApiKey.FETCH, version, i, "test", body))
        await writer.drain()
        out = []
        for i in range(len(requests)):
            size = int.from_bytes(await reader.readexactly(4), "big")
            correlation_id, body = decode_response(
                ApiKey.FETCH, version, await reader.readexactly(size)
            )
            assert correlation_id == i
            out.append(body["responses"][0]["partitions"][0])
        return out
    finally:
        writer.close()
        await writer.wait_closed()


@pytest.mark.parametrize("version", [11, 12])
def test_large_fetches_arrive_byte_for_byte(tmp_path, version):
    async def run() -> None:
        async with Broker(tmp_path, listen=Address("127.0.0.1", 0)) as broker:
            log = broker.transport.log
            log.create_topic(TP.topic, 1)
            for i in range(300):
                log.append(TP, make_batch([b"%d" % i + b"v" * 2000] * 3))
            assert isinstance(log.read_chunks(TP, 0, 1 << 20)[0], FileRegion)  # sendfile
            requests = [(0, 1 << 20), (7, 100_000), (450, 1), (899, 1 << 20), (900, 1 << 20)]
            answers = await _exchange(broker, version, requests)
            for (offset, max_bytes), answer in zip(requests, answers, strict=True):
                assert answer["error_code"] == 0 and answer["high_watermark"] == 900
                expected = log.read(TP, offset, max_bytes) if offset < 900 else b""
                assert bytes(answer["records"] or b"") == expected

    asyncio.run(run())
