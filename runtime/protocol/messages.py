"""Request and response schemas of the Kafka APIs we speak, by api key.

Written from the Kafka protocol guide and the message definitions of Apache Kafka
(`clients/src/main/resources/common/message/*.json`). Field names are Kafka's in
snake_case, except Produce (topics/partitions/partition_index, Kafka's older
names) and OffsetCommit's `generation_id`. Only the fields of the versions listed
here are described; a field's default is Kafka's (0, "", false, [], or as noted).

| api (key)            | versions | first flexible |
|----------------------|----------|----------------|
| Produce (0)          | 3-9      | 9              |
| Fetch (1)            | 4-12     | 12             |
| ListOffsets (2)      | 1-7      | 6              |
| Metadata (3)         | 0-9      | 9              |
| OffsetCommit (8)     | 2-8      | 8              |
| OffsetFetch (9)      | 1-6      | 6              |
| FindCoordinator (10) | 0-3      | 3              |
| JoinGroup (11)       | 0-6      | 6              |
| Heartbeat (12)       | 0-4      | 4              |
| LeaveGroup (13)      | 0-4      | 4              |
| SyncGroup (14)       | 0-4      | 4              |
| DescribeGroups (15)  | 0-5      | 5              |
| ListGroups (16)      | 0-5      | 3              |
| ApiVersions (18)     | 0-3      | 3              |
| CreateTopics (19)    | 2-5      | 5              |
| DeleteTopics (20)    | 1-4      | 4              |
| InitProducerId (22)  | 0-4      | 2              |
| DescribeConfigs (32) | 0-4      | 4              |

The transaction APIs are in txn_messages.py, the SASL APIs in sasl_messages.py,
the ACL and SCRAM-credential APIs and DescribeCluster in acl_messages.py,
the admin APIs beyond topics (partitions, configs, records, groups) in
admin_messages.py.
"""

from __future__ import annotations

from runtime.protocol.acl_messages import ACL_APIS
from runtime.protocol.admin_messages import ADMIN_APIS
from runtime.protocol.codes import ApiKey, ErrorCode
from runtime.protocol.fields import (
    NO_AUTHORIZED_OPERATIONS,
    error_message,
    group_instance_id,
    structs,
    throttle,
)
from runtime.protocol.sasl_messages import SASL_APIS
from runtime.protocol.schema import (
    BOOL,
    BYTES,
    INT8,
    INT16,
    INT32,
    INT64,
    RECORDS,
    STRING,
    Api,
    Array,
    Field,
    Struct,
)
from runtime.protocol.txn_messages import TXN_APIS

__all__ = ["APIS", "NO_AUTHORIZED_OPERATIONS", "ApiKey", "ErrorCode"]


PRODUCE = Api(
    key=ApiKey.PRODUCE,
    name="Produce",
    min_version=3,
    max_version=9,
    flexible_from=9,
    request=Struct(
        Field("transactional_id", STRING, "3+", nullable_versions="3+", default=None),
        Field("acks", INT16),
        Field("timeout_ms", INT32),
        structs(
            "topics",
            Field("name", STRING),
            structs(
                "partitions",
                Field("partition_index", INT32),
                Field("records", RECORDS, nullable_versions="0+"),
            ),
        ),
    ),
    response=Struct(
        structs(
            "responses",
            Field("name", STRING),
            structs(
                "partitions",
                Field("partition_index", INT32),
                Field("error_code", INT16),
                Field("base_offset", INT64),
                Field("log_append_time_ms", INT64, "2+", default=-1),
                Field("log_start_offset", INT64, "5+", default=-1),
                structs(
                    "record_errors",
                    Field("batch_index", INT32),
                    Field(
                        "batch_index_error_message", STRING, nullable_versions="0+", default=None
                    ),
                    versions="8+",
                ),
                error_message("8+"),
            ),
        ),
        throttle(),
    ),
)

_LEADER_ID_AND_EPOCH = Struct(
    Field("leader_id", INT32, default=-1), Field("leader_epoch", INT32, default=-1)
)

