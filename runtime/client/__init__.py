"""Our asyncio Kafka-protocol client, on runtime.protocol's codecs.

connection         one TCP connection to one broker: ApiVersions, pipelined requests
cluster            bootstrap, metadata cache, connections per node, coordinators
producer           batching, idempotent producer
transactions       the transactional producer (its state machine)
txn_requests       its requests to the transaction and group coordinators
consumer           fetches raw record batches of assigned partitions, pipelined
isolation          isolation levels; the read_committed filter of fetched batches
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
    ProducerFencedError,
    TransactionAbortableError,
    TransactionAbortedError,
    TransactionError,
    TransactionFatalError,
    TransactionStateError,
    is_retriable,
)
from runtime.client.group import ConsumerGroupMetadata, GroupMember
from runtime.client.offsets import EARLIEST, LATEST
from runtime.client.producer import Producer
from runtime.client.transactions import TransactionalProducer, TransactionState

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
    "TransactionState",
    "TransactionStateError",
    "TransactionalProducer",
    "decode_assignment",
    "decode_subscription",
    "encode_assignment",
    "encode_subscription",
    "is_retriable",
    "negotiate",
    "parse_bootstrap",
]
