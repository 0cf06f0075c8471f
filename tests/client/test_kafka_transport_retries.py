"""kafka:// appends: a retriable error is retried after a growing backoff (a moving
leader, a broker short of disk), a fatal one is raised at once; a batch whose
answer was lost is sent again and stored once (appends are idempotent)."""

from __future__ import annotations

import pytest
from client_helpers import CuttingProxy, bootstrap_of, broker, run, stored_values

import runtime.kafka_appender as kafka_appender
from runtime.broker.server import Address
from runtime.kafka_transport import KafkaTransport
from runtime.log.records import decode_batches, encode_batch
from runtime.protocol.codes import ApiKey, ErrorCode
from runtime.types import TopicPartition

TP = TopicPartition("retried", 0)


def _refuse_produce(transport: KafkaTransport, code: int, times: int) -> None:
    """The first `times` Produce requests are answered `code` without reaching the log."""
    real = transport.cluster.request
    left = [times]

    async def request(node, api_key, body, **kwargs):
        if api_key == ApiKey.PRODUCE and left[0] > 0:
            left[0] -= 1
            refused = [{"error_code": code, "base_offset": -1}]
            topics = body["topics"]
            return {
                "responses": [
                    {
                        "name": t["name"],
                        "partitions": [
                            {"partition_index": p["partition_index"], **refused[0]}
                            for p in t["partitions"]
                        ],
                    }
                    for t in topics
                ]
            }
        return await real(node, api_key, body, **kwargs)

    transport.cluster.request = request  # type: ignore[method-assign]


def _record_backoffs(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    delays: list[float] = []
    real = kafka_appender.backoff_s

    def recorded(attempt: int, base_s: float, max_s: float) -> float:
        delays.append(real(attempt, base_s, max_s))
        return delays[-1]

    monkeypatch.setattr(kafka_appender, "backoff_s", recorded)
    return delays


def test_retriable_errors_are_retried_after_a_growing_backoff(monkeypatch) -> None:
    delays = _record_backoffs(monkeypatch)

    async def main() -> None:
        async with broker() as b:
            b.transport.log.create_topic(TP.topic, 1)
            async with KafkaTransport(f"kafka://{bootstrap_of(b)}") as transport:
                _refuse_produce(transport, ErrorCode.NOT_LEADER_OR_FOLLOWER, times=3)
                batch = encode_batch([(None, b"once", 1_000, ())])
                assert await transport.append(TP, batch) == 0
            records = decode_batches(b.transport.log.read(TP, 0))
            assert [r.value for r in records] == [b"once"]

    run(main())
    assert len(delays) == 3
    assert delays[0] < delays[1] < delays[2]  # doubling outruns the +-20% jitter


def test_a_fatal_error_is_raised_at_once(monkeypatch) -> None:
    delays = _record_backoffs(monkeypatch)

    async def main() -> None:
        async with broker() as b:
            b.transport.log.create_topic(TP.topic, 1)
            async with KafkaTransport(f"kafka://{bootstrap_of(b)}") as transport:
                _refuse_produce(transport, ErrorCode.MESSAGE_TOO_LARGE, times=1)
                with pytest.raises(Exception, match=r"(?i)large"):
                    await transport.append(TP, encode_batch([(None, b"x", 1_000, ())]))

    run(main())
    assert delays == []


def test_an_append_whose_answer_was_lost_is_retried_and_stored_once():
    async def main() -> None:
        proxy = CuttingProxy()
        await proxy.start()
        async with broker(advertise=Address("127.0.0.1", proxy.port)) as b:
            assert b.address is not None
            proxy.upstream = ("127.0.0.1", b.address.port)
            b.transport.log.create_topic(TP.topic, 1)
            async with KafkaTransport(f"kafka://127.0.0.1:{proxy.port}") as transport:
                assert await transport.append(TP, encode_batch([(None, b"a", 1, ())])) == 0
                proxy.arm(ApiKey.PRODUCE)  # stored by the broker; the answer is lost
                batch = encode_batch([(None, b"b", 1, ()), (None, b"c", 1, ())])
                assert await transport.append(TP, batch) == 1
                assert proxy.cuts == 1
                assert await transport.append(TP, encode_batch([(None, b"d", 1, ())])) == 3
            assert stored_values(b, TP) == [b"a", b"b", b"c", b"d"]
        await proxy.stop()

    run(main())
