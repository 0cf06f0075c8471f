"""The broker's answer to each Kafka API: request body in, response body out.

Bodies are the dicts of runtime.protocol (Kafka's field names in snake_case).
This module answers ApiVersions, Metadata and FindCoordinator (with the
address of the listener asked), SaslHandshake and SaslAuthenticate where no
SASL exchange is going on (ILLEGAL_SASL_STATE: sasl.py answers them before
authentication), and puts together
the handlers of data_api (produce, fetch), admin_api (topics), config_api
(configs), records_api (DeleteRecords), group_api and group_admin_api
(consumer groups), txn_api (transactions), acl_api (ACLs), scram_api (SCRAM
credentials) and cluster_api (DescribeCluster) into one table by API key.

Every handler asks `Access` (authorize.py) before it acts. Metadata answers
TOPIC_AUTHORIZATION_FAILED for a named topic the principal may not
DESCRIBE, leaves such topics out of a listing of all topics, and
auto-creates only with CREATE on the cluster or the topic; FindCoordinator
needs DESCRIBE on the group or transactional id.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from runtime.broker.acl_api import AclApi
from runtime.broker.admin_api import AdminApi
from runtime.broker.authorize import Access, Operation, ResourceType
from runtime.broker.cluster_api import ClusterApi
from runtime.broker.config_api import ConfigApi
from runtime.broker.coordinator import GroupCoordinator
from runtime.broker.data_api import DataApi
from runtime.broker.group_admin_api import GroupAdminApi
from runtime.broker.group_api import GroupApi
from runtime.broker.metrics import BrokerMetrics
from runtime.broker.records_api import RecordsApi
from runtime.broker.scram_api import ScramApi
from runtime.broker.settings import (
    CLUSTER_ID,
    INTERNAL_TOPICS,
    NODE_ID,
    BrokerSettings,
    Handler,
    Peer,
)
from runtime.broker.topic_creation import TopicCreator, TopicLimitError
from runtime.broker.transactions import TransactionCoordinator
from runtime.broker.txn_api import TxnApi
from runtime.errors import InvalidTopicError, StorageError, TopicExistsError
from runtime.log.config import validate_topic_name
from runtime.logs import RateLimitedLog
from runtime.protocol.codes import ApiKey, ErrorCode
from runtime.protocol.fields import NO_AUTHORIZED_OPERATIONS
from runtime.protocol.frames import RequestHeader
from runtime.security.users import UsersFile
from runtime.transport import EmbeddedTransport

__all__ = ["ADVERTISED", "BrokerSettings", "Handlers", "Peer"]

logger = logging.getLogger(__name__)

# What we advertise in ApiVersions: the non-flexible ranges every client speaks
# (ApiVersions v3 excepted: librdkafka asks for it first), and flexible versions
# where a feature needs them (ListOffsets v7) or where clients ask for no older
# one of the admin APIs (librdkafka sends the ACL APIs at v2; the
# SCRAM-credential APIs and DescribeCluster have only flexible versions).
ADVERTISED: dict[int, tuple[int, int]] = {
    ApiKey.PRODUCE: (3, 8),
    ApiKey.FETCH: (4, 11),
    ApiKey.LIST_OFFSETS: (1, 7),  # v6+ flexible: v7 carries MAX_TIMESTAMP
    ApiKey.METADATA: (0, 8),
    ApiKey.OFFSET_COMMIT: (2, 7),
    ApiKey.OFFSET_FETCH: (1, 7),  # v7: require_stable (KIP-447), flexible from v6
    ApiKey.FIND_COORDINATOR: (0, 2),
    ApiKey.JOIN_GROUP: (0, 5),
    ApiKey.HEARTBEAT: (0, 3),
    ApiKey.LEAVE_GROUP: (0, 3),
    ApiKey.SYNC_GROUP: (0, 3),
    ApiKey.DESCRIBE_GROUPS: (0, 4),
    ApiKey.LIST_GROUPS: (0, 5),  # v4: states, v5: types (what admin clients filter by)
    ApiKey.API_VERSIONS: (0, 3),
    ApiKey.CREATE_TOPICS: (2, 4),
    ApiKey.DELETE_TOPICS: (1, 3),
    ApiKey.INIT_PRODUCER_ID: (0, 4),
    ApiKey.DESCRIBE_CONFIGS: (0, 3),
    ApiKey.ALTER_CONFIGS: (0, 2),
    ApiKey.INCREMENTAL_ALTER_CONFIGS: (0, 1),
    ApiKey.ADD_PARTITIONS_TO_TXN: (0, 3),
    ApiKey.ADD_OFFSETS_TO_TXN: (0, 3),
    ApiKey.END_TXN: (0, 3),
    ApiKey.TXN_OFFSET_COMMIT: (0, 3),
    ApiKey.DESCRIBE_TRANSACTIONS: (0, 0),
    ApiKey.LIST_TRANSACTIONS: (0, 1),
    ApiKey.SASL_HANDSHAKE: (0, 1),
    ApiKey.SASL_AUTHENTICATE: (0, 2),
    ApiKey.DESCRIBE_ACLS: (0, 3),
    ApiKey.CREATE_ACLS: (0, 3),
    ApiKey.DELETE_ACLS: (0, 3),
    ApiKey.DESCRIBE_USER_SCRAM_CREDENTIALS: (0, 0),
    ApiKey.ALTER_USER_SCRAM_CREDENTIALS: (0, 0),
    ApiKey.DESCRIBE_CLUSTER: (0, 1),
    ApiKey.CREATE_PARTITIONS: (0, 3),
    ApiKey.DELETE_RECORDS: (0, 2),
    ApiKey.DELETE_GROUPS: (0, 2),
    ApiKey.OFFSET_DELETE: (0, 0),
    ApiKey.CONSUMER_GROUP_HEARTBEAT: (0, 1),  # to refuse it loudly: see group_api.py
}


class Handlers:
    """Every API the broker serves, by API key."""

    def __init__(
        self,
        transport: EmbeddedTransport,
        coordinator: GroupCoordinator,
        settings: BrokerSettings,
        ratelog: RateLimitedLog,
        transactions: TransactionCoordinator,
        next_producer_id: Callable[[], int],
        access: Access,
        users: UsersFile | None = None,
    ) -> None:
        self._transport = transport
        self.settings = settings
        self._ratelog = ratelog
        self.access = access
        self.creator = TopicCreator(transport, settings.limits)
        self.data = DataApi(transport, transactions.check_produce, access)
        self.admin = AdminApi(transport, settings, self.creator, ratelog, access)
        self.configs = ConfigApi(transport, settings, access)
        self.records = RecordsApi(transport, self.creator, settings.limits, access)
        self.groups = GroupApi(coordinator, access, transactions.pending_offsets)
        self.group_admin = GroupAdminApi(coordinator, access)
        self.txns = TxnApi(transactions, coordinator, next_producer_id, access)
        self.metrics: BrokerMetrics | None = None  # counts each answer (serving.py)
        self.by_key: dict[int, Handler] = {
            ApiKey.METADATA: self.metadata,
            ApiKey.FIND_COORDINATOR: self.find_coordinator,
            ApiKey.API_VERSIONS: self.api_versions,
            ApiKey.SASL_HANDSHAKE: self.sasl_handshake,
            ApiKey.SASL_AUTHENTICATE: self.sasl_authenticate,
            **self.data.by_key,
            **self.admin.by_key,
            **self.configs.by_key,
            **self.records.by_key,
            **self.groups.by_key,
            **self.group_admin.by_key,
            **self.txns.by_key,
            **AclApi(access).by_key,
            **ScramApi(access, users).by_key,
            **ClusterApi(access, self._advertised).by_key,
        }
        missing = set(ADVERTISED) - set(self.by_key)
        assert not missing, f"advertised APIs without a handler: {missing}"

    @property
    def _log(self) -> Any:
        return self._transport.log

    # --- metadata and versions ---------------------------------------------------

    async def api_versions(self, header: RequestHeader, body: dict, peer: Peer) -> dict:
        return {
            "error_code": ErrorCode.NONE,
            "api_keys": [
                {"api_key": k, "min_version": lo, "max_version": hi}
                for k, (lo, hi) in sorted(ADVERTISED.items())
            ],
        }

    async def sasl_handshake(self, header: RequestHeader, body: dict, peer: Peer) -> dict:
        # Kafka's answer on a listener without SASL, or once authenticated
        return {"error_code": ErrorCode.ILLEGAL_SASL_STATE, "mechanisms": []}

    async def sasl_authenticate(self, header: RequestHeader, body: dict, peer: Peer) -> dict:
        return {
            "error_code": ErrorCode.ILLEGAL_SASL_STATE,
            "error_message": "no SASL authentication in progress on this connection",
            "auth_bytes": b"",
            "session_lifetime_ms": 0,
        }

    def _advertised(self, peer: Peer) -> tuple[str, int]:
        if peer.advertised is not None:
            return peer.advertised.host, peer.advertised.port
        return self.settings.host, self.settings.port

    async def metadata(self, header: RequestHeader, body: dict, peer: Peer) -> dict:
        topics = self._log.topics()
        requested = body["topics"]
        everything = requested is None or (header.api_version == 0 and not requested)
        names = sorted(topics) if everything else [t["name"] for t in requested]
        allow_create = (
            body.get("allow_auto_topic_creation", True) if header.api_version >= 4 else True
        )
        creations_left = self.settings.limits.auto_create_per_request_max
        out = []
        for name in names:
            if everything:
                if not self.access.visible(peer, Operation.DESCRIBE, ResourceType.TOPIC, name):
                    continue  # a listing leaves out what the principal may not see
            elif not self.access.topic(peer, Operation.DESCRIBE, name):
                out.append(_topic_error(name, ErrorCode.TOPIC_AUTHORIZATION_FAILED))
                continue
            info = topics.get(name)
            if info is None:
                error = await self._auto_create(name, allow_create, creations_left, peer)
                if error != ErrorCode.NONE:
                    out.append(_topic_error(name, error))
                    continue
                creations_left -= 1
                info = self._log.topics()[name]
            entry = _topic_metadata(name, info.partitions)
            if body.get("include_topic_authorized_operations"):
                entry["topic_authorized_operations"] = self.access.operations(
                    peer, ResourceType.TOPIC, name
                )
            out.append(entry)
        host, port = self._advertised(peer)
        cluster_ops = NO_AUTHORIZED_OPERATIONS
        if body.get("include_cluster_authorized_operations"):
            cluster_ops = self.access.cluster_operations(peer)
        return {
            "brokers": [{"node_id": NODE_ID, "host": host, "port": port, "rack": None}],
            "cluster_id": CLUSTER_ID,
            "controller_id": NODE_ID,
            "topics": out,
            "cluster_authorized_operations": cluster_ops,
        }

    async def _auto_create(self, name: str, allowed: bool, creations_left: int, peer: Peer) -> int:
        """Create `name` on first use, if allowed and within the limits.

        Past a limit the topic is UNKNOWN_TOPIC_OR_PARTITION, as if auto-creation
        were off: clients retry Metadata, so a request naming more topics than
        one request may create gets the rest on the next ones."""
        try:
            validate_topic_name(name)
        except InvalidTopicError:
            return ErrorCode.INVALID_TOPIC_EXCEPTION
        if not (allowed and self.settings.auto_create_topics):
            return ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
        if not self.access.may_create_topic(peer, name):
            return ErrorCode.TOPIC_AUTHORIZATION_FAILED
        partitions = self.settings.default_partitions
        try:
            if creations_left < 1:
                raise TopicLimitError(
                    f"topic {name!r} not auto-created: one Metadata request creates at most "
                    f"{self.settings.limits.auto_create_per_request_max} topics "
                    "(--auto-create-per-request-max)",
                    topic=name,
                )
            await self.creator.create(name, partitions, auto=True)
            logger.info("auto-created topic=%s partitions=%d", name, partitions)
        except TopicExistsError:
            pass
        except TopicLimitError as exc:
            self._ratelog.warning(
                ("auto-create", peer.host), "Metadata from %s: %s", peer.host, exc
            )
            return ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
        except (OSError, StorageError) as exc:  # a full disk: the client asks again later
            self._ratelog.warning(
                ("create-failed", getattr(exc, "errno", None)),
                "auto-creating topic %s failed: %s",
                name,
                exc,
            )
            return ErrorCode.LEADER_NOT_AVAILABLE
        return ErrorCode.NONE

    async def find_coordinator(self, header: RequestHeader, body: dict, peer: Peer) -> dict:
        if body.get("key_type", 0) not in (0, 1):  # 0 group, 1 transactional id
            return {
                "error_code": ErrorCode.INVALID_REQUEST,
                "error_message": f"coordinator key type {body['key_type']} is not known",
                "node_id": -1,
                "host": "",
                "port": -1,
            }
        denied = self._coordinator_denied(peer, body.get("key_type", 0), body["key"])
        if denied is not None:
            return {
                "error_code": denied,
                "error_message": None,
                "node_id": -1,
                "host": "",
                "port": -1,
            }
        host, port = self._advertised(peer)
        return {
            "error_code": ErrorCode.NONE,
            "error_message": None,
            "node_id": NODE_ID,
            "host": host,
            "port": port,
        }

    def _coordinator_denied(self, peer: Peer, key_type: int, key: str) -> int | None:
        if key_type == 0:
            if self.access.group(peer, Operation.DESCRIBE, key):
                return None
            return ErrorCode.GROUP_AUTHORIZATION_FAILED
        if self.access.transactional_id(peer, Operation.DESCRIBE, key):
            return None
        return ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED


def _topic_error(name: str, code: int) -> dict:
    return {"error_code": code, "name": name, "is_internal": False, "partitions": []}


def _topic_metadata(name: str, partitions: int) -> dict:
    return {
        "error_code": ErrorCode.NONE,
        "name": name,
        "is_internal": name in INTERNAL_TOPICS,
        "partitions": [
            {
                "error_code": ErrorCode.NONE,
                "partition_index": p,
                "leader_id": NODE_ID,
                "leader_epoch": 0,
                "replica_nodes": [NODE_ID],
                "isr_nodes": [NODE_ID],
                "offline_replicas": [],
            }
            for p in range(partitions)
        ],
    }
