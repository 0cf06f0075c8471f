"""The consumer-group APIs, answered by the group coordinator.

Authorization (authorize.py): joining, syncing, heartbeats, leaving and
committing need READ on the group (GROUP_AUTHORIZATION_FAILED); a commit
READ on each topic, fetching offsets DESCRIBE on the group and the topics
(TOPIC_AUTHORIZATION_FAILED for a named one; left out of "every partition"),
DescribeGroups DESCRIBE on each group; ListGroups lists the groups the
principal may DESCRIBE (all of them with DESCRIBE on the cluster).

Groups are Kafka's classic protocol (JoinGroup, SyncGroup, Heartbeat). A client
asking for KIP-848's consumer protocol (ConsumerGroupHeartbeat, librdkafka's
`group.protocol=consumer`) is refused loudly: were the API not advertised,
librdkafka would wait for a coordinator that never assigns it anything and
consume nothing without a word.
"""

from __future__ import annotations

from collections.abc import Callable

from runtime.broker.authorize import Access, Operation, ResourceType
from runtime.broker.coordinator import NO_COMMIT, GroupCoordinator
from runtime.broker.settings import Handler, Peer
from runtime.protocol.codes import ApiKey, ErrorCode
from runtime.protocol.fields import NO_AUTHORIZED_OPERATIONS
from runtime.protocol.frames import RequestHeader
from runtime.security.acls import CLUSTER_NAME
from runtime.types import TopicPartition

# what librdkafka takes as fatal for a consumer group: the consumer stops with it
KIP_848_REFUSAL = ErrorCode.UNSUPPORTED_VERSION


