"""Every API's authorization answer, request by request: an in-process broker whose
handlers are called with a chosen principal, each request and answer going through
the wire codecs (so every version's encoding is exercised too).

The broker denies what no ACL allows (`allow_everyone_if_no_acl=False`); `User:admin`
is a super user and sets the scene.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from runtime.broker.endpoints import Address, SecuritySettings
from runtime.broker.server import Broker
from runtime.broker.settings import Peer
from runtime.protocol.codes import ApiKey, ErrorCode
from runtime.protocol.frames import decode_request, decode_response, encode_request
from runtime.protocol.frames import encode_response as encode_answer
from runtime.security.acls import Operation, PatternType, Permission, ResourceType

E = ErrorCode
TIMEOUT_S = 20.0
ADMIN = "User:admin"
BOB = "User:bob"

Call = Callable[..., Awaitable[dict]]


def run(scenario: Callable[[Call, Broker], Awaitable[None]]) -> None:
    async def main() -> None:
        security = SecuritySettings(super_users=(ADMIN,), allow_everyone_if_no_acl=False)
        broker = Broker(None, listen=Address("127.0.0.1", 0), security=security)
        async with broker:

            async def call(key: int, version: int, body: dict, principal: str = BOB) -> dict:
                header, decoded = decode_request(encode_request(key, version, 7, "t", body)[4:])
                handlers = broker._handlers
                assert handlers is not None
                peer = Peer("t", "127.0.0.1", principal)
                answer = await handlers.by_key[key](header, decoded, peer)
                assert answer is not None
                return decode_response(key, version, encode_answer(header, answer)[4:])[1]

            await scenario(call, broker)

    asyncio.run(asyncio.wait_for(main(), TIMEOUT_S))


def acl(
    rtype: ResourceType,
    name: str,
    operation: Operation,
    principal: str = BOB,
    pattern: PatternType = PatternType.LITERAL,
    permission: Permission = Permission.ALLOW,
) -> dict:
    return {
        "resource_type": rtype,
        "resource_name": name,
        "resource_pattern_type": pattern,
        "principal": principal,
        "host": "*",
        "operation": operation,
        "permission_type": permission,
    }


async def grant(call: Call, *acls: dict) -> None:
    answer = await call(ApiKey.CREATE_ACLS, 3, {"creations": list(acls)}, ADMIN)
    assert [r["error_code"] for r in answer["results"]] == [E.NONE] * len(acls)


async def create_topic(call: Call, name: str, principal: str = ADMIN) -> int:
    body = {"topics": [{"name": name, "num_partitions": 1, "replication_factor": 1}]}
    return (await call(ApiKey.CREATE_TOPICS, 4, body, principal))["topics"][0]["error_code"]


def partitions(topic: str) -> list[dict]:
    return [{"name": topic, "partitions": [{"partition_index": 0}]}]


TXN = {"transactional_id": "tx", "producer_id": 1, "producer_epoch": 0}


def first(path: str) -> Callable[[dict], Any]:
    """The value at a dotted path, taking element 0 of each list on the way."""

    def get(answer: dict) -> Any:
        value: Any = answer
        for key in path.split("."):
            value = value[key]
            if isinstance(value, list):
                value = value[0]
        return value

    return get


# (what, api key, version, request body, where the answer's code is, the code)
REFUSALS: list[tuple[str, int, int, dict, Callable[[dict], Any], int]] = [
    (
        "produce",
        ApiKey.PRODUCE,
        8,
        {"acks": -1, "topics": [{"name": "t", "partitions": [{"partition_index": 0}]}]},
        first("responses.partitions.error_code"),
        E.TOPIC_AUTHORIZATION_FAILED,
    ),
    (
        "transactional produce",
        ApiKey.PRODUCE,
        8,
        {
            "transactional_id": "tx",
            "acks": -1,
            "topics": [{"name": "t", "partitions": [{"partition_index": 0}]}],
        },
        first("responses.partitions.error_code"),
        E.TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
    ),
    (
        "fetch",
        ApiKey.FETCH,
        11,
        {"topics": [{"topic": "t", "partitions": [{"partition": 0, "partition_max_bytes": 9}]}]},
        first("responses.partitions.error_code"),
        E.TOPIC_AUTHORIZATION_FAILED,
    ),
    (
        "list offsets",
        ApiKey.LIST_OFFSETS,
        5,
        {"topics": [{"name": "t", "partitions": [{"partition_index": 0, "timestamp": -1}]}]},
        first("topics.partitions.error_code"),
        E.TOPIC_AUTHORIZATION_FAILED,
    ),
    (
        "metadata of a named topic",
        ApiKey.METADATA,
        8,
        {"topics": [{"name": "t"}]},
        first("topics.error_code"),
        E.TOPIC_AUTHORIZATION_FAILED,
    ),
    (
        "create topics",
        ApiKey.CREATE_TOPICS,
        4,
        {"topics": [{"name": "new", "num_partitions": 1, "replication_factor": 1}]},
        first("topics.error_code"),
        E.TOPIC_AUTHORIZATION_FAILED,
    ),
    (
        "delete topics",
        ApiKey.DELETE_TOPICS,
        3,
        {"topic_names": ["t"]},
        first("responses.error_code"),
        E.TOPIC_AUTHORIZATION_FAILED,
    ),
    (
        "topic configs",
        ApiKey.DESCRIBE_CONFIGS,
        1,
        {"resources": [{"resource_type": 2, "resource_name": "t", "configuration_keys": None}]},
        first("results.error_code"),
        E.TOPIC_AUTHORIZATION_FAILED,
    ),
    (
        "broker configs",
        ApiKey.DESCRIBE_CONFIGS,
        1,
        {"resources": [{"resource_type": 4, "resource_name": "0", "configuration_keys": None}]},
        first("results.error_code"),
        E.CLUSTER_AUTHORIZATION_FAILED,
    ),
    (
        "group coordinator",
        ApiKey.FIND_COORDINATOR,
        2,
        {"key": "g", "key_type": 0},
        first("error_code"),
        E.GROUP_AUTHORIZATION_FAILED,
    ),
    (
        "transaction coordinator",
        ApiKey.FIND_COORDINATOR,
        2,
        {"key": "tx", "key_type": 1},
        first("error_code"),
        E.TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
    ),
    (
        "join group",
        ApiKey.JOIN_GROUP,
        5,
        {"group_id": "g", "session_timeout_ms": 10000, "protocol_type": "consumer"},
        first("error_code"),
        E.GROUP_AUTHORIZATION_FAILED,
    ),
    (
        "sync group",
        ApiKey.SYNC_GROUP,
        3,
        {"group_id": "g", "generation_id": 1, "member_id": "m"},
        first("error_code"),
        E.GROUP_AUTHORIZATION_FAILED,
    ),
    (
        "heartbeat",
        ApiKey.HEARTBEAT,
        3,
        {"group_id": "g", "generation_id": 1, "member_id": "m"},
        first("error_code"),
        E.GROUP_AUTHORIZATION_FAILED,
    ),
    (
        "leave group",
        ApiKey.LEAVE_GROUP,
        3,
        {"group_id": "g", "members": [{"member_id": "m"}]},
        first("error_code"),
        E.GROUP_AUTHORIZATION_FAILED,
    ),
    (
        "offset commit",
        ApiKey.OFFSET_COMMIT,
        7,
        {"group_id": "g", "topics": [{"name": "t", "partitions": [{"partition_index": 0}]}]},
        first("topics.partitions.error_code"),
        E.GROUP_AUTHORIZATION_FAILED,
    ),
    (
        "offset fetch",
        ApiKey.OFFSET_FETCH,
        5,
        {"group_id": "g", "topics": [{"name": "t", "partition_indexes": [0]}]},
        first("error_code"),
        E.GROUP_AUTHORIZATION_FAILED,
    ),
    (
        "offset fetch v1",
        ApiKey.OFFSET_FETCH,
        1,
        {"group_id": "g", "topics": [{"name": "t", "partition_indexes": [0]}]},
        first("topics.partitions.error_code"),
        E.GROUP_AUTHORIZATION_FAILED,
    ),
    (
        "describe groups",
        ApiKey.DESCRIBE_GROUPS,
        4,
        {"groups": ["g"]},
        first("groups.error_code"),
        E.GROUP_AUTHORIZATION_FAILED,
    ),
    (
        "idempotent producer id",
        ApiKey.INIT_PRODUCER_ID,
        1,
        {"transactional_id": None},
        first("error_code"),
        E.CLUSTER_AUTHORIZATION_FAILED,
    ),
    (
        "transactional producer id",
        ApiKey.INIT_PRODUCER_ID,
        1,
        {"transactional_id": "tx", "transaction_timeout_ms": 60000},
        first("error_code"),
        E.TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
    ),
    (
        "add partitions to txn",
        ApiKey.ADD_PARTITIONS_TO_TXN,
        1,
        TXN | {"topics": [{"name": "t", "partitions": [0]}]},
        first("results.results.partition_error_code"),
        E.TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
    ),
    (
        "add offsets to txn",
        ApiKey.ADD_OFFSETS_TO_TXN,
        1,
        TXN | {"group_id": "g"},
        first("error_code"),
        E.TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
    ),
    (
        "end txn",
        ApiKey.END_TXN,
        1,
        TXN | {"committed": True},
        first("error_code"),
        E.TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
    ),
    (
        "txn offset commit",
        ApiKey.TXN_OFFSET_COMMIT,
        2,
        TXN | {"group_id": "g", "topics": [{"name": "t", "partitions": [{"partition_index": 0}]}]},
        first("topics.partitions.error_code"),
        E.TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
    ),
    (
        "describe transactions",
        ApiKey.DESCRIBE_TRANSACTIONS,
        0,
        {"transactional_ids": ["tx"]},
        first("transaction_states.error_code"),
        E.TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
    ),
    (
        "create acls",
        ApiKey.CREATE_ACLS,
        2,
        {"creations": [acl(ResourceType.TOPIC, "t", Operation.ALL)]},
        first("results.error_code"),
        E.CLUSTER_AUTHORIZATION_FAILED,
    ),
    (
        "describe acls",
        ApiKey.DESCRIBE_ACLS,
        1,
        {"resource_type_filter": 1, "pattern_type_filter": 1, "operation": 1, "permission_type": 1},
        first("error_code"),
        E.CLUSTER_AUTHORIZATION_FAILED,
    ),
    (
        "delete acls",
        ApiKey.DELETE_ACLS,
        3,
        {
            "filters": [
                {
                    "resource_type_filter": 1,
                    "pattern_type_filter": 1,
                    "operation": 1,
                    "permission_type": 1,
                }
            ]
        },
        first("filter_results.error_code"),
        E.CLUSTER_AUTHORIZATION_FAILED,
    ),
    (
        "describe scram credentials",
        ApiKey.DESCRIBE_USER_SCRAM_CREDENTIALS,
        0,
        {"users": None},
        first("error_code"),
        E.CLUSTER_AUTHORIZATION_FAILED,
    ),
    (
        "alter scram credentials",
        ApiKey.ALTER_USER_SCRAM_CREDENTIALS,
        0,
        {"deletions": [{"name": "admin", "mechanism": 1}]},
        first("results.error_code"),
        E.CLUSTER_AUTHORIZATION_FAILED,
    ),
    (
        "create partitions",
        ApiKey.CREATE_PARTITIONS,
        3,
        {"topics": [{"name": "t", "count": 2, "assignments": None}], "validate_only": False},
        first("results.error_code"),
        E.TOPIC_AUTHORIZATION_FAILED,
    ),
    (
        "delete records",
        ApiKey.DELETE_RECORDS,
        2,
        {"topics": [{"name": "t", "partitions": [{"partition_index": 0, "offset": 0}]}]},
        first("topics.partitions.error_code"),
        E.TOPIC_AUTHORIZATION_FAILED,
    ),
    (
        "alter topic configs",
        ApiKey.ALTER_CONFIGS,
        2,
        {"resources": [{"resource_type": 2, "resource_name": "t", "configs": []}]},
        first("responses.error_code"),
        E.TOPIC_AUTHORIZATION_FAILED,
    ),
    (
        "alter broker configs incrementally",
        ApiKey.INCREMENTAL_ALTER_CONFIGS,
        1,
        {"resources": [{"resource_type": 4, "resource_name": "0", "configs": []}]},
        first("responses.error_code"),
        E.CLUSTER_AUTHORIZATION_FAILED,
    ),
    (
        "delete groups",
        ApiKey.DELETE_GROUPS,
        2,
        {"groups_names": ["g"]},
        first("results.error_code"),
        E.GROUP_AUTHORIZATION_FAILED,
    ),
    (
        "offset delete",
        ApiKey.OFFSET_DELETE,
        0,
        {"group_id": "g", "topics": [{"name": "t", "partitions": [{"partition_index": 0}]}]},
        first("error_code"),
        E.GROUP_AUTHORIZATION_FAILED,
    ),
]


@pytest.mark.parametrize(
    ("key", "version", "body", "code_of", "expected"),
    [r[1:] for r in REFUSALS],
    ids=[r[0] for r in REFUSALS],
)
def test_a_principal_without_acls_gets_each_apis_error(key, version, body, code_of, expected):
    async def scenario(call: Call, broker: Broker) -> None:
        assert await create_topic(call, "t") == E.NONE
        answer = await call(key, version, body)
        assert code_of(answer) == expected
        assert code_of(await call(key, version, body, ADMIN)) != expected  # the super user

    run(scenario)


def test_listings_leave_out_what_the_principal_may_not_describe():
    async def scenario(call: Call, broker: Broker) -> None:
        for name in ("t", "mine"):
            assert await create_topic(call, name) == E.NONE
        await grant(call, acl(ResourceType.TOPIC, "mine", Operation.READ))
        listed = await call(ApiKey.METADATA, 8, {"topics": None})
        assert [t["name"] for t in listed["topics"]] == ["mine"]
        join = {
            "group_id": "admins",
            "session_timeout_ms": 10000,
            "protocol_type": "consumer",
            "protocols": [{"name": "range", "metadata": b""}],
        }
        assert (await call(ApiKey.JOIN_GROUP, 3, join, ADMIN))["error_code"] == E.NONE
        assert (await call(ApiKey.LIST_GROUPS, 2, {}))["groups"] == []
        admin_groups = await call(ApiKey.LIST_GROUPS, 2, {}, ADMIN)
        assert [g["group_id"] for g in admin_groups["groups"]] == ["admins"]
        assert (await call(ApiKey.LIST_TRANSACTIONS, 1, {}))["transaction_states"] == []

    run(scenario)


def test_auto_creation_needs_create_on_the_cluster_or_the_topic():
    async def scenario(call: Call, broker: Broker) -> None:
        await grant(call, acl(ResourceType.TOPIC, "auto-", Operation.DESCRIBE, pattern=PREFIX))
        ask = {"topics": [{"name": "auto-1"}], "allow_auto_topic_creation": True}
        refused = await call(ApiKey.METADATA, 8, ask)
        assert refused["topics"][0]["error_code"] == E.TOPIC_AUTHORIZATION_FAILED
        assert "auto-1" not in broker.transport.log.topics()
        await grant(call, acl(ResourceType.TOPIC, "auto-", Operation.CREATE, pattern=PREFIX))
        created = await call(ApiKey.METADATA, 8, ask)
        assert created["topics"][0]["error_code"] == E.NONE
        await grant(call, acl(ResourceType.CLUSTER, "kafka-cluster", Operation.CREATE))
        assert await create_topic(call, "anything", BOB) == E.NONE

    run(scenario)


PREFIX = PatternType.PREFIXED


def test_commits_are_refused_per_topic_and_the_rest_committed():
    async def scenario(call: Call, broker: Broker) -> None:
        for name in ("a", "b"):
            assert await create_topic(call, name) == E.NONE
        await grant(
            call,
            acl(ResourceType.GROUP, "g", Operation.READ),
            acl(ResourceType.TOPIC, "a", Operation.READ),
        )
        commit = {
            "group_id": "g",
            "topics": [
                {"name": n, "partitions": [{"partition_index": 0, "committed_offset": 5}]}
                for n in ("a", "b")
            ],
        }
        answer = await call(ApiKey.OFFSET_COMMIT, 7, commit)
        codes = {t["name"]: t["partitions"][0]["error_code"] for t in answer["topics"]}
        assert codes == {"a": E.NONE, "b": E.TOPIC_AUTHORIZATION_FAILED}
        everything = await call(ApiKey.OFFSET_FETCH, 5, {"group_id": "g", "topics": None})
        assert [t["name"] for t in everything["topics"]] == ["a"]
        fetched = await call(ApiKey.OFFSET_FETCH, 5, {"group_id": "g", "topics": None}, ADMIN)
        assert [t["name"] for t in fetched["topics"]] == ["a"]  # b was never committed
        named = await call(
            ApiKey.OFFSET_FETCH,
            5,
            {"group_id": "g", "topics": [{"name": "b", "partition_indexes": [0]}]},
        )
        assert named["topics"][0]["partitions"][0]["error_code"] == E.TOPIC_AUTHORIZATION_FAILED

    run(scenario)


def test_add_partitions_names_the_refused_topic_and_attempts_none():
    async def scenario(call: Call, broker: Broker) -> None:
        await grant(
            call,
            acl(ResourceType.TRANSACTIONAL_ID, "tx", Operation.WRITE),
            acl(ResourceType.TOPIC, "a", Operation.WRITE),
        )
        body = TXN | {
            "topics": [{"name": "a", "partitions": [0]}, {"name": "b", "partitions": [0]}]
        }
        answer = await call(ApiKey.ADD_PARTITIONS_TO_TXN, 1, body)
        codes = {r["name"]: r["results"][0]["partition_error_code"] for r in answer["results"]}
        assert codes == {"a": E.OPERATION_NOT_ATTEMPTED, "b": E.TOPIC_AUTHORIZATION_FAILED}
        # WRITE on some topic is enough for an idempotent producer id
        idempotent = await call(ApiKey.INIT_PRODUCER_ID, 1, {"transactional_id": None})
        assert idempotent["error_code"] == E.NONE and idempotent["producer_id"] >= 0

    run(scenario)


def test_invalid_acls_are_refused_one_by_one_and_v0_sees_literal_acls_only():
    async def scenario(call: Call, broker: Broker) -> None:
        creations = [
            acl(ResourceType.TOPIC, "ok", Operation.READ),
            acl(ResourceType.TOPIC, "bad", Operation.ANY),
            acl(ResourceType.CLUSTER, "not-the-cluster", Operation.ALTER),
            acl(ResourceType.TOPIC, "ok-", Operation.READ, pattern=PREFIX),
            acl(ResourceType.TOPIC, "x", Operation.READ, principal="bob"),
        ]
        answer = await call(ApiKey.CREATE_ACLS, 1, {"creations": creations}, ADMIN)
        codes = [r["error_code"] for r in answer["results"]]
        assert codes == [E.NONE, E.INVALID_REQUEST, E.INVALID_REQUEST, E.NONE, E.INVALID_REQUEST]
        assert "kafka-cluster" in answer["results"][2]["error_message"]
        everything = {
            "resource_type_filter": 1,
            "pattern_type_filter": 1,
            "operation": 1,
            "permission_type": 1,
        }
        v3 = await call(ApiKey.DESCRIBE_ACLS, 3, everything, ADMIN)
        assert sorted(r["resource_name"] for r in v3["resources"]) == ["ok", "ok-"]
        v0 = await call(ApiKey.DESCRIBE_ACLS, 0, everything, ADMIN)
        assert [r["resource_name"] for r in v0["resources"]] == ["ok"]
        match = everything | {"resource_name_filter": "ok-go", "pattern_type_filter": 2}
        matched = await call(ApiKey.DESCRIBE_ACLS, 2, match, ADMIN)
        assert [r["resource_name"] for r in matched["resources"]] == ["ok-"]
        bad_filter = await call(ApiKey.DESCRIBE_ACLS, 2, everything | {"operation": 0}, ADMIN)
        assert bad_filter["error_code"] == E.INVALID_REQUEST
        deleted = await call(ApiKey.DELETE_ACLS, 2, {"filters": [everything]}, ADMIN)
        assert len(deleted["filter_results"][0]["matching_acls"]) == 2
        assert broker.acls is not None and not broker.acls.authorizer.acls

    run(scenario)


def test_authorized_operations_fields_hold_the_real_bit_sets():
    async def scenario(call: Call, broker: Broker) -> None:
        assert await create_topic(call, "t") == E.NONE
        await grant(
            call,
            acl(ResourceType.TOPIC, "t", Operation.WRITE),
            acl(ResourceType.GROUP, "g", Operation.READ),
            acl(ResourceType.CLUSTER, "kafka-cluster", Operation.DESCRIBE),
        )
        asked = {
            "topics": [{"name": "t"}],
            "include_cluster_authorized_operations": True,
            "include_topic_authorized_operations": True,
        }
        answer = await call(ApiKey.METADATA, 8, asked)
        bits = 1 << Operation.WRITE | 1 << Operation.DESCRIBE
        assert answer["topics"][0]["topic_authorized_operations"] == bits
        assert answer["cluster_authorized_operations"] == 1 << Operation.DESCRIBE
        not_asked = await call(ApiKey.METADATA, 8, {"topics": [{"name": "t"}]})
        assert not_asked["topics"][0]["topic_authorized_operations"] == -(2**31)
        groups = await call(
            ApiKey.DESCRIBE_GROUPS, 4, {"groups": ["g"], "include_authorized_operations": True}
        )
        assert groups["groups"][0]["authorized_operations"] == (
            1 << Operation.READ | 1 << Operation.DESCRIBE
        )
        cluster = await call(
            ApiKey.DESCRIBE_CLUSTER, 1, {"include_cluster_authorized_operations": True}
        )
        assert cluster["cluster_authorized_operations"] == 1 << Operation.DESCRIBE
        assert [b["broker_id"] for b in cluster["brokers"]] == [0]

    run(scenario)


def test_denials_are_logged_once_per_kind_and_interval(caplog):
    async def scenario(call: Call, broker: Broker) -> None:
        assert await create_topic(call, "t") == E.NONE
        body = {"acks": -1, "topics": [{"name": "t", "partitions": [{"partition_index": 0}]}]}
        for _ in range(20):
            await call(ApiKey.PRODUCE, 8, body)

    with caplog.at_level(logging.WARNING, logger="runtime.broker.server"):
        run(scenario)
    lines = [r.getMessage() for r in caplog.records if "denied" in r.getMessage()]
    produce = [line for line in lines if "operation=WRITE" in line]
    assert produce[0] == "denied principal=User:bob host=127.0.0.1 operation=WRITE resource=TOPIC:t"
    # the first at once, the 19 others counted into the one written at shutdown
    assert len(produce) == 2 and produce[1].endswith("repeated=19")


def test_an_acls_host_is_the_clients_address_or_any():
    async def scenario(call: Call, broker: Broker) -> None:
        assert await create_topic(call, "t") == E.NONE
        elsewhere = acl(ResourceType.TOPIC, "t", Operation.WRITE) | {"host": "10.0.0.1"}
        await grant(call, elsewhere)
        body = {"acks": -1, "topics": [{"name": "t", "partitions": [{"partition_index": 0}]}]}
        code = first("responses.partitions.error_code")
        assert code(await call(ApiKey.PRODUCE, 8, body)) == E.TOPIC_AUTHORIZATION_FAILED
        await grant(call, elsewhere | {"host": "127.0.0.1"})  # where the requests come from
        assert code(await call(ApiKey.PRODUCE, 8, body)) == E.CORRUPT_MESSAGE  # past the ACLs

    run(scenario)


def test_creations_past_the_brokers_acl_limit_are_a_policy_violation():
    async def scenario(call: Call, broker: Broker) -> None:
        assert broker.acls is not None
        broker.acls.acls_max = 2
        await grant(call, acl(ResourceType.TOPIC, "a", Operation.READ))
        creations = [acl(ResourceType.TOPIC, n, Operation.READ) for n in ("b", "c")]
        answer = await call(ApiKey.CREATE_ACLS, 3, {"creations": creations}, ADMIN)
        assert [r["error_code"] for r in answer["results"]] == [E.POLICY_VIOLATION] * 2
        assert "more than this broker keeps (2)" in answer["results"][0]["error_message"]
        assert len(broker.acls.authorizer.acls) == 1  # none of the request's was added
        await grant(call, creations[0])  # within the limit

    run(scenario)


# APIs anyone may call: no resource to authorize, or a listing that leaves out
# what the principal may not see (tested above)
UNGUARDED = {
    ApiKey.CONSUMER_GROUP_HEARTBEAT,  # refused to everyone: the classic protocol only
    ApiKey.API_VERSIONS,
    ApiKey.SASL_HANDSHAKE,
    ApiKey.SASL_AUTHENTICATE,
    ApiKey.DESCRIBE_CLUSTER,
    ApiKey.LIST_GROUPS,
    ApiKey.LIST_TRANSACTIONS,
}


def test_every_advertised_api_has_its_refusal_tested():
    """A new API served without an authorization check (and a line in REFUSALS)
    fails here: every request must be decided by the ACLs."""
    from runtime.broker.handlers import ADVERTISED

    tested = {key for _, key, *_ in REFUSALS}
    assert set(ADVERTISED) - UNGUARDED - tested == set()
