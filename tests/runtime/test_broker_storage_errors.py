"""The broker on a failing disk: Kafka error codes, never a closed connection.

An in-process broker with DiskFaults under its log, spoken to over one real
socket: a refused Produce is KAFKA_STORAGE_ERROR and its retry is stored once;
a refused OffsetCommit keeps the previous commit; DeleteTopics works on a full
disk; repeated errors are logged once per interval with a count.
"""

from __future__ import annotations

import asyncio
import logging
import os
from typing import Any

import aiohttp

from runtime.broker.server import Address, Broker
from runtime.log.catalog import CATALOG_FILE
from runtime.log.faults import DiskFaults
from runtime.log.records import decode_batches, encode_batch
from runtime.protocol import ApiKey, decode_response, encode_request
from runtime.protocol.codes import ErrorCode
from runtime.types import TopicPartition

TP = TopicPartition("full", 0)


class Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.correlation_id = 0

    async def request(self, api_key: int, version: int, body: dict[str, Any]) -> dict:
        self.correlation_id += 1
        self.writer.write(encode_request(api_key, version, self.correlation_id, "test", body))
        await self.writer.drain()
        size = int.from_bytes(await asyncio.wait_for(self.reader.readexactly(4), 10), "big")
        correlation_id, answer = decode_response(
            api_key, version, await self.reader.readexactly(size)
        )
        assert correlation_id == self.correlation_id
        return answer

    async def produce(self, records: bytes) -> tuple[int, int]:
        body = {
            "transactional_id": None,
            "acks": -1,
            "timeout_ms": 5000,
            "topics": [
                {"name": TP.topic, "partitions": [{"partition_index": 0, "records": records}]}
            ],
        }
        answer = await self.request(ApiKey.PRODUCE, 8, body)
        part = answer["responses"][0]["partitions"][0]
        return part["error_code"], part["base_offset"]


def _batch(values: list[bytes], **idempotence: int) -> bytes:
    return bytes(encode_batch([(None, v, 1_000, ()) for v in values], **idempotence))


def _run(tmp_path, test) -> None:
    async def main() -> None:
        faults = DiskFaults()
        with faults.installed():
            async with Broker(
                tmp_path, listen=Address("127.0.0.1", 0), http=Address("127.0.0.1", 0)
            ) as broker:
                broker.transport.log.create_topic(TP.topic, 1)
                assert broker.address is not None
                reader, writer = await asyncio.open_connection("127.0.0.1", broker.address.port)
                try:
                    await test(broker, Connection(reader, writer), faults)
                finally:
                    writer.close()
                    await writer.wait_closed()

    asyncio.run(main())


def _stored(broker: Broker) -> list[bytes]:
    log = broker.transport.log
    return [r.value for r in decode_batches(log.read(TP, 0, 1 << 20))]


def test_produce_on_a_full_disk_is_a_storage_error_and_the_retry_lands_once(tmp_path, caplog):
    producer = {"producer_id": 77, "producer_epoch": 0}

    async def test(broker: Broker, conn: Connection, faults: DiskFaults) -> None:
        assert await conn.produce(_batch([b"a", b"b"], base_sequence=0, **producer)) == (0, 0)
        faults.fill(10)  # a short write, then ENOSPC
        retry = _batch([b"c"], base_sequence=2, **producer)
        for _ in range(20):
            assert await conn.produce(retry) == (ErrorCode.KAFKA_STORAGE_ERROR, -1)
        assert broker.transport.log.offsets(TP) == (0, 2)
        faults.free()
        assert await conn.produce(retry) == (0, 2)  # same connection, right after
        assert await conn.produce(retry) == (0, 2)  # a duplicate: not stored again
        assert await conn.produce(_batch([b"d"])) == (0, 3)
        assert _stored(broker) == [b"a", b"b", b"c", b"d"]

    with caplog.at_level(logging.WARNING, logger="runtime.broker.data_api"):
        _run(tmp_path, test)
    lines = [r for r in caplog.records if r.name == "runtime.broker.data_api"]
    assert len(lines) == 1, [r.getMessage() for r in lines]  # not one per request
    assert "KAFKA_STORAGE_ERROR topic=full partition=0" in lines[0].getMessage()
    assert "Traceback" not in caplog.text


