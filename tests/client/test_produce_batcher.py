"""kafka:// appends that start together share one Produce request per leader:
each partition still gets its own base offset, or its own error while the
others in the request are stored."""

from __future__ import annotations

import asyncio

from client_helpers import bootstrap_of, broker, run, stored_values

from runtime.kafka_transport import KafkaTransport
from runtime.log.records import encode_batch
from runtime.protocol.codes import ApiKey
from runtime.types import TopicPartition

TOPIC = "batched"


def _count_produce(transport: KafkaTransport) -> list[int]:
    """The number of partitions of each Produce request the transport sends."""
    real = transport.cluster.request
    sizes: list[int] = []

    async def request(node, api_key, body, **kwargs):
        if api_key == ApiKey.PRODUCE:
            sizes.append(sum(len(t["partitions"]) for t in body["topics"]))
        return await real(node, api_key, body, **kwargs)

    transport.cluster.request = request  # type: ignore[method-assign]
    return sizes


def test_appends_started_together_go_in_one_request_with_their_own_offsets() -> None:
    async def main() -> None:
        async with broker() as b:
            b.transport.log.create_topic(TOPIC, 8)
            tps = [TopicPartition(TOPIC, p) for p in range(8)]
            async with KafkaTransport(f"kafka://{bootstrap_of(b)}") as transport:
                assert await transport.append(tps[0], encode_batch([(None, b"first", 1, ())])) == 0
                sizes = _count_produce(transport)
                bases = await asyncio.gather(
                    *(
                        transport.append(
                            tp, encode_batch([(None, f"{tp.partition}".encode(), 1, ())])
                        )
                        for tp in tps
                    )
                )
                assert sizes == [8]
                assert bases == [1, 0, 0, 0, 0, 0, 0, 0]
                # one after another, each is a request of its own
                await transport.append(tps[1], encode_batch([(None, b"later", 1, ())]))
                assert sizes == [8, 1]
            assert stored_values(b, tps[0]) == [b"first", b"0"]
            assert stored_values(b, tps[1]) == [b"1", b"later"]
            assert [stored_values(b, tp) for tp in tps[2:]] == [
                [f"{p}".encode()] for p in range(2, 8)
            ]

    run(main())


def test_a_partition_refused_in_a_shared_request_fails_alone() -> None:
    async def main() -> None:
        async with broker() as b:
            b.transport.log.create_topic(TOPIC, 2)
            good, missing = TopicPartition(TOPIC, 0), TopicPartition(TOPIC, 1)
            async with KafkaTransport(f"kafka://{bootstrap_of(b)}") as transport:
                await transport.append(good, encode_batch([(None, b"warm", 1, ())]))
                sizes = _count_produce(transport)
                too_big = encode_batch([(None, b"x" * 2_000_000, 1, ())])
                results = await asyncio.gather(
                    transport.append(good, encode_batch([(None, b"kept", 1, ())])),
                    transport.append(missing, too_big),
                    return_exceptions=True,
                )
                assert sizes[0] == 2
                assert results[0] == 1
                assert isinstance(results[1], Exception)
            assert stored_values(b, good) == [b"warm", b"kept"]
            assert stored_values(b, missing) == []

    run(main())
