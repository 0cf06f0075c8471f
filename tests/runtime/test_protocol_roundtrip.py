"""Every api and version: body -> frame -> body, for requests and responses."""

from __future__ import annotations

import struct

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from protocol_strategies import VERSIONS, request_body, response_body

from runtime.protocol import (
    ApiKey,
    ErrorCode,
    RequestHeader,
    decode_request,
    decode_response,
    encode_request,
    encode_response,
)
from runtime.protocol.primitives import INT32

_settings = settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
_client_ids = st.none() | st.text(max_size=10)
_correlation_ids = st.integers(-(2**31), 2**31 - 1)


def _ids(param: tuple[int, int]) -> str:
    return f"{ApiKey(param[0]).name}-v{param[1]}"


@pytest.mark.parametrize("key_version", VERSIONS, ids=_ids)
@_settings
@given(data=st.data(), correlation_id=_correlation_ids, client_id=_client_ids)
def test_request_roundtrip(key_version, data, correlation_id, client_id):
    key, version = key_version
    body = data.draw(request_body(key, version))
    frame = encode_request(key, version, correlation_id, client_id, body)
    assert INT32.unpack_from(frame)[0] == len(frame) - 4

    header, decoded = decode_request(frame[4:])

    assert header == RequestHeader(key, version, correlation_id, client_id)
    assert decoded == body
    assert encode_request(key, version, correlation_id, client_id, decoded) == frame


@pytest.mark.parametrize("key_version", VERSIONS, ids=_ids)
@_settings
@given(data=st.data(), correlation_id=_correlation_ids)
def test_response_roundtrip(key_version, data, correlation_id):
    key, version = key_version
    body = data.draw(response_body(key, version))
    if key == ApiKey.API_VERSIONS and version > 0:  # that error code is always read as v0
        assume(body["error_code"] != ErrorCode.UNSUPPORTED_VERSION)
    header = RequestHeader(key, version, correlation_id, "client")
    frame = encode_response(header, body)
    assert INT32.unpack_from(frame)[0] == len(frame) - 4

    got_correlation_id, decoded = decode_response(key, version, frame[4:])

    assert got_correlation_id == correlation_id
    assert decoded == body
    assert encode_response(header, decoded) == frame


@pytest.mark.parametrize("key_version", VERSIONS, ids=_ids)
def test_empty_body_takes_defaults(key_version):
    key, version = key_version
    header = RequestHeader(key, version, 1, None)

    _, request = decode_request(encode_request(key, version, 1, None, {})[4:])
    _, response = decode_response(key, version, encode_response(header, {})[4:])

    assert encode_request(key, version, 1, None, request) == encode_request(
        key, version, 1, None, {}
    )
    assert encode_response(header, response) == encode_response(header, {})


def test_a_null_sync_group_assignment_decodes_as_none():
    # librdkafka's mock cluster sends one (Kafka's schema says non-null bytes)
    frame = struct.pack(">iihi", 7, 0, 0, -1)  # correlation id, throttle, error, null bytes
    assert decode_response(ApiKey.SYNC_GROUP, 3, frame) == (
        7,
        {"throttle_time_ms": 0, "error_code": 0, "assignment": None},
    )