FETCH = Api(
    key=ApiKey.FETCH,
    name="Fetch",
    min_version=4,
    max_version=12,
    flexible_from=12,
    request=Struct(
        Field("cluster_id", STRING, "12+", nullable_versions="12+", default=None, tagged=0),
        Field("replica_id", INT32, default=-1),
        Field("max_wait_ms", INT32),
        Field("min_bytes", INT32),
        Field("max_bytes", INT32, "3+", default=0x7FFFFFFF),
        Field("isolation_level", INT8, "4+"),
        Field("session_id", INT32, "7+"),
        Field("session_epoch", INT32, "7+", default=-1),
        structs(
            "topics",
            Field("topic", STRING),
            structs(
                "partitions",
                Field("partition", INT32),
                Field("current_leader_epoch", INT32, "9+", default=-1),
                Field("fetch_offset", INT64),
                Field("last_fetched_epoch", INT32, "12+", default=-1),
                Field("log_start_offset", INT64, "5+", default=-1),
                Field("partition_max_bytes", INT32),
            ),
        ),
        structs(
            "forgotten_topics_data",
            Field("topic", STRING),
            Field("partitions", Array(INT32)),
            versions="7+",
        ),
        Field("rack_id", STRING, "11+"),
    ),
    response=Struct(
        throttle(),
        Field("error_code", INT16, "7+"),
        Field("session_id", INT32, "7+"),
        structs(
            "responses",
            Field("topic", STRING),
            structs(
                "partitions",
                Field("partition_index", INT32),
                Field("error_code", INT16),
                Field("high_watermark", INT64),
                Field("last_stable_offset", INT64, "4+", default=-1),
                Field("log_start_offset", INT64, "5+", default=-1),
                Field(
                    "diverging_epoch",
                    Struct(
                        Field("epoch", INT32, default=-1), Field("end_offset", INT64, default=-1)
                    ),
                    "12+",
                    tagged=0,
                ),
                Field("current_leader", _LEADER_ID_AND_EPOCH, "12+", tagged=1),
                Field(
                    "snapshot_id",
                    Struct(
                        Field("end_offset", INT64, default=-1), Field("epoch", INT32, default=-1)
                    ),
                    "12+",
                    tagged=2,
                ),
                structs(
                    "aborted_transactions",
                    Field("producer_id", INT64),
                    Field("first_offset", INT64),
                    versions="4+",
                    nullable_versions="4+",
                ),
                Field("preferred_read_replica", INT32, "11+", default=-1),
                Field("records", RECORDS, nullable_versions="0+"),
            ),
        ),
    ),
)

LIST_OFFSETS = Api(
    key=ApiKey.LIST_OFFSETS,
    name="ListOffsets",
    min_version=1,
    max_version=7,
    flexible_from=6,
    request=Struct(
        Field("replica_id", INT32, default=-1),
        Field("isolation_level", INT8, "2+"),
        structs(
            "topics",
            Field("name", STRING),
            structs(
                "partitions",
                Field("partition_index", INT32),
                Field("current_leader_epoch", INT32, "4+", default=-1),
                Field("timestamp", INT64),
            ),
        ),
    ),
    response=Struct(
        throttle("2+"),
        structs(
            "topics",
            Field("name", STRING),
            structs(
                "partitions",
                Field("partition_index", INT32),
                Field("error_code", INT16),
                Field("timestamp", INT64, default=-1),
                Field("offset", INT64, default=-1),
                Field("leader_epoch", INT32, "4+", default=-1),
            ),
        ),
    ),
)

METADATA = Api(
    key=ApiKey.METADATA,
    name="Metadata",
    min_version=0,
    max_version=9,
    flexible_from=9,
    request=Struct(
        # v1+: null asks for all topics; v0: an empty list does
        structs("topics", Field("name", STRING), nullable_versions="1+"),
        Field("allow_auto_topic_creation", BOOL, "4+", default=True),
        Field("include_cluster_authorized_operations", BOOL, "8+"),
        Field("include_topic_authorized_operations", BOOL, "8+"),
    ),
    response=Struct(
        throttle("3+"),
        structs(
            "brokers",
            Field("node_id", INT32),
            Field("host", STRING),
            Field("port", INT32),
            Field("rack", STRING, "1+", nullable_versions="1+", default=None),
        ),
        Field("cluster_id", STRING, "2+", nullable_versions="2+", default=None),
        Field("controller_id", INT32, "1+", default=-1),
        structs(
            "topics",
            Field("error_code", INT16),
            Field("name", STRING),
            Field("is_internal", BOOL, "1+"),
            structs(
                "partitions",
                Field("error_code", INT16),
                Field("partition_index", INT32),
                Field("leader_id", INT32),
                Field("leader_epoch", INT32, "7+", default=-1),
                Field("replica_nodes", Array(INT32)),
                Field("isr_nodes", Array(INT32)),
                Field("offline_replicas", Array(INT32), "5+"),
            ),
            Field("topic_authorized_operations", INT32, "8+", default=NO_AUTHORIZED_OPERATIONS),
        ),
        Field("cluster_authorized_operations", INT32, "8+", default=NO_AUTHORIZED_OPERATIONS),
    ),
)

