"""How the broker writes its answers to a pipelining client (librdkafka sends a
Produce per partition batch, back to back): the answers to the requests that
arrived together leave in one write, in order, and an answer never waits
behind a long poll pipelined after it."""

from __future__ import annotations

import asyncio

import pytest
from log_helpers import make_batch

import runtime.broker.server as server_module
from runtime.broker.connection import Connection
from runtime.broker.server import Address, Broker
from runtime.protocol import ApiKey, decode_response, encode_request
from runtime.types import TopicPartition

TP = TopicPartition("w", 0)
PIPELINED = 64
ANSWER_TIMEOUT_S = 10.0
LONG_POLL_MS = 20_000


class CountingConnection(Connection):
    """A broker connection that counts the writes it hands its transport."""

    made: list[CountingConnection] = []

    def connection_made(self, transport) -> None:
        self.transport_writes = 0
        write = transport.write

        def counted(data) -> None:
            self.transport_writes += 1
            write(data)

        transport.write = counted  # type: ignore[method-assign]
        CountingConnection.made.append(self)
        super().connection_made(transport)


@pytest.fixture
def counting(monkeypatch):
    CountingConnection.made = []
    monkeypatch.setattr(server_module, "Connection", CountingConnection)
    return CountingConnection.made


def _produce(partition: int, value: bytes) -> dict:
    records = bytes(make_batch([value]))
    return {
        "transactional_id": None,
        "acks": 1,
        "timeout_ms": 1000,
        "topics": [
            {"name": TP.topic, "partitions": [{"partition_index": partition, "records": records}]}
        ],
    }


def _long_poll(offset: int) -> dict:
    return {
        "max_wait_ms": LONG_POLL_MS,
        "min_bytes": 1,
        "max_bytes": 1 << 20,
        "topics": [
            {
                "topic": TP.topic,
                "partitions": [
                    {"partition": 1, "fetch_offset": offset, "partition_max_bytes": 1 << 20}
                ],
            }
        ],
    }


async def _answer(reader: asyncio.StreamReader, api_key: int, version: int) -> tuple[int, dict]:
    async with asyncio.timeout(ANSWER_TIMEOUT_S):
        size = int.from_bytes(await reader.readexactly(4), "big")
        return decode_response(api_key, version, await reader.readexactly(size))


def test_pipelined_produce_answers_leave_in_one_write_in_order(tmp_path, counting):
    async def run() -> None:
        async with Broker(tmp_path, listen=Address("127.0.0.1", 0)) as broker:
            broker.transport.log.create_topic(TP.topic, 2)
            assert broker.address is not None
            reader, writer = await asyncio.open_connection(broker.address.host, broker.address.port)
            try:
                frames = [
                    encode_request(ApiKey.PRODUCE, 8, i, "test", _produce(0, b"%d" % i))
                    for i in range(PIPELINED)
                ]
                writer.write(b"".join(frames))  # one segment: read by the broker at once
                await writer.drain()
                for i in range(PIPELINED):
                    correlation_id, body = await _answer(reader, ApiKey.PRODUCE, 8)
                    part = body["responses"][0]["partitions"][0]
                    assert (correlation_id, part["error_code"], part["base_offset"]) == (i, 0, i)
                (conn,) = counting
                # one write per read that brought requests: a few at most, not one each
                assert conn.transport_writes <= 4
                assert broker.transport.log.offsets(TP) == (0, PIPELINED)
            finally:
                writer.close()
                await writer.wait_closed()

    asyncio.run(run())


def test_an_answer_does_not_wait_behind_a_long_poll_pipelined_after_it(tmp_path, counting):
    async def run() -> None:
        async with Broker(tmp_path, listen=Address("127.0.0.1", 0)) as broker:
            broker.transport.log.create_topic(TP.topic, 2)
            assert broker.address is not None
            reader, writer = await asyncio.open_connection(broker.address.host, broker.address.port)
            try:
                writer.write(
                    encode_request(ApiKey.PRODUCE, 8, 1, "test", _produce(0, b"first"))
                    + encode_request(ApiKey.FETCH, 11, 2, "test", _long_poll(0))
                )
                await writer.drain()
                # the Produce answer comes while the Fetch still waits for data
                correlation_id, body = await _answer(reader, ApiKey.PRODUCE, 8)
                assert correlation_id == 1
                assert body["responses"][0]["partitions"][0]["base_offset"] == 0
                broker.transport.log.append(TopicPartition(TP.topic, 1), make_batch([b"late"]))
                broker.transport.notify_append(TopicPartition(TP.topic, 1))
                correlation_id, body = await _answer(reader, ApiKey.FETCH, 11)
                assert correlation_id == 2
                assert body["responses"][0]["partitions"][0]["records"]
            finally:
                writer.close()
                await writer.wait_closed()

    asyncio.run(run())
