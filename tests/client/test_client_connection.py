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
