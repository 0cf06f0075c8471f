from __future__ import annotations

import asyncio

import pytest
from client_helpers import broker, run, stored_values

from runtime.client.connection import PREFERRED_VERSIONS, Connection, negotiate
from runtime.client.errors import (
    ConnectionBrokenError,
    ConnectionClosedError,
    KafkaConnectionError,
    KafkaTimeoutError,
    NoCompatibleVersionError,
)
from runtime.log.records import encode_batch
from runtime.protocol.codes import ApiKey, ErrorCode
from runtime.protocol.frames import (
    api_versions_unsupported_response,
    decode_request,
    encode_response,
)
from runtime.types import TopicPartition


def test_handshake_picks_the_preferred_non_flexible_versions():
    async def main():
        async with broker() as b:
            assert b.address is not None
            async with await Connection.open("127.0.0.1", b.address.port) as conn:
                # the broker serves admin APIs this client does not speak yet (ACLs,
                # SCRAM credentials, DescribeCluster, partitions, configs, records,
                # groups); with no preferred version for them, it takes the highest
                assert conn.versions == PREFERRED_VERSIONS | {
                    ApiKey.DESCRIBE_ACLS: 3,
                    ApiKey.CREATE_ACLS: 3,
                    ApiKey.DELETE_ACLS: 3,
                    ApiKey.DESCRIBE_USER_SCRAM_CREDENTIALS: 0,
                    ApiKey.ALTER_USER_SCRAM_CREDENTIALS: 0,
                    ApiKey.DESCRIBE_CLUSTER: 1,
                    ApiKey.DELETE_RECORDS: 2,
                    ApiKey.ALTER_CONFIGS: 2,
                    ApiKey.CREATE_PARTITIONS: 3,
                    ApiKey.DELETE_GROUPS: 2,
                    ApiKey.INCREMENTAL_ALTER_CONFIGS: 1,
                    ApiKey.OFFSET_DELETE: 0,
                    ApiKey.CONSUMER_GROUP_HEARTBEAT: 1,
                }
                assert conn.version(ApiKey.PRODUCE) == 8
                assert conn.version(ApiKey.FETCH) == 11
                assert conn.broker_versions[ApiKey.API_VERSIONS] == (0, 3)
                answer = await conn.request(ApiKey.METADATA, {"topics": None})
                assert answer["brokers"][0]["port"] == b.address.port

    run(main())


def test_negotiate_takes_the_highest_common_version_up_to_the_preferred():
    ours = {ApiKey.PRODUCE: (3, 9), ApiKey.FETCH: (4, 12), ApiKey.METADATA: (1, 9)}
    preferred = {ApiKey.PRODUCE: 8, ApiKey.FETCH: 11, ApiKey.METADATA: 8}
    broker_ranges = {
        ApiKey.PRODUCE: (0, 5),  # older broker: its highest
        ApiKey.FETCH: (12, 15),  # newer broker that dropped ours: its lowest we speak
        ApiKey.METADATA: (10, 12),  # nothing in common: left out
        ApiKey.SASL_HANDSHAKE: (0, 1),  # we have no schema: left out
    }
    assert negotiate(broker_ranges, ours, preferred) == {ApiKey.PRODUCE: 5, ApiKey.FETCH: 12}


async def _fake_broker(handle) -> tuple[asyncio.Server, int]:
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                size = int.from_bytes(await reader.readexactly(4), "big")
                await handle(await reader.readexactly(size), writer)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


def test_handshake_falls_back_to_the_version_an_unsupported_version_answer_lists():
    advertised = {ApiKey.API_VERSIONS: (0, 2), ApiKey.PRODUCE: (3, 5), ApiKey.METADATA: (1, 4)}
    asked: list[int] = []

    async def handle(frame: bytes, writer: asyncio.StreamWriter) -> None:
        header, _ = decode_request(frame)
        asked.append(header.api_version)
        if header.api_version > 2:
            writer.write(api_versions_unsupported_response(header, advertised))
        else:
            body = {
                "error_code": 0,
                "api_keys": [
                    {"api_key": k, "min_version": lo, "max_version": hi}
                    for k, (lo, hi) in advertised.items()
                ],
            }
            writer.write(encode_response(header, body))

    async def main():
        server, port = await _fake_broker(handle)
        async with server, await Connection.open("127.0.0.1", port) as conn:
            assert asked == [3, 2]
            assert conn.versions == {
                ApiKey.API_VERSIONS: 2,
                ApiKey.PRODUCE: 5,
                ApiKey.METADATA: 4,
            }
            with pytest.raises(NoCompatibleVersionError):
                conn.version(ApiKey.FETCH)

    run(main())


def _versions_answer(header, advertised: dict[int, tuple[int, int]]) -> bytes:
    body = {
        "error_code": 0,
        "api_keys": [
            {"api_key": k, "min_version": lo, "max_version": hi}
            for k, (lo, hi) in advertised.items()
        ],
    }
    return encode_response(header, body)


