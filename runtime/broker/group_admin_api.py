"""DeleteGroups and OffsetDelete: administration of consumer groups' commits.

DeleteGroups removes an empty group and its committed offsets (NON_EMPTY_GROUP
while it has members, GROUP_ID_NOT_FOUND for a group the coordinator does not
know). OffsetDelete removes the commits of some partitions, except of topics
the group's members still subscribe to (GROUP_SUBSCRIBED_TO_TOPIC), as Kafka
does. Both write tombstones to __consumer_offsets, so they survive restarts.
"""

from __future__ import annotations

from runtime.broker.coordinator import GroupCoordinator
from runtime.broker.settings import Handler, Peer
from runtime.protocol.codes import ApiKey, ErrorCode
from runtime.protocol.frames import RequestHeader
from runtime.types import TopicPartition


class GroupAdminApi:
    def __init__(self, coordinator: GroupCoordinator) -> None:
        self._coordinator = coordinator
        self.by_key: dict[int, Handler] = {
            ApiKey.DELETE_GROUPS: self.delete_groups,
            ApiKey.OFFSET_DELETE: self.offset_delete,
        }

    async def delete_groups(self, header: RequestHeader, body: dict, peer: Peer) -> dict:
        codes = await self._coordinator.delete_groups(list(body["groups_names"]))
        return {
            "results": [
                {"group_id": group_id, "error_code": codes[group_id]}
                for group_id in body["groups_names"]
            ]
        }

    async def offset_delete(self, header: RequestHeader, body: dict, peer: Peer) -> dict:
        tps = [
            TopicPartition(t["name"], p["partition_index"])
            for t in body["topics"]
            for p in t["partitions"]
        ]
        code, results = await self._coordinator.delete_offsets(body["group_id"], tps)
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
