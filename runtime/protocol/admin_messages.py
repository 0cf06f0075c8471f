"""Schemas of the admin APIs that change topics and groups (client side first).

Written from Apache Kafka's message definitions (`CreatePartitions*.json`,
`IncrementalAlterConfigs*.json`, `DeleteGroups*.json`); only the non-flexible
versions every broker serves are described.

| api (key)                     | versions |
|-------------------------------|----------|
| CreatePartitions (37)         | 0-1      |
| DeleteGroups (42)             | 0-1      |
| IncrementalAlterConfigs (44)  | 0        |
"""

from __future__ import annotations

from runtime.protocol.codes import ApiKey
from runtime.protocol.fields import error_message, structs, throttle
from runtime.protocol.schema import BOOL, INT8, INT16, INT32, STRING, Api, Array, Field, Struct

__all__ = ["ADMIN_APIS", "CONFIG_SET", "TOPIC_RESOURCE"]

TOPIC_RESOURCE = 2  # ResourceType of a topic
CONFIG_SET = 0  # IncrementalAlterConfigs operations: 0 set, 1 delete, 2 append, 3 subtract

CREATE_PARTITIONS = Api(
    key=ApiKey.CREATE_PARTITIONS,
    name="CreatePartitions",
    min_version=0,
    max_version=1,
    flexible_from=2,
    request=Struct(
        structs(
            "topics",
            Field("name", STRING),
            Field("count", INT32),
            structs("assignments", Field("broker_ids", Array(INT32)), nullable_versions="0+"),
        ),
        Field("timeout_ms", INT32),
        Field("validate_only", BOOL),
    ),
    response=Struct(
        throttle("0+"),
        structs("results", Field("name", STRING), Field("error_code", INT16), error_message()),
    ),
)

DELETE_GROUPS = Api(
    key=ApiKey.DELETE_GROUPS,
    name="DeleteGroups",
    min_version=0,
    max_version=1,
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
    max_version=0,
    flexible_from=1,
    request=Struct(
        structs(
            "resources",
            Field("resource_type", INT8),
            Field("resource_name", STRING),
            structs(
                "configs",
                Field("name", STRING),
                Field("config_operation", INT8),
                Field("value", STRING, nullable_versions="0+"),
            ),
        ),
        Field("validate_only", BOOL),
    ),
    response=Struct(
        throttle("0+"),
        structs(
            "responses",
            Field("error_code", INT16),
            error_message(),
            Field("resource_type", INT8),
            Field("resource_name", STRING),
        ),
    ),
)

ADMIN_APIS = (CREATE_PARTITIONS, DELETE_GROUPS, INCREMENTAL_ALTER_CONFIGS)