# What librdkafka's mock cluster answers to ApiVersions v3: UNSUPPORTED_VERSION, then
# a body that is neither v0 (an int32 count) nor v3 (a compact array and tags).
_MOCK_V3_ANSWER = bytes.fromhex("00230100120000000200000000")


@pytest.mark.parametrize(
    "v3_body",
    [_MOCK_V3_ANSWER, b"\x00\x00\xff", b""],
    ids=["unsupported-in-no-known-format", "garbage", "empty"],
)
def test_handshake_asks_v0_when_the_answer_to_v3_does_not_decode(v3_body: bytes):
    advertised = {ApiKey.API_VERSIONS: (0, 2), ApiKey.PRODUCE: (0, 9), ApiKey.METADATA: (0, 12)}
    asked: list[int] = []

    async def handle(frame: bytes, writer: asyncio.StreamWriter) -> None:
        header, _ = decode_request(frame)
        asked.append(header.api_version)
        if header.api_version == 3:
            answer = header.correlation_id.to_bytes(4, "big") + v3_body
            writer.write(len(answer).to_bytes(4, "big") + answer)
        else:
            writer.write(_versions_answer(header, advertised))

    async def main():
        server, port = await _fake_broker(handle)
        async with server, await Connection.open("127.0.0.1", port) as conn:
            assert asked == [3, 0]
            assert conn.versions[ApiKey.PRODUCE] == 8
            assert conn.versions[ApiKey.METADATA] == 8
            answer = conn.broker_versions[ApiKey.API_VERSIONS]
            assert answer == (0, 2)

    run(main())


def test_handshake_gives_up_with_a_clear_error_when_v0_does_not_decode_either():
    async def handle(frame: bytes, writer: asyncio.StreamWriter) -> None:
        header, _ = decode_request(frame)
        answer = header.correlation_id.to_bytes(4, "big") + b"\x00"
        writer.write(len(answer).to_bytes(4, "big") + answer)

    async def main():
        server, port = await _fake_broker(handle)
        async with server:
            with pytest.raises(ConnectionBrokenError, match="ApiVersions v0"):
                await Connection.open("127.0.0.1", port)

    run(main())


# KIP-896: Kafka 4.0 serves only these ranges of the APIs we use (the versions
# older than these were removed); Redpanda 24 serves these others.
_KAFKA_4_RANGES = {
    ApiKey.PRODUCE: (3, 12),
    ApiKey.FETCH: (4, 17),
    ApiKey.LIST_OFFSETS: (1, 9),
    ApiKey.METADATA: (0, 13),
    ApiKey.OFFSET_COMMIT: (2, 9),
    ApiKey.OFFSET_FETCH: (1, 9),
    ApiKey.FIND_COORDINATOR: (0, 6),
    ApiKey.JOIN_GROUP: (2, 9),
    ApiKey.HEARTBEAT: (0, 4),
    ApiKey.LEAVE_GROUP: (0, 5),
    ApiKey.SYNC_GROUP: (0, 5),
    ApiKey.DESCRIBE_GROUPS: (0, 6),
    ApiKey.LIST_GROUPS: (0, 5),
    ApiKey.API_VERSIONS: (0, 4),
    ApiKey.CREATE_TOPICS: (2, 7),
    ApiKey.DELETE_TOPICS: (1, 6),
    ApiKey.INIT_PRODUCER_ID: (0, 5),
    ApiKey.DESCRIBE_CONFIGS: (1, 4),
    ApiKey.ADD_PARTITIONS_TO_TXN: (0, 5),
    ApiKey.ADD_OFFSETS_TO_TXN: (0, 4),
    ApiKey.END_TXN: (0, 5),
    ApiKey.TXN_OFFSET_COMMIT: (0, 5),
    ApiKey.DESCRIBE_TRANSACTIONS: (0, 0),
    ApiKey.LIST_TRANSACTIONS: (0, 1),
}
_REDPANDA_RANGES = {
    ApiKey.PRODUCE: (0, 9),
    ApiKey.FETCH: (4, 11),
    ApiKey.LIST_OFFSETS: (0, 4),
    ApiKey.METADATA: (0, 8),
    ApiKey.OFFSET_COMMIT: (0, 8),
    ApiKey.OFFSET_FETCH: (1, 7),
    ApiKey.FIND_COORDINATOR: (0, 3),
    ApiKey.JOIN_GROUP: (0, 5),
    ApiKey.HEARTBEAT: (0, 4),
    ApiKey.LEAVE_GROUP: (0, 4),
    ApiKey.SYNC_GROUP: (0, 4),
    ApiKey.DESCRIBE_GROUPS: (0, 5),
    ApiKey.LIST_GROUPS: (0, 4),
    ApiKey.API_VERSIONS: (0, 3),
    ApiKey.CREATE_TOPICS: (0, 5),
    ApiKey.DELETE_TOPICS: (0, 4),
    ApiKey.INIT_PRODUCER_ID: (0, 4),
    ApiKey.DESCRIBE_CONFIGS: (0, 4),
}


