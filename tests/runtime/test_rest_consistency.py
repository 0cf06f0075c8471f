"""The REST proxy agrees with the broker: topic auto-creation follows the
broker's setting, partitions are integers in ASCII digits only, values that are
not JSON come back base64-encoded under a marker, and a client that goes away
is not an internal error."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer

from runtime.broker.endpoints import Address
from runtime.broker.rest import RestProxy
from runtime.broker.server import Broker
from runtime.log.records import encode_batch
from runtime.transport import EmbeddedTransport
from runtime.types import TopicPartition

TIMEOUT_S = 20


async def proxy_client(transport: EmbeddedTransport, **settings) -> TestClient:
    client = TestClient(TestServer(RestProxy(transport, **settings).app()))
    await client.start_server()
    return client


def run(coro) -> None:
    async def bounded() -> None:
        async with asyncio.timeout(TIMEOUT_S):
            await coro

    asyncio.run(bounded())


@pytest.mark.parametrize("auto_create", [True, False])
def test_the_brokers_auto_create_setting_decides(tmp_path, auto_create):
    async def main() -> None:
        url = "http://{}/topics/fresh"
        async with Broker(
            tmp_path,
            listen=Address("127.0.0.1", 0),
            http=Address("127.0.0.1", 0),
            auto_create_topics=auto_create,
            default_partitions=3,
        ) as broker:
            async with aiohttp.ClientSession() as session:
                body = {"records": [{"value": 1}]}
                async with session.post(url.format(broker.http_address), json=body) as answer:
                    status, reply = answer.status, await answer.json()
            info = await broker.transport.topic("fresh")
        if auto_create:
            assert status == 200, reply
            assert info is not None and info.partitions == 3
        else:
            assert (status, reply["error"]) == (404, "unknown_topic")
            assert "does not auto-create" in reply["message"]
            assert info is None

    run(main())


def test_partitions_are_integers_in_ascii_digits(tmp_path):
    async def main() -> None:
        async with EmbeddedTransport("memory://", None) as transport:
            await transport.create_topic("t", 2)
            client = await proxy_client(transport)
            try:
                for partition in (True, 1.0, "1"):
                    body = {"records": [{"value": 1, "partition": partition}]}
                    answer = await client.post("/topics/t", json=body)
                    assert answer.status == 400, partition
                for path in ("\u0661", " 1", "+1", "1_0"):  # ARABIC-INDIC DIGIT ONE, ...
                    answer = await client.get(f"/topics/t/partitions/{path}/records")
                    assert answer.status == 400, path
                    answer = await client.get(f"/topics/t/partitions/0/records?offset={path}")
                    assert answer.status == 400, path
                answer = await client.get("/topics/t/partitions/1/records?offset=0")
                assert (answer.status, await answer.json()) == (200, [])
                assert await transport.offsets(TopicPartition("t", 1)) == (0, 0)
            finally:
                await client.close()

    run(main())


def test_values_that_are_not_json_come_back_as_base64_under_a_marker():
    async def main() -> None:
        async with EmbeddedTransport("memory://", None) as transport:
            await transport.create_topic("t", 1)
            rows = [(b"k", b'"text"', 1, ()), (b"k", b"text", 1, ()), (b"\xff", b"\xff\x00", 1, ())]
            await transport.append(TopicPartition("t", 0), encode_batch(rows))
            client = await proxy_client(transport)
            try:
                answer = await client.get("/topics/t/partitions/0/records?offset=0")
                read = await answer.json()
            finally:
                await client.close()
        assert [{k: v for k, v in r.items() if k != "timestamp"} for r in read] == [
            {"offset": 0, "key": "k", "value": "text"},  # a JSON string
            {"offset": 1, "key": "k", "value_b64": "dGV4dA=="},  # text that is no JSON
            {"offset": 2, "key_b64": "/w==", "value_b64": "/wA="},
        ]

    run(main())


def test_a_client_that_goes_away_is_not_an_internal_error(caplog):
    async def main() -> None:
        async with EmbeddedTransport("memory://", None) as transport:
            await transport.create_topic("t", 1)
            client = await proxy_client(transport)
            try:
                server = client.server
                _, writer = await asyncio.open_connection(server.host, server.port)
                writer.write(
                    b"POST /topics/t HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                    b'Content-Length: 1000\r\n\r\n{"records": ['
                )
                await writer.drain()
                writer.close()  # gone before the body is whole
                await writer.wait_closed()
                await asyncio.sleep(0.2)  # let the server notice
                answer = await client.post("/topics/t", json={"records": [{"value": 1}]})
                assert answer.status == 200  # it serves on

                async def peer_gone() -> dict:  # as a write to a closed socket fails
                    raise ConnectionResetError("Cannot write to closing transport")

                transport.topics = peer_gone  # type: ignore[method-assign]
                with contextlib.suppress(aiohttp.ClientError):
                    await client.get("/topics")
            finally:
                await client.close()
            assert await transport.offsets(TopicPartition("t", 0)) == (0, 1)

    with caplog.at_level(logging.DEBUG, logger="runtime.broker.rest"):
        run(main())
    assert "REST request failed" not in caplog.text
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text
