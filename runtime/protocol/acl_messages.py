"""Request and response schemas of the ACL, SCRAM-credential and DescribeCluster APIs.

Written from the Kafka protocol guide and Apache Kafka's message definitions,
like messages.py. librdkafka sends the ACL APIs at v0-2 (v2 flexible),
kafka-python at v1-3; v0 lacks the pattern type (LITERAL is meant).

| api (key)                            | versions | first flexible |
|--------------------------------------|----------|----------------|
| DescribeAcls (29)                    | 0-3      | 2              |
| CreateAcls (30)                      | 0-3      | 2              |
| DeleteAcls (31)                      | 0-3      | 2              |
| DescribeUserScramCredentials (50)    | 0        | 0              |
| AlterUserScramCredentials (51)       | 0        | 0              |
| DescribeCluster (60)                 | 0-1      | 0              |
"""

from __future__ import annotations

from runtime.protocol.codes import ApiKey
from runtime.protocol.fields import NO_AUTHORIZED_OPERATIONS, error_message, structs, throttle
from runtime.protocol.schema import BOOL, BYTES, INT8, INT16, INT32, STRING, Api, Field, Struct

_LITERAL = 3


def _nullable_string(name: str) -> Field:
    return Field(name, STRING, nullable_versions="0+", default=None)


_FILTER = (
    Field("resource_type_filter", INT8),
    _nullable_string("resource_name_filter"),
    Field("pattern_type_filter", INT8, "1+", default=_LITERAL),
    _nullable_string("principal_filter"),
    _nullable_string("host_filter"),
    Field("operation", INT8),
    Field("permission_type", INT8),
)

_ENTRY = (
    Field("principal", STRING),
    Field("host", STRING),
    Field("operation", INT8),
    Field("permission_type", INT8),
)

DESCRIBE_ACLS = Api(
    key=ApiKey.DESCRIBE_ACLS,
    name="DescribeAcls",
    min_version=0,
    max_version=3,
    flexible_from=2,
    request=Struct(*_FILTER),
    response=Struct(
        throttle("0+"),
        Field("error_code", INT16),
        error_message(),
        structs(
            "resources",
            Field("resource_type", INT8),
            Field("resource_name", STRING),
            Field("pattern_type", INT8, "1+", default=_LITERAL),
            structs("acls", *_ENTRY),
        ),
    ),
)

CREATE_ACLS = Api(
    key=ApiKey.CREATE_ACLS,
    name="CreateAcls",
    min_version=0,
    max_version=3,
    flexible_from=2,
    request=Struct(
        structs(
            "creations",
            Field("resource_type", INT8),
            Field("resource_name", STRING),
            Field("resource_pattern_type", INT8, "1+", default=_LITERAL),
            *_ENTRY,
        )
    ),
    response=Struct(
        throttle("0+"), structs("results", Field("error_code", INT16), error_message())
    ),
)

DELETE_ACLS = Api(
    key=ApiKey.DELETE_ACLS,
    name="DeleteAcls",
    min_version=0,
    max_version=3,
    flexible_from=2,
    request=Struct(structs("filters", *_FILTER)),
    response=Struct(
        throttle("0+"),
        structs(
            "filter_results",
            Field("error_code", INT16),
            error_message(),
            structs(
                "matching_acls",
                Field("error_code", INT16),
                error_message(),
                Field("resource_type", INT8),
                Field("resource_name", STRING),
                Field("pattern_type", INT8, "1+", default=_LITERAL),
                *_ENTRY,
            ),
        ),
    ),
)

DESCRIBE_USER_SCRAM_CREDENTIALS = Api(
    key=ApiKey.DESCRIBE_USER_SCRAM_CREDENTIALS,
    name="DescribeUserScramCredentials",
    min_version=0,
    max_version=0,
    flexible_from=0,
    request=Struct(structs("users", Field("name", STRING), nullable_versions="0+")),
    response=Struct(
        throttle("0+"),
        Field("error_code", INT16),
        error_message(),
        structs(
            "results",
            Field("user", STRING),
            Field("error_code", INT16),
            error_message(),
            structs("credential_infos", Field("mechanism", INT8), Field("iterations", INT32)),
        ),
    ),
)

ALTER_USER_SCRAM_CREDENTIALS = Api(
    key=ApiKey.ALTER_USER_SCRAM_CREDENTIALS,
    name="AlterUserScramCredentials",
    min_version=0,
    max_version=0,
    flexible_from=0,
    request=Struct(
        structs("deletions", Field("name", STRING), Field("mechanism", INT8)),
        structs(
            "upsertions",
            Field("name", STRING),
            Field("mechanism", INT8),
            Field("iterations", INT32),
            Field("salt", BYTES),
            Field("salted_password", BYTES),
        ),
    ),
    response=Struct(
        throttle("0+"),
        structs("results", Field("user", STRING), Field("error_code", INT16), error_message()),
    ),
)

DESCRIBE_CLUSTER = Api(
    key=ApiKey.DESCRIBE_CLUSTER,
    name="DescribeCluster",
    min_version=0,
    max_version=1,
    flexible_from=0,
    request=Struct(
        Field("include_cluster_authorized_operations", BOOL),
        Field("endpoint_type", INT8, "1+", default=1),
    ),
    response=Struct(
        throttle("0+"),
        Field("error_code", INT16),
        error_message(),
        Field("endpoint_type", INT8, "1+", default=1),
        Field("cluster_id", STRING),
        Field("controller_id", INT32, default=-1),
        structs(
            "brokers",
            Field("broker_id", INT32),
            Field("host", STRING),
            Field("port", INT32),
            _nullable_string("rack"),
        ),
        Field("cluster_authorized_operations", INT32, default=NO_AUTHORIZED_OPERATIONS),
    ),
)

ACL_APIS = (
    DESCRIBE_ACLS,
    CREATE_ACLS,
    DELETE_ACLS,
    DESCRIBE_USER_SCRAM_CREDENTIALS,
    ALTER_USER_SCRAM_CREDENTIALS,
    DESCRIBE_CLUSTER,
)
