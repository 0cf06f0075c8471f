"""Malformed frames: decode_request raises ProtocolError and nothing else."""

from __future__ import annotations

import contextlib
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from protocol_strategies import VERSIONS, request_body

from runtime.protocol import ProtocolError, decode_request, encode_request
from runtime.protocol.codes import ApiKey

_settings = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
_versions = st.sampled_from(VERSIONS)


def _decodes_or_protocol_error(frame: bytes) -> None:
    with contextlib.suppress(ProtocolError):
        decode_request(frame)


def _header(key: int, version: int) -> bytes:
    return struct.pack(">hhih", key, version, 1, 1) + b"c"


@_settings
@given(st.binary(max_size=300))
def test_random_bytes(frame):
    _decodes_or_protocol_error(frame)


@_settings
@given(_versions, st.binary(max_size=300))
def test_valid_header_random_body(key_version, body):
    key, version = key_version
    _decodes_or_protocol_error(_header(key, version) + body)


_INTERESTING = [b"\xff\xff", b"\xff\xfe", b"\x7f\xff", b"\xff\xff\xff\xff", b"\x80\x00\x00\x00",
                b"\x7f\xff\xff\xff", b"\x00", b"\xff", b"\x80\x80\x80\x80\x80\x01"]  # fmt: skip


@st.composite
def _mutated(draw):
    key, version = draw(_versions)
    body = draw(request_body(key, version))
    frame = bytearray(encode_request(key, version, 1, "c", body)[4:])
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, len(frame)))
        how = draw(st.sampled_from(["truncate", "flip", "insert", "delete", "overwrite"]))
        if how == "truncate":
            del frame[at:]
        elif how == "flip" and at < len(frame):
            frame[at] ^= draw(st.integers(1, 255))
        elif how == "insert":
            frame[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif how == "delete":
            del frame[at : at + draw(st.integers(1, 8))]
        else:
            patch = draw(st.sampled_from(_INTERESTING))
            frame[at : at + len(patch)] = patch
    return bytes(frame)


@_settings
@given(_mutated())
def test_mutated_valid_frames(frame):
    _decodes_or_protocol_error(frame)


@pytest.mark.parametrize("key_version", VERSIONS)
def test_every_truncation_of_a_valid_frame(key_version):
    key, version = key_version
    body = {"topics": [{"name": "t", "partitions": [{"partition_index": 1, "records": b"r"}]}]}
    if key == ApiKey.ADD_PARTITIONS_TO_TXN:  # its partitions are plain numbers
        body = {"topics": [{"name": "t", "partitions": [1, 2]}]}
    frame = encode_request(key, version, 1, "c", body)[4:]
    for end in range(len(frame)):
        _decodes_or_protocol_error(frame[:end])
