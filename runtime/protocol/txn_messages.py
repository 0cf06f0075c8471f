"""Request and response schemas of the transaction APIs (KIP-98, KIP-447, KIP-664).

Written from the Kafka protocol guide and Apache Kafka's message definitions,
like messages.py. Versions up to KIP-890's (AddPartitionsToTxn v4+, EndTxn v5)
are not described: those batch transactions per request, which no client we
serve needs.

| api (key)                  | versions | first flexible |
|----------------------------|----------|----------------|
| AddPartitionsToTxn (24)    | 0-3      | 3              |
| AddOffsetsToTxn (25)       | 0-3      | 3              |
| EndTxn (26)                | 0-3      | 3              |
| TxnOffsetCommit (28)       | 0-3      | 3              |
| DescribeTransactions (65)  | 0        | 0              |
| ListTransactions (66)      | 0-1      | 0              |
"""

from __future__ import annotations

from runtime.protocol.codes import ApiKey
from runtime.protocol.fields import group_instance_id, structs, throttle
from runtime.protocol.schema import BOOL, INT16, INT32, INT64, STRING, Api, Array, Field, Struct

_TXN_PRODUCER = (
    Field("transactional_id", STRING),
    Field("producer_id", INT64),
    Field("producer_epoch", INT16),
)

ADD_PARTITIONS_TO_TXN = Api(
    key=ApiKey.ADD_PARTITIONS_TO_TXN,
    name="AddPartitionsToTxn",
    min_version=0,
    max_version=3,
    flexible_from=3,
    request=Struct(
        *_TXN_PRODUCER,
        structs("topics", Field("name", STRING), Field("partitions", Array(INT32))),
    ),
    response=Struct(
        throttle("0+"),
        structs(
            "results",
            Field("name", STRING),
            structs(
                "results",
                Field("partition_index", INT32),
                Field("partition_error_code", INT16),
            ),
        ),
    ),
)

ADD_OFFSETS_TO_TXN = Api(
    key=ApiKey.ADD_OFFSETS_TO_TXN,
    name="AddOffsetsToTxn",
    min_version=0,
    max_version=3,
    flexible_from=3,
    request=Struct(*_TXN_PRODUCER, Field("group_id", STRING)),
    response=Struct(throttle("0+"), Field("error_code", INT16)),
)

END_TXN = Api(
    key=ApiKey.END_TXN,
    name="EndTxn",
    min_version=0,
    max_version=3,
    flexible_from=3,
    request=Struct(*_TXN_PRODUCER, Field("committed", BOOL)),
    response=Struct(throttle("0+"), Field("error_code", INT16)),
)

TXN_OFFSET_COMMIT = Api(
    key=ApiKey.TXN_OFFSET_COMMIT,
    name="TxnOffsetCommit",
    min_version=0,
    max_version=3,
    flexible_from=3,
    request=Struct(
        Field("transactional_id", STRING),
        Field("group_id", STRING),
        Field("producer_id", INT64),
        Field("producer_epoch", INT16),
        Field("generation_id", INT32, "3+", default=-1),
        Field("member_id", STRING, "3+"),
        group_instance_id("3+"),
        structs(
            "topics",
            Field("name", STRING),
            structs(
                "partitions",
                Field("partition_index", INT32),
                Field("committed_offset", INT64),
                Field("committed_leader_epoch", INT32, "2+", default=-1),
                Field("committed_metadata", STRING, nullable_versions="0+", default=None),
            ),
        ),
    ),
    response=Struct(
        throttle("0+"),
        structs(
            "topics",
            Field("name", STRING),
            structs("partitions", Field("partition_index", INT32), Field("error_code", INT16)),
        ),
    ),
)

DESCRIBE_TRANSACTIONS = Api(
    key=ApiKey.DESCRIBE_TRANSACTIONS,
    name="DescribeTransactions",
    min_version=0,
    max_version=0,
    flexible_from=0,
    request=Struct(Field("transactional_ids", Array(STRING))),
    response=Struct(
        throttle("0+"),
        structs(
            "transaction_states",
            Field("error_code", INT16),
            Field("transactional_id", STRING),
            Field("transaction_state", STRING),
            Field("transaction_timeout_ms", INT32),
            Field("transaction_start_time_ms", INT64),
            Field("producer_id", INT64),
            Field("producer_epoch", INT16),
            structs("topics", Field("topic", STRING), Field("partitions", Array(INT32))),
        ),
    ),
)

LIST_TRANSACTIONS = Api(
    key=ApiKey.LIST_TRANSACTIONS,
    name="ListTransactions",
    min_version=0,
    max_version=1,
    flexible_from=0,
    request=Struct(
        Field("state_filters", Array(STRING)),
        Field("producer_id_filters", Array(INT64)),
        Field("duration_filter", INT64, "1+", default=-1),
    ),
    response=Struct(
        throttle("0+"),
        Field("error_code", INT16),
        Field("unknown_state_filters", Array(STRING)),
        structs(
            "transaction_states",
            Field("transactional_id", STRING),
            Field("producer_id", INT64),
            Field("transaction_state", STRING),
        ),
    ),
)

TXN_APIS = (
    ADD_PARTITIONS_TO_TXN,
    ADD_OFFSETS_TO_TXN,
    END_TXN,
    TXN_OFFSET_COMMIT,
    DESCRIBE_TRANSACTIONS,
    LIST_TRANSACTIONS,
)
