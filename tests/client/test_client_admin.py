from __future__ import annotations

import pytest
from client_helpers import broker, cluster, run

import runtime.client
from runtime.client import Admin, KafkaError
from runtime.client.errors import error_name
from runtime.client.offsets import EARLIEST, LATEST
from runtime.client.producer import Producer
from runtime.protocol.codes import ErrorCode
from runtime.types import TopicPartition


def test_public_api_is_pinned():
    assert sorted(runtime.client.__all__) == sorted(
        [
            "EARLIEST",
            "LATEST",
            "PREFERRED_VERSIONS",
            "Admin",
            "Assignment",
            "Assignor",
            "BrokerAddress",
            "ClientClosedError",
            "Cluster",
            "Connection",
            "ConnectionBrokenError",
            "ConnectionClosedError",
            "Consumer",
            "ConsumerGroupMetadata",
            "GroupMember",
            "KafkaClientError",
            "KafkaConnectionError",
            "KafkaError",
            "KafkaTimeoutError",
            "NoCompatibleVersionError",
            "Producer",
            "ProducerFencedError",
            "RangeAssignor",
            "Subscription",
            "TransactionAbortableError",
            "TransactionAbortedError",
            "TransactionError",
            "TransactionFatalError",
            "TransactionStateError",
            "TransactionalProducer",
            "TransactionState",
            "decode_assignment",
            "decode_subscription",
            "encode_assignment",
            "encode_subscription",
            "is_retriable",
            "negotiate",
            "parse_bootstrap",
        ]
    )
    for name in runtime.client.__all__:
        assert hasattr(runtime.client, name)


def test_kafka_errors_name_their_code():
    exc = KafkaError(ErrorCode.NOT_LEADER_OR_FOLLOWER, topic="t", partition=3)
    assert exc.name == "NOT_LEADER_OR_FOLLOWER" and exc.retriable
    assert "NOT_LEADER_OR_FOLLOWER (6) (t[3])" in str(exc)
    assert not KafkaError(ErrorCode.TOPIC_AUTHORIZATION_FAILED).retriable
    assert error_name(9999) == "UNKNOWN_ERROR_CODE_9999"


def test_create_describe_and_delete_topics():
    async def main():
        async with broker(auto_create_topics=False) as b, cluster(b) as c:
            admin = Admin(c, timeout_ms=5000)
            await admin.create_topics(
                {"clicks": (3, {"retention.ms": "60000"}), "views": (1, None)}
            )
            assert await admin.describe_topics(["clicks", "views"]) == {"clicks": 3, "views": 1}
            assert (await admin.describe_topics())["clicks"] == 3
            configs = await admin.describe_configs("clicks")
            assert configs["retention.ms"] == "60000"
            with pytest.raises(KafkaError) as info:
                await admin.create_topics({"clicks": (3, None)})
            assert info.value.code == ErrorCode.TOPIC_ALREADY_EXISTS
            await admin.create_topics({"clicks": (3, None)}, ignore_existing=True)
            with pytest.raises(KafkaError) as info:
                await admin.create_topics({"bad/name": (1, None)})
            assert info.value.code == ErrorCode.INVALID_TOPIC_EXCEPTION
            with pytest.raises(KafkaError) as info:
                await admin.describe_configs("nope")
            assert info.value.code == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION

            tp = TopicPartition("clicks", 2)
            async with Producer(c) as producer:
                for i in range(3):
                    await producer.send(tp, b"%d" % i)
            assert await admin.list_offsets([tp], EARLIEST) == {tp: 0}
            assert await admin.list_offsets([tp], LATEST) == {tp: 3}

            await admin.delete_topics(["views"])
            assert "views" not in await admin.describe_topics()
            assert "views" not in b.transport.log.topics()
            with pytest.raises(KafkaError) as info:
                await admin.describe_topics(["views"])
            assert info.value.code == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
            with pytest.raises(KafkaError):
                await admin.delete_topics(["views"])
            await admin.delete_topics(["views"], ignore_missing=True)

    run(main())
