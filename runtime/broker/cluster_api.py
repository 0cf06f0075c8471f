"""DescribeCluster (KIP-700): the one broker, its id, and what the peer may do to the cluster.

Anyone may ask (as in Kafka); the authorized-operations bit set is filled only
when asked for, else Kafka's "not asked" value. Only brokers can be described
(endpoint type 1): this node has no separate controllers.
"""

from __future__ import annotations

from collections.abc import Callable

from runtime.broker.authorize import Access
from runtime.broker.settings import CLUSTER_ID, NODE_ID, Handler, Peer
from runtime.protocol.codes import ApiKey, ErrorCode
from runtime.protocol.fields import NO_AUTHORIZED_OPERATIONS
from runtime.protocol.frames import RequestHeader

BROKERS = 1  # DescribeCluster's endpoint type


class ClusterApi:
    def __init__(self, access: Access, advertised: Callable[[Peer], tuple[str, int]]) -> None:
        self._access = access
        self._advertised = advertised
        self.by_key: dict[int, Handler] = {ApiKey.DESCRIBE_CLUSTER: self.describe_cluster}

    async def describe_cluster(self, header: RequestHeader, body: dict, peer: Peer) -> dict:
        answer: dict = {
            "error_code": ErrorCode.NONE,
            "error_message": None,
            "endpoint_type": body.get("endpoint_type", BROKERS),
            "cluster_id": CLUSTER_ID,
            "controller_id": NODE_ID,
            "brokers": [],
            "cluster_authorized_operations": NO_AUTHORIZED_OPERATIONS,
        }
        if answer["endpoint_type"] != BROKERS:
            answer.update(
                error_code=ErrorCode.UNSUPPORTED_ENDPOINT_TYPE,
                error_message="this broker describes brokers only (endpoint type 1)",
            )
            return answer
        host, port = self._advertised(peer)
        answer["brokers"] = [{"broker_id": NODE_ID, "host": host, "port": port, "rack": None}]
        if body["include_cluster_authorized_operations"]:
            answer["cluster_authorized_operations"] = self._access.cluster_operations(peer)
        return answer
