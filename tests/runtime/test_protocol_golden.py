"""Frames built by hand from the protocol guide, byte by byte."""

from __future__ import annotations

import struct

import pytest

from runtime.log.records import encode_batch, validate_batch
from runtime.protocol import (
    SUPPORTED,
    ApiKey,
    ErrorCode,
    ProtocolError,
    RequestHeader,
    UnsupportedVersionError,
    api_versions_unsupported_response,
    decode_request,
    decode_response,
    encode_request,
    encode_response,
)
from runtime.protocol import __all__ as protocol_all


def _framed(hex_payload: str) -> bytes:
    payload = bytes.fromhex(hex_payload)
    return struct.pack(">i", len(payload)) + payload


# request header v1: api_key int16, api_version int16, correlation_id int32, client_id string
API_VERSIONS_V0 = _framed("0012 0000 00000001 0004 6b636174")  # client_id "kcat", empty body


def test_api_versions_v0_request():
    assert encode_request(ApiKey.API_VERSIONS, 0, 1, "kcat", {}) == API_VERSIONS_V0
    header, body = decode_request(API_VERSIONS_V0[4:])
    assert header == RequestHeader(18, 0, 1, "kcat")
    assert body == {"client_software_name": "", "client_software_version": ""}


def test_metadata_v1_request():
    frame = _framed(
        "0003 0001 0000002a ffff"  # Metadata v1, correlation 42, null client_id
        "00000002 0001 61 0002 6263"  # topics: ["a", "bc"]
    )
    body = {"topics": [{"name": "a"}, {"name": "bc"}]}
    assert encode_request(ApiKey.METADATA, 1, 42, None, body) == frame
    header, decoded = decode_request(frame[4:])
    assert header == RequestHeader(3, 1, 42, None)
    assert decoded["topics"] == body["topics"]


def test_metadata_v1_request_for_all_topics_is_a_null_array():
    frame = _framed("0003 0001 0000002a ffff ffffffff")
    assert encode_request(ApiKey.METADATA, 1, 42, None, {"topics": None}) == frame
    assert decode_request(frame[4:])[1]["topics"] is None


def test_produce_v3_request_carries_the_record_batch_unchanged():
    batch = bytes(encode_batch([(b"key", b"value", 1_700_000_000_000, [("h", b"1")])]))
    frame = _framed(
        "0000 0003 00000005 0004 6b636174"  # Produce v3, correlation 5, client_id "kcat"
        "ffff"  # transactional_id: null
        "ffff 00007530"  # acks -1, timeout_ms 30000
        "00000001 0006 6576656e7473"  # one topic: "events"
        "00000001 00000002"  # one partition: 2
        f"{len(batch):08x}" + batch.hex()  # records: int32 length + the batch
    )
    body = {
        "transactional_id": None,
        "acks": -1,
        "timeout_ms": 30000,
        "topics": [{"name": "events", "partitions": [{"partition_index": 2, "records": batch}]}],
    }
    assert encode_request(ApiKey.PRODUCE, 3, 5, "kcat", body) == frame

    payload = frame[4:]
    header, decoded = decode_request(payload)

    assert header == RequestHeader(0, 3, 5, "kcat")
    assert decoded == body
    records = decoded["topics"][0]["partitions"][0]["records"]
    assert isinstance(records, memoryview) and records.obj is payload  # a view, not a copy
    assert bytes(records) == batch
    assert validate_batch(records).record_count == 1


def test_records_may_be_written_from_several_chunks():
    one, two = b"a" * 5000, b"b" * 7
    header = RequestHeader(ApiKey.FETCH, 4, 1, None)
    partition = {"partition_index": 0, "high_watermark": 9}
    joined = encode_response(header, {"responses": [{"topic": "t", "partitions": [
        {**partition, "records": one + two}]}]})  # fmt: skip
    chunked = encode_response(header, {"responses": [{"topic": "t", "partitions": [
        {**partition, "records": [one, memoryview(two)]}]}]})  # fmt: skip
    assert chunked == joined


def test_api_versions_v3_request_skips_unknown_tagged_fields():
    frame = _framed(
        "0012 0003 00000001 0004 6b636174"  # ApiVersions v3: header v2 ...
        "01 05 02 6162"  # ... with one unknown tagged field (tag 5, 2 bytes)
        "0b 6c696272646b61666b61"  # compact string "librdkafka"
        "06 322e302e32"  # compact string "2.0.2"
        "01 00 01 ff"  # body tagged fields: one unknown (tag 0, 1 byte)
    )
    header, body = decode_request(frame[4:])
    assert header == RequestHeader(18, 3, 1, "kcat")
    assert body == {"client_software_name": "librdkafka", "client_software_version": "2.0.2"}
    assert encode_request(ApiKey.API_VERSIONS, 3, 1, "kcat", body) == _framed(
        "0012 0003 00000001 0004 6b636174 00 0b 6c696272646b61666b61 06 322e302e32 00"
    )


def test_api_versions_v3_response_has_header_v0():
    header = RequestHeader(ApiKey.API_VERSIONS, 3, 9, None)
    body = {"api_keys": [{"api_key": 18, "min_version": 0, "max_version": 3}]}
    assert encode_response(header, body) == _framed(
        "00000009"  # correlation id and no tag buffer
        "0000 02 0012 0000 0003 00"  # error 0, compact array of one api key (+ its tags)
        "00000000 00"  # throttle, no tagged fields
    )


def test_flexible_response_has_header_v1():
    assert encode_response(RequestHeader(ApiKey.HEARTBEAT, 4, 9, None), {"error_code": 27}) == (
        _framed("00000009 00 00000000 001b 00")
    )
    assert encode_response(RequestHeader(ApiKey.HEARTBEAT, 3, 9, None), {"error_code": 27}) == (
        _framed("00000009 00000000 001b")
    )