def test_offset_commit_on_a_full_disk_keeps_the_previous_commit(tmp_path):
    def commit(offset: int) -> dict:
        return {
            "group_id": "g",
            "generation_id": -1,
            "member_id": "",
            "topics": [
                {
                    "name": TP.topic,
                    "partitions": [
                        {"partition_index": 0, "committed_offset": offset, "committed_metadata": ""}
                    ],
                }
            ],
        }

    async def committed(conn: Connection) -> int:
        body = {"group_id": "g", "topics": [{"name": TP.topic, "partition_indexes": [0]}]}
        answer = await conn.request(ApiKey.OFFSET_FETCH, 5, body)
        return answer["topics"][0]["partitions"][0]["committed_offset"]

    def code(answer: dict) -> int:
        return answer["topics"][0]["partitions"][0]["error_code"]

    async def test(broker: Broker, conn: Connection, faults: DiskFaults) -> None:
        assert code(await conn.request(ApiKey.OFFSET_COMMIT, 7, commit(5))) == ErrorCode.NONE
        faults.fill(0)
        # Kafka's coordinator answers a storage error with NOT_COORDINATOR (retriable)
        assert code(await conn.request(ApiKey.OFFSET_COMMIT, 7, commit(9))) == (
            ErrorCode.NOT_COORDINATOR
        )
        assert await committed(conn) == 5
        faults.free()
        assert code(await conn.request(ApiKey.OFFSET_COMMIT, 7, commit(9))) == ErrorCode.NONE
        assert await committed(conn) == 9

    _run(tmp_path, test)


def test_topics_are_deleted_on_a_full_disk_and_not_created(tmp_path):
    async def test(broker: Broker, conn: Connection, faults: DiskFaults) -> None:
        log = broker.transport.log
        log.create_topic("victim", 2)
        for p in range(2):
            log.append(TopicPartition("victim", p), _batch([b"x" * 1000] * 10))

        def unlinked_gives_space(path, flags) -> None:
            if os.fspath(path).endswith(CATALOG_FILE + ".tmp") and not any(
                tmp_path.rglob("victim*/*.log")
            ):
                faults.free()

        faults.on_call["open"] = unlinked_gives_space
        faults.fill(0)
        body = {
            "topics": [
                {"name": "new", "num_partitions": 1, "replication_factor": 1, "configs": []}
            ],
            "timeout_ms": 5000,
        }
        answer = await conn.request(ApiKey.CREATE_TOPICS, 4, body)
        assert answer["topics"][0]["error_code"] == ErrorCode.KAFKA_STORAGE_ERROR
        answer = await conn.request(
            ApiKey.DELETE_TOPICS, 3, {"topic_names": ["victim"], "timeout_ms": 5000}
        )
        assert answer["responses"][0]["error_code"] == ErrorCode.NONE
        assert "victim" not in log.topics() and "new" not in log.topics()
        assert faults.free_bytes is None  # the catalog was written once space came back
        assert await conn.produce(_batch([b"after"])) == (0, 0)

    _run(tmp_path, test)


def test_rest_produce_on_a_full_disk_is_507(tmp_path):
    async def test(broker: Broker, conn: Connection, faults: DiskFaults) -> None:
        assert broker.http_address is not None
        url = f"http://127.0.0.1:{broker.http_address.port}/topics/{TP.topic}"
        records = {"records": [{"value": {"n": 1}}]}
        async with aiohttp.ClientSession() as session:
            faults.fill(0)
            async with session.post(url, json=records) as response:
                assert response.status == 507
                assert (await response.json())["error"] == "storage_error"
            faults.free()
            async with session.post(url, json=records) as response:
                assert response.status == 200
                assert (await response.json())["offsets"] == [{"partition": 0, "offset": 0}]

    _run(tmp_path, test)
