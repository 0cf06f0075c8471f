"""Request and response schemas of the admin APIs beyond topics: partitions,
configs, records and groups.

Written from the Kafka protocol guide and Apache Kafka's message definitions,
like messages.py.

| api (key)                     | versions | first flexible |
|-------------------------------|----------|----------------|
| DeleteRecords (21)            | 0-2      | 2              |
| AlterConfigs (33)             | 0-2      | 2              |
| CreatePartitions (37)         | 0-3      | 2              |
| DeleteGroups (42)             | 0-2      | 2              |
| IncrementalAlterConfigs (44)  | 0-1      | 1              |
| OffsetDelete (47)             | 0        | none           |
| ConsumerGroupHeartbeat (68)   | 0-1      | 0              |

ConsumerGroupHeartbeat (KIP-848) is described so that the broker can refuse it
in a form clients read: its response's nullable `assignment` struct is written
here as its null marker alone (int8 -1), all this broker ever sends.
"""

from __future__ import annotations

from runtime.protocol.codes import ApiKey
from runtime.protocol.fields import error_message, structs, throttle
from runtime.protocol.schema import (
    BOOL,
    INT8,
    INT16,
    INT32,
    INT64,
    STRING,
    UUID,
    Api,
    Array,
    Field,
    Struct,
)

_NEVER_FLEXIBLE = 0x7FFF
TOPIC_RESOURCE = 2  # ResourceType of a topic
CONFIG_SET = 0  # IncrementalAlterConfigs operations: 0 set, 1 delete, 2 append, 3 subtract


def _resource_result(name: str) -> Field:
    """AlterConfigs' and IncrementalAlterConfigs' answer per resource."""
    return structs(
        name,
        Field("error_code", INT16),
        error_message(),
        Field("resource_type", INT8),
        Field("resource_name", STRING),
    )


DELETE_RECORDS = Api(
    key=ApiKey.DELETE_RECORDS,
    name="DeleteRecords",
    min_version=0,
    max_version=2,
    flexible_from=2,
    request=Struct(
        structs(
            "topics",
            Field("name", STRING),
            structs("partitions", Field("partition_index", INT32), Field("offset", INT64)),
        ),
        Field("timeout_ms", INT32),
    ),
    response=Struct(
        throttle("0+"),
        structs(
            "topics",
            Field("name", STRING),
            structs(
                "partitions",
                Field("partition_index", INT32),
                Field("low_watermark", INT64),
                Field("error_code", INT16),
            ),
        ),
    ),
)

ALTER_CONFIGS = Api(
    key=ApiKey.ALTER_CONFIGS,
    name="AlterConfigs",
    min_version=0,
    max_version=2,
    flexible_from=2,
    request=Struct(
        structs(
            "resources",
            Field("resource_type", INT8),
            Field("resource_name", STRING),
            structs(
                "configs",
                Field("name", STRING),
                Field("value", STRING, nullable_versions="0+", default=None),
            ),
        ),
        Field("validate_only", BOOL),
    ),
    response=Struct(throttle("0+"), _resource_result("responses")),
)

CREATE_PARTITIONS = Api(
    key=ApiKey.CREATE_PARTITIONS,
    name="CreatePartitions",
    min_version=0,
    max_version=3,
    flexible_from=2,
    request=Struct(
        structs(
            "topics",
            Field("name", STRING),
            Field("count", INT32),
            structs(
                "assignments",
                Field("broker_ids", Array(INT32)),
                nullable_versions="0+",
            ),
        ),
        Field("timeout_ms", INT32),
        Field("validate_only", BOOL),
    ),
    response=Struct(
        throttle("0+"),
        structs(
            "results",
            Field("name", STRING),
            Field("error_code", INT16),
            error_message(),
        ),
    ),
)

DELETE_GROUPS = Api(
    key=ApiKey.DELETE_GROUPS,
    name="DeleteGroups",
    min_version=0,
    max_version=2,
    flexible_from=2,
    request=Struct(Field("groups_names", Array(STRING))),
    response=Struct(
        throttle("0+"),
        structs("results", Field("group_id", STRING), Field("error_code", INT16)),
    ),
)

INCREMENTAL_ALTER_CONFIGS = Api(
    key=ApiKey.INCREMENTAL_ALTER_CONFIGS,
    name="IncrementalAlterConfigs",
    min_version=0,
    max_version=1,
    flexible_from=1,
    request=Struct(
        structs(
            "resources",
            Field("resource_type", INT8),
            Field("resource_name", STRING),
            structs(
                "configs",
                Field("name", STRING),
                Field("config_operation", INT8),  # 0 set, 1 delete, 2 append, 3 subtract
                Field("value", STRING, nullable_versions="0+", default=None),
            ),
        ),
        Field("validate_only", BOOL),
    ),
    response=Struct(throttle("0+"), _resource_result("responses")),
)

OFFSET_DELETE = Api(
    key=ApiKey.OFFSET_DELETE,
    name="OffsetDelete",
    min_version=0,
    max_version=0,
    flexible_from=_NEVER_FLEXIBLE,
    request=Struct(
        Field("group_id", STRING),
        structs(
            "topics", Field("name", STRING), structs("partitions", Field("partition_index", INT32))
        ),
    ),
    response=Struct(
        Field("error_code", INT16),
        throttle("0+"),
        structs(
            "topics",
            Field("name", STRING),
            structs("partitions", Field("partition_index", INT32), Field("error_code", INT16)),
        ),
    ),
)

_TOPIC_PARTITIONS = Struct(Field("topic_id", UUID), Field("partitions", Array(INT32)))

CONSUMER_GROUP_HEARTBEAT = Api(
    key=ApiKey.CONSUMER_GROUP_HEARTBEAT,
    name="ConsumerGroupHeartbeat",
    min_version=0,
    max_version=1,
    flexible_from=0,
    request=Struct(
        Field("group_id", STRING),
        Field("member_id", STRING),
        Field("member_epoch", INT32),
        Field("instance_id", STRING, nullable_versions="0+", default=None),
        Field("rack_id", STRING, nullable_versions="0+", default=None),
        Field("rebalance_timeout_ms", INT32, default=-1),
        Field("subscribed_topic_names", Array(STRING), nullable_versions="0+", default=None),
        Field("subscribed_topic_regex", STRING, "1+", nullable_versions="1+", default=None),
        Field("server_assignor", STRING, nullable_versions="0+", default=None),
        Field("topic_partitions", Array(_TOPIC_PARTITIONS), nullable_versions="0+", default=None),
    ),
    response=Struct(
        throttle("0+"),
        Field("error_code", INT16),
        error_message(),
        Field("member_id", STRING, nullable_versions="0+", default=None),
        Field("member_epoch", INT32),
        Field("heartbeat_interval_ms", INT32),
        Field("assignment", INT8, default=-1),  # the null marker of a nullable struct
    ),
)

ADMIN_APIS = (
    DELETE_RECORDS,
    ALTER_CONFIGS,
    CREATE_PARTITIONS,
    DELETE_GROUPS,
    INCREMENTAL_ALTER_CONFIGS,
    OFFSET_DELETE,
    CONSUMER_GROUP_HEARTBEAT,
)
