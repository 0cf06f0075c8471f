"""The hand-written Fetch codec (v4-v11) against the schema interpreter: the same
bodies and bytes for well-formed frames, the schema's own errors for bad ones."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from protocol_strategies import request_body, response_body

from runtime.protocol import fetch_codec
from runtime.protocol.codes import ApiKey
from runtime.protocol.errors import ProtocolError
from runtime.protocol.frames import (
    RequestHeader,
    decode_request,
    decode_response,
    encode_request,
    encode_response,
    encode_response_parts,
)
from runtime.protocol.messages import APIS
from runtime.protocol.primitives import Writer

VERSIONS = list(fetch_codec.VERSIONS)
FETCH = APIS[ApiKey.FETCH]


def _by_schema(frame: bytes) -> tuple[RequestHeader, dict]:
    with pytest.MonkeyPatch.context() as m:
        m.setattr(fetch_codec, "decode_request", lambda buf, pos, version: None)
        return decode_request(frame)


def _schema_bytes(body: dict, version: int) -> bytes:
    _, encode = FETCH.response.codec(version, False)
    w = Writer()
    encode(w, body)
    return w.getvalue()


@settings(max_examples=150, deadline=None)
@given(data=st.data(), version=st.sampled_from(VERSIONS))
def test_a_request_decodes_as_the_schema_decodes_it(data, version):
    body = data.draw(request_body(ApiKey.FETCH, version))
    frame = encode_request(ApiKey.FETCH, version, 5, "client", body)[4:]
    assert decode_request(frame) == _by_schema(frame)
    assert fetch_codec.decode_request(memoryview(frame), 16, version) is not None  # no fallback


@settings(max_examples=150, deadline=None)
@given(data=st.data(), version=st.sampled_from(VERSIONS))
def test_a_request_encodes_to_the_schema_s_bytes(data, version):
    body = data.draw(request_body(ApiKey.FETCH, version))
    _, encode = FETCH.request.codec(version, False)
    by_schema = Writer()
    encode(by_schema, body)
    fast = Writer()
    fetch_codec.encode_request(fast, body, version)
    assert fast.getvalue() == by_schema.getvalue()
    assert encode_request(ApiKey.FETCH, version, 5, "c", body)[15:] == by_schema.getvalue()


def test_a_request_the_hand_encoder_cannot_take_gets_the_schema_s_error():
    body = {"topics": [{"topic": None, "partitions": []}]}
    with pytest.raises(ValueError, match="cannot encode Fetch v11 request"):
        encode_request(ApiKey.FETCH, 11, 1, "c", body)


@settings(max_examples=150, deadline=None)
@given(data=st.data(), version=st.sampled_from(VERSIONS))
def test_a_response_encodes_to_the_schema_s_bytes(data, version):
    body = data.draw(response_body(ApiKey.FETCH, version))
    fast = Writer()
    fetch_codec.encode_response(fast, body, version)
    assert fast.getvalue() == _schema_bytes(body, version)


def _plain(body: dict) -> dict:
    """Records views as bytes, so that bodies compare by value."""
    return {
        **body,
        "responses": [
            {
                **topic,
                "partitions": [
                    {**p, "records": None if p["records"] is None else bytes(p["records"])}
                    for p in topic["partitions"]
                ],
            }
            for topic in body["responses"]
        ],
    }


def _response_by_schema(frame: bytes, version: int) -> tuple[int, dict]:
    with pytest.MonkeyPatch.context() as m:
        m.setattr(fetch_codec, "decode_response", lambda buf, pos, version: None)
        return decode_response(ApiKey.FETCH, version, frame)


@settings(max_examples=150, deadline=None)
@given(data=st.data(), version=st.sampled_from(VERSIONS))
def test_a_response_decodes_as_the_schema_decodes_it(data, version):
    body = data.draw(response_body(ApiKey.FETCH, version))
    frame = encode_response(RequestHeader(ApiKey.FETCH, version, 4, None), body)[4:]
    correlation_id, fast = decode_response(ApiKey.FETCH, version, frame)
    expected_id, expected = _response_by_schema(frame, version)
    assert correlation_id == expected_id == 4
    assert _plain(fast) == _plain(expected)
    assert fetch_codec.decode_response(memoryview(frame), 4, version) is not None


@pytest.mark.parametrize("version", [4, 11])
def test_every_truncated_response_is_refused_with_the_schema_s_error(version):
    body = {
        "responses": [
            {
                "topic": "t",
                "partitions": [
                    {
                        "partition_index": 0,
                        "high_watermark": 5,
                        "aborted_transactions": [{"producer_id": 1, "first_offset": 2}],
                        "records": b"r" * 20,
                    }
                ],
            }
        ]
    }
    frame = encode_response(RequestHeader(ApiKey.FETCH, version, 4, None), body)[4:]
    for cut in range(4, len(frame)):
        with pytest.raises(ProtocolError) as fast:
            decode_response(ApiKey.FETCH, version, frame[:cut])
        with pytest.raises(ProtocolError) as schema:
            _response_by_schema(frame[:cut], version)
        assert str(fast.value) == str(schema.value)


def test_records_given_as_chunks_are_kept_as_chunks():
    big = b"b" * 10_000
    body = {
        "responses": [
            {
                "topic": "t",
                "partitions": [
                    {"partition_index": 0, "error_code": 0, "high_watermark": 9, "records": [big]},
                    {"partition_index": 1, "error_code": 0, "high_watermark": 0, "records": b""},
                ],
            }
        ]
    }
    header = RequestHeader(ApiKey.FETCH, 11, 3, None)
    parts = encode_response_parts(header, body)
    assert any(part is big for part in parts)  # not copied into the frame
    assert b"".join(bytes(p) for p in parts)[8:] == _schema_bytes(body, 11)


def test_a_body_the_hand_encoder_cannot_take_gets_the_schema_s_error():
    header = RequestHeader(ApiKey.FETCH, 11, 3, None)
    body = {"responses": [{"topic": "t", "partitions": [{"partition_index": "zero"}]}]}
    with pytest.raises(ValueError, match="cannot encode Fetch v11 response"):
        encode_response(header, body)


@pytest.mark.parametrize("version", [4, 11])
def test_every_truncation_is_refused_with_the_schema_s_error(version):
    body = {
        "max_wait_ms": 500,
        "min_bytes": 1,
        "topics": [
            {
                "topic": "a",
                "partitions": [{"partition": p, "fetch_offset": 7} for p in range(3)],
            }
        ],
        "forgotten_topics_data": [{"topic": "b", "partitions": [1, 2]}],
        "rack_id": "rack",
    }
    frame = encode_request(ApiKey.FETCH, version, 1, "c", body)[4:]
    for cut in range(11, len(frame)):
        with pytest.raises(ProtocolError) as fast:
            decode_request(frame[:cut])
        with pytest.raises(ProtocolError) as schema:
            _by_schema(frame[:cut])
        assert str(fast.value) == str(schema.value)
