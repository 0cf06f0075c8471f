"""Raw Kafka frames over a blocking socket: for what no real client will send.

Frames are built with the project's own codecs (runtime.protocol.frames), so a
test states the request body and reads the decoded answer.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Mapping
from typing import Any

from runtime.log.records import encode_batch
from runtime.protocol.codes import ApiKey
from runtime.protocol.frames import decode_response, encode_request

CLIENT_ID = "wire-test"


def produce_body(topic: str, partition: int, records: bytes | None, acks: int = -1) -> dict:
    return {
        "transactional_id": None,
        "acks": acks,
        "timeout_ms": 5000,
        "topics": [
            {"name": topic, "partitions": [{"partition_index": partition, "records": records}]}
        ],
    }


def fetch_body(topic: str, partition: int, offset: int, max_wait_ms: int = 0) -> dict:
    return {
        "replica_id": -1,
        "max_wait_ms": max_wait_ms,
        "min_bytes": 1,
        "max_bytes": 1 << 20,
        "isolation_level": 0,
        "session_id": 0,
        "session_epoch": -1,
        "topics": [
            {
                "topic": topic,
                "partitions": [
                    {
                        "partition": partition,
                        "current_leader_epoch": -1,
                        "fetch_offset": offset,
                        "log_start_offset": -1,
                        "partition_max_bytes": 1 << 20,
                    }
                ],
            }
        ],
        "forgotten_topics_data": [],
        "rack_id": "",
    }


def metadata_body(*topics: str, auto_create: bool = False) -> dict:
    return {
        "topics": [{"name": t} for t in topics],
        "allow_auto_topic_creation": auto_create,
        "include_cluster_authorized_operations": False,
        "include_topic_authorized_operations": False,
    }


def batch(*values: bytes, key: bytes | None = None) -> bytes:
    return bytes(encode_batch([(key, v, 1_700_000_000_000, []) for v in values]))


def create_topics_codes(wire: WireClient, *topics: tuple[str, int, dict[str, str]]) -> list[int]:
    body = {
        "topics": [
            {
                "name": name,
                "num_partitions": partitions,
                "replication_factor": 1,
                "assignments": [],
                "configs": [{"name": k, "value": v} for k, v in configs.items()],
            }
            for name, partitions, configs in topics
        ],
        "timeout_ms": 5000,
        "validate_only": False,
    }
    answer = wire.request(ApiKey.CREATE_TOPICS, 4, body)
    return [t["error_code"] for t in answer["topics"]]


class WireClient:
    """One connection; `request` sends a frame and returns the decoded answer."""

    def __init__(
        self,
        bootstrap: str,
        timeout_s: float = 10.0,
        source: str | None = None,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        """`source`: the local address to connect from (any of 127.0.0.0/8 on loopback);
        `tls`: speak TLS with this client context."""
        host, _, port = bootstrap.rpartition(":")
        source_address = (source, 0) if source is not None else None
        self.sock = socket.create_connection(
            (host, int(port)), timeout=timeout_s, source_address=source_address
        )
        if tls is not None:
            self.sock = tls.wrap_socket(self.sock, server_hostname=host)
        self._correlation_id = 0

    def __enter__(self) -> WireClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.sock.close()

    def frame(self, api_key: int, version: int, body: Mapping[str, Any]) -> bytes:
        self._correlation_id += 1
        return encode_request(api_key, version, self._correlation_id, CLIENT_ID, body)

    def request(self, api_key: int, version: int, body: Mapping[str, Any]) -> dict:
        self.sock.sendall(self.frame(api_key, version, body))
        answer = self.read_frame()
        assert answer is not None, "the broker closed the connection"
        correlation_id, decoded = decode_response(api_key, version, answer)
        assert correlation_id == self._correlation_id
        return decoded

    def read_frame(self) -> bytes | None:
        """The next response frame (without its size), or None if the broker closed."""
        size = self._read_exactly(4)
        if size is None:
            return None
        return self._read_exactly(int.from_bytes(size, "big"))

    def _read_exactly(self, n: int) -> bytes | None:
        chunks = bytearray()
        while len(chunks) < n:
            try:
                chunk = self.sock.recv(n - len(chunks))
            except (ConnectionResetError, ssl.SSLEOFError):
                return None
            if not chunk:
                return None
            chunks += chunk
        return bytes(chunks)

    def closed_by_peer(self) -> bool:
        """True when the broker has closed this connection (EOF or reset)."""
        try:
            return self.sock.recv(1 << 16) == b""
        except (ConnectionResetError, ssl.SSLEOFError):
            return True