def test_metadata_v9_response_is_compact():
    assert encode_response(RequestHeader(ApiKey.METADATA, 9, 7, None), {}) == _framed(
        "00000007 00"  # header v1
        "00000000 01 00 ffffffff 01"  # throttle, brokers [], cluster_id null, controller, topics []
        "80000000 00"  # cluster_authorized_operations, no tagged fields
    )


def test_tagged_fields_are_sent_only_when_not_default():
    header = RequestHeader(ApiKey.FETCH, 12, 1, None)
    partition = {"partition_index": 0, "current_leader": {"leader_id": 1, "leader_epoch": 5}}
    frame = encode_response(header, {"responses": [{"topic": "t", "partitions": [partition]}]})
    assert frame.endswith(
        bytes.fromhex(
            "00"  # records: null
            "01 01 09 00000001 00000005 00"  # one tagged field: tag 1, 9 bytes (struct + its tags)
            "00 00"  # the topic's and the body's tagged fields: none
        )
    )
    _, body = decode_response(ApiKey.FETCH, 12, frame[4:])
    decoded = body["responses"][0]["partitions"][0]
    assert decoded["current_leader"] == {"leader_id": 1, "leader_epoch": 5}
    assert decoded["diverging_epoch"] == {"epoch": -1, "end_offset": -1}


@pytest.mark.parametrize(
    ("api_key", "version"),
    [(ApiKey.API_VERSIONS, 4), (ApiKey.PRODUCE, 2), (ApiKey.FETCH, 13), (1000, 0), (-1, 0)],
)
def test_unsupported_version_carries_the_header(api_key, version):
    frame = struct.pack(">hhih", api_key, version, 77, 2) + b"id" + b"\x00garbage"
    with pytest.raises(UnsupportedVersionError) as info:
        decode_request(frame)
    assert info.value.header == RequestHeader(api_key, version, 77, "id")


def test_api_versions_unsupported_response_is_v0_with_error_35():
    frame = api_versions_unsupported_response(RequestHeader(18, 4, 77, "kafka-python"))
    entries = "".join(f"{k:04x}{lo:04x}{hi:04x}" for k, (lo, hi) in sorted(SUPPORTED.items()))
    assert frame == _framed(f"0000004d 0023 {len(SUPPORTED):08x}" + entries)
    for version in (0, 3):  # a client that asked v3 still reads it
        correlation_id, body = decode_response(ApiKey.API_VERSIONS, version, frame[4:])
        assert correlation_id == 77
        assert body["error_code"] == ErrorCode.UNSUPPORTED_VERSION
        assert {e["api_key"]: (e["min_version"], e["max_version"]) for e in body["api_keys"]} == (
            SUPPORTED
        )


def test_api_versions_unsupported_response_lists_the_given_versions():
    frame = api_versions_unsupported_response(RequestHeader(18, 9, 1, None), {18: (0, 2)})
    assert frame == _framed("00000001 0023 00000001 0012 0000 0002")


def test_supported_versions():
    assert SUPPORTED[ApiKey.PRODUCE] == (3, 9)
    assert SUPPORTED[ApiKey.FETCH] == (4, 12)
    assert SUPPORTED[ApiKey.API_VERSIONS] == (0, 3)
    assert SUPPORTED[ApiKey.INIT_PRODUCER_ID] == (0, 4)
    assert SUPPORTED[ApiKey.END_TXN] == (0, 3)
    assert SUPPORTED[ApiKey.DESCRIBE_TRANSACTIONS] == (0, 0)
    assert SUPPORTED[ApiKey.SASL_HANDSHAKE] == (0, 1)
    assert SUPPORTED[ApiKey.SASL_AUTHENTICATE] == (0, 2)
    assert SUPPORTED[ApiKey.CREATE_PARTITIONS] == (0, 1)
    assert SUPPORTED[ApiKey.INCREMENTAL_ALTER_CONFIGS] == (0, 0)
    assert SUPPORTED[ApiKey.DELETE_GROUPS] == (0, 1)
    assert len(SUPPORTED) == 29


def test_malformed_body_error_carries_the_header():
    frame = API_VERSIONS_V0[4:6] + b"\x00\x03" + API_VERSIONS_V0[8:] + b"\x05ab"  # v3, cut short
    with pytest.raises(ProtocolError, match="malformed ApiVersions v3 request") as info:
        decode_request(frame)
    assert info.value.header == RequestHeader(18, 3, 1, "kcat")


def test_encode_rejects_null_in_a_non_nullable_field():
    with pytest.raises(ValueError, match="not nullable"):
        encode_request(ApiKey.METADATA, 1, 1, None, {"topics": [{"name": None}]})
    with pytest.raises(ValueError, match="acks"):
        encode_request(ApiKey.PRODUCE, 3, 1, None, {"acks": 1 << 20})


def test_encode_rejects_versions_without_a_schema():
    with pytest.raises(ValueError, match="no schema"):
        encode_request(ApiKey.PRODUCE, 2, 1, None, {})
    with pytest.raises(ValueError, match="no schema"):
        decode_response(ApiKey.DELETE_RECORDS, 0, b"\x00\x00\x00\x01")


def test_public_api():
    assert protocol_all == [
        "APIS",
        "SUPPORTED",
        "ApiKey",
        "ErrorCode",
        "ProtocolError",
        "RequestHeader",
        "UnsupportedVersionError",
        "api_versions_unsupported_response",
        "decode_request",
        "decode_response",
        "encode_request",
        "encode_response",
    ]