OFFSET_COMMIT = Api(
    key=ApiKey.OFFSET_COMMIT,
    name="OffsetCommit",
    min_version=2,
    max_version=8,
    flexible_from=8,
    request=Struct(
        Field("group_id", STRING),
        Field("generation_id", INT32, default=-1),
        Field("member_id", STRING),
        group_instance_id("7+"),
        Field("retention_time_ms", INT64, "2-4", default=-1),
        structs(
            "topics",
            Field("name", STRING),
            structs(
                "partitions",
                Field("partition_index", INT32),
                Field("committed_offset", INT64),
                Field("committed_leader_epoch", INT32, "6+", default=-1),
                Field("committed_metadata", STRING, nullable_versions="0+"),
            ),
        ),
    ),
    response=Struct(
        throttle("3+"),
        structs(
            "topics",
            Field("name", STRING),
            structs("partitions", Field("partition_index", INT32), Field("error_code", INT16)),
        ),
    ),
)

OFFSET_FETCH = Api(
    key=ApiKey.OFFSET_FETCH,
    name="OffsetFetch",
    min_version=1,
    max_version=7,
    flexible_from=6,
    request=Struct(
        Field("group_id", STRING),
        structs(
            "topics",
            Field("name", STRING),
            Field("partition_indexes", Array(INT32)),
            nullable_versions="2+",  # null: every partition with a committed offset
        ),
        # KIP-447: offsets a transaction holds pending answer UNSTABLE_OFFSET_COMMIT
        Field("require_stable", BOOL, "7+", default=False),
    ),
    response=Struct(
        throttle("3+"),
        structs(
            "topics",
            Field("name", STRING),
            structs(
                "partitions",
                Field("partition_index", INT32),
                Field("committed_offset", INT64),
                Field("committed_leader_epoch", INT32, "5+", default=-1),
                Field("metadata", STRING, nullable_versions="0+"),
                Field("error_code", INT16),
            ),
        ),
        Field("error_code", INT16, "2+"),
    ),
)

FIND_COORDINATOR = Api(
    key=ApiKey.FIND_COORDINATOR,
    name="FindCoordinator",
    min_version=0,
    max_version=3,
    flexible_from=3,
    request=Struct(
        Field("key", STRING),
        Field("key_type", INT8, "1+"),  # 0 group, 1 transaction
    ),
    response=Struct(
        throttle(),
        Field("error_code", INT16),
        error_message("1+"),
        Field("node_id", INT32),
        Field("host", STRING),
        Field("port", INT32),
    ),
)

JOIN_GROUP = Api(
    key=ApiKey.JOIN_GROUP,
    name="JoinGroup",
    min_version=0,
    max_version=6,
    flexible_from=6,
    request=Struct(
        Field("group_id", STRING),
        Field("session_timeout_ms", INT32),
        Field("rebalance_timeout_ms", INT32, "1+", default=-1),
        Field("member_id", STRING),
        group_instance_id("5+"),
        Field("protocol_type", STRING),
        structs("protocols", Field("name", STRING), Field("metadata", BYTES)),
    ),
    response=Struct(
        throttle("2+"),
        Field("error_code", INT16),
        Field("generation_id", INT32, default=-1),
        Field("protocol_name", STRING),
        Field("leader", STRING),
        Field("member_id", STRING),
        structs(
            "members",
            Field("member_id", STRING),
            group_instance_id("5+"),
            Field("metadata", BYTES),
        ),
    ),
)

HEARTBEAT = Api(
    key=ApiKey.HEARTBEAT,
    name="Heartbeat",
    min_version=0,
    max_version=4,
    flexible_from=4,
    request=Struct(
        Field("group_id", STRING),
        Field("generation_id", INT32),
        Field("member_id", STRING),
        group_instance_id("3+"),
    ),
    response=Struct(throttle(), Field("error_code", INT16)),
)

