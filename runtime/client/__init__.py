"""Our asyncio Kafka-protocol client, on runtime.protocol's codecs.

connection         one TCP connection to one broker: ApiVersions, pipelined requests
cluster            bootstrap, metadata cache, connections per node, coordinators
producer           batching, idempotent producer
consumer           fetches raw record batches of assigned partitions, pipelined
offsets            ListOffsets, OffsetFetch, OffsetCommit with retries
group              classic consumer-group membership (join, sync, heartbeat, leave)
consumer_protocol  the Subscription / Assignment bytes members exchange
assignors          the Assignor protocol and the "range" assignor
admin              create, delete and describe topics; describe configs
errors             the KafkaClientError tree
"""

from runtime.client.admin import Admin
from runtime.client.assignors import Assignor, RangeAssignor
from runtime.client.cluster import BrokerAddress, Cluster, parse_bootstrap
from runtime.client.connection import PREFERRED_VERSIONS, Connection, negotiate
from runtime.client.consumer import Consumer
from runtime.client.consumer_protocol import (
    Assignment,
    Subscription,
    decode_assignment,
    decode_subscription,
    encode_assignment,
    encode_subscription,
)
from runtime.client.errors import (
    ClientClosedError,
    ConnectionBrokenError,
    ConnectionClosedError,
    KafkaClientError,
    KafkaConnectionError,
    KafkaError,
    KafkaTimeoutError,
    NoCompatibleVersionError,
    is_retriable,
)
from runtime.client.group import GroupMember
from runtime.client.offsets import EARLIEST, LATEST
from runtime.client.producer import Producer

__all__ = [
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
    "GroupMember",
    "KafkaClientError",
    "KafkaConnectionError",
    "KafkaError",
    "KafkaTimeoutError",
    "NoCompatibleVersionError",
    "Producer",
    "RangeAssignor",
    "Subscription",
    "decode_assignment",
    "decode_subscription",
    "encode_assignment",
    "encode_subscription",
    "is_retriable",
    "negotiate",
    "parse_bootstrap",
]
