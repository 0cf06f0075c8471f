"""The admin APIs' byte layouts, as Kafka's message definitions give them."""

from __future__ import annotations

import struct

from runtime.protocol import ApiKey, encode_request


def body_of(frame: bytes, client_id: str) -> bytes:
    """The request body: past size, api key, version, correlation id, client id."""
    return frame[4 + 2 + 2 + 4 + 2 + len(client_id) :]


def test_create_partitions_v0_layout():
    body = {
        "topics": [{"name": "t", "count": 3, "assignments": None}],
        "timeout_ms": 500,
        "validate_only": False,
    }
    frame = encode_request(ApiKey.CREATE_PARTITIONS, 0, 7, "c", body)
    expected = struct.pack(">ih1sii", 1, 1, b"t", 3, -1) + struct.pack(">ib", 500, 0)
    assert body_of(frame, "c") == expected


def test_incremental_alter_configs_v0_layout():
    body = {
        "resources": [
            {
                "resource_type": 2,
                "resource_name": "t",
                "configs": [{"name": "a", "config_operation": 0, "value": "1"}],
            }
        ],
        "validate_only": False,
    }
    frame = encode_request(ApiKey.INCREMENTAL_ALTER_CONFIGS, 0, 7, "c", body)
    expected = struct.pack(">ibh1si", 1, 2, 1, b"t", 1)
    expected += struct.pack(">h1sbh1sb", 1, b"a", 0, 1, b"1", 0)
    assert body_of(frame, "c") == expected


def test_delete_groups_v1_layout():
    frame = encode_request(ApiKey.DELETE_GROUPS, 1, 7, "c", {"groups_names": ["g1"]})
    assert body_of(frame, "c") == struct.pack(">ih2s", 1, 2, b"g1")