class GroupApi:
    def __init__(
        self,
        coordinator: GroupCoordinator,
        access: Access,
        pending_offsets: Callable[[str], set[TopicPartition]] = lambda group_id: set(),
    ) -> None:
        self._coordinator = coordinator
        self._access = access
        self._pending_offsets = pending_offsets
        self.by_key: dict[int, Handler] = {
            ApiKey.OFFSET_COMMIT: self.offset_commit,
            ApiKey.OFFSET_FETCH: self.offset_fetch,
            ApiKey.JOIN_GROUP: self.join_group,
            ApiKey.HEARTBEAT: self.heartbeat,
            ApiKey.LEAVE_GROUP: self.leave_group,
            ApiKey.SYNC_GROUP: self.sync_group,
            ApiKey.DESCRIBE_GROUPS: self.describe_groups,
            ApiKey.LIST_GROUPS: self.list_groups,
            ApiKey.CONSUMER_GROUP_HEARTBEAT: self.consumer_group_heartbeat,
        }

    async def consumer_group_heartbeat(self, header: RequestHeader, body: dict, peer: Peer) -> dict:
        return {
            "error_code": KIP_848_REFUSAL,
            "error_message": (
                "this broker serves the classic consumer group protocol only: "
                "set group.protocol=classic"
            ),
            "member_id": None,
            "member_epoch": -1,
            "heartbeat_interval_ms": 0,
        }

    def _group_denied(self, peer: Peer, group_id: str) -> bool:
        return not self._access.group(peer, Operation.READ, group_id)

    async def join_group(self, header: RequestHeader, body: dict, peer: Peer) -> dict:
        if self._group_denied(peer, body["group_id"]):
            return {
                "error_code": ErrorCode.GROUP_AUTHORIZATION_FAILED,
                "generation_id": -1,
                "protocol_name": "",
                "leader": "",
                "member_id": body["member_id"],
                "members": [],
            }
        rebalance_ms = body.get("rebalance_timeout_ms", -1)
        if rebalance_ms < 0:
            rebalance_ms = body["session_timeout_ms"]
        result = await self._coordinator.join(
            body["group_id"],
            body["member_id"],
            body.get("group_instance_id"),
            body["protocol_type"],
            [(p["name"], bytes(p["metadata"])) for p in body["protocols"]],
            body["session_timeout_ms"],
            rebalance_ms,
            peer.client_id,
            peer.host,
            require_known_member_id=header.api_version >= 4,
        )
        return {
            "error_code": result.error_code,
            "generation_id": result.generation_id,
            "protocol_name": result.protocol_name or "",
            "leader": result.leader_id,
            "member_id": result.member_id,
            "members": [
                {
                    "member_id": m.member_id,
                    "group_instance_id": m.group_instance_id,
                    "metadata": m.metadata,
                }
                for m in result.members
            ],
        }

    async def sync_group(self, header: RequestHeader, body: dict, peer: Peer) -> dict:
        if self._group_denied(peer, body["group_id"]):
            return {"error_code": ErrorCode.GROUP_AUTHORIZATION_FAILED, "assignment": b""}
        result = await self._coordinator.sync(
            body["group_id"],
            body["generation_id"],
            body["member_id"],
            {a["member_id"]: bytes(a["assignment"]) for a in body["assignments"]},
            instance_id=body.get("group_instance_id"),
        )
        return {"error_code": result.error_code, "assignment": result.assignment}

    async def heartbeat(self, header: RequestHeader, body: dict, peer: Peer) -> dict:
        if self._group_denied(peer, body["group_id"]):
            return {"error_code": ErrorCode.GROUP_AUTHORIZATION_FAILED}
        code = await self._coordinator.heartbeat(
            body["group_id"],
            body["generation_id"],
            body["member_id"],
            body.get("group_instance_id"),
        )
        return {"error_code": code}

    async def leave_group(self, header: RequestHeader, body: dict, peer: Peer) -> dict:
        if self._group_denied(peer, body["group_id"]):
            return {"error_code": ErrorCode.GROUP_AUTHORIZATION_FAILED, "members": []}
        if header.api_version < 3:
            members = [(body["member_id"], None)]
        else:
            members = [(m["member_id"], m.get("group_instance_id")) for m in body["members"]]
        result = await self._coordinator.leave(body["group_id"], members)
        code = result.error_code
        if header.api_version < 3 and code == ErrorCode.NONE and result.members:
            code = result.members[0].error_code
        return {
            "error_code": code,
            "members": [
                {
                    "member_id": m.member_id,
                    "group_instance_id": m.group_instance_id,
                    "error_code": m.error_code,
                }
                for m in result.members
            ],
        }

    async def offset_commit(self, header: RequestHeader, body: dict, peer: Peer) -> dict:
        codes: dict[TopicPartition, int] = {}
        denied = self._commit_denied(peer, body["group_id"], body["topics"], codes)
        offsets = {
            TopicPartition(t["name"], p["partition_index"]): (
                p["committed_offset"],
                p["committed_metadata"],
                p.get("committed_leader_epoch", -1),
            )
            for t in body["topics"]
            if t["name"] not in denied
            for p in t["partitions"]
        }
        if offsets:
            codes |= await self._coordinator.commit_offsets(
                body["group_id"], body["generation_id"], body["member_id"], offsets
            )
        return {
            "topics": [
                {
                    "name": t["name"],
                    "partitions": [
                        {
                            "partition_index": p["partition_index"],
                            "error_code": codes.get(
                                TopicPartition(t["name"], p["partition_index"]), 0
                            ),
                        }
                        for p in t["partitions"]
                    ],
                }
                for t in body["topics"]
            ]
        }

    def _commit_denied(
        self, peer: Peer, group_id: str, topics: list[dict], codes: dict[TopicPartition, int]
    ) -> set[str]:
        """The topics whose commits are refused, their codes put in `codes`."""
        group_denied = self._group_denied(peer, group_id)
        denied = set()
        for t in topics:
            if group_denied:
                code = ErrorCode.GROUP_AUTHORIZATION_FAILED
            elif not self._access.topic(peer, Operation.READ, t["name"]):
                code = ErrorCode.TOPIC_AUTHORIZATION_FAILED
            else:
                continue
            denied.add(t["name"])
            for p in t["partitions"]:
                codes[TopicPartition(t["name"], p["partition_index"])] = code
        return denied

    async def offset_fetch(self, header: RequestHeader, body: dict, peer: Peer) -> dict:
        requested = body["topics"]
        if not self._access.group(peer, Operation.DESCRIBE, body["group_id"]):
            return _offsets_denied(requested or [])
        tps = None
        if requested is not None:
            tps = [TopicPartition(t["name"], p) for t in requested for p in t["partition_indexes"]]
        commits = await self._coordinator.fetch_offsets(body["group_id"], tps)
        allowed: dict[str, bool] = {}
        unstable = self._pending_offsets(body["group_id"]) if body.get("require_stable") else set()
        by_topic: dict[str, list[dict]] = {}
        for tp in tps if tps is not None else sorted(commits | dict.fromkeys(unstable)):
            if tp.topic not in allowed:
                allowed[tp.topic] = self._may_describe_topic(peer, tp.topic, named=tps is not None)
            if not allowed[tp.topic] and tps is None:
                continue  # "every partition" leaves out topics the principal may not see
            if not allowed[tp.topic] or tp in unstable:
                commit = NO_COMMIT
            else:
                commit = commits.get(tp, NO_COMMIT)
            if not allowed[tp.topic]:
                code = ErrorCode.TOPIC_AUTHORIZATION_FAILED
            else:
                code = ErrorCode.UNSTABLE_OFFSET_COMMIT if tp in unstable else ErrorCode.NONE
            by_topic.setdefault(tp.topic, []).append(
                {
                    "partition_index": tp.partition,
                    "committed_offset": commit.offset,
                    "committed_leader_epoch": commit.leader_epoch,
                    "metadata": commit.metadata,
                    "error_code": code,
                }
            )
        return {
            "topics": [{"name": name, "partitions": parts} for name, parts in by_topic.items()],
            "error_code": ErrorCode.NONE,
        }

    def _may_describe_topic(self, peer: Peer, topic: str, *, named: bool) -> bool:
        if named:
            return self._access.topic(peer, Operation.DESCRIBE, topic)
        return self._access.visible(peer, Operation.DESCRIBE, ResourceType.TOPIC, topic)

    async def describe_groups(self, header: RequestHeader, body: dict, peer: Peer) -> dict:
        groups = []
        for group_id in body["groups"]:
            if not self._access.group(peer, Operation.DESCRIBE, group_id):
                groups.append(_group_denied(group_id))
                continue
            d = self._coordinator.describe_group(group_id)
            operations = NO_AUTHORIZED_OPERATIONS
            if body.get("include_authorized_operations"):
                operations = self._access.operations(peer, ResourceType.GROUP, group_id)
            groups.append(
                {
                    "error_code": d.error_code,
                    "group_id": d.group_id,
                    "group_state": d.state,
                    "protocol_type": d.protocol_type,
                    "protocol_data": d.protocol_name,
                    "members": [
                        {
                            "member_id": m.member_id,
                            "group_instance_id": m.group_instance_id,
                            "client_id": m.client_id,
                            "client_host": m.client_host,
                            "member_metadata": m.metadata,
                            "member_assignment": m.assignment,
                        }
                        for m in d.members
                    ],
                    "authorized_operations": operations,
                }
            )
        return {"groups": groups}

    async def list_groups(self, header: RequestHeader, body: dict, peer: Peer) -> dict:
        everything = self._access.visible(
            peer, Operation.DESCRIBE, ResourceType.CLUSTER, CLUSTER_NAME
        )
        # v4+ filter by state, v5+ by type (KIP-848's: every group here is "classic")
        states = {s.lower() for s in body.get("states_filter") or ()}
        types = {t.lower() for t in body.get("types_filter") or ()}
        if types and "classic" not in types:
            return {"error_code": ErrorCode.NONE, "groups": []}
        return {
            "error_code": ErrorCode.NONE,
            "groups": [
                {
                    "group_id": g.group_id,
                    "protocol_type": g.protocol_type,
                    "group_state": g.state,
                    "group_type": "classic",
                }
                for g in self._coordinator.list_groups()
                if not states or g.state.lower() in states
                if everything or self._access.visible(peer, Operation.DESCRIBE, _GROUP, g.group_id)
            ],
        }


_GROUP = ResourceType.GROUP


def _offsets_denied(requested: list[dict]) -> dict:
    # v1 has no error code of its own: its partitions carry it
    code = ErrorCode.GROUP_AUTHORIZATION_FAILED
    return {
        "topics": [
            {
                "name": t["name"],
                "partitions": [
                    {
                        "partition_index": p,
                        "committed_offset": -1,
                        "committed_leader_epoch": -1,
                        "metadata": None,
                        "error_code": code,
                    }
                    for p in t["partition_indexes"]
                ],
            }
            for t in requested
        ],
        "error_code": code,
    }


def _group_denied(group_id: str) -> dict:
    return {
        "error_code": ErrorCode.GROUP_AUTHORIZATION_FAILED,
        "group_id": group_id,
        "group_state": "",
        "protocol_type": "",
        "protocol_data": "",
        "members": [],
        "authorized_operations": NO_AUTHORIZED_OPERATIONS,
    }
