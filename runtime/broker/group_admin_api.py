"""DeleteGroups and OffsetDelete: administration of consumer groups' commits.

DeleteGroups removes an empty group and its committed offsets (NON_EMPTY_GROUP
while it has members, GROUP_ID_NOT_FOUND for a group the coordinator does not
know). OffsetDelete removes the commits of some partitions, except of topics
the group's members still subscribe to (GROUP_SUBSCRIBED_TO_TOPIC), as Kafka
does. Both write tombstones to __consumer_offsets, so they survive restarts.
DeleteGroups needs DELETE on each group; OffsetDelete DELETE on the group and
READ on each topic (GROUP_ / TOPIC_AUTHORIZATION_FAILED otherwise, as Kafka).
"""

from __future__ import annotations

from runtime.broker.authorize import Access, Operation
from runtime.broker.coordinator import GroupCoordinator
from runtime.broker.settings import Handler, Peer
from runtime.protocol.codes import ApiKey, ErrorCode
from runtime.protocol.frames import RequestHeader
from runtime.types import TopicPartition


class GroupAdminApi:
    def __init__(self, coordinator: GroupCoordinator, access: Access) -> None:
        self._coordinator = coordinator
        self._access = access
        self.by_key: dict[int, Handler] = {
            ApiKey.DELETE_GROUPS: self.delete_groups,
            ApiKey.OFFSET_DELETE: self.offset_delete,
        }

    async def delete_groups(self, header: RequestHeader, body: dict, peer: Peer) -> dict:
        names = list(body["groups_names"])
        allowed = [g for g in names if self._access.group(peer, Operation.DELETE, g)]
        codes = dict.fromkeys(names, ErrorCode.GROUP_AUTHORIZATION_FAILED)
        codes.update(await self._coordinator.delete_groups(allowed))
        return {
            "results": [
                {"group_id": group_id, "error_code": codes[group_id]}
                for group_id in body["groups_names"]
            ]
        }

    async def offset_delete(self, header: RequestHeader, body: dict, peer: Peer) -> dict:
        if not self._access.group(peer, Operation.DELETE, body["group_id"]):
            return {"error_code": ErrorCode.GROUP_AUTHORIZATION_FAILED, "topics": []}
        readable = {
            t["name"] for t in body["topics"] if self._access.topic(peer, Operation.READ, t["name"])
        }
        tps = [
            TopicPartition(t["name"], p["partition_index"])
            for t in body["topics"]
            if t["name"] in readable
            for p in t["partitions"]
        ]
        code, results = await self._coordinator.delete_offsets(body["group_id"], tps)
        for t in body["topics"]:
            if t["name"] not in readable:
                for p in t["partitions"]:
                    tp = TopicPartition(t["name"], p["partition_index"])
                    results[tp] = ErrorCode.TOPIC_AUTHORIZATION_FAILED
        if code != ErrorCode.NONE:
            return {"error_code": code, "topics": []}
        return {
            "error_code": ErrorCode.NONE,
            "topics": [
                {
                    "name": t["name"],
                    "partitions": [
                        {
                            "partition_index": p["partition_index"],
                            "error_code": results[TopicPartition(t["name"], p["partition_index"])],
                        }
                        for p in t["partitions"]
                    ],
                }
                for t in body["topics"]
            ],
        }
