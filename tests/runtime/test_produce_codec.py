"""The hand-written Produce codec (v3-v8) against the schema interpreter: the same
bodies and bytes for well-formed frames, the schema's own errors for bad ones."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from protocol_strategies import request_body, response_body

from runtime.protocol import produce_codec
from runtime.protocol.codes import ApiKey
from runtime.protocol.errors import ProtocolError
from runtime.protocol.frames import (
    RequestHeader,
    decode_request,
    encode_request,
    encode_response,
)
from runtime.protocol.messages import APIS
from runtime.protocol.primitives import Writer

VERSIONS = list(produce_codec.VERSIONS)
PRODUCE = APIS[ApiKey.PRODUCE]


def _plain(body: dict) -> dict:
    """Records views as bytes, so that bodies compare by value."""
    return {
        **body,
        "topics": [
            {
                **topic,
                "partitions": [
                    {**p, "records": None if p["records"] is None else bytes(p["records"])}
                    for p in topic["partitions"]
                ],
            }
            for topic in body["topics"]
        ],
    }


def _by_schema(frame: bytes, monkeypatch: pytest.MonkeyPatch) -> tuple[RequestHeader, dict]:
    with monkeypatch.context() as m:
        m.setattr(produce_codec, "decode_request", lambda buf, pos: None)
        return decode_request(frame)


@settings(max_examples=150, deadline=None)
@given(data=st.data(), version=st.sampled_from(VERSIONS))
def test_a_request_decodes_as_the_schema_decodes_it(data, version):
    body = data.draw(request_body(ApiKey.PRODUCE, version))
    frame = encode_request(ApiKey.PRODUCE, version, 5, "client", body)[4:]
    with pytest.MonkeyPatch.context() as m:
        expected = _by_schema(frame, m)
    header, fast = decode_request(frame)
    assert header == expected[0]
    assert _plain(fast) == _plain(expected[1])
    assert produce_codec.decode_request(memoryview(frame), 16) is not None  # no fallback


@settings(max_examples=150, deadline=None)
@given(data=st.data(), version=st.sampled_from(VERSIONS))
def test_a_response_encodes_to_the_schema_s_bytes(data, version):
    body = data.draw(response_body(ApiKey.PRODUCE, version))
    _, encode = PRODUCE.response.codec(version, False)
    by_schema = Writer()
    encode(by_schema, body)
    fast = Writer()
    if produce_codec.encode_response(fast, body, version):
        assert bytes(fast.buf) == bytes(by_schema.buf)
    else:  # record errors: the schema writes them, and the frame is the schema's
        assert any(
            p["record_errors"] or p["error_message"] is not None
            for t in body["responses"]
            for p in t["partitions"]
        )
        assert fast.buf == b""
    header = RequestHeader(ApiKey.PRODUCE, version, 9, None)
    assert encode_response(header, body)[8:] == bytes(by_schema.buf)


@pytest.mark.parametrize("version", [3, 8])
def test_every_truncation_is_refused_with_the_schema_s_error(version, monkeypatch):
    body = {
        "transactional_id": "txn",
        "acks": -1,
        "timeout_ms": 1000,
        "topics": [
            {"name": "a", "partitions": [{"partition_index": 0, "records": b"x" * 70}]},
            {"name": "b", "partitions": [{"partition_index": 3, "records": None}]},
        ],
    }
    frame = encode_request(ApiKey.PRODUCE, version, 1, "c", body)[4:]
    for cut in range(10, len(frame)):
        with pytest.raises(ProtocolError) as fast:
            decode_request(frame[:cut])
        with pytest.raises(ProtocolError) as schema:
            _by_schema(frame[:cut], monkeypatch)
        assert str(fast.value) == str(schema.value)


@pytest.mark.parametrize(
    "patch",
    [
        (23, b"\xff\xfe"),  # a topic name's length below -1
        (19, b"\x7f\xff\xff\xff"),  # more topics than the frame could hold
        (34, b"\xff\xff\xff\xf0"),  # a records length below -1
    ],
)
def test_an_unusual_frame_is_left_to_the_schema(patch, monkeypatch):
    body = {
        "transactional_id": None,
        "acks": 1,
        "timeout_ms": 1000,
        "topics": [{"name": "t", "partitions": [{"partition_index": 0, "records": b"r"}]}],
    }
    frame = bytearray(encode_request(ApiKey.PRODUCE, 8, 1, "c", body)[4:])
    at, data = patch
    frame[at : at + len(data)] = data
    assert produce_codec.decode_request(memoryview(frame), 11) is None  # the body's start
    with pytest.raises(ProtocolError) as fast:
        decode_request(frame)
    with pytest.raises(ProtocolError) as schema:
        _by_schema(bytes(frame), monkeypatch)
    assert str(fast.value) == str(schema.value)
