"""The consumer-group APIs, answered by the group coordinator."""

from __future__ import annotations

from collections.abc import Callable

from runtime.broker.coordinator import NO_COMMIT, GroupCoordinator
from runtime.broker.settings import Handler, Peer
from runtime.protocol.codes import ApiKey, ErrorCode
from runtime.protocol.frames import RequestHeader
from runtime.types import TopicPartition


class GroupApi:
    def __init__(
        self,
        coordinator: GroupCoordinator,
        pending_offsets: Callable[[str], set[TopicPartition]] = lambda group_id: set(),
    ) -> None:
        self._coordinator = coordinator
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
        }

    async def join_group(self, header: RequestHeader, body: dict, peer: Peer) -> dict:
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
        result = await self._coordinator.sync(
            body["group_id"],
            body["generation_id"],
            body["member_id"],
            {a["member_id"]: bytes(a["assignment"]) for a in body["assignments"]},
        )
        return {"error_code": result.error_code, "assignment": result.assignment}

    async def heartbeat(self, header: RequestHeader, body: dict, peer: Peer) -> dict:
        code = await self._coordinator.heartbeat(
            body["group_id"], body["generation_id"], body["member_id"]
        )
        return {"error_code": code}

    async def leave_group(self, header: RequestHeader, body: dict, peer: Peer) -> dict:
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
        offsets = {
            TopicPartition(t["name"], p["partition_index"]): (
                p["committed_offset"],
                p["committed_metadata"],
                p.get("committed_leader_epoch", -1),
            )
            for t in body["topics"]
            for p in t["partitions"]
        }
        codes = await self._coordinator.commit_offsets(
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

    async def offset_fetch(self, header: RequestHeader, body: dict, peer: Peer) -> dict:
        requested = body["topics"]
        tps = None
        if requested is not None:
            tps = [TopicPartition(t["name"], p) for t in requested for p in t["partition_indexes"]]
        commits = await self._coordinator.fetch_offsets(body["group_id"], tps)
        unstable = self._pending_offsets(body["group_id"]) if body.get("require_stable") else set()
        by_topic: dict[str, list[dict]] = {}
        for tp in tps if tps is not None else sorted(commits | dict.fromkeys(unstable)):
            commit = NO_COMMIT if tp in unstable else commits.get(tp, NO_COMMIT)
            by_topic.setdefault(tp.topic, []).append(
                {
                    "partition_index": tp.partition,
                    "committed_offset": commit.offset,
                    "committed_leader_epoch": commit.leader_epoch,
                    "metadata": commit.metadata,
                    "error_code": (
                        ErrorCode.UNSTABLE_OFFSET_COMMIT if tp in unstable else ErrorCode.NONE
                    ),
                }
            )
        return {
            "topics": [{"name": name, "partitions": parts} for name, parts in by_topic.items()],
            "error_code": ErrorCode.NONE,
        }

    async def describe_groups(self, header: RequestHeader, body: dict, peer: Peer) -> dict:
        groups = []
        for group_id in body["groups"]:
            d = self._coordinator.describe_group(group_id)
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
                }
            )
        return {"groups": groups}

    async def list_groups(self, header: RequestHeader, body: dict, peer: Peer) -> dict:
        return {
            "error_code": ErrorCode.NONE,
            "groups": [
                {"group_id": g.group_id, "protocol_type": g.protocol_type}
                for g in self._coordinator.list_groups()
            ],
        }
