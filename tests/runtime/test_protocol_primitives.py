"""Reader and Writer: round trips, encodings from the guide, and named failures."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from runtime.protocol import ProtocolError
from runtime.protocol.primitives import Reader, Writer

_NAMED = {
    "int8": st.integers(-(2**7), 2**7 - 1),
    "int16": st.integers(-(2**15), 2**15 - 1),
    "int32": st.integers(-(2**31), 2**31 - 1),
    "int64": st.integers(-(2**63), 2**63 - 1),
    "uint32": st.integers(0, 2**32 - 1),
    "float64": st.floats(allow_nan=False),
    "boolean": st.booleans(),
    "uvarint": st.integers(0, 2**35 - 1),
    "varint": st.integers(-(2**31), 2**31 - 1),
    "varlong": st.integers(-(2**63), 2**63 - 1),
    "string": st.text(max_size=40),
    "nullable_string": st.none() | st.text(max_size=40),
    "compact_string": st.text(max_size=200),
    "compact_nullable_string": st.none() | st.text(max_size=40),
    "bytes_": st.binary(max_size=40),
    "nullable_bytes": st.none() | st.binary(max_size=40),
    "compact_bytes": st.binary(max_size=200),
    "compact_nullable_bytes": st.none() | st.binary(max_size=40),
    "records": st.none() | st.binary(max_size=40),
    "compact_records": st.none() | st.binary(max_size=40),
    "uuid": st.uuids(),
}


@pytest.mark.parametrize("kind", sorted(_NAMED))
@given(data=st.data())
def test_roundtrip(kind, data):
    values = data.draw(st.lists(_NAMED[kind], max_size=4))
    w = Writer()
    for v in values:
        getattr(w, kind)(v)
    r = Reader(w.getvalue())
    assert [getattr(r, kind)() for _ in values] == values
    assert r.remaining() == 0


@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        (0, "00"),
        (1, "02"),
        (-1, "01"),
        (63, "7e"),
        (-64, "7f"),
        (64, "8001"),
        (-(2**31), "ffffffff0f"),
    ],
)
def test_varint_is_zigzag(value, encoded):
    w = Writer()
    w.varint(value)
    assert w.getvalue().hex() == encoded
    assert Reader(bytes.fromhex(encoded)).varint() == value


@pytest.mark.parametrize(
    ("value", "encoded"), [(0, "00"), (127, "7f"), (128, "8001"), (300, "ac02")]
)
def test_uvarint(value, encoded):
    w = Writer()
    w.uvarint(value)
    assert w.getvalue().hex() == encoded
    assert Reader(bytes.fromhex(encoded)).uvarint() == value


def test_compact_lengths_are_one_more():
    w = Writer()
    w.compact_string("ab")
    w.compact_nullable_string(None)
    w.compact_array_length(3)
    w.compact_array_length(None)
    assert w.getvalue() == b"\x03ab\x00\x04\x00"


def test_records_from_chunks_read_back_joined():
    w = Writer()
    w.records([b"x" * 5000, memoryview(b"yz")])
    assert bytes(Reader(w.getvalue()).records()) == b"x" * 5000 + b"yz"


def test_large_buffers_are_kept_not_copied():
    big = b"r" * 100_000
    w = Writer()
    w.int8(1)
    w.records(big)
    assert any(chunk is big for chunk in w.chunks)
    assert (
        w.frame() == (len(big) + 5).to_bytes(4, "big") + b"\x01" + len(big).to_bytes(4, "big") + big
    )


def test_invalid_utf8_is_replaced_as_java_does():
    assert Reader(b"\x00\x02\xff\xfe").string() == "\ufffd\ufffd"


def test_tagged_fields_read_raw_and_skip():
    w = Writer()
    w.tagged_fields({7: b"ab", 1: b""})
    assert w.getvalue() == b"\x02\x01\x00\x07\x02ab"
    assert Reader(w.getvalue()).tagged_fields() == {1: b"", 7: b"ab"}
    r = Reader(w.getvalue() + b"!")
    r.skip_tagged_fields()
    assert r.remaining() == 1


@pytest.mark.parametrize(
    ("method", "data", "message"),
    [
        ("int32", "000000", "truncated"),
        ("int64", "", "truncated"),
        ("string", "fffe", "invalid string length -2"),
        ("string", "ffff", "invalid string length -1"),
        ("nullable_string", "fffe", "invalid string length -2"),
        ("string", "000561", "truncated string"),
        ("compact_string", "00", "invalid compact string length -1"),
        ("compact_string", "0561", "truncated string"),
        ("bytes_", "fffffffb", "invalid bytes length -5"),
        ("nullable_bytes", "7fffffff00", "truncated bytes"),
        ("records", "fffffffe", "invalid records length -2"),
        ("records", "00000010abcd", "truncated records"),
        ("array_length", "fffffffe", "invalid array length -2"),
        ("uvarint", "ffffffffff01", "varint longer than 5 bytes"),
        ("uvarint", "8080", "truncated varint"),
        ("uuid", "00" * 15, "truncated uuid"),
        ("tagged_fields", "0101056162", "truncated tagged field"),
        ("tagged_fields", "7f", "cannot fit"),
    ],
)
def test_bad_input_raises_protocol_error(method, data, message):
    with pytest.raises(ProtocolError, match=message):
        getattr(Reader(bytes.fromhex(data)), method)()