LEAVE_GROUP = Api(
    key=ApiKey.LEAVE_GROUP,
    name="LeaveGroup",
    min_version=0,
    max_version=4,
    flexible_from=4,
    request=Struct(
        Field("group_id", STRING),
        Field("member_id", STRING, "0-2"),
        structs("members", Field("member_id", STRING), group_instance_id("3+"), versions="3+"),
    ),
    response=Struct(
        throttle(),
        Field("error_code", INT16),
        structs(
            "members",
            Field("member_id", STRING),
            group_instance_id("3+"),
            Field("error_code", INT16),
            versions="3+",
        ),
    ),
)

SYNC_GROUP = Api(
    key=ApiKey.SYNC_GROUP,
    name="SyncGroup",
    min_version=0,
    max_version=4,
    flexible_from=4,
    request=Struct(
        Field("group_id", STRING),
        Field("generation_id", INT32),
        Field("member_id", STRING),
        group_instance_id("3+"),
        structs("assignments", Field("member_id", STRING), Field("assignment", BYTES)),
    ),
    # not nullable in Kafka's schema, but librdkafka's mock cluster answers null
    # to a member the leader's assignment left out: read as none
    response=Struct(
        throttle(), Field("error_code", INT16), Field("assignment", BYTES, nullable_versions="0+")
    ),
)

DESCRIBE_GROUPS = Api(
    key=ApiKey.DESCRIBE_GROUPS,
    name="DescribeGroups",
    min_version=0,
    max_version=5,
    flexible_from=5,
    request=Struct(
        Field("groups", Array(STRING)), Field("include_authorized_operations", BOOL, "3+")
    ),
    response=Struct(
        throttle(),
        structs(
            "groups",
            Field("error_code", INT16),
            Field("group_id", STRING),
            Field("group_state", STRING),
            Field("protocol_type", STRING),
            Field("protocol_data", STRING),
            structs(
                "members",
                Field("member_id", STRING),
                group_instance_id("4+"),
                Field("client_id", STRING),
                Field("client_host", STRING),
                Field("member_metadata", BYTES),
                Field("member_assignment", BYTES),
            ),
            Field("authorized_operations", INT32, "3+", default=NO_AUTHORIZED_OPERATIONS),
        ),
    ),
)

LIST_GROUPS = Api(
    key=ApiKey.LIST_GROUPS,
    name="ListGroups",
    min_version=0,
    max_version=5,
    flexible_from=3,
    request=Struct(
        Field("states_filter", Array(STRING), "4+"),  # empty: every state
        Field("types_filter", Array(STRING), "5+"),  # empty: every type
    ),
    response=Struct(
        throttle(),
        Field("error_code", INT16),
        structs(
            "groups",
            Field("group_id", STRING),
            Field("protocol_type", STRING),
            Field("group_state", STRING, "4+"),
            Field("group_type", STRING, "5+"),
        ),
    ),
)

API_VERSIONS = Api(
    key=ApiKey.API_VERSIONS,
    name="ApiVersions",
    min_version=0,
    max_version=3,
    flexible_from=3,
    request=Struct(
        Field("client_software_name", STRING, "3+"), Field("client_software_version", STRING, "3+")
    ),
    response=Struct(
        Field("error_code", INT16),
        structs(
            "api_keys",
            Field("api_key", INT16),
            Field("min_version", INT16),
            Field("max_version", INT16),
        ),
        throttle(),
        structs(
            "supported_features",
            Field("name", STRING),
            Field("min_version", INT16),
            Field("max_version", INT16),
            versions="3+",
            tagged=0,
        ),
        Field("finalized_features_epoch", INT64, "3+", default=-1, tagged=1),
        structs(
            "finalized_features",
            Field("name", STRING),
            Field("max_version_level", INT16),
            Field("min_version_level", INT16),
            versions="3+",
            tagged=2,
        ),
        Field("zk_migration_ready", BOOL, "3+", tagged=3),
    ),
)