@pytest.mark.parametrize("ranges", [_KAFKA_4_RANGES, _REDPANDA_RANGES], ids=["kafka-4", "redpanda"])
def test_negotiated_versions_are_served_by_kafka_4_and_redpanda(ranges):
    versions = negotiate(ranges)
    for key, (low, high) in ranges.items():
        assert low <= versions[key] <= high, ApiKey(key).name
        # ours, unless the broker stops below it (Redpanda's ListOffsets v4)
        assert versions[key] == min(PREFERRED_VERSIONS[key], high), ApiKey(key).name


def test_pipelined_requests_are_answered_in_order_with_few_in_flight():
    async def main():
        async with broker(default_partitions=2) as b:
            assert b.address is not None
            conn = await Connection.open("127.0.0.1", b.address.port, in_flight_max=2)
            names = [f"topic-{i}" for i in range(12)]
            answers = await asyncio.gather(
                *(conn.request(ApiKey.METADATA, {"topics": [{"name": n}]}) for n in names)
            )
            assert [a["topics"][0]["name"] for a in answers] == names
            await conn.close()
            await conn.close()  # idempotent
            with pytest.raises(ConnectionClosedError):
                await conn.request(ApiKey.METADATA, {"topics": None})

    run(main())


def test_acks_zero_produce_awaits_no_answer():
    async def main():
        async with broker() as b:
            assert b.address is not None
            tp = TopicPartition("fire-and-forget", 0)
            b.transport.log.create_topic(tp.topic, 1)
            async with await Connection.open("127.0.0.1", b.address.port) as conn:
                for i in range(3):
                    body = {
                        "acks": 0,
                        "timeout_ms": 1000,
                        "topics": [
                            {
                                "name": tp.topic,
                                "partitions": [
                                    {
                                        "partition_index": 0,
                                        "records": encode_batch([(None, b"%d" % i, 0, ())]),
                                    }
                                ],
                            }
                        ],
                    }
                    assert await conn.request(ApiKey.PRODUCE, body) == {}
                # a request with an answer after them: the broker handled them all
                await conn.request(ApiKey.METADATA, {"topics": None})
            assert stored_values(b, tp) == [b"0", b"1", b"2"]

    run(main())


def test_a_broken_connection_fails_every_request_in_flight():
    async def main():
        async with broker() as b:
            assert b.address is not None
            b.transport.log.create_topic("quiet", 1)
            conn = await Connection.open("127.0.0.1", b.address.port)
            fetch = {
                "max_wait_ms": 10_000,
                "min_bytes": 1,
                "topics": [
                    {
                        "topic": "quiet",
                        "partitions": [
                            {"partition": 0, "fetch_offset": 0, "partition_max_bytes": 1024}
                        ],
                    }
                ],
            }
            waiting = [asyncio.create_task(conn.request(ApiKey.FETCH, fetch)) for _ in range(3)]
            await asyncio.sleep(0)  # written
        # the broker stopped: every parked fetch fails now, not after its timeout
        results = await asyncio.gather(*waiting, return_exceptions=True)
        assert all(isinstance(r, ConnectionBrokenError) for r in results), results
        assert all(isinstance(r, ConnectionError) for r in results)
        assert not conn.is_open
        with pytest.raises(ConnectionBrokenError):
            await conn.request(ApiKey.METADATA, {"topics": None})
        await conn.close()

    run(main())


def test_a_request_timeout_breaks_the_connection():
    async def handle(frame: bytes, writer: asyncio.StreamWriter) -> None:
        header, _ = decode_request(frame)
        if header.api_key == ApiKey.API_VERSIONS:
            body = {
                "error_code": ErrorCode.NONE,
                "api_keys": [{"api_key": ApiKey.METADATA, "min_version": 1, "max_version": 8}],
            }
            writer.write(encode_response(header, body))
        # anything else: never answered

    async def main():
        server, port = await _fake_broker(handle)
        async with server, await Connection.open("127.0.0.1", port) as conn:
            other = asyncio.create_task(conn.request(ApiKey.METADATA, {"topics": None}))
            with pytest.raises(KafkaTimeoutError):
                await conn.request(ApiKey.METADATA, {"topics": None}, timeout_s=0.2)
            with pytest.raises(KafkaConnectionError):
                await other
            assert not conn.is_open

    run(main())


def test_connect_to_a_closed_port_fails_with_a_connection_error():
    async def main():
        server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        server.close()
        await server.wait_closed()
        with pytest.raises(ConnectionBrokenError, match="cannot connect"):
            await Connection.open("127.0.0.1", port, connect_timeout_s=2)

    run(main())
