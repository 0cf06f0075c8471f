"""What a client knows of a Kafka-protocol cluster, and its connections to it.

`Cluster("host:port[,host:port]", security=...)` bootstraps from any of the listed brokers and
caches metadata: brokers by node id, the partitions of each topic and the leader
of each partition, the controller, and the coordinator of each group and
transactional id asked about.

Connections are kept per (node id, lane): a lane is a name for one independent
connection to a node, so that a long-polling Fetch or a JoinGroup waiting for a
rebalance (a broker answers one request of a connection at a time) never holds
up a Produce or a Heartbeat. A broken connection is replaced on next use,
retrying the connect with exponential backoff for up to `connect_timeout_s`
(or, for requests to partition leaders, trying once per reconnect backoff:
their callers refresh metadata in between and find the new leader).

Invariants:
- bootstrap addresses get node ids -1, -2, ...: they are used only for metadata
  until the cluster's own node ids are known;
- cached metadata only changes by a refresh(), which replaces the broker list
  and the topics it was asked about (all topics when asked about none).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from runtime.client.connection import Connection
from runtime.client.errors import (
    COORDINATOR_CODES,
    ClientClosedError,
    ConnectionBrokenError,
    KafkaConnectionError,
    KafkaError,
    KafkaTimeoutError,
)
from runtime.client.security import PLAINTEXT, ClientSecurity
from runtime.protocol.codes import ApiKey, ErrorCode
from runtime.types import TopicPartition

logger = logging.getLogger(__name__)

DEFAULT_LANE = "default"
GROUP, TRANSACTION = 0, 1  # FindCoordinator key types
_NO_LEADER = -1


@dataclass(frozen=True, slots=True)
class BrokerAddress:
    node_id: int
    host: str
    port: int
    rack: str | None = None


def parse_bootstrap(text: str) -> list[tuple[str, int]]:
    """ "host:port[,host:port]" -> [(host, port)]; the port defaults to 9092."""
    out = []
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        host, sep, port = item.rpartition(":")
        if not sep or host.endswith(":"):  # no port, or a bare IPv6 address
            host, port = item, "9092"
        try:
            number = int(port)
        except ValueError:
            raise ValueError(f"bootstrap {item!r} is not HOST:PORT") from None
        if not 0 < number < 65536:
            raise ValueError(f"bootstrap {item!r}: port out of range")
        out.append((host.strip("[]"), number))
    if not out:
        raise ValueError(f"no broker address in bootstrap {text!r}")
    return out


def backoff_s(attempt: int, base_s: float, max_s: float) -> float:
    """Exponential backoff with +-20% jitter for the attempt-th retry (from 0)."""
    return min(max_s, base_s * 2**attempt) * random.uniform(0.8, 1.2)


class Cluster:
    """Metadata and connections of one cluster; an async context manager."""

    def __init__(
        self,
        bootstrap: str,
        *,
        client_id: str = "streams",
        connect_timeout_s: float = 10.0,
        request_timeout_s: float = 30.0,
        retry_backoff_s: float = 0.05,
        retry_backoff_max_s: float = 1.0,
        in_flight_max: int = 5,
        allow_auto_create_topics: bool = True,
        security: ClientSecurity = PLAINTEXT,
    ) -> None:
        self.security = security
        self._bootstrap = [
            BrokerAddress(-(i + 1), host, port)
            for i, (host, port) in enumerate(parse_bootstrap(bootstrap))
        ]
        self.client_id = client_id
        self.connect_timeout_s = connect_timeout_s
        self.request_timeout_s = request_timeout_s
        self.retry_backoff_s = retry_backoff_s
        self.retry_backoff_max_s = retry_backoff_max_s
        self._in_flight_max = in_flight_max
        self.allow_auto_create_topics = allow_auto_create_topics
        self.brokers: dict[int, BrokerAddress] = {}
        self.cluster_id: str | None = None
        self.controller_id: int = -1
        self._topics: dict[str, dict[int, int]] = {}  # topic -> partition -> leader
        self._topic_errors: dict[str, int] = {}
        self._coordinators: dict[tuple[int, str], int] = {}  # (key type, key) -> node
        self._connections: dict[tuple[int, str], Connection] = {}
        self._connect_locks: dict[tuple[int, str], asyncio.Lock] = {}
        self._reconnect: dict[int, tuple[int, float]] = {}  # node -> (failures, until)
        self._refresh_lock = asyncio.Lock()
        self._closed = False

    async def __aenter__(self) -> Cluster:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def start(self) -> None:
        """Connect to a bootstrap broker and load the metadata of every topic."""
        await self.refresh()

    async def close(self) -> None:
        """Close every connection (idempotent)."""
        self._closed = True
        connections = list(self._connections.values())
        self._connections.clear()
        for conn in connections:
            await conn.close()

    # --- metadata ----------------------------------------------------------------

    @property
    def topics(self) -> dict[str, dict[int, int]]:
        """topic -> partition -> leader node id (-1: none now), as last refreshed."""
        return self._topics

    def partitions(self, topic: str) -> list[int] | None:
        """The cached partitions of a topic (sorted), None if unknown."""
        leaders = self._topics.get(topic)
        return None if leaders is None else sorted(leaders)

    async def refresh(
        self, topics: Iterable[str] | None = None, *, allow_auto_create: bool | None = None
    ) -> None:
        """Load metadata of `topics` (None: all topics) and of the brokers."""
        names = None if topics is None else sorted(set(topics))
        auto = self.allow_auto_create_topics if allow_auto_create is None else allow_auto_create
        body = {
            "topics": None if names is None else [{"name": n} for n in names],
            "allow_auto_topic_creation": auto,
        }
        async with self._refresh_lock:
            response = await self.request_any(ApiKey.METADATA, body)
            self._apply_metadata(response, full=names is None)

    def _apply_metadata(self, response: dict, *, full: bool) -> None:
        self.brokers = {
            b["node_id"]: BrokerAddress(b["node_id"], b["host"], b["port"], b.get("rack"))
            for b in response["brokers"]
        }
        self.cluster_id = response.get("cluster_id")
        self.controller_id = response.get("controller_id", -1)
        if full:
            self._topics = {}
            self._topic_errors = {}
        for topic in response["topics"]:
            name, code = topic["name"], topic["error_code"]
            if code == ErrorCode.NONE:
                self._topics[name] = {
                    p["partition_index"]: p["leader_id"] for p in topic["partitions"]
                }
                self._topic_errors.pop(name, None)
            else:
                self._topics.pop(name, None)
                self._topic_errors[name] = code

    async def partitions_for(self, topic: str) -> list[int]:
        """The partitions of a topic, refreshing metadata once if unknown."""
        if topic not in self._topics:
            await self.refresh([topic])
        partitions = self.partitions(topic)
        if partitions is None:
            code = self._topic_errors.get(topic, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION)
            raise KafkaError(code, topic=topic)
        return partitions

    def cached_leader(self, tp: TopicPartition) -> int | None:
        leader = self._topics.get(tp.topic, {}).get(tp.partition, _NO_LEADER)
        return leader if leader >= 0 and leader in self.brokers else None

    async def leader_for(self, tp: TopicPartition) -> int:
        """The node id leading `tp`, refreshing metadata once if unknown.

        KafkaError UNKNOWN_TOPIC_OR_PARTITION or LEADER_NOT_AVAILABLE (both
        retriable) when the cluster does not know one."""
        leader = self.cached_leader(tp)
        if leader is None:
            await self.refresh([tp.topic])
            leader = self.cached_leader(tp)
        if leader is None:
            partitions = self._topics.get(tp.topic)
            if partitions is None:
                code = self._topic_errors.get(tp.topic, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION)
            elif tp.partition not in partitions:
                code = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
            else:
                code = ErrorCode.LEADER_NOT_AVAILABLE
            raise KafkaError(code, topic=tp.topic, partition=tp.partition)
        return leader

    # --- coordinators ------------------------------------------------------------

    async def coordinator(self, key: str, *, key_type: int = GROUP) -> int:
        """The node id coordinating `key` (a group id, or with key_type TRANSACTION a
        transactional id), found with FindCoordinator (retried while the
        coordinator is not available) and cached."""
        node = self._coordinators.get((key_type, key))
        if node is not None:
            return node
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.request_timeout_s
        attempt = 0
        while True:
            try:
                response = await self.request_any(
                    ApiKey.FIND_COORDINATOR, {"key": key, "key_type": key_type}
                )
            except KafkaConnectionError:
                if loop.time() >= deadline:
                    raise
                response = {"error_code": ErrorCode.COORDINATOR_NOT_AVAILABLE}
            code = response["error_code"]
            if code == ErrorCode.NONE:
                node = response["node_id"]
                self.brokers[node] = BrokerAddress(node, response["host"], response["port"])
                self._coordinators[(key_type, key)] = node
                return node
            retriable = code in COORDINATOR_CODES or code == ErrorCode.COORDINATOR_LOAD_IN_PROGRESS
            if not retriable or loop.time() >= deadline:
                raise KafkaError(code, f"FindCoordinator {key!r}")
            await asyncio.sleep(backoff_s(attempt, self.retry_backoff_s, self.retry_backoff_max_s))
            attempt += 1

    def forget_coordinator(self, key: str, *, key_type: int = GROUP) -> None:
        """Drop the cached coordinator (after NOT_COORDINATOR or a broken connection)."""
        self._coordinators.pop((key_type, key), None)

    # --- connections -------------------------------------------------------------

    async def connection(
        self, node_id: int, lane: str = DEFAULT_LANE, *, patient: bool = True
    ) -> Connection:
        """The open connection to `node_id` on `lane`, connecting (with backoff, for
        up to connect_timeout_s) if there is none or it broke.

        Not `patient`: one connect attempt, and none at all while the node is in
        its reconnect backoff after a failed one (ConnectionBrokenError at once):
        for requests to a partition's leader, whose callers refresh metadata
        between tries, since a leader that is down is soon replaced."""
        key = (node_id, lane)
        conn = self._connections.get(key)
        if conn is not None and conn.is_open:
            return conn
        lock = self._connect_locks.setdefault(key, asyncio.Lock())
        async with lock:
            conn = self._connections.get(key)
            if conn is not None and conn.is_open:
                return conn
            if conn is not None:
                await conn.close()
                del self._connections[key]
            address = self._address(node_id)
            if patient:
                conn = await self._connect_retrying(address)
            else:
                conn = await self._connect_noting(address)
            if self._closed:
                await conn.close()
                raise ClientClosedError("the cluster client is closed")
            self._connections[key] = conn
            return conn

    async def request(
        self,
        node_id: int,
        api_key: int,
        body: dict[str, Any],
        *,
        lane: str = DEFAULT_LANE,
        timeout_s: float | None = None,
        patient: bool = True,
    ) -> dict:
        conn = await self.connection(node_id, lane, patient=patient)
        return await conn.request(api_key, body, timeout_s=timeout_s)

    def _address(self, node_id: int) -> BrokerAddress:
        address = self.brokers.get(node_id)
        if address is None:
            address = next((b for b in self._bootstrap if b.node_id == node_id), None)
        if address is None:
            # a leader or coordinator the latest metadata no longer lists (a broker
            # that is down): like a failed connect, worth a retry after a refresh
            raise ConnectionBrokenError(f"node {node_id} is not in the cluster's metadata")
        return address

    async def _connect_once(self, address: BrokerAddress) -> Connection:
        if self._closed:
            raise ClientClosedError("the cluster client is closed")
        return await Connection.open(
            address.host,
            address.port,
            node_id=address.node_id,
            client_id=self.client_id,
            in_flight_max=self._in_flight_max,
            request_timeout_s=self.request_timeout_s,
            connect_timeout_s=self.connect_timeout_s,
            security=self.security,
        )

    async def _connect_noting(self, address: BrokerAddress) -> Connection:
        """One connect attempt, unless the node is in its reconnect backoff; a
        failure starts (or doubles) that backoff, a success ends it."""
        loop = asyncio.get_running_loop()
        failures, until = self._reconnect.get(address.node_id, (0, 0.0))
        if loop.time() < until:
            raise ConnectionBrokenError(
                f"node {address.node_id} ({address.host}:{address.port}) is in its "
                f"reconnect backoff after {failures} failed connects"
            )
        try:
            conn = await self._connect_once(address)
        except (KafkaConnectionError, KafkaTimeoutError):
            pause = backoff_s(failures, self.retry_backoff_s, self.retry_backoff_max_s)
            self._reconnect[address.node_id] = (failures + 1, loop.time() + pause)
            raise
        self._reconnect.pop(address.node_id, None)
        return conn

    async def _connect_retrying(self, address: BrokerAddress) -> Connection:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.connect_timeout_s
        attempt = 0
        while True:
            try:
                return await self._connect_once(address)
            except (KafkaConnectionError, KafkaTimeoutError) as exc:
                pause = backoff_s(attempt, self.retry_backoff_s, self.retry_backoff_max_s)
                if loop.time() + pause >= deadline:
                    raise ConnectionBrokenError(
                        f"cannot connect to node {address.node_id} "
                        f"({address.host}:{address.port}): {exc}"
                    ) from exc
                logger.debug("connect failed node=%d error=%s", address.node_id, exc)
                await asyncio.sleep(pause)
                attempt += 1

    async def request_any(self, api_key: int, body: dict[str, Any]) -> dict:
        """A request to any reachable broker: an open connection first, else the
        known brokers and the bootstrap addresses in turn, with backoff."""
        for (_, lane), conn in list(self._connections.items()):
            if lane == DEFAULT_LANE and conn.is_open:
                try:
                    return await conn.request(api_key, body)
                except KafkaConnectionError:
                    pass
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.connect_timeout_s
        attempt = 0
        while True:
            candidates = list(self.brokers.values()) + self._bootstrap
            error: Exception | None = None
            for address in candidates:
                try:
                    conn = await self._connection_once(address)
                    return await conn.request(api_key, body)
                except (KafkaConnectionError, KafkaTimeoutError) as exc:
                    error = exc
            pause = backoff_s(attempt, self.retry_backoff_s, self.retry_backoff_max_s)
            if loop.time() + pause >= deadline:
                raise ConnectionBrokenError(f"no broker reachable: {error}") from error
            await asyncio.sleep(pause)
            attempt += 1

    async def _connection_once(self, address: BrokerAddress) -> Connection:
        """The default-lane connection to `address`, with one connect attempt."""
        key = (address.node_id, DEFAULT_LANE)
        conn = self._connections.get(key)
        if conn is not None and conn.is_open:
            return conn
        conn = await self._connect_once(address)
        old = self._connections.get(key)
        if old is not None:
            await old.close()
        self._connections[key] = conn
        return conn