CREATE_TOPICS = Api(
    key=ApiKey.CREATE_TOPICS,
    name="CreateTopics",
    min_version=2,
    max_version=5,
    flexible_from=5,
    request=Struct(
        structs(
            "topics",
            Field("name", STRING),
            Field("num_partitions", INT32),  # -1: the broker default
            Field("replication_factor", INT16),  # -1: the broker default
            structs(
                "assignments", Field("partition_index", INT32), Field("broker_ids", Array(INT32))
            ),
            structs(
                "configs", Field("name", STRING), Field("value", STRING, nullable_versions="0+")
            ),
        ),
        Field("timeout_ms", INT32, default=60000),
        Field("validate_only", BOOL, "1+"),
    ),
    response=Struct(
        throttle("2+"),
        structs(
            "topics",
            Field("name", STRING),
            Field("error_code", INT16),
            error_message("1+"),
            Field("topic_config_error_code", INT16, "5+", tagged=0),
            Field("num_partitions", INT32, "5+", default=-1),
            Field("replication_factor", INT16, "5+", default=-1),
            structs(
                "configs",
                Field("name", STRING),
                Field("value", STRING, nullable_versions="0+"),
                Field("read_only", BOOL),
                Field("config_source", INT8, default=-1),
                Field("is_sensitive", BOOL),
                versions="5+",
                nullable_versions="5+",
            ),
        ),
    ),
)

DELETE_TOPICS = Api(
    key=ApiKey.DELETE_TOPICS,
    name="DeleteTopics",
    min_version=1,
    max_version=4,
    flexible_from=4,
    request=Struct(Field("topic_names", Array(STRING)), Field("timeout_ms", INT32)),
    response=Struct(
        throttle(), structs("responses", Field("name", STRING), Field("error_code", INT16))
    ),
)

INIT_PRODUCER_ID = Api(
    key=ApiKey.INIT_PRODUCER_ID,
    name="InitProducerId",
    min_version=0,
    max_version=4,
    flexible_from=2,
    request=Struct(
        Field("transactional_id", STRING, nullable_versions="0+", default=None),
        Field("transaction_timeout_ms", INT32),
        Field("producer_id", INT64, "3+", default=-1),
        Field("producer_epoch", INT16, "3+", default=-1),
    ),
    response=Struct(
        throttle("0+"),
        Field("error_code", INT16),
        Field("producer_id", INT64, default=-1),
        Field("producer_epoch", INT16),
    ),
)

DESCRIBE_CONFIGS = Api(
    key=ApiKey.DESCRIBE_CONFIGS,
    name="DescribeConfigs",
    min_version=0,
    max_version=4,
    flexible_from=4,
    request=Struct(
        structs(
            "resources",
            Field("resource_type", INT8),  # 2 topic, 4 broker
            Field("resource_name", STRING),
            Field("configuration_keys", Array(STRING), nullable_versions="0+"),  # null: all
        ),
        Field("include_synonyms", BOOL, "1+"),
        Field("include_documentation", BOOL, "3+"),
    ),
    response=Struct(
        throttle("0+"),
        structs(
            "results",
            Field("error_code", INT16),
            error_message(),
            Field("resource_type", INT8),
            Field("resource_name", STRING),
            structs(
                "configs",
                Field("name", STRING),
                Field("value", STRING, nullable_versions="0+"),
                Field("read_only", BOOL),
                Field("is_default", BOOL, "0"),
                Field("config_source", INT8, "1+", default=-1),
                Field("is_sensitive", BOOL),
                structs(
                    "synonyms",
                    Field("name", STRING),
                    Field("value", STRING, nullable_versions="0+"),
                    Field("source", INT8),
                    versions="1+",
                ),
                Field("config_type", INT8, "3+"),
                Field("documentation", STRING, "3+", nullable_versions="0+", default=None),
            ),
        ),
    ),
)

APIS: dict[int, Api] = {
    api.key: api
    for api in (
        PRODUCE,
        FETCH,
        LIST_OFFSETS,
        METADATA,
        OFFSET_COMMIT,
        OFFSET_FETCH,
        FIND_COORDINATOR,
        JOIN_GROUP,
        HEARTBEAT,
        LEAVE_GROUP,
        SYNC_GROUP,
        DESCRIBE_GROUPS,
        LIST_GROUPS,
        API_VERSIONS,
        CREATE_TOPICS,
        DELETE_TOPICS,
        INIT_PRODUCER_ID,
        DESCRIBE_CONFIGS,
        *TXN_APIS,
        *SASL_APIS,
        *ACL_APIS,
        *ADMIN_APIS,
    )
}
